"""The store: migrations, the one writer thread, readers beside it, and the CDR functions."""

from __future__ import annotations

import logging
import re
import signal
import sqlite3
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from sqlite_utils import Database

from appliance.store.cdr import (
    alive,
    cdr_answer,
    cdr_end,
    cdr_keys,
    cdr_keys_many,
    cdr_start,
    close_unfinished,
    end_crashed_by_recording,
    get_call,
    index_recording,
    recent_calls,
)
from appliance.store.db import Store, StoreClosedError
from appliance.store.migrations import MIGRATIONS, NewerSchemaError, Step, migrate

ALL_STEPS = [name for name, _ in MIGRATIONS]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "app.db")
    yield s
    s.close()


def tables(path: Path) -> set[str]:
    with Database(path) as db:
        return set(db.table_names())


def applied(path: Path) -> list[str]:
    with Database(path) as db:
        return [r["name"] for r in db.query("SELECT name FROM _sqlite_migrations ORDER BY id")]


def add_note(db: Database) -> None:
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")


# -- migrations ------------------------------------------------------------------------


def test_migrations_create_schema_once(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with Store(path) as s:
        assert s.migrated == ALL_STEPS
    assert {"calls", "recordings", "_sqlite_migrations"} <= tables(path)
    with Database(path) as db:
        assert {i.name for i in db["calls"].indexes} >= {"calls_started_at", "calls_caller"}
    with Store(path) as s:
        assert s.migrated == []
    assert applied(path) == ALL_STEPS
    with Database(path) as db:
        assert migrate(db) == []


def test_new_step_applies_on_next_open(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    Store(path).close()
    with Store(path, migrations=[*MIGRATIONS, ("9001_notes", add_note)]) as s:
        assert s.migrated == ["9001_notes"]
    assert "notes" in tables(path)


def test_a_database_from_newer_software_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    # A box downgraded after an update: its database has a step this software lacks.
    path = tmp_path / "app.db"
    Store(path, migrations=[*MIGRATIONS, ("9001_notes", add_note)]).close()
    with pytest.raises(NewerSchemaError, match=r"app\.db: made by newer software "
                                               r"\(migrations 9001_notes are unknown here\)"):
        Store(path)
    assert applied(path) == [*ALL_STEPS, "9001_notes"]
    assert not [t for t in threading.enumerate() if t.name.startswith("store-writer")]


def test_recordings_indexed_without_a_date_are_dated_by_their_call(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    before = MIGRATIONS[: ALL_STEPS.index("0025_recording_dates")]
    with Store(path, migrations=before) as s:
        cdr_start(s, "c1", "L", "sim", "in", "1", "2", 100.0)
        cdr_answer(s, "c1", 104.0)
        s.write(lambda db: db.execute(
            "INSERT INTO recordings (path, call_id, started_at, frames, seconds, recovered,"
            " indexed_at) VALUES ('/r/c1.wav', 'c1', NULL, 5, 0.1, 0, 1.0),"
            " ('/r/x.wav', NULL, NULL, 5, 0.1, 1, 1.0)"))
    with Store(path) as s:
        assert s.migrated == ALL_STEPS[len(before):]
        rows = s.query("SELECT path, started_at FROM recordings ORDER BY path")
    assert [(r["path"], r["started_at"]) for r in rows] == [("/r/c1.wav", 104.0),
                                                            ("/r/x.wav", None)]


def test_failing_migration_leaves_nothing_half_applied(tmp_path: Path) -> None:
    path = tmp_path / "app.db"

    def half(db: Database) -> None:
        db.execute("CREATE TABLE half (id INTEGER PRIMARY KEY)")
        db.execute("INSERT INTO half VALUES (1)")
        db.execute("ALTER TABLE calls ADD COLUMN half_done TEXT")
        raise RuntimeError("step failed midway")

    steps: list[Step] = [*MIGRATIONS, ("9001_half", half), ("9002_notes", add_note)]
    with pytest.raises(RuntimeError, match="step failed midway"):
        Store(path, migrations=steps)
    # The steps before the failure are applied, the failing one left no trace, none after.
    assert applied(path) == ALL_STEPS
    assert "half" not in tables(path) and "notes" not in tables(path)
    with Database(path) as db:
        assert "half_done" not in db["calls"].columns_dict
    assert not [t for t in threading.enumerate() if t.name.startswith("store-writer")]

    # Fixed, it applies cleanly from where it stopped.
    def whole(db: Database) -> None:
        db.execute("CREATE TABLE half (id INTEGER)")

    steps[-2] = ("9001_half", whole)
    with Store(path, migrations=steps) as s:
        assert s.migrated == ["9001_half", "9002_notes"]


def test_another_programs_database_is_refused_untouched(tmp_path: Path) -> None:
    # A file restored to the wrong place: migrating it would add our tables beside its own
    # and switch it to WAL, then fail on a table name both use.
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        other.execute("INSERT INTO customers VALUES (1, 'Wang')")
    other.close()
    before = path.read_bytes()
    with pytest.raises(sqlite3.DatabaseError, match=r"app\.db: not this appliance's database "
                                                     r"\(it has tables customers"):
        Store(path)
    assert path.read_bytes() == before
    assert not (tmp_path / "app.db-wal").exists()


def test_unopenable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match=r"missing/app\.db: unable to open"):
        Store(tmp_path / "missing" / "app.db")


def test_ctrl_c_while_migrating_ends_the_open_once_the_migration_is_in(tmp_path: Path) -> None:
    def slow(db: Database) -> None:
        time.sleep(0.6)
        db.execute("CREATE TABLE slow (id INTEGER)")

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    path = tmp_path / "app.db"
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)  # Ctrl-C while "9999_slow" runs
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            # This waited forever: the writer, done migrating, waited for writes.
            Store(path, migrations=[*MIGRATIONS, ("9999_slow", slow)])
        assert time.monotonic() - started < 10
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert applied(path) == [*ALL_STEPS, "9999_slow"]  # whole, not half-applied


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Path]:
    """A migrated database file the kernel will not let even root write (chattr +i), as
    on a file system remounted read-only after disk errors."""
    path = tmp_path / "app.db"
    Store(path).close()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("chattr +i needs root on a file system with attributes")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_database_that_cannot_be_written_is_refused_at_open(immutable: Path) -> None:
    # Up to date, so there is nothing to migrate: without the check the store opened, and
    # every CDR row failed later, one by one.
    before = immutable.read_bytes()
    with pytest.raises(sqlite3.OperationalError,
                       match=rf"^{re.escape(str(immutable))}: cannot be written \(attempt to "
                             r"write a readonly database\): is the file or its file system "
                             r"read-only\?$"):
        Store(immutable)
    assert immutable.read_bytes() == before


# -- the connection ----------------------------------------------------------------------


def test_wal_and_connection_settings(store: Store) -> None:
    assert store.query("PRAGMA journal_mode") == [{"journal_mode": "wal"}]

    def settings(db: Database) -> list[int]:
        return [
            db.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("synchronous", "foreign_keys", "busy_timeout")
        ]

    assert store.write(settings) == [1, 1, 30000]  # NORMAL, on, 30 s (outwaits an import)


def test_readers_cannot_write(store: Store) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.read(lambda db: db.execute("DELETE FROM calls"))


# -- the writer thread -------------------------------------------------------------------


def test_writes_run_on_the_writer_thread(store: Store) -> None:
    future = store.submit(lambda db: threading.current_thread().name)
    assert future.result(timeout=5).startswith("store-writer")
    assert store.write(lambda db: threading.get_ident()) != threading.get_ident()


def test_submit_does_not_wait_for_a_busy_writer(store: Store) -> None:
    running = threading.Event()

    def slow(db: Database) -> str:
        running.set()
        db.execute(
            "INSERT INTO calls (call_id, line, driver, direction, caller, callee, started_at)"
            " VALUES ('slow','l','d','in','1','2',0)"
        )
        time.sleep(1.0)  # a long transaction, holding the write lock
        return "slow done"

    slow_future = store.submit(slow)
    assert running.wait(5)
    latencies: list[float] = []
    futures: list[Future[None]] = []
    for i in range(100):
        t0 = time.perf_counter()
        futures.append(cdr_start(store, f"c{i}", "L1", "sim", "in", "100", "200", float(i)))
        latencies.append(time.perf_counter() - t0)
    still_busy = not slow_future.done()
    print(
        f"\nsubmit() while the writer is busy: median {statistics.median(latencies) * 1e6:.1f} us,"
        f" max {max(latencies) * 1e6:.1f} us over {len(latencies)}"
    )
    # The proof is the order, not a timing: every submit returned while the 1 s write was
    # still running (a timing bound would flake on a busy machine).
    assert still_busy
    assert slow_future.result(timeout=10) == "slow done"
    for f in futures:
        f.result(timeout=10)
    assert store.query("SELECT count(*) AS n FROM calls") == [{"n": 101}]


def test_submit_does_not_wait_for_a_long_query(store: Store) -> None:
    # A long statement in SQLite itself (the GIL is released while it runs), not a sleep.
    running = threading.Event()

    def heavy(db: Database) -> int:
        running.set()
        return int(
            db.execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000)"
                " SELECT sum(x) FROM c"
            ).fetchone()[0]
        )

    heavy_future = store.submit(heavy)
    assert running.wait(5)
    for _ in range(100):
        store.submit(lambda db: None)
    assert not heavy_future.done()  # all 100 returned while the query was still running
    assert heavy_future.result(timeout=60) == 3000000 * 3000001 // 2


def test_exception_rolls_back_and_writer_keeps_going(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def fails(db: Database) -> None:
        db.execute(
            "INSERT INTO calls (call_id, line, driver, direction, caller, callee, started_at)"
            " VALUES ('x','l','d','in','1','2',0)"
        )
        raise ValueError("bad thing")

    with caplog.at_level(logging.ERROR, logger="appliance.store.db"):
        failed = store.submit(fails)
        after = cdr_start(store, "ok", "L1", "sim", "out", "1", "2", 1.0)
        assert isinstance(failed.exception(timeout=5), ValueError)
        after.result(timeout=5)
    assert "bad thing" in caplog.text  # logged, since the engine never looks at its Futures
    assert [r["call_id"] for r in store.query("SELECT call_id FROM calls")] == ["ok"]

    # An SQL error is delivered the same way.
    duplicate = cdr_start(store, "ok", "L1", "sim", "out", "1", "2", 2.0)
    assert isinstance(duplicate.exception(timeout=5), sqlite3.IntegrityError)
    assert store.write(lambda db: 42) == 42


def test_write_from_inside_a_write_is_refused(store: Store) -> None:
    with pytest.raises(RuntimeError, match="wait for itself"):
        store.write(lambda db: store.write(lambda db2: None))


def test_close_drains_the_queue_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    s = Store(path)
    futures = [cdr_start(s, f"c{i}", "L1", "sim", "in", "1", "2", float(i)) for i in range(200)]
    s.close()
    assert all(f.done() and f.exception() is None for f in futures)
    s.close()
    with pytest.raises(StoreClosedError):
        s.submit(lambda db: None)
    with pytest.raises(StoreClosedError):
        s.query("SELECT 1")
    with Store(path) as s2:
        assert s2.query("SELECT count(*) AS n FROM calls") == [{"n": 200}]


def test_a_write_locked_out_past_the_busy_timeout_waits_its_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Another process holds the database locked longer than the busy timeout (an admin's
    # sqlite3 shell left in a transaction): the call's row is written once it lets go,
    # and the writes behind it keep their order.
    monkeypatch.setattr("appliance.store.db.BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "app.db"
    with Store(path) as s:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with caplog.at_level(logging.WARNING, logger="appliance.store.db"):
            start = cdr_start(s, "c1", "L1", "sim", "in", "1", "2", 1.0)
            end = cdr_end(s, "c1", 5.0, "normal", None)
            time.sleep(1.0)  # five busy timeouts
            assert not start.done()
            other.execute("ROLLBACK")
            other.close()
            start.result(timeout=5)
            assert end.result(timeout=5) is True
        assert "held the database locked" in caplog.text
        assert s.query("SELECT ended_at, end_cause FROM calls") == [
            {"ended_at": 5.0, "end_cause": "normal"}]


def test_a_crashs_calls_end_by_the_alive_mark_or_a_recording_that_ran_to_it(
        store: Store) -> None:
    for call in ("whole", "cut", "ended", "ringing"):
        cdr_start(store, call, "L1", "sim", "in", "1", "2", 100.0)
    for call in ("whole", "cut", "ended"):
        cdr_answer(store, call, 101.0)
    alive(store, 200.0)  # the engine's last mark: it died within 10 s of it
    assert close_unfinished(store, 5000.0).result(timeout=5) == 4
    # The whole recording ran until the crash; the other stopped when the disk filled.
    end_crashed_by_recording(store, "whole", 104.5, finished=False)
    end_crashed_by_recording(store, "cut", 20.0, finished=False)
    # This call had ended and its recording was finished; its row's end was lost.
    end_crashed_by_recording(store, "ended", 20.0, finished=True)
    store.write(lambda db: None)
    ends = {r["call_id"]: r["ended_at"] for r in store.query("SELECT * FROM calls")}
    assert ends == {"whole": 205.5, "cut": 210.0, "ended": 121.0, "ringing": 210.0}


def test_a_write_whose_future_was_cancelled_is_still_done(store: Store) -> None:
    # An awaiting task cancelled (a second Ctrl-C cancels them all) must not unqueue the
    # final row of a call.
    release = threading.Event()
    store.submit(lambda db: release.wait(5))
    cdr_start(store, "c1", "L1", "sim", "in", "1", "2", 1.0)
    end = cdr_end(store, "c1", 5.0, "shutdown", None)
    assert end.cancel()
    release.set()
    assert store.wait_written(5)
    assert store.query("SELECT end_cause FROM calls") == [{"end_cause": "shutdown"}]


def test_close_does_not_wait_for_a_readers_snapshot(tmp_path: Path) -> None:
    # The web serving a long report (a read snapshot open) as the engine stops: the WAL
    # is left for the next open instead of the stop waiting up to 30 s.
    path = tmp_path / "app.db"
    s = Store(path)
    cdr_start(s, "c1", "L1", "sim", "in", "1", "2", 1.0).result(timeout=5)
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM calls").fetchone() == (1,)
    cdr_start(s, "c2", "L1", "sim", "in", "1", "2", 2.0).result(timeout=5)
    t0 = time.monotonic()
    s.close()
    assert time.monotonic() - t0 < 5
    reader.close()
    with Store(path) as again:
        assert again.query("SELECT count(*) AS n FROM calls") == [{"n": 2}]


# -- readers -----------------------------------------------------------------------------


def test_concurrent_readers_while_writing(store: Store) -> None:
    cdr_start(store, "before", "L1", "sim", "in", "1", "2", 1.0).result(timeout=5)
    inside = threading.Event()
    release = threading.Event()

    def long_write(db: Database) -> None:
        db.execute(
            "INSERT INTO calls (call_id, line, driver, direction, caller, callee, started_at)"
            " VALUES ('during','l','d','in','1','2',2)"
        )
        inside.set()
        assert release.wait(10)

    writing = store.submit(long_write)
    assert inside.wait(5)
    seen: list[list[str]] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(20):
                rows = store.query("SELECT call_id FROM calls ORDER BY started_at")
                seen.append([r["call_id"] for r in rows])
        except BaseException as exc:
            errors.append(exc)

    t0 = time.monotonic()
    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - t0
    assert not errors
    # Nobody waited for the open write, and nobody saw it before it committed.
    assert len(seen) == 80 and all(ids == ["before"] for ids in seen)
    assert elapsed < 5
    release.set()
    writing.result(timeout=5)
    assert [r["call_id"] for r in store.query("SELECT call_id FROM calls")] == [
        "before",
        "during",
    ]


def test_read_is_one_snapshot(store: Store) -> None:
    def twice(db: Database) -> tuple[int, int]:
        first = next(db.query("SELECT count(*) AS n FROM calls"))["n"]
        cdr_start(store, "new", "L", "sim", "in", "1", "2", 0.0).result(timeout=5)  # committed
        second = next(db.query("SELECT count(*) AS n FROM calls"))["n"]
        return first, second

    assert store.read(twice) == (0, 0)
    assert store.query("SELECT count(*) AS n FROM calls") == [{"n": 1}]


def test_readers_of_finished_threads_are_closed(store: Store) -> None:
    for _ in range(10):
        t = threading.Thread(target=store.query, args=("SELECT 1",))
        t.start()
        t.join()
    store.query("SELECT 1")
    assert len(store._readers) <= 2


# -- CDR ---------------------------------------------------------------------------------


def test_cdr_lifecycle_and_end_is_final(store: Store) -> None:
    assert (
        cdr_start(store, "c1", "dahdi/1", "asterisk", "in", "0912345678", "100", 100.0).result(
            timeout=5
        )
        is None
    )
    assert cdr_answer(store, "c1", 101.5).result(timeout=5) is True
    assert cdr_answer(store, "c1", 109.0).result(timeout=5) is False  # first answer stands
    assert cdr_keys(store, "c1", "1").result(timeout=5)
    assert cdr_keys(store, "c1", "23#").result(timeout=5)
    assert cdr_end(store, "c1", 130.0, "caller hung up", Path("/rec/c1.wav")).result(timeout=5)
    final = get_call(store, "c1")
    assert final == {
        "call_id": "c1",
        "line": "dahdi/1",
        "driver": "asterisk",
        "direction": "in",
        "caller": "0912345678",
        "callee": "100",
        "started_at": 100.0,
        "answered_at": 101.5,
        "ended_at": 130.0,
        "end_cause": "caller hung up",
        "recording": "/rec/c1.wav",
        "keys": "123#",
        "ivr_path": None,
        "policy_number": None,
    }
    # Every later event is ignored: the row is final.
    assert cdr_end(store, "c1", 140.0, "engine shutdown", None).result(timeout=5) is False
    assert cdr_keys(store, "c1", "9").result(timeout=5) is False
    assert cdr_answer(store, "c1", 150.0).result(timeout=5) is False
    assert get_call(store, "c1") == final
    assert get_call(store, "nope") is None
    assert cdr_end(store, "nope", 1.0, "x", None).result(timeout=5) is False


def test_cdr_refuses_bad_input_on_the_callers_thread(store: Store) -> None:
    with pytest.raises(ValueError, match="direction must be 'in' or 'out', got 'inbound'"):
        cdr_start(store, "c1", "L", "sim", "inbound", "1", "2", 0.0)
    cdr_start(store, "c1", "L", "sim", "in", "1", "2", 0.0).result(timeout=5)
    with pytest.raises(ValueError, match="'z' in '1z' are not DTMF keys"):
        cdr_keys(store, "c1", "1z")
    assert store.write(lambda db: None) is None
    assert get_call(store, "c1")["keys"] == ""  # type: ignore[index]
    cdr_keys(store, "c1", "1x").result(timeout=5)  # x: a key of a secret, masked
    assert get_call(store, "c1")["keys"] == "1x"  # type: ignore[index]


def test_keys_of_one_tick_are_written_together(store: Store) -> None:
    for call_id in ("c1", "c2", "c3"):
        cdr_start(store, call_id, "L", "sim", "in", "1", "2", 0.0)
    cdr_end(store, "c3", 5.0, "caller hung up", None)
    # Two keys of c1 in one tick, one of c2, one of c3 after its end (not taken).
    assert cdr_keys_many(store, [("c1", "1"), ("c2", "x"), ("c1", "#"), ("c3", "9")]).result(
        timeout=5
    ) == 3
    assert [get_call(store, c)["keys"] for c in ("c1", "c2", "c3")] == ["1#", "x", ""]  # type: ignore[index]
    with pytest.raises(ValueError, match="call c2: 'z' in 'z' are not DTMF keys"):
        cdr_keys_many(store, [("c1", "2"), ("c2", "z")])
    assert store.write(lambda db: None) is None
    assert get_call(store, "c1")["keys"] == "1#"  # type: ignore[index]  # nothing half-written


def test_recent_calls_newest_first(store: Store) -> None:
    for i in range(5):
        cdr_start(store, f"c{i}", "L", "sim", "out", "1", "2", float(i))
    store.write(lambda db: None)
    assert [c["call_id"] for c in recent_calls(store, limit=3)] == ["c4", "c3", "c2"]
    assert len(recent_calls(store)) == 5


def test_a_recording_indexed_without_a_date_takes_its_call_s(store: Store) -> None:
    # The engine indexes with started_at None; the recordings page searches by date.
    cdr_start(store, "c1", "L", "sim", "in", "1", "2", 100.0)
    cdr_answer(store, "c1", 104.0)
    cdr_start(store, "c2", "L", "sim", "in", "1", "2", 200.0)  # never answered
    index_recording(store, "/rec/c1.wav", "c1", None, 50, False)
    index_recording(store, "/rec/c1.msg.wav", "c1", None, 50, True)
    index_recording(store, "/rec/c2.wav", "c2", None, 50, True)
    index_recording(store, "/rec/lost.wav", None, None, 50, True).result(timeout=5)
    rows = store.query("SELECT path, started_at FROM recordings ORDER BY path")
    assert [(r["path"], r["started_at"]) for r in rows] == [
        ("/rec/c1.msg.wav", 104.0), ("/rec/c1.wav", 104.0), ("/rec/c2.wav", 200.0),
        ("/rec/lost.wav", None)]


def test_index_recording_upserts(store: Store) -> None:
    index_recording(store, Path("/rec/a.wav"), None, None, 75, True, indexed_at=1.0)
    index_recording(store, "/rec/b.wav", "c2", 5.0, 10, False, indexed_at=2.0)
    index_recording(store, "/rec/a.wav", "c1", 3.0, 100, False, indexed_at=3.0).result(timeout=5)
    rows = store.query("SELECT * FROM recordings ORDER BY path")
    assert rows == [
        {
            "path": "/rec/a.wav",
            "call_id": "c1",
            "started_at": 3.0,
            "frames": 100,
            "seconds": 2.0,
            "recovered": 0,
            "indexed_at": 3.0,
        },
        {
            "path": "/rec/b.wav",
            "call_id": "c2",
            "started_at": 5.0,
            "frames": 10,
            "seconds": 0.2,
            "recovered": 0,
            "indexed_at": 2.0,
        },
    ]
