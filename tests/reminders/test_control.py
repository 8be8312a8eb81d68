"""The control op ``reminders-run`` over real TCP (the web's "run now"): it starts a pass
on the running engine and says how many policies it found, refuses a second pass while
one runs, says why when the window is closed, and an engine without reminders says so."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from appliance.acd import Acd, QueueConfig
from appliance.calls.engine import Engine
from appliance.control import ControlClient, ControlError, ControlServer
from appliance.reminders.attempts import all_attempts
from appliance.reminders.dialer import ReminderDialer
from appliance.store.db import Store
from drivers.sim import SimExchange
from drivers.sim.exchange import Behaviour
from tests.acd.helpers import seats, until
from tests.control.test_server import off_loop
from tests.reminders.helpers import MORNING, TODAY, add_policy, run_dialer, set_settings, subscribe


def _serve(tmp_path: Path, store: Store, with_dialer: bool = True,
           start: dt.datetime = MORNING) -> list[Any]:
    acd = Acd(seats(1), [QueueConfig("service")], store=store)

    async def scenario(engine: Engine, ex: SimExchange, dialer: ReminderDialer) -> list[Any]:
        subscribe(ex, "13900000301", Behaviour.BUSY)
        server = ControlServer(acd, tmp_path, store=store,
                               reminders=dialer if with_dialer else None)
        await server.start()
        client = ControlClient.for_data(tmp_path)
        try:
            try:
                first = await off_loop(client.request, "reminders-run")
            except ControlError as exc:
                return [str(exc)]
            second = await off_loop(client.request, "reminders-run")
            await until(engine, lambda: not dialer.running, 30)
            return [first, second]
        finally:
            # Let the server see each client's end of its connection (and close its side)
            # before it stops: a connection left to the loop's teardown is never closed.
            await engine.wait_ticks(None, 25)
            await server.close()

    return run_dialer(tmp_path, store, scenario, acd=acd, start=start)


def test_run_now_starts_a_pass_and_refuses_a_second_meanwhile(tmp_path: Path) -> None:
    with Store(tmp_path / "appliance.db") as store:
        add_policy(store, "202601000301", "13900000301", TODAY)
        set_settings(store)
        first, second = _serve(tmp_path, store)
        (row,) = all_attempts(store)
    assert first == {"started": True, "due": 1, "why": "", "detail": "", "reason": ""}
    assert second["started"] is False and second["why"] == "running"
    assert "already running" in second["reason"]
    assert row["outcome"] == "busy"


def test_run_now_outside_the_window_says_why(tmp_path: Path) -> None:
    with Store(tmp_path / "appliance.db") as store:
        add_policy(store, "202601000301", "13900000301", TODAY)
        set_settings(store)
        first, _ = _serve(tmp_path, store, start=MORNING.replace(hour=21))
        assert all_attempts(store) == []
    assert first["started"] is False and first["why"] == "window"
    assert first["detail"] == "09:00–20:00" and "21:00 is outside" in first["reason"]


def test_an_engine_without_reminders_refuses_the_op(tmp_path: Path) -> None:
    with Store(tmp_path / "appliance.db") as store:
        (error,) = _serve(tmp_path, store, with_dialer=False)
    assert "places no reminder calls" in error


@pytest.mark.parametrize("op", ["reminders-run"])
def test_the_op_takes_no_fields(op: str) -> None:
    from appliance.control.protocol import check_fields

    with pytest.raises(ControlError, match="unknown field"):
        check_fields(op, {"now": True})
