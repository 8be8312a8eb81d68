"""The rows of agents' transfers (migration ``0014_acd_transfers``): one a transfer, opened
when the agent starts it and updated as it goes (the target answers, the agent leaves, how
it ended). Writes go to the store's writer thread without waiting, in order, like the rest
of the ACD's records; the read helper is for the call's etiquette and the tests.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Final

from sqlite_utils import Database

from appliance.store.db import Store

#: what :func:`update_transfer` may set
_COLUMNS: Final = frozenset({"kind", "answered_at", "agent_left_at",
                             "answered_before_agent_left", "outcome", "ended_at", "to_entry"})


def open_transfer(store: Store, key: str, *, entry_key: str, call_id: str, seat_id: str,
                  agent: str, kind: str, target_kind: str, target: str,
                  at: float) -> Future[None]:
    def write(db: Database) -> None:
        db.execute("INSERT INTO acd_transfers (key, entry_key, call_id, seat_id, agent, kind,"
                   " target_kind, target, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [key, entry_key, call_id, seat_id, agent, kind, target_kind, target, at])

    return store.submit(write)


def update_transfer(store: Store, key: str, **values: Any) -> Future[None]:
    unknown = sorted(set(values) - _COLUMNS)
    if unknown:
        raise ValueError(f"acd_transfers: no column {', '.join(unknown)} to update "
                         f"(columns: {', '.join(sorted(_COLUMNS))})")
    names = sorted(values)
    sql = ("UPDATE acd_transfers SET " + ", ".join(f"{n} = ?" for n in names)
           + " WHERE key = ?")
    args = [values[n] for n in names] + [key]

    def write(db: Database) -> None:
        db.execute(sql, args)

    return store.submit(write)


def call_transfers(store: Store, call_id: str) -> list[dict[str, Any]]:
    """The transfers of the caller's call ``call_id``, in the order they were made."""
    return store.query("SELECT * FROM acd_transfers WHERE call_id = ? ORDER BY started_at, "
                       "rowid", [call_id])


__all__ = ["call_transfers", "open_transfer", "update_transfer"]
