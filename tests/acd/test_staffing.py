"""The staffing estimate from queue records: calls and handle time per half hour of the
week over the last four weeks, and the agents Erlang C says each half hour needs."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from appliance.acd.staffing import estimate
from appliance.store.db import Store

TZ = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 11, 27, tzinfo=TZ)  # the end of Thursday 26 November


def entries(store: Store, at: list[datetime], outcome: str = "answered",
            talk: float | None = 170.0, prefix: str = "e") -> None:
    def write(db: Any) -> None:
        db.execute("INSERT OR IGNORE INTO acd_queues (name, strategy, config, updated_at)"
                   " VALUES ('service', 'ring-all', '{\"wrap_up\": 10.0}', 0)")
        for i, t in enumerate(at):
            db.execute("INSERT INTO acd_entries (key, queue, call_id, caller, language,"
                       " priority, joined_at, ended_at, outcome, waited_seconds, answered_by,"
                       " talk_seconds) VALUES (?, 'service', ?, '139', 'zh', 0, ?, ?, ?, 3,"
                       " ?, ?)", [f"{prefix}{i}", f"{prefix}c{i}", t.timestamp(),
                                  t.timestamp() + 200, outcome,
                                  "s1" if outcome == "answered" else None, talk])

    store.write(write)


def spread(day: datetime, calls: int, minutes: int = 30) -> list[datetime]:
    return [day + timedelta(seconds=i * minutes * 60 / calls) for i in range(calls)]


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "appliance.db")
    yield s
    s.close()


def test_a_hundred_calls_a_half_hour_of_three_minutes_need_fourteen_agents(
        store: Store) -> None:
    # Four Mondays, 09:00-09:30: 100 calls each, 170 s talk + 10 s wrap-up = 180 s.
    mondays = [datetime(2026, 11, 23, 9, 0, tzinfo=TZ) - timedelta(weeks=w) for w in range(4)]
    entries(store, [t for m in mondays for t in spread(m, 100)])
    # A shutdown and a call still waiting do not count; nor does a call five weeks ago.
    entries(store, spread(mondays[0], 50), outcome="shutdown", prefix="x")
    entries(store, [datetime(2026, 10, 19, 9, 5, tzinfo=TZ)] * 1, prefix="old")
    est = estimate(store, END, 20, 0.80)
    (slot,) = est.slots
    assert (slot.weekday, slot.label) == (0, "09:00")
    assert slot.offered == pytest.approx(100) and slot.aht == pytest.approx(180)
    assert slot.erlangs == pytest.approx(10) and slot.agents == 14
    assert slot.level == pytest.approx(0.8884, abs=5e-5)
    assert est.weeks == 4 and est.peak() == [14, 0, 0, 0, 0, 0, 0]
    # A stricter target needs more.
    assert estimate(store, END, 10, 0.95).slots[0].agents > 14


def test_a_new_box_divides_by_the_weeks_it_has_and_borrows_the_handle_time(
        store: Store) -> None:
    # One week of records: Tuesday 10:00 answered, Wednesday 14:30 only abandoned calls.
    entries(store, spread(datetime(2026, 11, 24, 10, 0, tzinfo=TZ), 40), talk=230.0)
    entries(store, spread(datetime(2026, 11, 25, 14, 30, tzinfo=TZ), 10), outcome="abandoned",
            talk=None, prefix="ab")
    est = estimate(store, END, 20, 0.80)
    assert est.weeks == 1
    tue, wed = est.slots
    assert (tue.weekday, tue.label, tue.offered, tue.aht) == (1, "10:00", 40, 240)
    assert (wed.weekday, wed.label, wed.offered) == (2, "14:30", 10)
    assert wed.aht == pytest.approx(240)  # the period's, since none was answered
    assert [row[0] for row in est.grid()] == ["10:00", "14:30"]


def test_no_records_no_estimate(store: Store) -> None:
    est = estimate(store, END, 20, 0.8)
    assert est.slots == [] and est.aht is None and est.peak() == [0] * 7
    with pytest.raises(ValueError, match="time zone"):
        estimate(store, END.replace(tzinfo=None), 20, 0.8)
