"""Logins, the throttle, first-login password change, session expiry, CSRF."""

from __future__ import annotations

from typing import Any

from flask import Flask

from appliance.store.db import Store
from tests.web.conftest import PASSWORD, csrf_of, login
from web import IDLE_MINUTES, MAX_SESSION_HOURS
from web.accounts import MAX_FAILURES_PER_USER, ensure_first_admin


def _fresh_box(store: Store) -> str:
    store.write(lambda db: db.execute("DELETE FROM users"))
    password = ensure_first_admin(store)
    assert password
    return password


def test_first_admin_must_change_the_printed_password_before_anything_else(
        app: Flask, store: Store) -> None:
    first = _fresh_box(store)
    client = app.test_client()
    token = login(client, "admin", first)
    res = client.get("/policies/")
    assert res.status_code == 302 and res.location.endswith("/password")
    # A weak or mismatched new password is refused, the old one still needed.
    for new, confirm in (("short1", "short1"), ("abcdefghijkl", "abcdefghijkl"),
                         ("Good-Pass-123", "Good-Pass-124")):
        res = client.post("/password", data={"current": first, "new": new, "confirm": confirm,
                                              "csrf_token": token})
        assert res.status_code == 200 and 'role="alert"' in res.get_data(as_text=True)
    res = client.post("/password", data={"current": first, "new": "Good-Pass-123",
                                          "confirm": "Good-Pass-123", "csrf_token": token})
    assert res.status_code == 302
    assert client.get("/policies/").status_code == 200
    # Once changed, a restart prints no password and the old one is dead.
    assert ensure_first_admin(store) is None
    other = app.test_client()
    token = csrf_of(other)
    res = other.post("/login", data={"username": "admin", "password": first,
                                     "csrf_token": token})
    assert res.status_code == 401


def test_a_restart_before_the_first_login_prints_a_fresh_password(store: Store) -> None:
    first = _fresh_box(store)
    second = ensure_first_admin(store)
    assert second and second != first


def test_failed_logins_are_throttled_even_with_the_right_password(app: Flask,
                                                                  store: Store) -> None:
    client = app.test_client()
    token = csrf_of(client)
    for _ in range(MAX_FAILURES_PER_USER):
        res = client.post("/login", data={"username": "agent", "password": "wrong-guess-1",
                                          "csrf_token": token})
        assert res.status_code == 401
    res = client.post("/login", data={"username": "agent", "password": PASSWORD,
                                      "csrf_token": token})
    assert res.status_code == 401
    assert "15" in res.get_data(as_text=True)  # 请 15 分钟后再试
    # Other accounts are not locked out by it.
    login(app.test_client(), "supervisor")
    actions = [r["action"] for r in store.query(
        "SELECT action FROM audit_log WHERE target = 'agent' ORDER BY id")]
    assert actions == ["login.failed"] * MAX_FAILURES_PER_USER + ["login.throttled"]


def test_sessions_expire_and_end_when_the_password_changes(app: Flask, as_role: Any) -> None:
    client, _ = as_role("agent")
    assert client.get("/policies/").status_code == 200
    with client.session_transaction() as sess:
        sess["login_at"] = sess["login_at"] - MAX_SESSION_HOURS * 3600 - 1
    res = client.get("/policies/")
    assert res.status_code == 302 and "/login" in res.location
    # Idle for longer than 30 minutes: the server refuses the session too, not only the
    # browser's cookie expiry.
    client, _ = as_role("supervisor")
    assert client.get("/policies/").status_code == 200
    with client.session_transaction() as sess:
        sess["seen_at"] = sess["seen_at"] - IDLE_MINUTES * 60 - 1
    res = client.get("/policies/")
    assert res.status_code == 302 and "/login" in res.location
    assert app.permanent_session_lifetime.total_seconds() == IDLE_MINUTES * 60

    a = app.test_client()
    login(a, "spare")
    admin, token = as_role("admin")
    spare_id = app.extensions["appliance_store"].query(
        "SELECT id FROM users WHERE username = 'spare'")[0]["id"]
    assert admin.post(f"/staff/{spare_id}/password", data={"csrf_token": token}).status_code == 302
    res = a.get("/")
    assert res.status_code == 302 and "/login" in res.location


def test_every_form_refuses_a_post_without_the_session_csrf_token(app: Flask, as_role: Any,
                                                                  store: Store) -> None:
    client, token = as_role("admin")
    before = store.query("SELECT count(*) AS n FROM users")[0]["n"]
    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": token + "x"}):
        res = client.post("/staff/new", data={**data, "username": "mallory", "role": "admin"})
        assert res.status_code == 400
    assert store.query("SELECT count(*) AS n FROM users")[0]["n"] == before
    # The login form too: a login cannot be planted from another site.
    other = app.test_client()
    res = other.post("/login", data={"username": "admin", "password": PASSWORD})
    assert res.status_code == 400
    # The same form with the token works.
    res = client.post("/staff/new", data={"csrf_token": token, "username": "mallory",
                                          "role": "agent"})
    assert res.status_code == 302
    assert store.query("SELECT role FROM users WHERE username = 'mallory'")[0]["role"] == "agent"


def test_login_only_redirects_within_the_site(app: Flask) -> None:
    client = app.test_client()
    token = csrf_of(client)
    res = client.post("/login?next=//evil.example/x",
                      data={"username": "agent", "password": PASSWORD, "csrf_token": token})
    assert res.status_code == 302 and res.location == "/"


def test_pages_are_chinese_by_default_and_english_on_request(app: Flask, as_role: Any) -> None:
    client, token = as_role("agent")
    html = client.get("/policies/").get_data(as_text=True)
    assert "保单号" in html and "Policy number" not in html
    client.post("/language/en", data={"csrf_token": token, "next": "/policies/"})
    html = client.get("/policies/").get_data(as_text=True)
    assert "Policy number" in html and "保单号" not in html


def test_an_admin_downloads_a_consistent_backup_and_it_is_audited(as_role: Any,
                                                                  data_dir: Any) -> None:
    import io
    import sqlite3
    import tarfile

    client, _ = as_role("admin")
    res = client.get("/staff/backup")
    assert res.status_code == 200
    archive = res.data
    res.close()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile("appliance.db")
        assert member is not None
        db_bytes = member.read()
    assert db_bytes[:16] == b"SQLite format 3\x00"
    copy = data_dir / "copy.db"
    copy.write_bytes(db_bytes)
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM policies").fetchone()[0] == 300
    assert not list(data_dir.glob("backup-*"))  # the temporary copies are gone
    store = client.application.extensions["appliance_store"]
    assert store.query("SELECT action FROM audit_log WHERE action = 'database.backup'")


def test_every_audit_action_has_a_name_on_the_audit_page(as_role: Any) -> None:
    import re
    from pathlib import Path

    from web.staff import action_name

    source = "\n".join(p.read_text("utf-8") for p in
                       (Path(__file__).resolve().parents[2] / "web").glob("*.py"))
    actions = set(re.findall(r'audit\.(?:log|audit_row)\(\s*"([a-z_.]+)"', source))
    assert len(actions) > 20
    assert not {a for a in actions if action_name(a) == a}
    client, _ = as_role("admin")
    client.get("/customers/3")
    html = client.get("/staff/audit?action=customer.view").get_data(as_text=True)
    assert "查看客户资料" in html
