"""The control server: the engine's side of :mod:`appliance.control.protocol`.

It runs on the engine's event loop, so each request calls the ACD's control functions
(:mod:`appliance.acd.control`) directly, as they require. Events reach each subscriber
through a bounded queue of its own, filled without waiting: a subscriber that does not
read fast enough is dropped (its connection closed) when its queue overflows, so a slow
or stuck browser tab never makes a call wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlite_utils import Database

from appliance.acd import Acd, AcdError, ConfigError, QueueConfig, SeatConfig, records
from appliance.acd import control as acd_control
from appliance.calls.call import Call
from appliance.control.protocol import (
    LISTEN_DIAL_OPS,
    MAX_LINE,
    ControlError,
    Request,
    encode,
    ensure_token,
    parse_request,
    write_address,
)
from appliance.store.db import Store

if TYPE_CHECKING:
    from appliance.reminders.dialer import ReminderDialer

log = logging.getLogger("appliance.control")

#: events a subscriber may have waiting before it is dropped
MAX_BACKLOG: Final = 1000
#: the requests :meth:`ControlServer._call_control` answers
CALL_CONTROL_OPS: Final = frozenset({"hold", "unhold", "transfer", "consult-complete",
                                     "consult-return", "conference"})
#: calls each seat answered that can still get a wrap-up code
WRAP_UP_MEMORY: Final = 20


class _Subscriber:
    def __init__(self, writer: asyncio.StreamWriter, backlog: int) -> None:
        self.writer = writer
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=backlog)
        self.dropped = False


class ControlServer:
    """Serve the control API for ``acd`` on ``host:port`` (0: any free port); the port and
    the token are written into ``data`` for the web to find."""

    def __init__(self, acd: Acd, data: Path, *, store: Store | None = None,
                 host: str = "127.0.0.1", port: int = 0,
                 max_backlog: int = MAX_BACKLOG,
                 reminders: ReminderDialer | None = None) -> None:
        self.acd = acd
        self.reminders = reminders  # the premium reminder dialer, if the engine runs one
        self.data = Path(data)
        self.store = store if store is not None else acd.store
        self.host = host
        self.port = port
        self.max_backlog = max_backlog
        self.token = ensure_token(self.data)
        self.subscribers: list[_Subscriber] = []
        self.dropped = 0  # subscribers dropped for falling behind
        self._answered: dict[str, deque[str]] = {}
        self._offered: dict[str, dict[str, Any]] = {}  # seat -> the last call offered it
        self._server: asyncio.Server | None = None
        self._unfollow = acd_control.follow(acd, self.publish)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]
        write_address(self.data, self.host, self.port)
        log.info("control API on %s:%d", self.host, self.port)

    async def close(self) -> None:
        self._unfollow()
        for sub in list(self.subscribers):
            self._drop(sub)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # ------------------------------------------------------------------ events
    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Hand the event to every subscriber without waiting (an ACD listener)."""
        if kind == "connected":
            self._answered.setdefault(data["seat"], deque(maxlen=WRAP_UP_MEMORY)).append(
                data["call"])
        elif kind == "offer":
            for seat_id in data["seats"]:
                self._offered[seat_id] = data
        line = encode({"event": kind, "data": data})
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(line)
            except asyncio.QueueFull:
                log.warning("control: a subscriber fell %d events behind; dropped",
                            self.max_backlog)
                self.dropped += 1
                self._drop(sub)

    def call_event(self, what: str, call: Call, info: dict[str, Any]) -> None:
        """The engine's ``on_event``: calls starting and ending, for the live pages."""
        if what == "started":
            self.publish("call-started", {"call": call.id, "caller": call.caller,
                                          "callee": call.callee, "line": call.line.id,
                                          "at": self.acd.now()})
        elif what == "ended":
            self.publish("call-ended", {"call": call.id, "cause": info.get("cause", ""),
                                        "at": self.acd.now()})

    def _drop(self, sub: _Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.remove(sub)
        sub.dropped = True
        sub.writer.transport.abort()  # not close(): that would wait for the backlog
        with contextlib.suppress(asyncio.QueueFull):
            sub.queue.put_nowait(None)

    # ------------------------------------------------------------------ requests
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    writer.write(encode({"ok": False, "error":
                                         f"request longer than {MAX_LINE} bytes"}))
                    break
                if not line:
                    break
                try:
                    request = parse_request(line, self.token)
                    if request.op == "follow":
                        writer.write(encode({"ok": True, "result": "following"}))
                        await self._follow(reader, writer)
                        return
                    result = await self._handle(request)
                except (ControlError, AcdError) as exc:
                    writer.write(encode({"ok": False, "error": str(exc)}))
                    if str(exc).startswith("token:"):
                        break
                else:
                    writer.write(encode({"ok": True, "result": result}))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _follow(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        sub = _Subscriber(writer, self.max_backlog)
        self.subscribers.append(sub)

        def gone(_: asyncio.Future[bytes]) -> None:
            # The client closed its end (a page left): stop now, not at the next event.
            if sub in self.subscribers:
                self.subscribers.remove(sub)
            sub.dropped = True
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)

        watch = asyncio.ensure_future(reader.read())  # a follower sends nothing more
        watch.add_done_callback(gone)
        try:
            while True:
                line = await sub.queue.get()
                if line is None or sub.dropped:
                    return
                writer.write(line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            watch.cancel()
            if sub in self.subscribers:
                self.subscribers.remove(sub)

    async def _handle(self, request: Request) -> Any:
        acd, a = self.acd, request.args
        if request.op == "seats":
            # With each seat the call it answered last (the one in progress, if any) and
            # the last offer it had, so a page opened mid-call (a new browser, a restarted
            # web) shows the screen pop again and can wrap the call up.
            return [dict(v.as_dict(), call=(self._answered.get(v.id) or [""])[-1],
                         offer=self._offered.get(v.id), **acd_control.call_state(acd, v.id))
                    for v in acd_control.seat_states(acd)]
        if request.op == "queues":
            return [v.as_dict() for v in acd_control.queue_states(acd)]
        if request.op == "login":
            return acd_control.login(acd, a["seat"], a["agent"]).as_dict()
        if request.op == "logout":
            return acd_control.logout(acd, a["seat"]).as_dict()
        if request.op == "set-state":
            return acd_control.set_state(acd, a["seat"], a["state"], a["reason"]).as_dict()
        if request.op == "hangup":
            return (await acd_control.hang_up(acd, a["seat"])).as_dict()
        if request.op == "wrap-up":
            return self._wrap_up(a["seat"], a["call"], a["code"], a["note"])
        if request.op == "lines":
            return self._lines()
        if request.op == "reserve-inbound":
            return self._reserve_inbound(a["ports"])
        if request.op in LISTEN_DIAL_OPS:
            return self._listen_or_dial(request)
        if request.op == "reload-acd":
            return await self._reload_acd()
        if request.op in CALL_CONTROL_OPS:
            return await self._call_control(request)
        if request.op == "reminders-run":
            if self.reminders is None:
                raise ControlError("reminders-run: this engine places no reminder calls")
            return await self.reminders.run_now()
        raise ControlError(f"op {request.op!r} has no handler")  # pragma: no cover

    def _listen_or_dial(self, request: Request) -> Any:
        """A supervisor's listen-in and whisper, and click-to-dial."""
        acd, a = self.acd, request.args
        if request.op == "listen":
            return acd_control.listen(acd, a["seat"], a["phone"], a["mode"], a["supervisor"])
        if request.op == "listen-mode":
            return acd_control.listen_mode(acd, a["monitor"], a["mode"])
        if request.op == "listen-stop":
            return acd_control.listen_stop(acd, a["monitor"])
        if request.op == "monitors":
            return acd_control.monitors(acd)
        return acd_control.dial(acd, a["seat"], a["number"], customer=a["customer"],
                                queue=a["queue"], language=a["language"])

    def _lines(self) -> list[dict[str, Any]]:
        """Each physical line of each of the engine's drivers, with what it is doing."""
        engine = self.acd.engine
        if engine is None:
            raise ControlError("lines: the engine has not started yet")
        return [dict(status.as_dict(), driver=driver.name)
                for driver in engine.drivers for status in driver.port_states()]

    def _reserve_inbound(self, ports: list[str]) -> list[dict[str, Any]]:
        """The admin's "reserved for inbound" ports, from now on (the web sends them all
        after each change); then the lines as :meth:`_lines` gives them."""
        engine = self.acd.engine
        if engine is None:
            raise ControlError("reserve-inbound: the engine has not started yet")
        for driver in engine.drivers:
            driver.reserve_inbound(frozenset(ports))
        return self._lines()

    async def _reload_acd(self) -> dict[str, Any]:
        store = self.store
        if store is None:
            raise ControlError("reload-acd: this engine has no database to load from")

        def load() -> tuple[list[SeatConfig], list[QueueConfig]]:
            return records.load_seats(store), records.load_queues(store)

        try:
            seats, queues = await asyncio.get_running_loop().run_in_executor(None, load)
        except ConfigError as exc:
            raise ControlError(f"reload-acd: the saved settings are wrong: {exc}") from None
        self.acd.reconfigure(seats, queues)  # AcdError (nothing changed) goes back as is
        return {"seats": [s.id for s in seats], "queues": [q.name for q in queues]}

    async def _call_control(self, request: Request) -> Any:
        """Hold, transfers and the conference: the caller stays on the line throughout."""
        acd, a, op = self.acd, request.args, request.op
        if op == "hold":
            return {"seat": a["seat"], "hold": acd_control.hold(acd, a["seat"])}
        if op == "unhold":
            return {"seat": a["seat"], "seconds": round(acd_control.unhold(acd, a["seat"]), 3)}
        if op == "transfer":
            start = acd_control.consult if a["mode"] == "consult" else \
                acd_control.blind_transfer
            return start(acd, a["seat"], a["to"], a["target"])
        if op == "consult-complete":
            return acd_control.consult_complete(acd, a["seat"])
        if op == "consult-return":
            return await acd_control.consult_return(acd, a["seat"])
        return acd_control.conference(acd, a["seat"])

    def _wrap_up(self, seat_id: str, call_id: str, code: str, note: str) -> dict[str, Any]:
        acd = self.acd
        seat = acd.seat(seat_id)
        if call_id not in self._answered.get(seat_id, ()):
            raise ControlError(f"wrap-up: call {call_id!r} was not answered at seat "
                               f"{seat_id} (lately)")
        if self.store is None:
            raise ControlError("wrap-up: this engine has no database to keep it in")
        row = [call_id, seat_id, seat.agent, code, note.strip(), acd.now()]

        def write(db: Database) -> None:
            db.execute("INSERT INTO call_wrapups (call_id, seat_id, agent, code, note, at)"
                       " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET"
                       " seat_id = excluded.seat_id, agent = excluded.agent,"
                       " code = excluded.code, note = excluded.note, at = excluded.at", row)

        self.store.submit(write)  # the writer thread; the loop does not wait for the disk
        result = {"call": call_id, "seat": seat_id, "code": code, "note": note.strip()}
        self.publish("wrap-up", result)
        return result


__all__ = ["MAX_BACKLOG", "ControlServer"]
