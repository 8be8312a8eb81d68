"""A real engine on the real clock in a thread of its own, with the simulated exchange, an
ACD and its control server on the data folder, for the web's tests (the web is another
process on the box; here another thread, talking to the engine only over TCP)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from appliance.acd import Acd, QueueConfig, SeatConfig
from appliance.calls.call import Call
from appliance.calls.clock import MonotonicClock
from appliance.calls.engine import Engine
from appliance.control import ControlServer
from appliance.media.prompts import PromptLibrary
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange

T = TypeVar("T")
SEATS = (SeatConfig("s1", "8001", name="坐席一"), SeatConfig("s2", "8002", name="坐席二"))


class LiveEngine:
    def __init__(self, data: Path, store: Store, *, answer_after: float = 1.0,
                 wrap_up: float = 30.0) -> None:
        self.data = data
        self.store = store
        self.answer_after = answer_after
        #: IVR variables each caller (by number) arrives with, as the IVR would leave them
        self.keyed: dict[str, dict[str, str]] = {}
        self.acd = Acd(SEATS, [QueueConfig("service", ring_timeout=20.0, wrap_up=wrap_up)],
                       store=store, messages_dir=data / "messages")
        self.control = ControlServer(self.acd, data, store=store)
        self.loop = asyncio.new_event_loop()
        self.exchange = SimExchange(trunks=8)
        self.engine = Engine(clock=MonotonicClock(), drivers=[self.exchange], flow=self._flow,
                             prompts=PromptLibrary(), store=store,
                             recordings=data / "recordings",
                             on_event=self.control.call_event)
        self.seat_phones: dict[str, CallerBot] = {}
        self.callers: list[CallerBot] = []

    async def _flow(self, call: Call) -> None:
        await call.answer()
        await self.acd.transfer(call, "service", variables=self.keyed.get(call.caller, {}))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        self.task = asyncio.ensure_future(self.engine.run())
        await self.engine.started.wait()
        self.acd.bind(self.engine)
        await self.control.start()
        for seat in SEATS:
            bot = CallerBot(self.exchange, seat.number, name=f"seat {seat.id}")
            self.exchange.add_seat(seat.number, bot, answer_after=self.answer_after)
            self.seat_phones[seat.id] = bot

    async def _stop(self) -> None:
        for bot in self.callers:
            await bot.hangup()
        await self.control.close()
        self.engine.stop()
        await self.task
        # What the ACD still waits on (a wrap-up timer) ends with the engine here.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def dial(self, caller: str, keyed: dict[str, str] | None = None) -> CallerBot:
        """A caller on the exchange dials the service number (and goes into the queue)."""
        self.keyed[caller] = keyed or {}

        async def dial() -> CallerBot:
            bot = CallerBot(self.exchange, caller, name=f"caller {caller}")
            self.callers.append(bot)
            await bot.dial("95500")
            return bot

        return self.run(dial())


@contextmanager
def live_engine(data: Path, store: Store, **kw: Any) -> Iterator[LiveEngine]:
    live = LiveEngine(data, store, **kw)
    thread = threading.Thread(target=live.loop.run_forever, daemon=True, name="engine")
    thread.start()
    try:
        live.run(live._start())
        yield live
    finally:
        try:
            live.run(live._stop(), timeout=20)
        finally:
            live.loop.call_soon_threadsafe(live.loop.stop)
            thread.join(5)
            live.loop.close()
