"""The control functions the seat console and supervisor page will call: log in and out,
states with reason codes (each change logged with its time), seat and queue views with
the time in state, live events, and clear refusals that change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.acd import (
    Acd,
    AcdError,
    ConfigError,
    Overflow,
    QueueConfig,
    SeatConfig,
    Strategy,
    control,
    records,
)
from appliance.store.db import Store
from tests.acd.helpers import flush, seats


class Wall:
    def __init__(self) -> None:
        self.t = 1_780_000_000.0

    def __call__(self) -> float:
        return self.t


def test_states_reasons_and_time_in_state_are_kept_and_logged(tmp_path: Path) -> None:
    wall = Wall()
    events: list[tuple[str, dict[str, Any]]] = []
    with Store(tmp_path / "appliance.db") as store:
        acd = Acd(seats(3), [QueueConfig("service"), QueueConfig("claims", members={"s3": 0})],
                  store=store, wall=wall)
        stop = control.follow(acd, lambda kind, data: events.append((kind, data)))
        assert control.login(acd, "s1", "A001").state == "ready"
        wall.t += 30
        view = control.set_state(acd, "s1", "not-ready", "lunch")
        assert (view.state, view.reason, view.agent) == ("not-ready", "lunch", "A001")
        wall.t += 12.5
        (s1, s2, s3) = control.seat_states(acd)
        assert s1.seconds_in_state == pytest.approx(12.5) and s1.reason == "lunch"
        assert s2.state == "logged-out" and s3.state == "logged-out"
        control.login(acd, "s3", "A003")
        service, claims = control.queue_states(acd)
        assert (service.staffed, service.ready) == (2, 1)
        assert (claims.staffed, claims.ready) == (1, 1)
        control.set_state(acd, "s1", "ready")
        stop()
        control.logout(acd, "s1")
        flush(store)
        log = [(r["state"], r["reason"], r["agent"], r["at"] - 1_780_000_000.0)
               for r in records.state_log(store, "s1")]
        (row,) = store.query("SELECT config FROM acd_queues WHERE name = 'claims'")
        members = store.query("SELECT seat_id, penalty FROM acd_queue_members")
        seat_rows = store.query("SELECT id, number FROM acd_seats ORDER BY id")
    assert log == [("ready", "", "A001", 0.0), ("not-ready", "lunch", "A001", 30.0),
                   ("ready", "", "A001", 42.5), ("logged-out", "", "A001", 42.5)]
    # Live events until unsubscribed: the logout is not among them.
    assert [(k, d["seat"], d["state"]) for k, d in events] == [
        ("seat", "s1", "ready"), ("seat", "s1", "not-ready"), ("seat", "s3", "ready"),
        ("seat", "s1", "ready")]
    assert members == [{"seat_id": "s3", "penalty": 0}]
    assert '"strategy": "longest-idle"' in row["config"]
    assert [r["id"] for r in seat_rows] == ["s1", "s2", "s3"]


def test_refused_requests_say_why_and_change_nothing() -> None:
    acd = Acd(seats(2), [QueueConfig("service")], wall=Wall())
    with pytest.raises(AcdError, match="log in first"):
        control.set_state(acd, "s1", "ready")
    with pytest.raises(AcdError, match="no seat 's9'"):
        control.login(acd, "s9", "A009")
    with pytest.raises(AcdError, match="agent's code"):
        control.login(acd, "s1", " ")
    control.login(acd, "s1", "A001")
    with pytest.raises(AcdError, match="already logged in by A001"):
        control.login(acd, "s1", "A002")
    with pytest.raises(AcdError, match=r"reason code, one of .*lunch"):
        control.set_state(acd, "s1", "not-ready", "coffee")
    with pytest.raises(AcdError, match="set by calls"):
        control.set_state(acd, "s1", "talking")
    with pytest.raises(AcdError, match="expected one of"):
        control.set_state(acd, "s1", "asleep")
    view = control.seat_view(acd, "s1")
    assert (view.state, view.reason, view.agent) == ("ready", "", "A001")


def test_bad_configuration_is_refused_with_the_setting_named() -> None:
    with pytest.raises(ConfigError, match="1 to 8 seats, got 9"):
        Acd(seats(9), [QueueConfig("service")])
    with pytest.raises(ConfigError, match="ring_timeout 0"):
        QueueConfig("service", ring_timeout=0)
    with pytest.raises(ConfigError, match="member 's1' penalty -1"):
        QueueConfig("service", members={"s1": -1})
    with pytest.raises(ConfigError, match="not a dialable number"):
        SeatConfig("s1", "phone")
    with pytest.raises(ConfigError, match="seat ids must be unique; repeated: s1"):
        Acd([SeatConfig("s1", "8001"), SeatConfig("s1", "8002")], [QueueConfig("q")])
    with pytest.raises(AcdError, match="members s7 are not seats"):
        Acd(seats(2), [QueueConfig("service", members={"s7": 0})])


def test_bench_acd_prints_decision_times_as_json() -> None:
    import json
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "appliance.cli", "bench", "acd",
                          "--decisions", "500"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    figures = json.loads(res.stdout.strip().splitlines()[-1])
    assert (figures["decisions"], figures["seats"], figures["waiting"]) == (500, 8, 50)
    assert 0 < figures["offers_made"] <= 500
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


def test_callbacks_booked_before_a_restart_go_back_in_their_order(tmp_path: Path) -> None:
    with Store(tmp_path / "appliance.db") as store:
        # What a previous run left: two callbacks booked (the second caller first in time
        # was answered), one already placed.
        for key, caller, joined, number in (("k1", "13900000001", 10.0, "13900000001"),
                                            ("k2", "13900000002", 5.0, "02088880000"),
                                            ("k3", "13900000003", 1.0, "13900000003")):
            records.open_entry(store, key, "service", f"call-{key}", caller, "yue", 0, joined)
            records.mark_entry(store, key, "callback", 60.0)
            records.book_callback(store, key, "service", number, joined + 60)
        records.close_callback(store, "k3", "answered", 100.0, "call-x", "s1")
        records.close_entry(store, "k3", "callback-answered", 200.0, 99.0)
        flush(store)
        acd = Acd(seats(1), [QueueConfig("service")], store=store, wall=Wall())
        assert acd.restore_callbacks() == 2
        (view,) = control.queue_states(acd)
    assert [(w.caller, w.callback_number, w.language, w.position) for w in view.waiting] == [
        ("13900000002", "02088880000", "yue", 1), ("13900000001", "13900000001", "yue", 2)]


def test_seats_and_queues_saved_are_read_back_as_configured(tmp_path: Path) -> None:
    seat_list = [SeatConfig("s1", "8001", name="坐席一", skills={"zh": 1, "motor": 2}),
                 SeatConfig("s2", "8002", driver="asterisk")]
    queues = [QueueConfig("claims", Strategy.LEAST_TALK, members={"s1": 0, "s2": 2},
                          skills=("motor",), language_skill=True, ring_timeout=12.0,
                          max_wait=90.0, overflow=Overflow.CALLBACK, wrap_up=0.0),
              QueueConfig("service")]
    with Store(tmp_path / "appliance.db") as store:
        Acd(seat_list, queues, store=store, wall=Wall())
        flush(store)
        assert records.load_seats(store) == seat_list
        assert records.load_queues(store) == queues
