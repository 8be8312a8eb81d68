"""The attempt log: one row of ``reminder_attempts`` for every try to reach a holder about
one premium due date, written as the attempt starts (outcome empty) and finished when it
ends (outcome, the call, when to try again). Also the read side the web and the reports
use: the rows by filters, and the count of each outcome over a date range.

Outcomes: ``confirmed`` (pressed 1), ``transferred`` (pressed 2 for an agent), ``heard``
(answered and heard the whole message, no key) are final: the policy is not called again
for that due date. ``hung_up`` (answered, hung up before the message ended), ``busy``,
``no_answer``, ``congested`` and ``failed`` (no line, the line dropped, the engine
stopped) are tried again after the retry delay until the attempts run out. The rows carry a
``channel`` (``call`` now) so that SMS can join the same log.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

from sqlite_utils import Database

from appliance.sms import messages as sms_messages
from appliance.store.db import Store

FINAL: Final = ("confirmed", "transferred", "heard")
RETRY: Final = ("hung_up", "busy", "no_answer", "congested", "failed")
OUTCOMES: Final = (*FINAL, *RETRY)
#: answered by a person: the outcomes that count as contact
CONTACT: Final = ("confirmed", "transferred", "heard", "hung_up")
INTERRUPTED: Final = "interrupted: the engine stopped before the attempt ended"


@dataclass(frozen=True, slots=True)
class Attempt:
    """The key of one attempt's row."""

    policy_number: str
    due_date: str  # YYYY-MM-DD
    attempt: int
    channel: str = "call"


def open_attempt(store: Store, key: Attempt, *, number: str, language: str,
                 started_at: float) -> Future[None]:
    row = [key.policy_number, key.due_date, key.channel, key.attempt, number, language,
           started_at]

    def write(db: Database) -> None:
        db.execute("INSERT INTO reminder_attempts (policy_number, due_date, channel, attempt,"
                   " number, language, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    return store.submit(write)


def close_attempt(store: Store, key: Attempt, *, outcome: str, ended_at: float,
                  call_id: str | None, detail: str = "",
                  next_retry_at: float | None = None,
                  sms: tuple[str, str] | None = None) -> Future[int | None]:
    """Close the attempt; with ``sms`` (number, text), in the same transaction, queue that
    SMS for the SMS service and note it on the attempt. Returns the SMS's id (None: none,
    or the number cannot take an SMS, which is then said in the attempt's detail)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}")

    def write(db: Database) -> int | None:
        sms_id, said = None, detail
        if sms is not None:
            number, text = sms
            try:
                sms_id = sms_messages.queue(db, number, text, by="reminders", now=ended_at,
                                            customer_id=sms_messages.customer_for(db, number))
            except ValueError as exc:  # a number no SMS goes to (a landline, say)
                said = f"{detail}; no SMS: {exc}" if detail else f"no SMS: {exc}"
        db.execute("UPDATE reminder_attempts SET outcome = ?, ended_at = ?, call_id = ?,"
                   " detail = ?, next_retry_at = ?, sms_id = ? WHERE policy_number = ?"
                   " AND due_date = ? AND channel = ? AND attempt = ?",
                   [outcome, ended_at, call_id, said, next_retry_at, sms_id,
                    key.policy_number, key.due_date, key.channel, key.attempt])
        return sms_id

    return store.submit(write)


def close_interrupted(db: Database, now: float, retry_at: float) -> int:
    """Inside a write, at the dialer's start: attempts a stop or crash left open are
    failed (and tried again), never left looking as if they were still ringing."""
    return int(db.execute(
        "UPDATE reminder_attempts SET outcome = 'failed', ended_at = ?, detail = ?,"
        " next_retry_at = ? WHERE outcome IS NULL", [now, INTERRUPTED, retry_at]).rowcount)


def where(*, start: float | None = None, end: float | None = None,
          outcome: str = "", policy: str = "") -> tuple[str, list[Any]]:
    """A WHERE clause (or "") and its parameters for the attempts the filters name."""
    clauses: list[str] = []
    params: list[Any] = []
    if start is not None:
        clauses.append("started_at >= ?")
        params.append(start)
    if end is not None:
        clauses.append("started_at < ?")
        params.append(end)
    if outcome == "open":
        clauses.append("outcome IS NULL")
    elif outcome:
        clauses.append("outcome = ?")
        params.append(outcome)
    if policy:
        clauses.append("policy_number = ?")
        params.append(policy)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def outcome_counts(store: Store, start: float, end: float) -> dict[str, Any]:
    """Attempts started in [start, end): how many of each outcome (every outcome listed,
    zeros too), still open, the contact rate (answered ÷ attempts ended) and the
    confirmation rate (confirmed ÷ answered); the rates are None when nothing to divide."""
    got = {r["outcome"]: r["n"] for r in store.query(
        "SELECT outcome, count(*) AS n FROM reminder_attempts WHERE started_at >= ?"
        " AND started_at < ? GROUP BY outcome", [start, end])}
    counts = {o: got.get(o, 0) for o in OUTCOMES}
    ended = sum(counts.values())
    contact = sum(counts[o] for o in CONTACT)
    return {"counts": counts, "open": got.get(None, 0), "attempts": ended + got.get(None, 0),
            "ended": ended, "contact": contact,
            "contact_rate": contact / ended if ended else None,
            "confirmation_rate": counts["confirmed"] / contact if contact else None,
            "policies": store.query(
                "SELECT count(DISTINCT policy_number || '/' || due_date) AS n"
                " FROM reminder_attempts WHERE started_at >= ? AND started_at < ?",
                [start, end])[0]["n"]}


def outcomes_by_day(store: Store, start: float, end: float,
                    utc_offset: int) -> dict[str, dict[str, int]]:
    """Attempts started in [start, end) by local day (``utc_offset`` seconds east of UTC)
    and outcome (``open`` for those still in progress): {"2026-11-26": {"busy": 2, …}}."""
    out: dict[str, dict[str, int]] = {}
    for r in store.query(
            "SELECT date(started_at + ?, 'unixepoch') AS day, coalesce(outcome, 'open') AS"
            " outcome, count(*) AS n FROM reminder_attempts WHERE started_at >= ? AND"
            " started_at < ? GROUP BY day, outcome", [utc_offset, start, end]):
        out.setdefault(r["day"], {})[r["outcome"]] = r["n"]
    return out


def attempts_of(store: Store, policy: str, due_date: str,
                channel: str = "call") -> list[dict[str, Any]]:
    return store.query("SELECT * FROM reminder_attempts WHERE policy_number = ? AND"
                       " due_date = ? AND channel = ? ORDER BY attempt",
                       [policy, due_date, channel])


def all_attempts(store: Store, policies: Sequence[str] = ()) -> list[dict[str, Any]]:
    if policies:
        marks = ", ".join("?" * len(policies))
        return store.query(f"SELECT * FROM reminder_attempts WHERE policy_number IN ({marks})"
                           " ORDER BY id", list(policies))
    return store.query("SELECT * FROM reminder_attempts ORDER BY id")


__all__ = ["CONTACT", "FINAL", "INTERRUPTED", "OUTCOMES", "RETRY", "Attempt", "all_attempts",
           "attempts_of", "close_attempt", "close_interrupted", "open_attempt",
           "outcome_counts", "outcomes_by_day", "where"]
