"""The appliance's SQLite file: one writer thread, per-thread readers, migrations at open.

The engine runs every call on one 20 ms loop, so it must never wait for the disk. As in
datasette's ``Database``, a single thread owns the only write connection and runs the
functions handed to :meth:`Store.submit` one after another, each in its own transaction,
answering through a :class:`concurrent.futures.Future` that the engine may ignore. Readers
(the web, reports, tests) get a read-only connection per thread, and with WAL they read
the last committed state without waiting for the writer. Durability is WAL with
``synchronous=NORMAL``: a commit costs no fsync; a power cut can lose the last few commits
but never corrupts the file.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from appliance.store.migrations import MIGRATIONS, Step, migrate

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a connection waits for a lock held by the other process (engine or web) before
# failing. The engine's writes are small, but a bulk import from the web is one
# transaction of up to a few seconds (100 000 policies: about 3 s on the 2-core box), and
# the engine's writer must outwait it rather than drop a CDR row; calls never wait, since
# their writes are queued Futures. Thirty seconds of waiting means something is wrong.
BUSY_TIMEOUT_S = 30.0
#: a write still locked out after its busy timeout is tried again, as long as the store is
#: open, with a warning this often: a CDR row is never dropped for a lock (an admin's
#: sqlite3 shell left in a transaction)
BUSY_WARN_S = 60.0

_Task = tuple[Callable[[Database], Any], "Future[Any]"]


class StoreClosedError(RuntimeError):
    """The store was closed; nothing more can be read or written through it."""


class Store:
    """The database file: ``submit``/``write`` go to the writer thread, ``read`` stays here.

    Opening migrates the file; ``migrated`` lists the steps this open applied.
    """

    def __init__(self, path: Path, *, migrations: Sequence[Step] = MIGRATIONS) -> None:
        self.path = Path(path)
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        # Writes handed in and writes run (or dropped, cancelled): see wait_written.
        self._submitted = 0
        self.writes_finished = 0
        self._ran = threading.Condition(self._lock)
        self._local = threading.local()
        # Every reader, by owning thread, so close() can close them all and connections of
        # threads that have ended (Flask's dev server starts one a request) get closed.
        self._readers: dict[threading.Thread, Database] = {}
        ready: Future[list[str]] = Future()
        self._writer = threading.Thread(
            target=self._run_writer,
            args=(ready, migrations),
            name=f"store-writer {self.path.name}",
            # A daemon, so a forgotten close() cannot hang the interpreter at exit; the
            # atexit hook below still drains the queue on a normal exit.
            daemon=True,
        )
        self._writer.start()
        try:
            self.migrated = ready.result()
        except BaseException:
            # A failed open, or Ctrl-C while the migrations run: the writer ends once they
            # have (each is one transaction), rather than waiting for writes forever.
            self._closed = True
            self._queue.put(None)
            self._writer.join()
            raise
        atexit.register(self.close)

    # -- writing ----------------------------------------------------------------------

    def submit(self, fn: Callable[[Database], T]) -> Future[T]:
        """Queue ``fn(db)`` to run on the writer thread in a transaction; return at once.

        The transaction commits if ``fn`` returns and rolls back if it raises; the Future
        carries the return value or the exception. ``fn`` should return plain values (not
        cursors or lazy query results, which belong to the writer's connection).
        """
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"{self.path}: store is closed")
            self._submitted += 1
            self._queue.put((fn, future))
        return future

    def wait_written(self, timeout: float | None = None) -> bool:
        """Block until every write submitted before this call has run; False if
        ``timeout`` seconds passed first. For a simulated clock, which must not let time
        pass while a write is in flight (``appliance.calls.clock.WritesTakeNoTime``): it
        runs ticks far faster than real time, so a slow commit would pass as hundreds."""
        with self._ran:
            target = self._submitted
            return self._ran.wait_for(lambda: self.writes_finished >= target, timeout)

    def write(self, fn: Callable[[Database], T]) -> T:
        """``submit`` and wait for the result: for callers that are not the engine loop."""
        if threading.current_thread() is self._writer:
            raise RuntimeError("write() from inside a write would wait for itself; call fn(db)")
        return self.submit(fn).result()

    @property
    def backlog(self) -> int:
        """Writes queued and not yet started (approximate): a growing figure means the
        disk is not keeping up."""
        return self._queue.qsize()

    def _run_writer(self, ready: Future[list[str]], migrations: Sequence[Step]) -> None:
        try:
            db = _connect_writer(self.path)
        except sqlite3.Error as exc:
            ready.set_exception(self._named(exc))
            return
        except BaseException as exc:
            ready.set_exception(exc)
            return
        try:
            try:
                applied = migrate(db, migrations)
            except sqlite3.Error as exc:  # NewerSchemaError too
                ready.set_exception(self._named(exc))
                return
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(applied)
            while (task := self._queue.get()) is not None:
                self._run_one(db, *task)
            # Fold the WAL back into the database file, so that after close() the .db file
            # alone holds every commit (a backup that copies only it misses nothing). Idle
            # readers hold no snapshot, so this normally succeeds; if not, the WAL stays
            # and SQLite replays it at the next open.
            try:
                # Not waiting for a reader's snapshot (a long report, a backup download in
                # the web): the engine's stop must not wait 30 s for it.
                db.execute("PRAGMA busy_timeout = 0")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                log.warning("%s: WAL checkpoint at close failed; kept for the next open",
                            self.path)
        finally:
            db.close()

    def _named(self, exc: Exception) -> Exception:
        """``exc`` with the database file named: sqlite3 does not say which file."""
        error = type(exc)(f"{self.path}: {exc}")
        error.__cause__ = exc
        return error

    def _run_one(self, db: Database, fn: Callable[[Database], Any], future: Future[Any]) -> None:
        try:
            # A write once handed in is done even if its Future was cancelled meanwhile (a
            # task awaiting it was cancelled, as every task is at a second Ctrl-C): a call's
            # final row must not depend on whether anyone still waits for it.
            wanted = future.set_running_or_notify_cancel()
            try:
                result = self._locked_out_retried(db, fn)
            except BaseException as exc:
                # Logged here as well because the engine does not wait for its Futures: a
                # failed CDR write must still show up somewhere.
                log.exception("store write %s failed", getattr(fn, "__qualname__", fn))
                if wanted:
                    future.set_exception(exc)
            else:
                if wanted:
                    future.set_result(result)
        finally:
            with self._ran:
                self.writes_finished += 1
                self._ran.notify_all()

    def _locked_out_retried(self, db: Database, fn: Callable[[Database], Any]) -> Any:
        """``fn`` in a transaction, tried again while another process holds the database
        locked past the busy timeout (the writes queued behind it wait their turn, so
        their order is kept)."""
        tries = 0
        while True:
            try:
                return _in_transaction(db, fn)
            except sqlite3.OperationalError as exc:
                if not _locked(exc):
                    raise
                if self._closed:
                    # Stopping: the writes still queued fail at once rather than each wait
                    # its 30 s (the next start closes their calls' rows).
                    db.execute("PRAGMA busy_timeout = 0")
                    raise
                tries += 1
                if tries == 1 or tries % max(1, round(BUSY_WARN_S / BUSY_TIMEOUT_S)) == 0:
                    log.warning("%s: another process has held the database locked for %.0f "
                                "s; store write %s waits (%d more queued)", self.path,
                                tries * BUSY_TIMEOUT_S, getattr(fn, "__qualname__", fn),
                                self._queue.qsize())

    # -- reading ----------------------------------------------------------------------

    def read(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn(db)`` on this thread's read-only connection, in one snapshot.

        Blocks this thread for the length of the query: from the engine loop, use
        ``loop.run_in_executor(None, store.read, fn)``.
        """
        db = self._reader()
        if db.conn.in_transaction:  # a read inside a read: same snapshot
            return fn(db)
        # One read transaction, so several queries in fn see the same committed state.
        db.conn.execute("BEGIN")
        try:
            return fn(db)
        finally:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[dict]:
        """Rows of a read query as dicts."""
        return self.read(lambda db: list(db.query(sql, params)))

    def _reader(self) -> Database:
        db: Database | None = getattr(self._local, "db", None)
        if db is not None:
            return db
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"{self.path}: store is closed")
            for thread in [t for t in self._readers if not t.is_alive()]:
                self._readers.pop(thread).close()
        db = _connect_reader(self.path)
        with self._lock:
            if self._closed:
                db.close()
                raise StoreClosedError(f"{self.path}: store is closed")
            self._readers[threading.current_thread()] = db
        self._local.db = db
        return db

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Run every write already submitted, stop the writer, close all connections.

        Idempotent.
        """
        if threading.current_thread() is self._writer:
            raise RuntimeError("close() from inside a write would wait for itself")
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._writer.join()
        atexit.unregister(self.close)
        with self._lock:
            readers = list(self._readers.values())
            self._readers.clear()
        for db in readers:
            db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _in_transaction(db: Database, fn: Callable[[Database], T]) -> T:
    # IMMEDIATE takes the write lock up front: the web process writes to the same file,
    # and a deferred transaction that reads first can fail with SQLITE_BUSY at its first
    # write without the busy timeout ever applying.
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(db)
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    return result


def _connect_writer(path: Path) -> Database:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        db = Database(conn)
        _check_ours(conn)
        db.enable_wal()  # persistent in the file; readers need it to read while we write
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        _check_writable(conn)
    except BaseException:
        conn.close()
        raise
    return db


def _check_ours(conn: sqlite3.Connection) -> None:
    """Refuse, before anything is written, a database another program made (a file
    restored to the wrong place): the migrations would add our tables beside its own and
    switch it to WAL, and then fail on a name they share."""
    tables = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    if tables and "_sqlite_migrations" not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (" ..." if len(tables) > 5 else "")
        raise sqlite3.DatabaseError(
            f"not this appliance's database (it has tables {shown} and no migration "
            "record); left untouched")


def _locked(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED, with or without an extended code."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY,
                                                          sqlite3.SQLITE_LOCKED)


def _check_writable(conn: sqlite3.Connection) -> None:
    """Fail now if the file cannot be written (a read-only file, or a file system the
    kernel remounted read-only after disk errors): SQLite opens such a file without a
    word, and a database already up to date has nothing to migrate, so otherwise the
    first call's CDR row would be the first to fail, and every row after it.

    Rewriting the schema version with its own value, then rolling back, is a write that
    changes nothing."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"PRAGMA user_version = {int(version)}")
    except sqlite3.OperationalError as exc:
        raise sqlite3.OperationalError(
            f"cannot be written ({exc}): is the file or its file system read-only?"
        ) from exc
    finally:
        conn.execute("ROLLBACK")


def _connect_reader(path: Path) -> Database:
    # Read-only at the SQLite level (as datasette's readers are): a write through a reader
    # fails instead of bypassing the writer thread. check_same_thread=False only so that
    # close() may close it from another thread; each is used by its own thread alone.
    conn = sqlite3.connect(
        path.resolve().as_uri() + "?mode=ro",
        uri=True,
        timeout=BUSY_TIMEOUT_S,
        check_same_thread=False,
    )
    try:
        return Database(conn)
    except BaseException:
        conn.close()
        raise
