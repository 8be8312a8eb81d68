"""The premium reminders' settings: which policies are called (due within N days, or
overdue up to M days), when (a daily calling window; never on the box's public holidays),
how many calls at once, how often a holder is tried again, and whether a reminder that
reached nobody by phone goes by SMS.

One row in ``reminder_settings``, edited on the web page and read by the engine at each
pass, so a change takes effect at the next pass without a restart. Until the first save
the defaults below apply. :func:`check` turns the form's text into settings or raises
:class:`SettingsError` naming the field and what was expected; nothing is written unless
every field is good.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from sqlite_utils import Database

from appliance.store.db import Store

_HHMM: Final = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00")
#: each whole-number field's allowed range (the table's CHECKs say the same)
LIMITS: Final = {"days_ahead": (0, 60), "overdue_days": (0, 90), "max_concurrent": (1, 30),
                 "retry_minutes": (1, 1440), "max_attempts": (1, 10)}
FIELDS: Final = ("enabled", "days_ahead", "overdue_days", "window_start", "window_end",
                 "max_concurrent", "retry_minutes", "max_attempts", "sms_after_calls")
_CHECKBOXES: Final = ("enabled", "sms_after_calls")


class SettingsError(ValueError):
    """A setting refused: ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class ReminderSettings:
    enabled: bool = True
    days_ahead: int = 3  # call about premiums due today … this many days ahead
    overdue_days: int = 15  # … and those overdue up to this many days (the grace period)
    window_start: str = "09:00"  # HH:MM, calls start at or after it
    window_end: str = "20:00"  # HH:MM, no call starts at or after it
    max_concurrent: int = 2
    retry_minutes: int = 30  # after busy, no answer, congestion, a hang-up, a line error
    max_attempts: int = 3  # per policy and due date
    #: when the last attempt reached nobody, the reminder goes by SMS instead
    sms_after_calls: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _whole(form: Mapping[str, str], name: str) -> int:
    text = str(form.get(name, "")).strip()
    lo, hi = LIMITS[name]
    if not re.fullmatch(r"[0-9]{1,5}", text):
        raise SettingsError(name, f"a whole number {lo}–{hi}, got {text!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise SettingsError(name, f"a whole number {lo}–{hi}, got {value}")
    return value


def _time(form: Mapping[str, str], name: str) -> str:
    text = str(form.get(name, "")).strip()
    if len(text) == 4 and text[1] == ":":  # 9:00 as people type it
        text = "0" + text
    if not _HHMM.fullmatch(text):
        raise SettingsError(name, f"a time HH:MM (00:00–24:00), got {text!r}")
    return text


def check(form: Mapping[str, str]) -> ReminderSettings:
    """Settings from a form's text (the checkboxes: present means on)."""
    values: dict[str, Any] = {name: str(form.get(name, "")).lower() in ("1", "on", "true", "yes")
                              for name in _CHECKBOXES}
    for name in ("days_ahead", "overdue_days"):
        values[name] = _whole(form, name)
    start, end = _time(form, "window_start"), _time(form, "window_end")
    if end <= start:
        raise SettingsError("window_end", f"{end} is not after the window's start {start}")
    values.update(window_start=start, window_end=end)
    for name in ("max_concurrent", "retry_minutes", "max_attempts"):
        values[name] = _whole(form, name)
    return ReminderSettings(**values)


def load(store: Store) -> ReminderSettings:
    """The saved settings, or the defaults before the first save."""
    rows = store.query(f"SELECT {', '.join(FIELDS)} FROM reminder_settings WHERE id = 1")
    if not rows:
        return ReminderSettings()
    row = dict(rows[0])
    for name in _CHECKBOXES:
        row[name] = bool(row[name])
    return ReminderSettings(**row)


def save(db: Database, settings: ReminderSettings, *, by: str, at: float) -> None:
    """Inside a write: replace the settings (with whatever the caller records beside)."""
    row = settings.as_dict()
    for name in _CHECKBOXES:
        row[name] = int(row[name])
    cols = [*FIELDS, "updated_at", "updated_by"]
    db.execute(f"INSERT OR REPLACE INTO reminder_settings (id, {', '.join(cols)}) VALUES"
               f" (1, {', '.join('?' * len(cols))})", [*(row[f] for f in FIELDS), at, by])


__all__ = ["FIELDS", "LIMITS", "ReminderSettings", "SettingsError", "check", "load", "save"]
