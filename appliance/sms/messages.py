"""SMS rows in the store (table ``sms_messages``): the web queues outgoing messages here,
the engine's SMS service claims, finishes and records received ones here, and both read
the service's last word on the modem (``sms_service``).

Every function that changes a row takes the ``Database`` of a write already open, so the
web can commit a queued message together with its audit row, and the service can commit a
received message before it deletes it from the SIM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from sqlite_utils import Database

from appliance.store.db import Store
from drivers.gsm.sms import check_number, check_text, count_parts

DIRECTIONS: Final = ("in", "out")
STATUSES: Final = ("queued", "sending", "sent", "failed", "received")
INTERRUPTED: Final = ("the engine stopped while the message was being sent; it may or may "
                      "not have gone, so it is not sent again by itself")
#: mainland mobile numbers as the network gives them (+86 / 0086 / 86 before 11 digits)
_CHINA_PREFIX: Final = re.compile(r"^(?:\+86|0086|86)(1\d{10})$")


@dataclass(frozen=True, slots=True)
class Outgoing:
    id: int
    number: str
    text: str
    attempts: int
    reference: int | None
    refs: tuple[int, ...]  # the parts the network already took


def national(number: str) -> str:
    """``+8613800138000`` -> ``13800138000``: how the customer book writes numbers."""
    m = _CHINA_PREFIX.match(number)
    return m.group(1) if m else number


def customer_for(db: Database, number: str) -> int | None:
    """The customer whose phone is ``number``, when exactly one is (a number shared by a
    family names no one: a wrong match would show one customer another's messages)."""
    candidates = sorted({number, national(number)})
    marks = ", ".join("?" * len(candidates))
    rows = db.execute(f"SELECT id FROM customers WHERE phone IN ({marks}) LIMIT 2",
                      candidates).fetchall()
    return int(rows[0][0]) if len(rows) == 1 else None


def queue(db: Database, number: str, text: str, *, by: str, now: float,
          customer_id: int | None = None) -> int:
    """Inside a write: queue ``text`` to ``number``; the new row's id. Raises
    :class:`drivers.gsm.sms.TextError` for a number or text that cannot be sent."""
    number = check_number(number)
    check_text(text)
    cur = db.execute("INSERT INTO sms_messages (direction, number, text, status, parts,"
                     " created_at, created_by, customer_id) VALUES ('out', ?, ?, 'queued',"
                     " ?, ?, ?, ?)", [number, text, count_parts(text), now, by, customer_id])
    return int(cur.lastrowid or 0)


def due(store: Store, now: float) -> list[Outgoing]:
    """The queued messages whose turn it is, oldest first."""
    rows = store.query("SELECT id, number, text, attempts, reference, refs FROM sms_messages"
                       " WHERE status = 'queued' AND next_try_at <= ? ORDER BY id", [now])
    return [Outgoing(r["id"], r["number"], r["text"], r["attempts"], r["reference"],
                     tuple(int(x) for x in r["refs"].split(",") if x)) for r in rows]


def claim(store: Store, message_id: int, reference: int) -> bool:
    """Mark a queued message ``sending`` (False if it is no longer queued)."""
    return bool(store.write(lambda db: db.execute(
        "UPDATE sms_messages SET status = 'sending', reference = coalesce(reference, ?)"
        " WHERE id = ? AND status = 'queued'", [reference, message_id]).rowcount))


def finish(store: Store, message_id: int, *, status: str, now: float, error: str = "",
           refs: tuple[int, ...] = (), retry_at: float | None = None) -> None:
    """Write how a send ended: ``sent``, ``failed``, or back to ``queued`` until
    ``retry_at`` (the parts the network took are kept either way)."""
    def write(db: Database) -> None:
        db.execute("UPDATE sms_messages SET status = ?, error = ?, refs = ?,"
                   " attempts = attempts + 1, next_try_at = ?,"
                   " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
                   [status, error, ",".join(map(str, refs)), retry_at or 0, status, now,
                    message_id])

    store.write(write)


def abandon_interrupted(store: Store, now: float) -> int:
    """Rows left ``sending`` by a stop or crash: failed, saying so (never sent twice)."""
    return int(store.write(lambda db: db.execute(
        "UPDATE sms_messages SET status = 'failed', error = ?, next_try_at = ?"
        " WHERE status = 'sending'", [INTERRUPTED, now]).rowcount))


def receive(db: Database, *, number: str, text: str, sent_at: float | None, key: str,
            now: float, parts: int = 1, error: str = "") -> int | None:
    """Inside a write: store a received message; its id, or None when the same message
    (same ``key``) is already stored."""
    cur = db.execute("INSERT OR IGNORE INTO sms_messages (direction, number, text, status,"
                     " error, parts, created_at, sent_at, customer_id, sim_key) VALUES"
                     " ('in', ?, ?, 'received', ?, ?, ?, ?, ?, ?)",
                     [number, text, error, parts, now, sent_at,
                      customer_for(db, number) if number else None, key])
    return int(cur.lastrowid or 0) if cur.rowcount else None


def set_state(store: Store, state: str, detail: str, now: float) -> None:
    store.write(lambda db: db.execute(
        "INSERT INTO sms_service (id, state, detail, updated_at) VALUES (1, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET state = excluded.state, detail = excluded.detail,"
        " updated_at = excluded.updated_at", [state, detail, now]))


def service_state(store: Store) -> dict[str, Any] | None:
    rows = store.query("SELECT state, detail, updated_at FROM sms_service WHERE id = 1")
    return rows[0] if rows else None


__all__ = ["DIRECTIONS", "INTERRUPTED", "STATUSES", "Outgoing", "abandon_interrupted",
           "claim", "customer_for", "due", "finish", "national", "queue", "receive",
           "service_state", "set_state"]
