"""Every route against the permission matrix: each role either gets the page (or its
form's answer) or a 403, exactly as web/permissions.py says. The routes come from the
app's url_map, so a new route is tested the moment it exists (and the app refuses to
start if the matrix does not name it)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from web import permissions
from web.permissions import ENDPOINTS, ROLES

# Values for the URL variables of each endpoint: records that exist in the test book.
ARGS: dict[str, dict[str, Any]] = {
    "policies.detail": {"number": None},  # filled from the book
    "customers.detail": {"customer_id": 1},
    "salespeople.edit": {"code": "310001"},
    "salespeople.reset_pin": {"code": "310002"},
    "products.detail": {"code": "TL20"},
    "products.rates_export": {"code": "TL20", "fmt": "csv"},
    "products.rates_import": {"code": "TL20"},
    "products.edit": {"code": "TL20"},
    "products.rates_grid": {"code": "TL20"},
    "staff.edit": {"user_id": None},  # the spare account
    "staff.reset_password": {"user_id": None},
    "staff.reset_phone_pin": {"user_id": None},
    "auth.language": {"code": "zh_CN"},
    # POSTed with no file: refused before anything is written.
    "prompts.audio": {"lang": "zh", "name": "welcome"},
    "prompts.replace": {"lang": "zh", "name": "welcome"},
    "voicemail.inbox": {"box_id": 1},
    "voicemail.message": {"message_id": 1},
    "voicemail.play": {"message_id": 1},
    "voicemail.raw": {"message_id": 1},
    "voicemail.categorise": {"message_id": 1},
    "voicemail.assign": {"message_id": 1},
    "voicemail.done": {"message_id": 1},
    "voicemail.reopen": {"message_id": 1},
    "recordings.play": {"recording_id": 1},
    "reports.export": {"table": "days", "fmt": "csv"},
    "reminders.export": {"fmt": "csv"},
    "recordings.download": {"recording_id": 1},
    "voicemail.category_retire": {"code": "no_such_category"},
    "faxes.preview": {"fax_id": 1},
    "faxes.resend": {"fax_id": 1},
    "flows.publish": {"version": 1},
    "flows.test_call": {"version": 1},
    "flows.test_audio": {"trial_id": "0" * 32},
    "flows.node_form": {"version": 1, "node_id": "main"},
    "flows.node_save": {"version": 1, "node_id": "main"},
    "flows.node_add": {"version": 1},
    "flows.node_delete": {"version": 1, "node_id": "main"},
    "imports.progress": {"token": "0" * 32},  # no such import: 404
    "orders.detail": {"order_id": 1},
    "orders.edit": {"order_id": 1},
    "orders.export": {"fmt": "csv"},
    "order_fields.edit": {"name": "no_such_field"},
    "kb.article": {"article_id": 1},
    "kb.edit": {"article_id": 1},
    "kb.delete": {"article_id": 999},
    "kb.export": {"fmt": "csv"},
    "hours.delete_day": {"day": "2026-10-01"},
    "acd_settings.queue_delete": {"name": "no_such_queue"},
    "acd_settings.seat_delete": {"seat_id": "s9"},
    "restore.apply": {"token": "0" * 32},  # no such upload: 404
    "restore.cancel": {"token": "0" * 32},
}


def _routes(app: Flask) -> list[tuple[str, str, str]]:
    store = app.extensions["appliance_store"]
    number = store.query("SELECT number FROM policies ORDER BY number LIMIT 1")[0]["number"]
    spare = store.query("SELECT id FROM users WHERE username = 'spare'")[0]["id"]
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        values = dict(ARGS.get(rule.endpoint, {}))
        for k, v in values.items():
            if v is None:
                values[k] = number if k == "number" else spare
        assert set(values) == set(rule.arguments), f"give test values for {rule.endpoint}"
        with app.test_request_context():
            from flask import url_for

            url = url_for(rule.endpoint, **values)
        method = "GET" if "GET" in (rule.methods or ()) else "POST"
        out.append((rule.endpoint, method, url))
    # Logging out ends the session the other routes need: last.
    return sorted(out, key=lambda r: r[0] == "auth.logout")


def test_the_matrix_names_every_route_and_nothing_else(app: Flask) -> None:
    served = {r.endpoint for r in app.url_map.iter_rules()}
    assert served == set(ENDPOINTS) | permissions.PUBLIC | permissions.ANY_USER


def test_a_route_missing_from_the_matrix_stops_the_app() -> None:
    with pytest.raises(RuntimeError, match=r"not in the matrix .*'policies\.secret'"):
        permissions.check_matrix([*ENDPOINTS, *permissions.PUBLIC, *permissions.ANY_USER,
                                  "policies.secret"])
    with pytest.raises(RuntimeError, match=r"no such route .*'policies\.list'"):
        permissions.check_matrix(set(ENDPOINTS) - {"policies.list"})


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_routes_the_matrix_gives_it(app: Flask, as_role: Any,
                                                                role: str) -> None:
    client, token = as_role(role)
    wrong = []
    for endpoint, method, url in _routes(app):
        res = (client.get(url) if method == "GET"
               else client.post(url, data={"csrf_token": token}))
        res.close()  # a download's file is closed (and a backup's temporary copy removed)
        allowed = permissions.allowed(endpoint, role)
        ok = res.status_code != 403 if allowed else res.status_code == 403
        if not ok or res.status_code in (401, 500):
            wrong.append((endpoint, method, res.status_code, allowed))
    assert not wrong, f"{role}: (endpoint, method, status, allowed) {wrong}"


def test_without_a_login_every_page_sends_to_the_login(app: Flask) -> None:
    client = app.test_client()
    for endpoint, method, url in _routes(app):
        if endpoint in permissions.PUBLIC:
            continue
        if method == "GET":
            res = client.get(url)
            assert res.status_code == 302 and "/login" in res.location, endpoint
        else:
            client.get("/login")  # a session with a CSRF token, but no login
            with client.session_transaction() as sess:
                token = sess.get("csrf")
            res = client.post(url, data={"csrf_token": token})
            assert res.status_code == 401, endpoint


def test_an_unknown_address_is_a_404_for_anyone(app: Flask, as_role: Any) -> None:
    assert app.test_client().get("/no/such/page").status_code == 404
    client, _ = as_role("agent")
    res = client.get("/no/such/page")
    assert res.status_code == 404 and "没有该页面" in res.get_data(as_text=True)
