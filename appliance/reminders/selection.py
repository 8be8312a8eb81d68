"""Which holders to call now, and whether now is a time to call.

A policy is due for a reminder when it is in force, its next due date lies between
``overdue_days`` days ago and ``days_ahead`` days ahead, its holder has a phone number,
and for that due date it has no final outcome yet, no attempt in progress, fewer attempts
than the maximum, and the retry delay after the last one has passed. The holder is called in their
language: the customer's own (``customers.language``), else the one they chose the last
time they called the hotline and reached a queue, else Mandarin. So a policy is called
at most once per due date once it has a final outcome; a paid premium moves the due date
on and the next one is a new reminder. Calls are placed only inside the daily calling
window and never on a public holiday in the box's hours table (a make-up working day
is an ordinary day here: the window applies).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final

from sqlite_utils import Database

from appliance.reminders.attempts import FINAL
from appliance.reminders.settings import ReminderSettings

LANGUAGES: Final = ("zh", "yue", "en")
_DIALABLE: Final = re.compile(r"\+?[0-9]{3,20}")


@dataclass(frozen=True, slots=True)
class Due:
    """One policy to remind, with what the message says."""

    policy_number: str
    due_date: dt.date
    amount_fen: int
    product_code: str
    phone: str
    language: str
    attempts: int  # made so far for this due date

    @property
    def next_attempt(self) -> int:
        return self.attempts + 1


def dialable(phone: str | None) -> str | None:
    """The number to dial (spaces and hyphens dropped), or None if it cannot be dialled."""
    number = re.sub(r"[\s-]", "", phone or "")
    return number if _DIALABLE.fullmatch(number) else None


_SQL: Final = f"""
SELECT p.number, p.next_due_date, coalesce(p.next_due_fen, p.premium_fen) AS amount_fen,
       p.product_code, c.phone,
       coalesce(c.language, (SELECT e.language FROM acd_entries e WHERE e.caller = c.phone
                             ORDER BY e.joined_at DESC LIMIT 1), 'zh') AS language,
       (SELECT count(*) FROM reminder_attempts a WHERE a.policy_number = p.number
          AND a.due_date = p.next_due_date AND a.channel = 'call') AS attempts,
       (SELECT count(*) FROM reminder_attempts a WHERE a.policy_number = p.number
          AND a.due_date = p.next_due_date AND a.channel = 'call'
          AND (a.outcome IS NULL OR a.outcome IN ({", ".join(f"'{o}'" for o in FINAL)})))
          AS blocked,
       (SELECT max(a.next_retry_at) FROM reminder_attempts a WHERE a.policy_number = p.number
          AND a.due_date = p.next_due_date AND a.channel = 'call') AS retry_at
FROM policies p JOIN customers c ON c.id = p.holder_id
WHERE p.status = 'in_force' AND p.next_due_date >= ? AND p.next_due_date <= ?
ORDER BY p.next_due_date, p.number
"""


def due_now(db: Database, settings: ReminderSettings, *, today: dt.date,
            now: float) -> list[Due]:
    """The policies to call now (``now`` is the wall time the retry delays count on),
    earliest due date first, so the most overdue premiums are reminded first."""
    first = today - dt.timedelta(days=settings.overdue_days)
    last = today + dt.timedelta(days=settings.days_ahead)
    out = []
    for r in db.query(_SQL, [first.isoformat(), last.isoformat()]):
        if r["blocked"] or r["attempts"] >= settings.max_attempts:
            continue  # final, in progress, or out of attempts
        if r["retry_at"] is not None and r["retry_at"] > now:
            continue
        number = dialable(r["phone"])
        if number is None:
            continue
        language = r["language"] if r["language"] in LANGUAGES else "zh"
        out.append(Due(r["number"], dt.date.fromisoformat(r["next_due_date"]), r["amount_fen"],
                       r["product_code"], number, language, r["attempts"]))
    return out


@dataclass(frozen=True, slots=True)
class Closed:
    """Why no reminder call may start now: ``kind`` is ``holiday`` (``detail`` its name)
    or ``window`` (``detail`` the window, 09:00–20:00)."""

    kind: str
    detail: str
    text: str


def closed(settings: ReminderSettings, moment: dt.datetime,
           holidays: dict[dt.date, str]) -> Closed | None:
    """Why no reminder call may start at ``moment`` (local time), or None when one may."""
    name = holidays.get(moment.date())
    if name is not None:
        return Closed("holiday", name, f"{moment.date()} is a public holiday ({name})")
    hhmm = moment.strftime("%H:%M")
    window = f"{settings.window_start}–{settings.window_end}"
    if not settings.window_start <= hhmm < settings.window_end:
        return Closed("window", window, f"{hhmm} is outside the calling window {window}")
    return None


def closed_reason(settings: ReminderSettings, moment: dt.datetime,
                  holidays: dict[dt.date, str]) -> str | None:
    got = closed(settings, moment, holidays)
    return got.text if got is not None else None


def holidays(db: Database) -> dict[dt.date, str]:
    """The box's public holidays (its hours table), by date."""
    return {dt.date.fromisoformat(r["date"]): r["name"]
            for r in db.query("SELECT date, name FROM holidays WHERE kind = 'holiday'")}


__all__ = ["LANGUAGES", "Closed", "Due", "closed", "closed_reason", "dialable", "due_now",
           "holidays"]
