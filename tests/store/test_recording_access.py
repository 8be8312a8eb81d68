"""Migration 0015: calls from before it get the policy number their IVR path shows, and
the recording access log refuses changes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from appliance.ivr.interpreter import keyed_policy
from appliance.store.migrations import MIGRATIONS, migrate


def test_calls_recorded_before_the_step_get_their_keyed_policy(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db")
    before = [m for m in MIGRATIONS if m[0] != "0015_recording_access"]
    migrate(db, before)
    paths = {
        # The default flow's policy question, before steps named their variable.
        "old": [{"node": "language", "type": "language", "key": "1"},
                {"node": "pol_number", "type": "collect", "digits": "8800001", "end": "#"},
                {"node": "pol_id", "type": "collect", "digits": "xxxx", "end": "#"}],
        # A claim report keyed after a policy enquiry: the last one counts.
        "new": [{"node": "p", "type": "collect", "digits": "8800001", "into": "pol_no"},
                {"node": "c", "type": "collect", "digits": "8800002", "into": "cl_no"}],
        "none": [{"node": "sp_code", "type": "collect", "digits": "310001", "into": "sp_no"}],
        "timeout": [{"node": "pol_number", "type": "collect", "digits": "", "end": "timeout"}],
    }
    for call_id, path in paths.items():
        db.execute("INSERT INTO calls (call_id, line, driver, direction, caller, callee,"
                   " started_at, ivr_path) VALUES (?, 'l', 'sim', 'in', '1', '2', 0, ?)",
                   [call_id, json.dumps(path)])
    db.execute("INSERT INTO calls (call_id, line, driver, direction, caller, callee,"
               " started_at, ivr_path) VALUES ('broken', 'l', 'sim', 'in', '1', '2', 0, '{')")
    db.conn.commit()
    assert migrate(db) == ["0015_recording_access"]
    got = {r["call_id"]: r["policy_number"] for r in db.query(
        "SELECT call_id, policy_number FROM calls")}
    assert got == {"old": "8800001", "new": "8800002", "none": None, "timeout": None,
                   "broken": None}
    assert keyed_policy(paths["new"]) == "8800002" and keyed_policy(paths["none"]) is None
    db.execute("INSERT INTO recording_access (at, username, role, address, kind, path)"
               " VALUES (1, 'a', 'admin', '-', 'play', 'x.wav')")
    for sql in ("UPDATE recording_access SET username = 'b'", "DELETE FROM recording_access"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO recording_access (at, username, role, address, kind, path)"
                   " VALUES (1, 'a', 'admin', '-', 'listen', 'x.wav')")
