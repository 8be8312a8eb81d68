"""The voicemail audit trail: who did what to which message or box, and when.

Every change a person or the system makes (a message received or recovered, heard,
categorised, assigned, forwarded, done; a greeting or category changed) adds one row, in
the same transaction as the change itself, so the trail cannot miss or invent an action.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from appliance.store.db import Store

#: the actor for what the box does by itself (receiving, recovering, delivering)
SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    action: str
    voicemail_id: int | None
    box_id: int | None
    detail: dict[str, Any]


def audit(db: Database, at: float, actor: str, action: str, *, voicemail_id: int | None = None,
          box_id: int | None = None, **detail: Any) -> None:
    """Add an entry; call inside the writer transaction that makes the change."""
    if not actor.strip():
        raise ValueError(f"{action}: the actor must be named (a user, a salesperson code or "
                         f"{SYSTEM!r})")
    db.execute(
        "INSERT INTO voicemail_audit (at, actor, action, voicemail_id, box_id, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (at, actor, action, voicemail_id, box_id,
         json.dumps(detail, ensure_ascii=False, sort_keys=True)),
    )


def audit_trail(store: Store, voicemail_id: int) -> list[AuditEntry]:
    """A message's entries, oldest first."""
    return [
        AuditEntry(r["at"], r["actor"], r["action"], r["voicemail_id"], r["box_id"],
                   json.loads(r["detail"]))
        for r in store.query(
            "SELECT * FROM voicemail_audit WHERE voicemail_id = ? ORDER BY id", [voicemail_id]
        )
    ]
