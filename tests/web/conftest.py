"""The web admin over a copy of a small demo book, one account per role.

The book (300 policies) is built once per session; each test gets its own copy of the
file and its own app. Accounts are inserted with one argon2 hash made once, so logging in
costs one verification, not a hash per account per test.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlite_utils import Database

from appliance.insurance.demo_data import load_demo_data
from appliance.store.db import Store
from web import create_app
from web.accounts import hash_password
from web.permissions import ROLES

PASSWORD = "Correct-Horse-7"
TODAY = date(2026, 11, 26)


@pytest.fixture(scope="session")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("book") / "appliance.db"
    hashed = hash_password(PASSWORD)
    with Store(path) as s:
        load_demo_data(s, 300, today=TODAY, pin_iterations=1000)

        def users(db: Database) -> None:
            for role in ROLES:
                db.execute("INSERT INTO users (username, display_name, role, password_hash,"
                           " must_change, created_at) VALUES (?, ?, ?, ?, 0, ?)",
                           [role, role.title(), role, hashed, time.time()])
            # A spare account for the staff pages to act on.
            db.execute("INSERT INTO users (username, display_name, role, password_hash,"
                       " must_change, created_at) VALUES ('spare', 'Spare', 'agent', ?, 0, ?)",
                       [hashed, time.time()])
            # A few calls for the CDR page.
            for i in range(30):
                db.execute("INSERT INTO calls (call_id, line, driver, direction, caller, callee,"
                           " started_at, answered_at, ended_at, end_cause, keys) VALUES"
                           " (?, 'sim-1', 'sim', 'in', ?, '95500', ?, ?, ?, 'caller', '1')",
                           [f"call-{i:03d}", f"1380013{i:04d}", 1764115200.0 + i * 60,
                            1764115201.0 + i * 60, 1764115230.0 + i * 60])

        s.write(users)
    with Database(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def data_dir(book: Path, tmp_path: Path) -> Path:
    shutil.copy(book, tmp_path / "appliance.db")
    return tmp_path


@pytest.fixture
def app(data_dir: Path) -> Iterator[Flask]:
    store = Store(data_dir / "appliance.db")
    app = create_app(data_dir, {"TESTING": True}, store=store)
    yield app
    store.close()


@pytest.fixture
def store(app: Flask) -> Store:
    s: Store = app.extensions["appliance_store"]
    return s


def csrf_of(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token the session holds (from a page's form)."""
    html = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> str:
    """Log in; return the session's CSRF token for the forms that follow."""
    token = csrf_of(client)
    res = client.post("/login", data={"username": username, "password": password,
                                      "csrf_token": token})
    assert res.status_code == 302, res.get_data(as_text=True)
    with client.session_transaction() as sess:
        return str(sess["csrf"])


@pytest.fixture
def as_role(app: Flask) -> Iterator[object]:
    clients: dict[str, tuple[FlaskClient, str]] = {}

    def get(role: str) -> tuple[FlaskClient, str]:
        if role not in clients:
            client = app.test_client()
            clients[role] = (client, login(client, role))
        return clients[role]

    yield get
