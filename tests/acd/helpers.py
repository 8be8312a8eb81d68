"""Whole calls through the ACD on the manual clock: an engine with a simulated exchange,
seat phones that are CallerBots, and speech stand-ins that tests can find again in what
the other side heard or in the recording."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from appliance.acd import Acd, AgentState, QueueConfig, SeatConfig
from appliance.calls.call import Call, FlowFn
from appliance.calls.engine import Engine
from appliance.media.prompts import PromptLibrary, concat
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from drivers.sim.exchange import Behaviour
from tests.rig import InlineExecutor, running_engine
from tests.voicemail.conftest import spoken

T = TypeVar("T")
LIB = PromptLibrary()


def audio(lang: str, *names: str) -> bytes:
    return concat([LIB.get(name, lang) for name in names])


def voice(name: str, seed: int = 1) -> bytes:
    """A person saying a recorded English phrase (over line noise): unique bytes, so
    finding them in what the other side heard proves they crossed the bridge unchanged."""
    return spoken(name, seed=seed).astype("<i2").tobytes()


def seats(count: int) -> list[SeatConfig]:
    return [SeatConfig(id=f"s{i + 1}", number=f"80{i + 1:02d}", name=f"Seat {i + 1}")
            for i in range(count)]


def open_acd(tmp_path: Path, seat_count: int, queue: QueueConfig) -> tuple[Store, Acd]:
    """A fresh store and an ACD with ``seat_count`` seats (s1 at 8001, ...) and ``queue``."""
    store = Store(tmp_path / "appliance.db")
    return store, Acd(seats(seat_count), [queue], store=store, executor=InlineExecutor(),
                      messages_dir=tmp_path / "messages")


def queue_flow(acd: Acd, queue: str, languages: dict[str, str]) -> FlowFn:
    """A stand-in for the IVR: answer, take the language the dialled number stands for,
    and go into the queue (the default IVR's own transfer is tested separately)."""

    async def flow(call: Call) -> None:
        await call.answer()
        call.language = languages.get(call.callee, "zh")
        await acd.transfer(call, queue)

    return flow


def run_calls(tmp_path: Path, store: Store | None, acd: Acd, flow: FlowFn,
              scenario: Callable[[Engine, SimExchange], Awaitable[T]], *, trunks: int = 16,
              timeout: float = 50.0) -> T:
    async def main() -> T:
        async with running_engine(flow, prompts=LIB, store=store,
                                  recordings=tmp_path / "recordings",
                                  trunks=trunks) as (engine, exchange):
            acd.bind(engine)
            result = await asyncio.wait_for(scenario(engine, exchange), timeout=timeout)
            await engine.settle()
            return result

    return asyncio.run(main())


async def until(engine: Engine, condition: Callable[[], bool], seconds: float = 60.0) -> bool:
    """Wait on the engine's clock (0.1 s steps) until ``condition`` holds."""
    for _ in range(int(seconds * 10)):
        if condition():
            return True
        await engine.wait_ticks(None, 5)
    return condition()


def talking(acd: Acd, *seats: str) -> Callable[[], bool]:
    """Whether the ACD has put one of ``seats`` in a conversation: a seat phone that
    answered is connected a few ticks before the ACD bridges it, and words said in
    between reach nobody (as on any switch)."""
    return lambda: any(acd.seats[s].state is AgentState.TALKING for s in seats)


def seat_bot(exchange: SimExchange, number: str, answer_after: float = 1.0) -> CallerBot:
    bot = CallerBot(exchange, number, name=f"seat-{number}")
    exchange.add_seat(number, bot, answer_after=answer_after)
    return bot


def flush(store: Store) -> None:
    """Wait until every write submitted so far is committed (the writer runs in order)."""
    store.submit(lambda db: None).result()


def unanswered_seat(exchange: SimExchange, number: str) -> None:
    """A seat phone that rings and rings: nobody at the desk."""
    exchange.subscribe(number, CallerBot(exchange, number), behaviour=Behaviour.NO_ANSWER,
                       signal_answer=True)
