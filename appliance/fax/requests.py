"""Resend requests: the web admin queues them, the engine sends them.

The web process has no engine and no line, so "send this logged fax again" is a row of
``fax_resend_requests`` (:func:`request_resend`, ``queued``). The engine process runs
:func:`serve_resend_requests`, which every ``interval`` seconds claims the queued rows
(``sending``), sends each as a new callback job through :func:`appliance.fax.send.resend`
(the same retries and fax log rows as any callback fax) and writes back the outcome
(``sent`` or ``failed``, with each attempt's result or the reason it could not start).
A row still ``sending`` when the poller starts was cut off by an engine stop or crash: it
is marked failed with that reason rather than sent a second time without anyone asking.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlite_utils import Database

from appliance.fax import log as faxlog
from appliance.store.db import Store

if TYPE_CHECKING:
    from appliance.calls.engine import Engine
    from drivers.base import Driver

log = logging.getLogger("appliance.fax")

STATUSES: Final = ("queued", "sending", "sent", "failed")
INTERRUPTED: Final = "the engine stopped while the fax was being resent"


@dataclass(frozen=True)
class ResendRequest:
    id: int
    fax_id: int
    number: str | None  # None: the logged destination


def dialable(number: str) -> bool:
    return bool(number) and len(number) <= 32 and all(c.isdigit() or c in "+*#"
                                                      for c in number)


def request_resend(store: Store, fax_id: int, *, requested_by: str, now: float,
                   number: str | None = None) -> int:
    """Queue a resend of logged fax ``fax_id`` (to ``number``, or where it went); returns the
    request's id. LookupError if the fax is not logged, ValueError if it cannot be sent
    (a number that cannot be dialled, a plain TIFF that is gone)."""
    row = faxlog.get(store, fax_id)
    if number is not None and not dialable(number):
        raise ValueError(f"fax number {number!r} is not a dialable number")
    if row["document"] == "file" and not Path(row["tiff"]).exists():
        raise ValueError(f"fax {fax_id}: {row['tiff']} is gone and was not a document the "
                         "box can render again")

    def insert(db: Database) -> int:
        cur = db.execute(
            "INSERT INTO fax_resend_requests (fax_id, number, requested_at, requested_by)"
            " VALUES (?, ?, ?, ?)", (fax_id, number, now, requested_by))
        return int(cur.lastrowid or 0)

    return store.write(insert)


def requests_for(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """The latest requests, newest first, for the admin page."""
    return store.query("SELECT * FROM fax_resend_requests ORDER BY id DESC LIMIT ?", [limit])


def _claim(store: Store, now: float) -> list[ResendRequest]:
    def claim(db: Database) -> list[ResendRequest]:
        rows = list(db.query("SELECT id, fax_id, number FROM fax_resend_requests"
                             " WHERE status = 'queued' ORDER BY id"))
        for r in rows:
            db.execute("UPDATE fax_resend_requests SET status = 'sending', picked_at = ?"
                       " WHERE id = ?", (now, r["id"]))
        return [ResendRequest(r["id"], r["fax_id"], r["number"]) for r in rows]

    return store.write(claim)


def _finish(store: Store, request_id: int, status: str, now: float, result: str,
            job: str | None = None) -> None:
    store.write(lambda db: db.execute(
        "UPDATE fax_resend_requests SET status = ?, finished_at = ?, result = ?, job = ?"
        " WHERE id = ?", (status, now, result, job, request_id)))


def _abandon_interrupted(store: Store, now: float) -> int:
    return int(store.write(lambda db: db.execute(
        "UPDATE fax_resend_requests SET status = 'failed', finished_at = ?, result = ?"
        " WHERE status = 'sending'", (now, INTERRUPTED)).rowcount))


async def serve_resend_requests(
    engine: Engine, driver: Driver, store: Store, interval: float = 5.0, *, out_dir: Path,
    today: Callable[[], date] = date.today,
    on_finished: Callable[[int, str, str], None] | None = None, **resend_kwargs: Any,
) -> None:
    """Send the queued resend requests, checking every ``interval`` seconds, until
    cancelled. ``engine`` is the running :class:`~appliance.calls.engine.Engine`,
    ``driver`` the line driver to dial out on, ``out_dir`` where documents rendered again
    go; ``resend_kwargs`` go to :func:`appliance.fax.send.resend` (tries, retry_seconds,
    ...). ``on_finished(request_id, status, result)`` is told each outcome. Each request
    runs as a task of its own, so one waiting between retries holds up no other. Returns
    once the engine has stopped (requests still in flight are then marked failed)."""
    from appliance.fax.send import resend  # engine-side only: the web never imports it

    if interval <= 0:
        raise ValueError(f"interval must be > 0 seconds, got {interval}")
    loop = asyncio.get_running_loop()
    interrupted = await loop.run_in_executor(None, _abandon_interrupted, store,
                                             engine.clock.wall())
    if interrupted:
        log.warning("%d fax resend request(s) were cut off by the last stop: marked failed",
                    interrupted)
    running: set[asyncio.Task[None]] = set()
    unfinished: set[int] = set()  # claimed, outcome not yet written

    async def serve(req: ResendRequest) -> None:
        status, result, job = "failed", INTERRUPTED, None
        try:
            out = await resend(engine, driver, req.fax_id, number=req.number, out_dir=out_dir,
                               today=today, store=store, **resend_kwargs)
            status = "sent" if out.ok else "failed"
            result, job = ", ".join(out.results), out.job
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the request fails with its reason; the poller goes on
            log.warning("fax resend request %d (fax %d) failed: %s", req.id, req.fax_id, exc)
            result = str(exc) or type(exc).__name__
        finally:
            # Also when cancelled (the engine stopping): the row says what happened.
            _finish(store, req.id, status, engine.clock.wall(), result, job)
            unfinished.discard(req.id)
            if on_finished is not None:
                on_finished(req.id, status, result)
        log.info("fax resend request %d (fax %d): %s (%s)", req.id, req.fax_id, status, result)

    try:
        while not engine.stopped.is_set():  # after the stop, no engine to dial with
            for req in await loop.run_in_executor(None, _claim, store, engine.clock.wall()):
                unfinished.add(req.id)
                task = asyncio.create_task(serve(req), name=f"fax-resend-{req.id}")
                running.add(task)
                task.add_done_callback(running.discard)
            await engine.pause(interval)
    finally:
        for task in list(running):
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        # A task cancelled before it began never ran its own clean-up.
        for request_id in sorted(unfinished):
            _finish(store, request_id, "failed", engine.clock.wall(), INTERRUPTED)

