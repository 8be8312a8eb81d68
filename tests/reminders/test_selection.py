"""Who is called: policies in force due within the days ahead or overdue within the days
allowed, once per due date; and the settings form's checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from appliance.reminders import attempts as log
from appliance.reminders.selection import closed_reason, dialable, due_now
from appliance.reminders.settings import ReminderSettings, SettingsError, check, load
from appliance.store.db import Store
from tests.reminders.helpers import TODAY, add_policy, set_settings

NOW = 1_780_000_000.0


def _due(store: Store, settings: ReminderSettings, now: float = NOW) -> list[str]:
    return [d.policy_number for d in store.read(
        lambda db: due_now(db, settings, today=TODAY, now=now))]


def _attempt(store: Store, number: str, due: dt.date, attempt: int, outcome: str | None,
             retry_at: float | None = None) -> None:
    key = log.Attempt(number, due.isoformat(), attempt)
    log.open_attempt(store, key, number="139", language="zh", started_at=NOW - 100).result()
    if outcome is not None:
        log.close_attempt(store, key, outcome=outcome, ended_at=NOW - 90, call_id=None,
                          next_retry_at=retry_at).result()


def test_only_policies_in_force_due_in_the_range_are_chosen(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        day = dt.timedelta(days=1)
        add_policy(store, "P-soon", "13900000001", TODAY + 3 * day)
        add_policy(store, "P-late", "13900000002", TODAY - 15 * day)
        add_policy(store, "P-not-yet", "13900000003", TODAY + 4 * day)
        add_policy(store, "P-too-late", "13900000004", TODAY - 16 * day)
        add_policy(store, "P-lapsed", "13900000005", TODAY, status="lapsed")
        add_policy(store, "P-surrendered", "13900000006", TODAY, status="surrendered")
        add_policy(store, "P-no-date", "13900000007", None)
        add_policy(store, "P-no-phone", "", TODAY)
        settings = ReminderSettings(days_ahead=3, overdue_days=15)
        assert _due(store, settings) == ["P-late", "P-soon"]  # most overdue first


def test_one_reminder_per_due_date_once_final(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        due = TODAY + dt.timedelta(days=1)
        for n in ("P-confirmed", "P-heard", "P-transferred", "P-open", "P-busy", "P-waiting",
                  "P-spent", "P-old-confirmed"):
            add_policy(store, n, "13900000001", due)
        _attempt(store, "P-confirmed", due, 1, "confirmed")
        _attempt(store, "P-heard", due, 1, "busy", retry_at=NOW - 10)
        _attempt(store, "P-heard", due, 2, "heard")
        _attempt(store, "P-transferred", due, 1, "transferred")
        _attempt(store, "P-open", due, 1, None)  # being called now
        _attempt(store, "P-busy", due, 1, "busy", retry_at=NOW - 1)
        _attempt(store, "P-waiting", due, 1, "no_answer", retry_at=NOW + 60)
        _attempt(store, "P-spent", due, 1, "busy", retry_at=NOW - 10)
        _attempt(store, "P-spent", due, 2, "busy")
        # Confirmed for the last due date: the new one is a new reminder.
        _attempt(store, "P-old-confirmed", due - dt.timedelta(days=365), 1, "confirmed")
        settings = ReminderSettings(max_attempts=2)
        chosen = {d.policy_number: d for d in store.read(
            lambda db: due_now(db, settings, today=TODAY, now=NOW))}
        assert sorted(chosen) == ["P-busy", "P-old-confirmed"]
        assert chosen["P-busy"].next_attempt == 2 and chosen["P-old-confirmed"].next_attempt == 1
        assert _due(store, settings, now=NOW + 61) == ["P-busy", "P-old-confirmed",
                                                        "P-waiting"]


def test_the_window_and_holidays() -> None:
    s = ReminderSettings(window_start="09:00", window_end="20:00")
    day = dt.datetime(2026, 10, 1, 10, 0)
    assert closed_reason(s, day, {}) is None
    assert closed_reason(s, day.replace(hour=9, minute=0), {}) is None
    assert "outside" in (closed_reason(s, day.replace(hour=20), {}) or "")
    assert "国庆节" in (closed_reason(s, day, {day.date(): "国庆节"}) or "")


def test_dialable_numbers() -> None:
    assert dialable("139-0000 0001") == "13900000001"
    assert dialable("+8613900000001") == "+8613900000001"
    assert dialable("") is None and dialable("12") is None and dialable("139abc") is None


GOOD = {"enabled": "on", "days_ahead": "3", "overdue_days": "15", "window_start": "9:00",
        "window_end": "20:00", "max_concurrent": "2", "retry_minutes": "30",
        "max_attempts": "3"}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("days_ahead", "61", "0–60"), ("days_ahead", "x", "whole number"),
    ("overdue_days", "-1", "0–90"), ("window_start", "25:00", "HH:MM"),
    ("window_end", "08:00", "not after"), ("max_concurrent", "0", "1–30"),
    ("retry_minutes", "", "1–1440"), ("max_attempts", "11", "1–10"),
])
def test_a_bad_setting_names_its_field(field: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as exc:
        check({**GOOD, field: value})
    assert exc.value.field == field and message in str(exc.value)


def test_settings_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        assert load(store) == ReminderSettings()
        got = check({**GOOD, "enabled": ""})
        assert got.window_start == "09:00" and not got.enabled
        set_settings(store, enabled=False, days_ahead=5)
        assert load(store) == ReminderSettings(enabled=False, days_ahead=5)


def test_the_language_is_the_customers_or_the_one_they_last_called_in(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        add_policy(store, "P-yue", "13900000001", TODAY, language="yue")
        add_policy(store, "P-called", "13900000002", TODAY)
        add_policy(store, "P-none", "13900000003", TODAY)

        def calls(db: Any) -> None:
            for at, lang in ((1.0, "yue"), (2.0, "en")):  # the latest call counts
                for number in ("13900000001", "13900000002"):
                    db.execute("INSERT INTO acd_entries (key, queue, call_id, caller, language,"
                               " priority, joined_at) VALUES (?, 'service', 'c', ?, ?, 0, ?)",
                               [f"{number}-{at}", number, lang, at])

        store.write(calls)
        langs = {d.policy_number: d.language for d in store.read(
            lambda db: due_now(db, ReminderSettings(), today=TODAY, now=NOW))}
    assert langs == {"P-yue": "yue", "P-called": "en", "P-none": "zh"}
