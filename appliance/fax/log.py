"""The fax log: one row a fax attempt in the store's ``faxes`` table.

Every attempt is logged, whether a page moved or not: a callback fax that found the number
busy twice and then went through is three rows of one job, numbered 1–3, and a same-call
fax the caller's machine refused is a row with spandsp's completion code and its reason in
words. Rows go through the store's writer thread (:meth:`Store.submit`), so the engine loop
never waits for the disk; :func:`get` and :func:`attempts` read them back for the admin
and for :func:`appliance.fax.send.resend`.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

from sqlite_utils import Database

from appliance.fax.session import FaxResult
from appliance.store.db import Store

MODES: Final = ("same-call", "poll", "callback")
#: result of an attempt that reached T.30: spandsp said OK, or it did not
OK: Final = "ok"
FAILED: Final = "failed"


@dataclass(frozen=True)
class FaxRecord:
    """What one attempt was: the document, where it went, and how it ended."""

    job: str
    attempt: int
    mode: str
    document: str  # a documents.build kind, or "file" for a TIFF given as it is
    params: dict[str, Any]
    tiff: str
    destination: str
    started_at: float
    result: str  # ok, failed, or how the call ended before T.30 (busy, no-answer, ...)
    reason: str = ""
    call_id: str | None = None
    fax: FaxResult | None = None
    pages_in_file: int | None = None


def record(store: Store, rec: FaxRecord) -> Future[int]:
    """Queue the attempt's row; the Future gives its id."""
    if rec.mode not in MODES:
        raise ValueError(f"fax mode {rec.mode!r} is not one of {', '.join(MODES)}")
    if rec.attempt < 1:
        raise ValueError(f"fax attempt must be 1 or more, got {rec.attempt}")
    fax = rec.fax
    row = dict(
        job=rec.job, attempt=rec.attempt, mode=rec.mode, document=rec.document,
        params=json.dumps(rec.params, ensure_ascii=False, default=str), tiff=rec.tiff,
        destination=rec.destination, call_id=rec.call_id, started_at=rec.started_at,
        pages=fax.pages if fax else 0, pages_in_file=rec.pages_in_file,
        bit_rate=fax.bit_rate if fax else 0, ecm=int(fax.ecm) if fax else 0,
        duration=fax.seconds if fax else 0.0, ok=int(rec.result == OK), result=rec.result,
        completion_code=fax.code if fax else None, reason=rec.reason)

    def insert(db: Database) -> int:
        cur = db.execute(
            f"INSERT INTO faxes ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()))
        return int(cur.lastrowid or 0)

    return store.submit(insert)


def get(store: Store, fax_id: int) -> dict[str, Any]:
    rows = store.query("SELECT * FROM faxes WHERE id = ?", [fax_id])
    if not rows:
        raise LookupError(f"fax id {fax_id} is not in the fax log")
    row = rows[0]
    row["params"] = json.loads(row["params"])
    return row


def attempts(store: Store, job: str) -> list[dict[str, Any]]:
    """Every attempt of one job, in order."""
    return store.query("SELECT * FROM faxes WHERE job = ? ORDER BY attempt", [job])


def recent(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    return store.query("SELECT * FROM faxes ORDER BY started_at DESC, id DESC LIMIT ?",
                       [limit])
