"""Handing a message to a salesperson: the assignment, their notification, the audit entry.

Shared by triage (a person assigns or forwards) and delivery (a message left in a
salesperson's own box is theirs at once). Runs inside a writer transaction, so the state,
the notification and the audit row are written together or not at all. Until the SMS
service exists a notification is a row with ``sent_at`` NULL that it will pick up.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from appliance.voicemail.audit import audit


class TriageError(ValueError):
    """A triage action that does not apply (the message says which input and why)."""


def message_row(db: Database, message_id: int) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM voicemails WHERE id = ?", [message_id]))
    if not rows:
        raise TriageError(f"no voicemail {message_id}")
    row = rows[0]
    if row["recording"] not in ("saved", "recovered"):
        raise TriageError(f"voicemail {message_id} is {row['recording']}, not a message to"
                          " handle")
    return row


def _notice(message_id: int, caller: str, note: str) -> str:
    # Read by the salesperson on their phone (SMS later): Chinese, short.
    text = f"新留言 #{message_id}，来电号码 {caller or '未知'}"
    return f"{text}：{note}" if note else text


def assign_in(db: Database, message_id: int, salesperson_code: str, actor: str, now: float,
              note: str = "") -> str:
    """Give the message to ``salesperson_code``; returns the audit action (``assign``, or
    ``forward`` when it passes from one salesperson to another)."""
    row = message_row(db, message_id)
    if row["status"] == "done":
        raise TriageError(f"voicemail {message_id} is done; it cannot be assigned")
    people = list(db.query("SELECT name FROM salespeople WHERE code = ?", [salesperson_code]))
    if not people:
        raise TriageError(f"no salesperson with code {salesperson_code!r}")
    previous = row["assignee"]
    if previous == salesperson_code:
        raise TriageError(f"voicemail {message_id} is already assigned to {salesperson_code}")
    action = "forward" if previous else "assign"
    db.execute(
        "UPDATE voicemails SET status = 'assigned', assignee = ?, assigned_at = ?,"
        " assignee_heard_at = NULL WHERE id = ?",
        (salesperson_code, now, message_id),
    )
    db.execute(
        "INSERT INTO voicemail_notifications (salesperson_code, voicemail_id, created_at, text)"
        " VALUES (?, ?, ?, ?)",
        (salesperson_code, message_id, now, _notice(message_id, row["caller"], note)),
    )
    detail: dict[str, Any] = {"to": salesperson_code}
    if previous:
        detail["from"] = previous
    if note:
        detail["note"] = note
    audit(db, now, actor, action, voicemail_id=message_id, **detail)
    return action
