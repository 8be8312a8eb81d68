"""Voicemail triage pages through the Flask test client: each action goes through the
voicemail service (its audit trail) and into the web audit log; a salesperson sees only
their own messages; recordings are served from the recordings folder only; CSRF."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from appliance import voicemail as vm
from appliance.store.db import Store
from tests.web.vm import SELLERS, add_seller_accounts, general_message, queue_message


def web_audit(store: Store, prefix: str = "voicemail.") -> list[tuple[str, str, str]]:
    return [(r["username"], r["action"], r["target"]) for r in store.query(
        "SELECT username, action, target FROM audit_log WHERE action >= ? AND action < ?"
        " ORDER BY id", [prefix, prefix + "\uffff"])]


def trail(store: Store, message_id: int) -> list[tuple[str, str]]:
    return [(e.actor, e.action) for e in vm.audit_trail(store, message_id)]


def test_a_supervisor_triages_a_message_through_the_service(
        app: Flask, store: Store, data_dir: Path, as_role: Any) -> None:
    m = general_message(store, data_dir)
    client, token = as_role("supervisor")
    boxes = client.get("/voicemail/").get_data(as_text=True)
    assert "综合信箱" in boxes
    box = client.get(f"/voicemail/box/{m.box_id}").get_data(as_text=True)
    assert f'href="/voicemail/{m.id}"' in box and "13812345678" in box  # see_phone

    page = client.get(f"/voicemail/{m.id}").get_data(as_text=True)
    assert "13812345678" in page and f'src="/voicemail/{m.id}/play.wav"' in page
    played = client.get(f"/voicemail/{m.id}/play.wav")
    assert played.status_code == 200 and played.mimetype == "audio/wav"
    assert m.play_path is not None and played.data == m.play_path.read_bytes()
    assert played.data != m.raw_path.read_bytes()  # the trimmed copy, not the raw
    raw = client.get(f"/voicemail/{m.id}/raw.wav")
    assert raw.status_code == 200 and raw.data == m.raw_path.read_bytes()
    assert "attachment" in raw.headers["Content-Disposition"]
    assert vm.get_message(store, m.id).status == "heard"

    def post(action: str, **form: str) -> None:
        res = client.post(f"/voicemail/{m.id}/{action}", data={"csrf_token": token, **form})
        assert res.status_code == 303, (action, res.get_data(as_text=True))

    post("category", category="complaint")
    post("assign", salesperson=SELLERS[0], note="请今天回电")
    post("assign", salesperson=SELLERS[1])  # a forward
    post("done", note="已回电")
    assert vm.get_message(store, m.id).status == "done"
    post("reopen", note="客户再次来电")
    after = vm.get_message(store, m.id)
    assert (after.status, after.category, after.assignee) == ("assigned", "complaint",
                                                              SELLERS[1])
    assert trail(store, m.id) == [("system", "saved"), ("supervisor", "heard"),
                                  ("supervisor", "categorise"), ("supervisor", "assign"),
                                  ("supervisor", "forward"), ("supervisor", "done"),
                                  ("supervisor", "reopen")]
    target = str(m.id)
    assert web_audit(store) == [
        ("supervisor", "voicemail.list", str(m.box_id)),
        ("supervisor", "voicemail.view", target), ("supervisor", "voicemail.play", target),
        ("supervisor", "voicemail.download", target),
        ("supervisor", "voicemail.categorise", target),
        ("supervisor", "voicemail.assign", target), ("supervisor", "voicemail.assign", target),
        ("supervisor", "voicemail.done", target), ("supervisor", "voicemail.reopen", target)]
    notes = vm.notifications(store, unsent_only=False)
    assert [(n.salesperson_code, n.voicemail_id) for n in notes] == [
        (SELLERS[0], m.id), (SELLERS[1], m.id)]
    assert "请今天回电" in notes[0].text

    # The page shows the service's trail and the notifications.
    page = client.get(f"/voicemail/{m.id}").get_data(as_text=True)
    for words in ("已转发", "已分类", "标记完成", "重新打开", "请今天回电", "投诉"):
        assert words in page, words

    # An action the service refuses is shown, not done, and not in the web audit log.
    res = client.post(f"/voicemail/{m.id}/assign",
                      data={"csrf_token": token, "salesperson": SELLERS[1]}, follow_redirects=True)
    assert "未执行" in res.get_data(as_text=True)
    assert [a[1] for a in web_audit(store)].count("voicemail.assign") == 2
    assert trail(store, m.id)[-1] == ("supervisor", "reopen")


def test_a_salesperson_sees_only_their_own_messages(
        app: Flask, store: Store, data_dir: Path, as_role: Any) -> None:
    add_seller_accounts(store)
    mine = general_message(store, data_dir, caller="13811112222", seed=1)
    theirs = general_message(store, data_dir, caller="13833334444", seed=2)
    unassigned = general_message(store, data_dir, caller="13855556666", seed=3)
    vm.assign(store, mine.id, SELLERS[0], actor="supervisor", now=mine.received_at + 60,
              note="保单续期")
    vm.assign(store, theirs.id, SELLERS[1], actor="supervisor", now=mine.received_at + 60)

    from tests.web.conftest import login

    client = app.test_client()
    token = login(client, SELLERS[0])
    page = client.get("/voicemail/mine").get_data(as_text=True)
    assert f'href="/voicemail/{mine.id}"' in page
    assert f'href="/voicemail/{theirs.id}"' not in page
    assert f'href="/voicemail/{unassigned.id}"' not in page
    assert "保单续期" in page  # the notification
    assert "138****2222" in page and "13811112222" not in page  # no see_phone
    assert client.get(f"/voicemail/{mine.id}").status_code == 200
    assert client.get(f"/voicemail/{mine.id}/play.wav").status_code == 200
    assert vm.get_message(store, mine.id).assignee_heard_at is not None
    for other in (theirs.id, unassigned.id):
        assert client.get(f"/voicemail/{other}").status_code == 404
        assert client.get(f"/voicemail/{other}/play.wav").status_code == 404
        res = client.post(f"/voicemail/{other}/done", data={"csrf_token": token})
        assert res.status_code == 404
    for url in ("/voicemail/", f"/voicemail/box/{mine.box_id}", f"/voicemail/{mine.id}/raw.wav"):
        assert client.get(url).status_code == 403, url
    res = client.post(f"/voicemail/{mine.id}/category",
                      data={"csrf_token": token, "category": "claim"})
    assert res.status_code == 403
    # Their own message they may close.
    res = client.post(f"/voicemail/{mine.id}/done", data={"csrf_token": token})
    assert res.status_code == 303 and vm.get_message(store, mine.id).status == "done"
    assert vm.get_message(store, theirs.id).status == "assigned"

    # An account whose username is no salesperson code sees nothing, and is told why.
    client2, _ = as_role("salesperson")
    page = client2.get("/voicemail/mine").get_data(as_text=True)
    assert "业务员工号" in page and "/voicemail/" + str(mine.id) not in page


def test_agents_work_the_queue_boxes_and_auditors_only_listen(
        app: Flask, store: Store, data_dir: Path, as_role: Any) -> None:
    general = general_message(store, data_dir)
    queued = queue_message(store, data_dir)
    agent, token = as_role("agent")
    listing = agent.get("/voicemail/").get_data(as_text=True)
    assert f"/voicemail/box/{queued.box_id}" in listing
    assert f"/voicemail/box/{general.box_id}" not in listing
    assert agent.get(f"/voicemail/box/{general.box_id}").status_code == 404
    assert agent.get(f"/voicemail/{general.id}").status_code == 404
    assert "139****4321" in agent.get(f"/voicemail/{queued.id}").get_data(as_text=True)
    res = agent.post(f"/voicemail/{queued.id}/category",
                     data={"csrf_token": token, "category": "claim"})
    assert res.status_code == 303 and vm.get_message(store, queued.id).category == "claim"

    auditor, token = as_role("auditor")
    assert auditor.get(f"/voicemail/{general.id}/play.wav").status_code == 200
    assert vm.get_message(store, general.id).status == "new"  # listening is not triage
    assert auditor.get(f"/voicemail/{general.id}/raw.wav").status_code == 403
    res = auditor.post(f"/voicemail/{general.id}/done", data={"csrf_token": token})
    assert res.status_code == 403
    assert ("auditor", "voicemail.play", str(general.id)) in web_audit(store)


def test_recordings_outside_the_recordings_folder_are_refused(
        app: Flask, store: Store, data_dir: Path, as_role: Any, tmp_path: Path) -> None:
    m = general_message(store, data_dir)
    client, _ = as_role("admin")
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF not a message")
    escape = data_dir / "recordings" / "messages" / ".." / ".." / "secret.wav"
    link = data_dir / "recordings" / "messages" / "link.wav"
    os.symlink(secret, link)
    for play, raw in ((escape, escape), (link, link), (Path("/etc/passwd"), secret)):
        store.write(lambda db, p=play, r=raw: db.execute(
            "UPDATE voicemails SET play_path = ?, raw_path = ? WHERE id = ?",
            (str(p), str(r), m.id)))
        for kind in ("play", "raw"):
            res = client.get(f"/voicemail/{m.id}/{kind}.wav")
            assert res.status_code == 404, (play, kind)
            assert b"RIFF" not in res.data
    # Traversal in the address itself reaches no route.
    for url in (f"/voicemail/{m.id}/../../appliance.db", f"/voicemail/{m.id}/..%2f..%2fweb_secret",
                "/voicemail/..%2fappliance.db/play.wav"):
        res = client.get(url)
        assert res.status_code == 404, url
        assert b"SQLite" not in res.data
    assert not [a for a in web_audit(store) if a[1] in ("voicemail.play", "voicemail.download")]


def test_an_action_without_the_csrf_token_is_refused(
        app: Flask, store: Store, data_dir: Path, as_role: Any) -> None:
    m = general_message(store, data_dir)
    client, token = as_role("supervisor")
    for data in ({"category": "claim"}, {"category": "claim", "csrf_token": "forged"}):
        res = client.post(f"/voicemail/{m.id}/category", data=data)
        assert res.status_code == 400
    assert vm.get_message(store, m.id).category is None
    assert trail(store, m.id) == [("system", "saved")]
    assert not web_audit(store)
    # The same form with the session's token goes through.
    res = client.post(f"/voicemail/{m.id}/category", data={"category": "claim",
                                                           "csrf_token": token})
    assert res.status_code == 303 and vm.get_message(store, m.id).category == "claim"


def test_overdue_messages_are_highlighted_by_their_categorys_target(
        app: Flask, store: Store, data_dir: Path, as_role: Any) -> None:
    late_claim = general_message(store, data_dir, caller="13800000001", age_hours=5, seed=1)
    ok_complaint = general_message(store, data_dir, caller="13800000002", age_hours=5, seed=2)
    done_claim = general_message(store, data_dir, caller="13800000003", age_hours=5, seed=3)
    for m, cat in ((late_claim, "claim"), (ok_complaint, "complaint"), (done_claim, "claim")):
        vm.categorise(store, m.id, cat, actor="t", now=m.received_at + 1)  # 4 h vs 24 h
    vm.mark_done(store, done_claim.id, actor="t", now=done_claim.received_at + 2)
    client, _ = as_role("supervisor")
    html = client.get(f"/voicemail/box/{late_claim.box_id}").get_data(as_text=True)
    rows = {m.id: html.split(f'href="/voicemail/{m.id}"')[0].rsplit("<tr", 1)[1]
            for m in (late_claim, ok_complaint, done_claim)}
    assert 'class="overdue"' in rows[late_claim.id]
    assert 'class="overdue"' not in rows[ok_complaint.id]
    assert 'class="overdue"' not in rows[done_claim.id]
    only = client.get(f"/voicemail/box/{late_claim.box_id}?overdue=1").get_data(as_text=True)
    assert f'href="/voicemail/{late_claim.id}"' in only
    assert f'href="/voicemail/{ok_complaint.id}"' not in only
    by_state = client.get(f"/voicemail/box/{late_claim.box_id}?status=done").get_data(
        as_text=True)
    assert f'href="/voicemail/{done_claim.id}"' in by_state
    assert f'href="/voicemail/{late_claim.id}"' not in by_state
    page = client.get(f"/voicemail/{late_claim.id}").get_data(as_text=True)
    assert "已超时" in page


def test_admins_edit_the_categories_and_their_targets(
        app: Flask, store: Store, data_dir: Path, as_role: Any) -> None:
    admin, token = as_role("admin")
    res = admin.post("/voicemail/categories", data={
        "csrf_token": token, "code": "renewal", "name_zh": "续保", "name_en": "Renewal",
        "target_hours": "8"})
    assert res.status_code == 303
    cats = {c.code: c for c in vm.categories(store)}
    assert cats["renewal"].target_hours == 8.0 and cats["renewal"].name_zh == "续保"
    res = admin.post("/voicemail/categories", data={
        "csrf_token": token, "code": "Bad Code", "name_zh": "x", "name_en": "x",
        "target_hours": "8"}, follow_redirects=True)
    assert "未保存" in res.get_data(as_text=True)
    res = admin.post("/voicemail/categories/renewal/retire", data={"csrf_token": token})
    assert res.status_code == 303
    assert "renewal" not in {c.code for c in vm.categories(store)}
    page = admin.get("/voicemail/categories").get_data(as_text=True)
    assert "续保" in page and "否（已停用）" in page
    assert [a[1] for a in web_audit(store)] == ["voicemail.category_save",
                                                "voicemail.category_retire"]
    supervisor, token = as_role("supervisor")
    assert supervisor.get("/voicemail/categories").status_code == 200
    res = supervisor.post("/voicemail/categories", data={
        "csrf_token": token, "code": "x", "name_zh": "x", "name_en": "x", "target_hours": "1"})
    assert res.status_code == 403


def test_a_salesperson_account_must_be_named_by_a_salesperson_code(
        app: Flask, store: Store, as_role: Any) -> None:
    admin, token = as_role("admin")
    res = admin.post("/staff/new", data={"csrf_token": token, "username": "zhang.wei",
                                         "role": "salesperson"})
    assert res.status_code == 400 and "业务员工号" in res.get_data(as_text=True)
    res = admin.post("/staff/new", data={"csrf_token": token, "username": SELLERS[0],
                                         "role": "salesperson"})
    assert res.status_code == 302
    spare = store.query("SELECT id FROM users WHERE username = 'spare'")[0]["id"]
    res = admin.post(f"/staff/{spare}", data={"csrf_token": token, "role": "salesperson",
                                              "active": "1"})
    assert res.status_code == 400
    roles = {r["username"]: r["role"] for r in store.query("SELECT username, role FROM users")}
    assert (roles[SELLERS[0]], roles["spare"]) == ("salesperson", "agent")
    assert "zhang.wei" not in roles
