"""The audit log: every change made through the web and every view of personal data.

A row names who (username, role, client address), what (an action such as
``policy.import`` or ``customer.view``), on what (``target``) and the details as JSON.
Rows are written through the store's writer and the table refuses updates and deletes.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import g, request
from sqlite_utils import Database

from web.db import store


def audit_row(action: str, target: str = "", **detail: Any) -> list[Any]:
    """The values of an audit row for the current request, to :func:`insert` in the write
    that makes the change, so the change and its record commit together."""
    user = g.get("user")
    return [time.time(), user.username if user else request.form.get("username", "-"),
            user.role if user else "-", request.remote_addr or "-", action, target,
            json.dumps(detail, ensure_ascii=False, default=str)]


def current_username() -> str:
    """Who is making this request (for records kept outside the audit log)."""
    user = g.get("user")
    return str(user.username) if user else "-"


AUDIT_SQL = ("INSERT INTO audit_log (at, username, role, address, action, target, detail)"
             " VALUES (?, ?, ?, ?, ?, ?, ?)")


def insert(db: Database, row: list[Any]) -> None:
    """Inside a write: add the audit row (made by :func:`audit_row` on the request's thread,
    since the writer thread has no request) for the change the write makes."""
    db.execute(AUDIT_SQL, row)


def log(action: str, target: str = "", **detail: Any) -> None:
    """A write of its own: for views of personal data and for logins."""
    row = audit_row(action, target, **detail)
    store().write(lambda db: db.execute(AUDIT_SQL, row))
