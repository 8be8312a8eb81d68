"""The schema of the appliance database, as an ordered list of migrations.

Each step is a ``(name, function)`` pair; :func:`migrate` applies the pending ones through
sqlite-utils' :class:`~sqlite_utils.Migrations`, which runs each step and the row recording
it (table ``_sqlite_migrations``, set ``appliance``) in one transaction, so a step that
fails leaves nothing behind and stays pending. Steps are append-only: a shipped step is
never edited, a change is a new step. The DDL is written out in SQL rather than built with
``table.create()`` so that a step creates the same schema whichever sqlite-utils version
runs it. The module-level ``migrations`` object also lets an operator inspect a box's
database with ``sqlite-utils migrate --list appliance.db appliance/store/migrations.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlite_utils import Database, Migrations

MIGRATION_SET = "appliance"

MigrationFn = Callable[[Database], None]
Step = tuple[str, MigrationFn]


def _calls(db: Database) -> None:
    # The CDR: one row a call, written by the engine as the call goes, final once ended_at
    # is set. STRICT so that a wrong type is refused instead of stored.
    db.execute(
        """
        CREATE TABLE calls (
            call_id TEXT PRIMARY KEY NOT NULL,
            line TEXT NOT NULL,
            driver TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            caller TEXT NOT NULL,
            callee TEXT NOT NULL,
            started_at REAL NOT NULL,
            answered_at REAL,
            ended_at REAL,
            end_cause TEXT,
            recording TEXT,
            keys TEXT NOT NULL DEFAULT ''
        ) STRICT
        """
    )
    db.execute("CREATE INDEX calls_started_at ON calls (started_at)")
    db.execute("CREATE INDEX calls_caller ON calls (caller)")


def _recordings(db: Database) -> None:
    # No foreign key to calls: a recording recovered after a crash can belong to a call
    # whose CDR row never reached the disk, and it must still be indexed.
    db.execute(
        """
        CREATE TABLE recordings (
            path TEXT PRIMARY KEY NOT NULL,
            call_id TEXT,
            started_at REAL,
            frames INTEGER NOT NULL,
            seconds REAL NOT NULL,
            recovered INTEGER NOT NULL DEFAULT 0 CHECK (recovered IN (0, 1)),
            indexed_at REAL NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX recordings_call_id ON recordings (call_id)")


MIGRATIONS: list[Step] = [
    ("0001_calls", _calls),
    ("0002_recordings", _recordings),
]


def migration_set(steps: Sequence[Step]) -> Migrations:
    """A sqlite-utils migration set holding ``steps`` in order."""
    migrations = Migrations(MIGRATION_SET)
    for name, fn in steps:
        migrations(name=name)(fn)
    return migrations


migrations = migration_set(MIGRATIONS)


def migrate(db: Database, steps: Sequence[Step] = MIGRATIONS) -> list[str]:
    """Apply the pending ``steps`` to ``db``; return the names applied (none the second time).

    If a step raises, its changes and record are rolled back, the steps before it stay
    applied, and the exception propagates.
    """
    mset = migrations if steps is MIGRATIONS else migration_set(steps)
    # One IMMEDIATE transaction around the run: when the engine and the web start together
    # on a fresh box, the second waits for the first and then finds nothing pending,
    # instead of both creating the same tables. Inside it, sqlite-utils puts each step and
    # its record in a savepoint of their own.
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        before = {m.name for m in mset.applied(db)}
        mset.apply(db)
    except BaseException:
        # The failed step is already rolled back to its savepoint; keep the ones before it.
        db.commit()
        raise
    after = [m.name for m in mset.applied(db)]
    db.commit()
    return [name for name in after if name not in before]
