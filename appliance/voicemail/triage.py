"""Triage of voicemail: the service layer the web pages and the phone menu call.

A message moves ``new`` → ``heard`` (someone listened) → ``assigned`` (a salesperson owns
it; forwarding passes it to another) → ``done``. Independently it gets a category from an
editable list (complaint, suggestion, claim, policy service, other to start with), each
with a response-time target; :func:`overdue` lists the open messages past theirs. Every
action names its actor and time (injected, so tests and the web control them) and writes
its audit entry in the same transaction. These functions block on the store: the web calls
them directly, a call flow through ``run_in_executor``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from appliance.store.db import Store
from appliance.voicemail.assignment import TriageError, assign_in, message_row
from appliance.voicemail.audit import audit
from appliance.voicemail.messages import LISTED, Message, get_message

STATUSES = ("new", "heard", "assigned", "done")
#: open messages with no category yet are held to this target (hours): untriaged mail must
#: not escape the overdue list just because nobody looked at it
UNCATEGORISED_TARGET_HOURS = 24.0

_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    target_hours: float
    position: int
    retired: bool


@dataclass(frozen=True, slots=True)
class Overdue:
    message: Message
    due_at: float  # when the response was due (epoch seconds)


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    salesperson_code: str
    voicemail_id: int
    created_at: float
    text: str
    sent_at: float | None


# ---------------------------------------------------------------------------- categories

def categories(store: Store, *, include_retired: bool = False) -> list[Category]:
    where = "" if include_retired else " WHERE retired = 0"
    return [
        Category(r["code"], r["name_zh"], r["name_en"], r["target_hours"], r["position"],
                 bool(r["retired"]))
        for r in store.query(f"SELECT * FROM voicemail_categories{where} ORDER BY position, code")
    ]


def save_category(store: Store, code: str, name_zh: str, name_en: str, target_hours: float, *,
                  actor: str, now: float, position: int | None = None) -> None:
    """Add a category or change one (names, target, position; a retired one comes back)."""
    if not _CODE.fullmatch(code):
        raise TriageError(f"category code {code!r} must be lower-case letters, digits and _,"
                          " starting with a letter, at most 32")
    if not name_zh.strip() or not name_en.strip():
        raise TriageError(f"category {code!r} needs a Chinese and an English name")
    if not target_hours > 0:
        raise TriageError(f"category {code!r}: the response target must be > 0 hours, got"
                          f" {target_hours}")

    def save(db: Database) -> None:
        pos = position
        if pos is None:
            existing = list(db.query(
                "SELECT position FROM voicemail_categories WHERE code = ?", [code]))
            pos = existing[0]["position"] if existing else next(iter(db.query(
                "SELECT COALESCE(MAX(position), 0) + 1 AS p FROM voicemail_categories")))["p"]
        db.execute(
            "INSERT INTO voicemail_categories (code, name_zh, name_en, target_hours, position)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (code) DO UPDATE SET name_zh = excluded.name_zh,"
            " name_en = excluded.name_en, target_hours = excluded.target_hours,"
            " position = excluded.position, retired = 0",
            (code, name_zh.strip(), name_en.strip(), float(target_hours), pos),
        )
        audit(db, now, actor, "category-saved", code=code, name_zh=name_zh, name_en=name_en,
              target_hours=target_hours)

    store.write(save)


def retire_category(store: Store, code: str, *, actor: str, now: float) -> None:
    """Take a category off the list offered for new triage; messages keep it."""

    def retire(db: Database) -> None:
        if db.execute("UPDATE voicemail_categories SET retired = 1 WHERE code = ?",
                      (code,)).rowcount != 1:
            raise TriageError(f"no category {code!r}")
        audit(db, now, actor, "category-retired", code=code)

    store.write(retire)


# ---------------------------------------------------------------------------- actions

def _act(store: Store, message_id: int, fn: Callable[[Database], object]) -> Message:
    store.write(fn)
    return get_message(store, message_id)


def mark_heard(store: Store, message_id: int, *, actor: str, now: float) -> Message:
    """Someone listened to it: a new message becomes heard (any listening is audited)."""

    def heard(db: Database) -> None:
        row = message_row(db, message_id)
        if row["status"] == "new":
            db.execute("UPDATE voicemails SET status = 'heard' WHERE id = ?", (message_id,))
        if row["assignee"] == actor and row["assignee_heard_at"] is None:
            db.execute("UPDATE voicemails SET assignee_heard_at = ? WHERE id = ?",
                       (now, message_id))
        audit(db, now, actor, "heard", voicemail_id=message_id)

    return _act(store, message_id, heard)


def categorise(store: Store, message_id: int, category: str, *, actor: str,
               now: float) -> Message:
    def set_category(db: Database) -> None:
        row = message_row(db, message_id)
        known = list(db.query("SELECT retired FROM voicemail_categories WHERE code = ?",
                              [category]))
        if not known or known[0]["retired"]:
            raise TriageError(f"{category!r} is not a category in use")
        db.execute("UPDATE voicemails SET category = ? WHERE id = ?", (category, message_id))
        detail: dict[str, Any] = {"category": category}
        if row["category"]:
            detail["was"] = row["category"]
        audit(db, now, actor, "categorise", voicemail_id=message_id, **detail)

    return _act(store, message_id, set_category)


def assign(store: Store, message_id: int, salesperson_code: str, *, actor: str, now: float,
           note: str = "") -> Message:
    """Give the message to a salesperson, or forward it from one to another: the new owner
    gets a notification and sees it as new in their list."""
    return _act(store, message_id,
                lambda db: assign_in(db, message_id, salesperson_code, actor, now, note))


forward = assign


def mark_done(store: Store, message_id: int, *, actor: str, now: float,
              note: str = "") -> Message:
    def done(db: Database) -> None:
        row = message_row(db, message_id)
        if row["status"] == "done":
            raise TriageError(f"voicemail {message_id} is already done")
        db.execute("UPDATE voicemails SET status = 'done', done_at = ? WHERE id = ?",
                   (now, message_id))
        audit(db, now, actor, "done", voicemail_id=message_id, note=note)

    return _act(store, message_id, done)


def reopen(store: Store, message_id: int, *, actor: str, now: float, note: str = "") -> Message:
    """A done message needs more work: back to assigned if it has an owner, else heard."""

    def again(db: Database) -> None:
        row = message_row(db, message_id)
        if row["status"] != "done":
            raise TriageError(f"voicemail {message_id} is {row['status']}, not done")
        status = "assigned" if row["assignee"] else "heard"
        db.execute("UPDATE voicemails SET status = ?, done_at = NULL WHERE id = ?",
                   (status, message_id))
        audit(db, now, actor, "reopen", voicemail_id=message_id, status=status, note=note)

    return _act(store, message_id, again)


# ---------------------------------------------------------------------------- lists

def messages(store: Store, *, box_id: int | None = None, status: str | None = None,
             category: str | None = None, assignee: str | None = None,
             limit: int = 200) -> list[Message]:
    """Messages that can be heard, newest first, filtered by any of the arguments."""
    if status is not None and status not in STATUSES:
        raise TriageError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    where, params = [LISTED], []
    for column, value in (("box_id", box_id), ("status", status), ("category", category),
                          ("assignee", assignee)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return [Message.from_row(r) for r in store.query(
        f"SELECT * FROM voicemails WHERE {' AND '.join(where)}"
        " ORDER BY received_at DESC, id DESC LIMIT ?", [*params, limit])]


def salesperson_inbox(store: Store, code: str, *, only_new: bool = False) -> list[Message]:
    """A salesperson's own list: the open messages assigned to them, oldest first (the order
    to call back in); ``only_new``: those they have not heard since they got them."""
    new = " AND assignee_heard_at IS NULL" if only_new else ""
    return [Message.from_row(r) for r in store.query(
        f"SELECT * FROM voicemails WHERE {LISTED} AND assignee = ? AND status = 'assigned'{new}"
        " ORDER BY received_at, id", [code])]


def overdue(store: Store, now: float, *,
            uncategorised_hours: float = UNCATEGORISED_TARGET_HOURS) -> list[Overdue]:
    """Open messages past their category's response target, most overdue first."""
    rows = store.query(
        "SELECT v.*, v.received_at + 3600.0 * COALESCE(c.target_hours, ?) AS due_at"
        " FROM voicemails v LEFT JOIN voicemail_categories c ON c.code = v.category"
        f" WHERE v.{LISTED} AND v.status != 'done'"
        " AND v.received_at + 3600.0 * COALESCE(c.target_hours, ?) < ?"
        " ORDER BY due_at, v.id",
        [uncategorised_hours, uncategorised_hours, now],
    )
    return [Overdue(Message.from_row(r), r["due_at"]) for r in rows]


def notifications(store: Store, *, salesperson_code: str | None = None,
                  unsent_only: bool = True) -> list[Notification]:
    where, params = [], []
    if salesperson_code is not None:
        where.append("salesperson_code = ?")
        params.append(salesperson_code)
    if unsent_only:
        where.append("sent_at IS NULL")
    sql = "SELECT * FROM voicemail_notifications"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return [Notification(r["id"], r["salesperson_code"], r["voicemail_id"], r["created_at"],
                         r["text"], r["sent_at"]) for r in store.query(sql + " ORDER BY id",
                                                                       params)]


def mark_notification_sent(store: Store, notification_id: int, now: float) -> None:
    """For the SMS service once it exists: the notification went out."""

    def sent(db: Database) -> None:
        if db.execute("UPDATE voicemail_notifications SET sent_at = ? WHERE id = ?"
                      " AND sent_at IS NULL", (now, notification_id)).rowcount != 1:
            raise TriageError(f"notification {notification_id} does not exist or was sent")

    store.write(sent)
