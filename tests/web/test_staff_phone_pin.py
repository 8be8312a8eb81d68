"""An admin resets another staff account's phone PIN (the one that opens the prompt
recording line): a new PIN shown once, stored hashed, the old one refused and a lock
cleared; audited without the PIN; refused to every other role and without the CSRF token."""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any

import pytest
from sqlite_utils import Database

from appliance.promptrec import pins
from appliance.store.db import Store
from web.accounts import create_user, hash_password
from web.permissions import ROLES

OLD_PIN = "24680"


def recorder(store: Store, *, locked: bool = False) -> int:
    """A second admin account with a phone PIN of its own (locked by wrong PINs, maybe)."""

    def add(db: Database) -> int:
        user_id = create_user(db, "recorder", "Recorder", "admin", hash_password("x" * 12))
        pins.set_pin(db, user_id, OLD_PIN, time.time(), iterations=1000)
        if locked:
            db.execute("UPDATE staff_phone_pins SET locked = 1, failed_pins = ?"
                       " WHERE user_id = ?", [pins.MAX_FAILURES, user_id])
        return user_id

    return store.write(add)


def test_an_admin_resets_a_phone_pin_the_new_one_works_the_old_one_does_not(
        as_role: Any, store: Store) -> None:
    user_id = recorder(store, locked=True)
    assert pins.check_pin(store, str(user_id), OLD_PIN)[0] is pins.PinCheck.LOCKED
    admin, token = as_role("admin")
    listing = admin.get("/staff/").get_data(as_text=True)
    assert "重置电话密码" in listing and 'data-pin="locked"' in listing
    res = admin.post(f"/staff/{user_id}/phone-pin", data={"csrf_token": token},
                     follow_redirects=True)
    page = html.unescape(res.get_data(as_text=True))
    shown = re.search(r"recorder 的新电话密码：(\d{6})。", page)
    assert shown, page
    new_pin = shown.group(1)
    assert f"先输入员工号 {user_id}" in page and pins.DEFAULT_NUMBER in page
    (row,) = store.query("SELECT pin_hash, locked, failed_pins FROM staff_phone_pins"
                         " WHERE user_id = ?", [user_id])
    assert new_pin not in row["pin_hash"] and (row["locked"], row["failed_pins"]) == (0, 0)
    ok, staff = pins.check_pin(store, str(user_id), new_pin)
    assert ok is pins.PinCheck.OK and staff is not None and staff.username == "recorder"
    assert pins.check_pin(store, str(user_id), OLD_PIN)[0] is pins.PinCheck.WRONG
    # Shown once: the list afterwards no longer has it.
    assert new_pin not in admin.get("/staff/").get_data(as_text=True)
    (entry,) = store.query("SELECT username, target, detail FROM audit_log"
                           " WHERE action = 'phone_pin.reset'")
    assert (entry["username"], entry["target"]) == ("admin", "recorder")
    assert json.loads(entry["detail"])["before"] == "locked" and new_pin not in entry["detail"]


def test_an_account_without_a_pin_gets_one_and_a_non_admin_is_told_it_cannot_record(
        as_role: Any, store: Store) -> None:
    spare = store.query("SELECT id FROM users WHERE username = 'spare'")[0]["id"]
    admin, token = as_role("admin")
    page = admin.get("/staff/").get_data(as_text=True)
    assert 'data-pin="none"' in page
    res = admin.post(f"/staff/{spare}/phone-pin", data={"csrf_token": token},
                     follow_redirects=True)
    text = html.unescape(res.get_data(as_text=True))
    new_pin = re.search(r"spare 的新电话密码：(\d{6})。", text)
    assert new_pin and "录音专线只接受管理员的密码" in text
    assert store.query("SELECT count(*) AS n FROM staff_phone_pins WHERE user_id = ?",
                       [spare])[0]["n"] == 1
    # An agent's PIN does not open the recording line, right digits or not.
    assert pins.check_pin(store, str(spare), new_pin.group(1))[0] is pins.PinCheck.WRONG


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_no_other_role_may_reset_a_phone_pin(as_role: Any, store: Store, role: str) -> None:
    user_id = recorder(store)
    client, token = as_role(role)
    res = client.post(f"/staff/{user_id}/phone-pin", data={"csrf_token": token})
    assert res.status_code == 403
    assert pins.check_pin(store, str(user_id), OLD_PIN)[0] is pins.PinCheck.OK
    assert not store.query("SELECT 1 FROM audit_log WHERE action = 'phone_pin.reset'")


def test_a_reset_without_the_csrf_token_changes_nothing(as_role: Any, store: Store) -> None:
    user_id = recorder(store)
    admin, token = as_role("admin")
    for data in ({}, {"csrf_token": token + "x"}):
        assert admin.post(f"/staff/{user_id}/phone-pin", data=data).status_code == 400
    assert pins.check_pin(store, str(user_id), OLD_PIN)[0] is pins.PinCheck.OK
    assert admin.post("/staff/99999/phone-pin", data={"csrf_token": token}).status_code == 404
