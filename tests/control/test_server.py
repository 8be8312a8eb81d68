"""The control API over real TCP against a running engine (manual clock, simulated
exchange, the ACD): requests and their refusals, the event stream through a whole call
(offer with the keyed policy, answer, the agent's hang-up, wrap-up stored with the call),
and a subscriber that stops reading dropped while the engine and the others go on."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from appliance.acd import Acd, QueueConfig
from appliance.acd import control as acd_control
from appliance.calls.call import Call
from appliance.control import ControlClient, ControlError, ControlServer
from appliance.control.protocol import MAX_LINE, read_address
from appliance.store.db import Store
from drivers.sim import CallerBot
from tests.acd.helpers import LIB, flush, seat_bot, seats, until
from tests.rig import running_engine

T = TypeVar("T")
POOL = ThreadPoolExecutor(4)


async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking client call on a thread (the engine's loop must keep running)."""
    return await asyncio.get_running_loop().run_in_executor(POOL, lambda: fn(*args, **kwargs))


def queue_with_pop(acd: Acd) -> Callable[[Call], Awaitable[None]]:
    async def flow(call: Call) -> None:
        await call.answer()
        # What the default IVR's policy enquiry leaves in its variables.
        await acd.transfer(call, "service", variables={"pol_no": "880001234567",
                                                        "pol_id": "9X7Y", "caller": call.caller})
    return flow


def run(tmp_path: Path, store: Store | None, scenario: Callable[..., Awaitable[T]],
        **server_kw: Any) -> T:
    acd = Acd(seats(2), [QueueConfig("service", ring_timeout=15.0, wrap_up=30.0)],
              store=store)
    server = ControlServer(acd, tmp_path, store=store, **server_kw)

    async def main() -> T:
        async with running_engine(queue_with_pop(acd), prompts=LIB, store=store,
                                  recordings=tmp_path / "recordings",
                                  on_event=server.call_event) as (engine, exchange):
            acd.bind(engine)
            await server.start()
            try:
                return await asyncio.wait_for(scenario(acd, server, engine, exchange), 40)
            finally:
                await server.close()

    return asyncio.run(main())


def raw(port: int, payload: bytes) -> list[dict[str, Any]]:
    """Send ``payload`` on a fresh connection; every answer line until the server closes
    or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


def test_requests_and_refusals_name_what_was_wrong(tmp_path: Path) -> None:
    async def scenario(acd: Acd, server: ControlServer, *_: Any) -> None:
        host, port, token = read_address(tmp_path)  # type: ignore[misc]
        assert (host, port) == ("127.0.0.1", server.port)
        assert (tmp_path / "control_token").stat().st_mode & 0o777 == 0o600
        client = ControlClient(host, port, token)
        views = await off_loop(client.request, "seats")
        assert [(v["id"], v["state"]) for v in views] == [("s1", "logged-out"),
                                                         ("s2", "logged-out")]
        view = await off_loop(client.request, "login", seat="s1", agent="A001")
        assert (view["state"], view["agent"]) == ("ready", "A001")
        view = await off_loop(client.request, "set-state", seat="s1", state="not-ready",
                              reason="lunch")
        assert (view["state"], view["reason"]) == ("not-ready", "lunch")
        (queue,) = await off_loop(client.request, "queues")
        assert (queue["name"], queue["staffed"], queue["ready"], queue["waiting"]) == (
            "service", 1, 0, [])

        async def refused(op: str, **fields: Any) -> str:
            with pytest.raises(ControlError) as err:
                await off_loop(client.request, op, **fields)
            return str(err.value)

        assert await refused("dance") == (
            "op: expected one of seats, queues, login, logout, set-state, hangup, wrap-up,"
            " follow, hold, unhold, transfer, consult-complete, consult-return, conference,"
            " got 'dance'")
        assert await refused("login", seat="s2") == "login: missing field 'agent'"
        assert await refused("login", seat="s2", agent="A2", pin="1") == (
            "login: unknown field pin (fields: seat, agent)")
        assert await refused("login", seat=2, agent="A2") == (
            "login: field 'seat' must be a string, got int")
        assert "field 'state' must be one of ready, not-ready, got 'asleep'" in \
            await refused("set-state", seat="s1", state="asleep")
        assert "reason code, one of" in await refused("set-state", seat="s1",
                                                      state="not-ready", reason="coffee")
        assert await refused("login", seat="s9", agent="A9") == "no seat 's9' (seats: s1, s2)"
        assert "not in a call: nothing to hang up" in await refused("hangup", seat="s1")
        assert "was not answered at seat s1" in await refused("wrap-up", seat="s1",
                                                              call="nope", code="other")
        assert "field 'code' must be one of enquiry" in await refused(
            "wrap-up", seat="s1", call="x", code="bored")
        # Raw lines: no token, a wrong one (the connection is closed), not JSON, too long.
        (answer,) = await off_loop(raw, port, b'{"op": "seats"}\n{"op": "seats"}\n')
        assert answer == {"ok": False, "error": "token: missing or wrong (the engine's data "
                                                "folder has it)"}
        (answer,) = await off_loop(raw, port, b'{"op": "seats", "token": "guess"}\n')
        assert not answer["ok"] and answer["error"].startswith("token:")
        answers = await off_loop(raw, port, b'{"op": \n[1]\n')
        assert [a["error"].split(":")[0] for a in answers] == [
            "request is not JSON", "request must be a JSON object, got list"]
        (answer,) = await off_loop(raw, port, b"x" * (MAX_LINE + 10) + b"\n")
        assert answer["error"] == f"request longer than {MAX_LINE} bytes"
        # Nothing refused changed anything.
        views = await off_loop(client.request, "seats")
        assert [(v["state"], v["reason"]) for v in views] == [("not-ready", "lunch"),
                                                             ("logged-out", "")]

    run(tmp_path, None, scenario)


def follower(client: ControlClient, events: list[dict[str, Any]],
             stop: threading.Event) -> threading.Thread:
    def read() -> None:
        for event in client.follow(idle=0.2):
            if stop.is_set():
                return
            if event is not None:
                events.append(event)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_a_call_as_the_event_stream_tells_it_with_hangup_and_wrap_up(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    events: list[dict[str, Any]] = []
    stop = threading.Event()

    async def scenario(acd: Acd, server: ControlServer, engine: Any, exchange: Any) -> None:
        client = ControlClient.for_data(tmp_path)
        thread = follower(client, events, stop)
        assert await until(engine, lambda: bool(server.subscribers))
        seat_bot(exchange, "8001", answer_after=1.0)
        await off_loop(client.request, "login", seat="s1", agent="A001")
        caller = CallerBot(exchange, "13800138000")
        await caller.dial("95500")

        def kinds() -> list[str]:
            return [e["event"] for e in events]

        assert await until(engine, lambda: "connected" in kinds())
        # A page opened now gets the seat's call and its offer (for the screen pop).
        s1, s2 = await off_loop(client.request, "seats")
        offer = next(e["data"] for e in events if e["event"] == "offer")
        assert (s1["state"], s1["call"], s1["offer"]) == ("talking", offer["call"], offer)
        assert (s2["call"], s2["offer"]) == ("", None)
        await off_loop(client.request, "hangup", seat="s1")
        assert await until(engine, lambda: kinds().count("call-ended") == 2)
        assert await caller.wait_hangup(5.0)
        offer = next(e["data"] for e in events if e["event"] == "offer")
        done = await off_loop(client.request, "wrap-up", seat="s1", call=offer["call"],
                              code="enquiry", note=" 客户询问缴费日期 ")
        assert done == {"call": offer["call"], "seat": "s1", "code": "enquiry",
                        "note": "客户询问缴费日期"}
        assert await until(engine, lambda: "wrap-up" in kinds())
        stop.set()
        await off_loop(thread.join, 5)

    try:
        run(tmp_path, store, scenario)
        flush(store)
        (row,) = store.query("SELECT * FROM call_wrapups")
        ended = store.query("SELECT end_cause FROM calls")
    finally:
        store.close()
    seen = [(e["event"], e["data"].get("state", "")) for e in events]
    started = [e["data"] for e in events if e["event"] == "call-started"]
    offer = next(e["data"] for e in events if e["event"] == "offer")
    connected = next(e["data"] for e in events if e["event"] == "connected")
    # The caller's call, then the seat's: the offer names the first, with what was keyed.
    assert started[0]["caller"] == "13800138000" and offer["call"] == started[0]["call"]
    assert (offer["caller"], offer["policy"], offer["seats"]) == (
        "13800138000", "880001234567", ["s1"])
    assert "pol_id" not in offer and "9X7Y" not in json.dumps(offer)  # no ID digits
    assert connected["call"] == offer["call"] and connected["seat"] == "s1"
    order = [k for k, _ in seen if k != "seat"]
    assert order[:4] == ["call-started", "queue-join", "offer", "call-started"]
    assert ("seat", "ringing") in seen and ("seat", "talking") in seen
    assert seen.index(("seat", "wrap-up")) > seen.index(("seat", "talking"))
    assert ("wrap-up", "") in seen
    assert (row["call_id"], row["seat_id"], row["agent"], row["code"], row["note"]) == (
        offer["call"], "s1", "A001", "enquiry", "客户询问缴费日期")
    assert len(ended) == 2 and all(r["end_cause"] for r in ended)  # caller's and seat's


def test_a_subscriber_that_stops_reading_is_dropped_and_nothing_waits(tmp_path: Path) -> None:
    fast: list[dict[str, Any]] = []
    stop = threading.Event()

    async def scenario(acd: Acd, server: ControlServer, engine: Any, _: Any) -> dict[str, Any]:
        host, port, token = read_address(tmp_path)  # type: ignore[misc]
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect((host, port))
        slow.sendall(json.dumps({"token": token, "op": "follow"}).encode() + b"\n")
        thread = follower(ControlClient(host, port, token), fast, stop)
        assert await until(engine, lambda: len(server.subscribers) == 2)
        acd_control.login(acd, "s1", "A001")
        ticks = engine.tick_no
        longest = 0.0
        loop = asyncio.get_running_loop()
        toggles = 0
        # State changes as fast as the loop can make them; the slow reader reads nothing.
        while server.dropped == 0 and toggles < 200_000:
            t0 = loop.time()
            for _ in range(20):
                acd_control.set_state(acd, "s1", "not-ready", "break")
                acd_control.set_state(acd, "s1", "ready")
                toggles += 2
            longest = max(longest, loop.time() - t0)
            await asyncio.sleep(0)
        answered = await off_loop(ControlClient(host, port, token).request, "seats")
        assert await until(engine, lambda: len(fast) >= toggles + 1, 10)
        stop.set()
        await off_loop(thread.join, 5)
        # The fast one closed its end: the server lets it go without another event.
        await until(engine, lambda: not server.subscribers, 5)
        slow.settimeout(2)
        closed = False
        try:
            while slow.recv(65536):
                pass
            closed = True
        except ConnectionResetError:
            closed = True
        slow.close()
        return {"toggles": toggles, "ticks": engine.tick_no - ticks, "longest": longest,
                "dropped": server.dropped, "subscribers": len(server.subscribers),
                "answered": answered, "closed": closed}

    got = run(tmp_path, None, scenario, max_backlog=200)
    assert got["dropped"] == 1 and got["closed"]
    assert got["subscribers"] == 0  # the fast one has gone too, on its own
    assert got["answered"][0]["state"] == "ready"
    # The fast follower saw every change (the login, then each toggle), in order.
    states = [e["data"]["state"] for e in fast if e["event"] == "seat"]
    assert len(states) == got["toggles"] + 1
    assert states[-2:] == ["not-ready", "ready"]
    assert got["ticks"] > 0  # the engine ticked on meanwhile
    assert got["longest"] < 0.5  # 40 state changes never waited for a reader
