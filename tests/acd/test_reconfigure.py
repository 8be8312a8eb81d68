"""Seat and queue settings edited while the engine runs: saved in the store (as the web
saves them), taken by the running ACD through the control API's ``reload-acd`` between
calls, with the call in progress kept and the next offer rung with the new settings."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.acd import AcdError, AgentState, ConfigError, QueueConfig, Strategy, records
from appliance.calls.engine import Engine
from appliance.control import ControlClient, ControlServer
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from tests.acd.helpers import flush, open_acd, queue_flow, run_calls, seat_bot, seats, until
from tests.acd.helpers import unanswered_seat as nobody_at
from tests.control.test_server import off_loop


def test_replace_config_refuses_what_the_model_refuses(tmp_path: Path) -> None:
    with Store(tmp_path / "appliance.db") as store:
        good = [QueueConfig("service", members={"s1": 0})]
        store.write(lambda db: records.replace_config(db, seats(2), good, 1.0))
        for bad_seats, bad_queues, said in (
                (seats(9), good, "1 to 8 seats"),
                (seats(1), [QueueConfig("service", members={"s2": 0})], "s2 are not seats"),
                (seats(2), [QueueConfig("a"), QueueConfig("a")], "unique names")):
            with pytest.raises(ConfigError, match=said):
                store.write(lambda db, s=bad_seats, q=bad_queues:  # type: ignore[misc]
                            records.replace_config(db, s, q, 2.0))
        assert [s.id for s in records.load_seats(store)] == ["s1", "s2"]
        assert records.load_queues(store) == good


def test_an_edited_ring_timeout_is_what_the_running_engine_uses(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 2, QueueConfig("service", Strategy.ROUND_ROBIN,
                                                   ring_timeout=20.0))
    server = ControlServer(acd, tmp_path, store=store)
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        await server.start()
        try:
            s2 = seat_bot(ex, "8002")
            nobody_at(ex, "8001")
            acd.login("s2", "A002")
            first = CallerBot(ex, "13800138001")
            await first.dial("95500")
            assert await until(engine, lambda: s2.connected, 10)
            # The admin saves a shorter ring timeout and a third seat; the web asks the
            # engine to take them.
            edited = replace(acd.queues["service"].config, ring_timeout=3.0)
            store.write(lambda db: records.replace_config(
                db, [*seats(3)], [edited], acd.now()))
            answer = await off_loop(ControlClient.for_data(tmp_path).request, "reload-acd")
            assert answer == {"seats": ["s1", "s2", "s3"], "queues": ["service"]}
            assert acd.queues["service"].config.ring_timeout == 3.0
            assert acd.seats["s3"].state is AgentState.LOGGED_OUT
            # The call in progress is still up, and s2 still talking on it.
            assert first.connected and acd.seats["s2"].state is AgentState.TALKING
            acd.login("s1", "A001")
            second = CallerBot(ex, "13800138002")
            await second.dial("95500")
            assert await until(engine, lambda: acd.seats["s1"].reason == "no-answer", 30)
            # A seat that is logged in cannot be removed: refused, nothing changed.
            store.write(lambda db: records.replace_config(db, seats(1), [
                replace(edited, members={})], acd.now()))
            refused = await off_loop(
                lambda: _refusal(ControlClient.for_data(tmp_path)))
            assert "seat s2 is talking" in refused
            assert set(acd.seats) == {"s1", "s2", "s3"}
            await second.hangup()
            await first.hangup()
            await first.wait(0.5)
        finally:
            await server.close()

    try:
        run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        s1 = [(r["state"], r["reason"], r["at"]) for r in records.state_log(store, "s1")]
    finally:
        store.close()
    assert [(s, r) for s, r, _ in s1] == [("ready", ""), ("ringing", "service"),
                                          ("not-ready", "no-answer")]
    # s1 rang for the new 3 s, not the 20 s the engine started with.
    assert s1[2][2] - s1[1][2] == pytest.approx(3.0, abs=0.05)


def _refusal(client: ControlClient) -> str:
    from appliance.control import ControlError

    try:
        client.request("reload-acd")
    except ControlError as exc:
        return str(exc)
    raise AssertionError("reload-acd was not refused")


def test_a_queue_with_callers_waiting_stays(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", ring_timeout=5.0))
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        caller = CallerBot(ex, "13800138003")
        await caller.dial("95500")
        assert await until(engine, lambda: len(acd.queues["service"].waiting) == 1, 10)
        with pytest.raises(AcdError, match="queue service has 1 callers waiting"):
            acd.reconfigure(seats(1), [QueueConfig("sales")])
        assert set(acd.queues) == {"service"}
        acd.reconfigure(seats(1), [QueueConfig("service", ring_timeout=5.0),
                                   QueueConfig("sales")])
        assert acd.has_queue("sales")
        await caller.hangup()
        await asyncio.sleep(0)

    try:
        run_calls(tmp_path, store, acd, flow, scenario)
    finally:
        store.close()

