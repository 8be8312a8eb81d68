"""Call detail records and the recordings index, as the engine writes and the web reads them.

The writers are called from the engine's 20 ms loop: each checks its arguments at once (a
bad value is refused on the caller's thread, before anything is queued), hands the SQL to
the store's writer thread and returns the Future without waiting. A call's row is final
once :func:`cdr_end` has run: later answers, keys or a second end change nothing, so every
way a call can end may call ``cdr_end`` and the first one wins.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from appliance.media.frame import FRAME_MS
from appliance.store.db import Store

DIRECTIONS = ("in", "out")
DTMF_KEYS = frozenset("0123456789*#ABCD")
MASKED_KEY = "x"  # a key that was part of a secret (PIN, ID digits): pressed, not recorded


def cdr_start(
    store: Store,
    call_id: str,
    line: str,
    driver: str,
    direction: str,
    caller: str,
    callee: str,
    started_at: float,
) -> Future[None]:
    """Open the call's row."""
    if direction not in DIRECTIONS:
        raise ValueError(f"call {call_id}: direction must be 'in' or 'out', got {direction!r}")
    params = (call_id, line, driver, direction, caller, callee, started_at)

    def insert(db: Database) -> None:
        db.execute(
            "INSERT INTO calls (call_id, line, driver, direction, caller, callee, started_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            params,
        )

    return store.submit(insert)


def cdr_answer(store: Store, call_id: str, at: float) -> Future[bool]:
    """Record when the call was answered; True if the row took it (first answer only)."""
    return _update(
        store,
        "UPDATE calls SET answered_at = ?"
        " WHERE call_id = ? AND answered_at IS NULL AND ended_at IS NULL",
        (at, call_id),
    )


def cdr_keys(store: Store, call_id: str, digits: str) -> Future[bool]:
    """Append DTMF digits the caller keyed (``x`` for a masked one); True if the row took
    them."""
    update = _keys_update([(call_id, digits)])
    return store.submit(lambda db: update(db) == 1)


def cdr_keys_many(store: Store, keyed: Sequence[tuple[str, str]]) -> Future[int]:
    """:func:`cdr_keys` for several ``(call id, digits)`` in one transaction (the keys the
    engine heard in one tick): one commit instead of one a key. Returns how many of them
    a row took. Nothing is written if any digit is not a key."""
    return store.submit(_keys_update(keyed))


def _keys_update(keyed: Sequence[tuple[str, str]]) -> Callable[[Database], int]:
    for call_id, digits in keyed:
        bad = set(digits) - DTMF_KEYS - {MASKED_KEY}
        if bad:
            raise ValueError(
                f"call {call_id}: {''.join(sorted(bad))!r} in {digits!r} are not DTMF keys"
                " (0-9 * # A-D, or x for a masked one)"
            )
    rows = [(digits, call_id) for call_id, digits in keyed]

    def update(db: Database) -> int:
        return sum(
            db.execute(
                "UPDATE calls SET keys = keys || ? WHERE call_id = ? AND ended_at IS NULL", row
            ).rowcount
            for row in rows
        )

    return update


def cdr_end(
    store: Store,
    call_id: str,
    ended_at: float,
    cause: str,
    recording: Path | str | None,
) -> Future[bool]:
    """Close the call's row; True for the first end, False if it had ended already."""
    return _update(
        store,
        "UPDATE calls SET ended_at = ?, end_cause = ?, recording = ?"
        " WHERE call_id = ? AND ended_at IS NULL",
        (ended_at, cause, None if recording is None else str(recording), call_id),
    )


def index_recording(
    store: Store,
    path: Path | str,
    call_id: str | None,
    started_at: float | None,
    frames: int,
    recovered: bool,
    *,
    indexed_at: float | None = None,
    undated_at: float | None = None,
) -> Future[None]:
    """Add or refresh a recording in the index (a re-index after recovery replaces it).
    Without ``started_at`` the recording is dated by its call: answered (when recording
    starts), else started, else (a call whose row a crash lost) ``undated_at``; the
    recordings page searches by this date."""
    if frames < 0:
        raise ValueError(f"recording {path}: frames must be >= 0, got {frames}")
    params = (
        str(path),
        call_id,
        started_at,
        call_id,
        undated_at,
        frames,
        frames * FRAME_MS / 1000,
        int(bool(recovered)),
        time.time() if indexed_at is None else indexed_at,
    )

    def upsert(db: Database) -> None:
        db.execute(
            "INSERT INTO recordings"
            " (path, call_id, started_at, frames, seconds, recovered, indexed_at)"
            " VALUES (?, ?, COALESCE(?, (SELECT COALESCE(answered_at, started_at) FROM calls"
            " WHERE call_id = ?), ?), ?, ?, ?, ?)"
            " ON CONFLICT (path) DO UPDATE SET call_id = excluded.call_id,"
            " started_at = excluded.started_at, frames = excluded.frames,"
            " seconds = excluded.seconds, recovered = excluded.recovered,"
            " indexed_at = excluded.indexed_at",
            params,
        )

    return store.submit(upsert)


def cdr_ivr_path(store: Store, call_id: str, steps: list[dict[str, Any]],
                 policy_number: str | None = None) -> Future[bool]:
    """Keep the call's IVR path (the steps its flow took) with its row, as JSON, and the
    policy number the caller keyed on it (if any; a column, so calls are found by it).

    Written when the flow is over, which may be after :func:`cdr_end`: the path completes
    the record, it does not reopen it.
    """
    if policy_number is not None and not policy_number.isdigit():
        raise ValueError(f"call {call_id}: a policy number is digits, got {policy_number!r}")
    text = json.dumps(steps, ensure_ascii=False, default=str)
    return _update(store, "UPDATE calls SET ivr_path = ?, policy_number = ? WHERE call_id = ?",
                   (text, policy_number, call_id))


#: how often a running engine records that it is alive (:func:`alive`)
ALIVE_EVERY_S = 10.0


def alive(store: Store, at: float) -> Future[None]:
    """The engine runs at ``at`` (wall time): written every :data:`ALIVE_EVERY_S`."""

    def write(db: Database) -> None:
        db.execute("INSERT INTO engine_alive (id, at) VALUES (1, ?)"
                   " ON CONFLICT (id) DO UPDATE SET at = excluded.at", (at,))

    return store.submit(write)


def close_unfinished(store: Store, at: float, cause: str = "engine-crash") -> Future[int]:
    """At engine start: rows a crash left open are closed, with ``cause``; returns how many.

    Only one engine runs per database, so any open row at its start belongs to a call the
    previous engine process never finished. It ended by the time that engine was next due
    to say it was alive (:func:`alive`), or ``at`` (now) if that is sooner or unknown;
    never before the call was answered (or began).
    """

    def close(db: Database) -> int:
        return db.execute(
            "UPDATE calls SET end_cause = ?, ended_at = MAX(COALESCE(answered_at, started_at),"
            " MIN(?, COALESCE((SELECT at FROM engine_alive WHERE id = 1) + ?, ?)))"
            " WHERE ended_at IS NULL", (cause, at, ALIVE_EVERY_S, at)
        ).rowcount

    return store.submit(close)


#: how much of a recording a crash may cost: the audio since its last flush
RECORDING_FLUSH_S = 1.0


def end_crashed_by_recording(store: Store, call_id: str, seconds: float, *, finished: bool,
                             cause: str = "engine-crash") -> Future[bool]:
    """A call a crash ended, whose recording a start found: it lasted as long as its
    recording (which starts at the answer), if that is sooner than the end
    :func:`close_unfinished` could tell. A ``finished`` recording (closed and renamed
    when its call ended, the row's end then lost) is the whole call. An unfinished one
    the crash cut says when the call ended only if it ran until the engine's last alive
    mark (less what the crash cost it): one a full disk cut short earlier ended before
    its call did."""
    return _update(
        store,
        "UPDATE calls SET ended_at = MIN(ended_at, answered_at + ?)"
        " WHERE call_id = ? AND end_cause = ? AND answered_at IS NOT NULL AND (? OR"
        " answered_at + ? >= COALESCE((SELECT at FROM engine_alive WHERE id = 1), 0) - ?)",
        (seconds, call_id, cause, finished, seconds, RECORDING_FLUSH_S),
    )


def crashed_unrecorded(store: Store, cause: str = "engine-crash", limit: int = 1000
                       ) -> list[tuple[str, float, bool]]:
    """(call id, answered at, its recording indexed) of the answered calls a crash ended
    whose row names no recording, the latest ``limit``: the crash may have come after
    the recording was finished and before it was indexed, or after it was indexed and
    before the row was given it (or the next start died while recovering it). The path
    is the engine's to know; "indexed" means some recording of the call is (a message
    take is indexed under the call's id too), for the engine to check against."""
    rows = store.query(
        "SELECT call_id, answered_at, EXISTS (SELECT 1 FROM recordings r"
        "  WHERE r.call_id = calls.call_id) AS indexed FROM calls"
        " WHERE end_cause = ? AND answered_at IS NOT NULL AND recording IS NULL"
        " ORDER BY answered_at DESC LIMIT ?",
        [cause, limit],
    )
    return [(r["call_id"], r["answered_at"], bool(r["indexed"])) for r in rows]


def is_indexed(store: Store, path: Path | str) -> bool:
    return bool(store.query("SELECT 1 FROM recordings WHERE path = ?", [str(path)]))


def attach_recording(store: Store, call_id: str, path: Path | str) -> Future[bool]:
    """Give a call's row the recording recovered for it after a crash (if it has none)."""
    return _update(
        store,
        "UPDATE calls SET recording = ? WHERE call_id = ? AND recording IS NULL",
        (str(path), call_id),
    )


def get_call(store: Store, call_id: str) -> dict[str, Any] | None:
    """The call's row, or None."""
    rows = store.query("SELECT * FROM calls WHERE call_id = ?", [call_id])
    return rows[0] if rows else None


def recent_calls(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """The latest calls, newest first."""
    return store.query(
        "SELECT * FROM calls ORDER BY started_at DESC, call_id DESC LIMIT ?", [limit]
    )


def _update(store: Store, sql: str, params: tuple[Any, ...]) -> Future[bool]:
    def update(db: Database) -> bool:
        return db.execute(sql, params).rowcount == 1

    return store.submit(update)
