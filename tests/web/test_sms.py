"""The SMS page: the send form queues a row for the engine together with its audit row
(for a typed number, or for a customer whose number an agent never sees), refuses what
no SMS can carry with nothing written, lists both directions with filters, masks numbers
without ``see_phone``, exports the whole result and says why nothing goes out while no
modem is enabled or the engine is not running."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance.box.settings import ModemSettings, save_modem
from appliance.sms import messages
from appliance.store.db import Store

TZ = ZoneInfo("Asia/Shanghai")


def audits(store: Store, action: str) -> list[dict[str, Any]]:
    return store.query("SELECT username, target, detail FROM audit_log WHERE action = ?"
                       " ORDER BY id", [action])


def customer(store: Store) -> dict[str, Any]:
    return store.query("SELECT id, name, phone FROM customers WHERE phone IS NOT NULL"
                       " ORDER BY id LIMIT 1")[0]


def test_the_form_queues_a_message_with_its_audit_row(store: Store, as_role: Any) -> None:
    client, token = as_role("agent")
    page = client.get("/sms/send").get_data(as_text=True)
    assert "发送短信" in page and 'data-sms-counter="sms-counter"' in page
    res = client.post("/sms/send", data={"csrf_token": token, "number": "138 0013 8000",
                                         "text": "您好，您的保单已续保成功。"})
    assert res.status_code == 303 and res.location.endswith("/sms/")
    row = store.query("SELECT * FROM sms_messages")[0]
    assert (row["direction"], row["number"], row["text"], row["status"], row["parts"],
            row["created_by"]) == ("out", "13800138000", "您好，您的保单已续保成功。",
                                   "queued", 1, "agent")
    audit = audits(store, "sms.send")
    assert [(a["username"], a["target"]) for a in audit] == [("agent", str(row["id"]))]
    assert json.loads(audit[0]["detail"])["number"] == "138****8000"  # masked for an agent
    listing = client.get("/sms/").get_data(as_text=True)
    assert "排队中" in listing and "138****8000" in listing and "13800138000" not in listing


def test_from_a_customer_the_agent_sends_without_seeing_the_number(
        store: Store, as_role: Any) -> None:
    c = customer(store)
    client, token = as_role("agent")
    detail = client.get(f"/customers/{c['id']}").get_data(as_text=True)
    assert f"/sms/send?customer={c['id']}" in detail and "发短信" in detail
    form = client.get(f"/sms/send?customer={c['id']}").get_data(as_text=True)
    assert c["name"] in form and c["phone"] not in form
    assert [a["target"] for a in audits(store, "sms.compose")] == [str(c["id"])]
    text = "中" * 100
    res = client.post("/sms/send", data={"csrf_token": token, "customer": str(c["id"]),
                                         "number": "", "text": text})
    assert res.status_code == 303
    row = store.query("SELECT number, customer_id, parts FROM sms_messages")[0]
    assert row == {"number": c["phone"], "customer_id": c["id"], "parts": 2}
    mine = client.get(f"/sms/?customer={c['id']}").get_data(as_text=True)
    assert c["name"] in mine and c["phone"] not in mine
    boss, _ = as_role("supervisor")
    assert c["phone"] in boss.get("/sms/").get_data(as_text=True)


def test_what_cannot_be_sent_is_refused_and_nothing_written(store: Store,
                                                            as_role: Any) -> None:
    client, token = as_role("supervisor")
    cases = [({"number": "", "text": "hi"}, "请输入接收号码。"),
             ({"number": "13800138000", "text": "  "}, "请填写短信内容。"),
             ({"number": "138-abc", "text": "hi"}, "这不是电话号码"),
             ({"number": "13800138000", "text": "你好😀"}, "表情符号"),
             ({"number": "13800138000", "text": "长" * 600}, "最多分 8 条发送")]
    for data, said in cases:
        res = client.post("/sms/send", data={"csrf_token": token, **data})
        assert res.status_code == 400, data
        assert said in res.get_data(as_text=True), data
    assert store.query("SELECT count(*) AS n FROM sms_messages")[0]["n"] == 0
    assert audits(store, "sms.send") == []
    assert client.get("/sms/send?customer=999999").status_code == 404


def at(day: str, hour: int = 10) -> float:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=TZ).timestamp()


def some_messages(store: Store) -> None:
    c = customer(store)

    def write(db: Any) -> None:
        messages.queue(db, "13800138000", "第一条", by="agent", now=at("2026-11-20"))
        messages.queue(db, "13900139000", "第二条", by="supervisor", now=at("2026-11-24"))
        messages.receive(db, number="+86" + c["phone"], text="收到，谢谢", sent_at=None,
                         key="k1", now=at("2026-11-25"))
        db.execute("UPDATE sms_messages SET status = 'failed', error = 'x: +CMS ERROR 38:"
                   " network out of order' WHERE text = '第二条'")

    store.write(write)


def test_the_list_filters_and_the_export_takes_the_whole_result(store: Store,
                                                                as_role: Any) -> None:
    some_messages(store)
    c = customer(store)
    client, _ = as_role("supervisor")

    def texts(query: str) -> list[str]:
        html = client.get("/sms/?" + query).get_data(as_text=True)
        return [t for t in ("第一条", "第二条", "收到，谢谢") if t in html]

    assert texts("") == ["第一条", "第二条", "收到，谢谢"]
    assert texts("direction=in") == ["收到，谢谢"]
    assert texts("status=failed") == ["第二条"]
    assert texts("number=139") == ["第二条"]
    assert texts(f"number={c['phone']}") == ["收到，谢谢"]  # as typed, stored with +86
    assert texts(f"customer={c['id']}") == ["收到，谢谢"]  # matched on arrival
    assert texts("from=2026-11-21&to=2026-11-24") == ["第二条"]
    assert "network out of order" in client.get("/sms/?status=failed").get_data(as_text=True)
    assert "日期格式应为 2026-11-26" in client.get("/sms/?from=26.11.2026").get_data(
        as_text=True)
    res = client.get("/sms/export?direction=out")
    assert res.headers["Content-Disposition"].startswith("attachment; filename=sms-")
    rows = list(csv.reader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["编号", "方向", "号码"]
    assert sorted((r[2], r[4], r[5]) for r in rows[1:]) == [
        ("13800138000", "第一条", "queued"), ("13900139000", "第二条", "failed")]
    assert [a["username"] for a in audits(store, "sms.export")] == ["supervisor"]
    assert audits(store, "sms.list")  # every look at the list is in the audit log


def test_the_agent_sees_numbers_masked(store: Store, as_role: Any) -> None:
    some_messages(store)
    client, _ = as_role("agent")
    html = client.get("/sms/").get_data(as_text=True)
    assert "138****8000" in html and "13800138000" not in html
    assert "/sms/export" not in html
    assert client.get("/sms/export").status_code == 403


def test_the_page_says_why_nothing_goes_out(store: Store, as_role: Any) -> None:
    client, _ = as_role("agent")
    assert "尚未配置 GSM 短信猫" in client.get("/sms/").get_data(as_text=True)
    save_modem(store, ModemSettings("/dev/ttyUSB0", 115200, "", False), by="admin")
    assert "/dev/ttyUSB0）已停用" in client.get("/sms/").get_data(as_text=True)
    save_modem(store, ModemSettings("/dev/ttyUSB0", 115200, "", True), by="admin")
    assert "引擎未运行" in client.get("/sms/send").get_data(as_text=True)
    messages.set_state(store, "error", "/dev/ttyUSB0: no such device", time.time())
    assert "GSM 短信猫无法工作：/dev/ttyUSB0: no such device" in \
        client.get("/sms/").get_data(as_text=True)
    admin, _ = as_role("admin")
    assert "GSM 短信猫无法工作" in admin.get("/lines/").get_data(as_text=True)  # there too
    messages.set_state(store, "ready", "/dev/ttyUSB0", time.time())
    assert 'id="sms-notice"' not in client.get("/sms/").get_data(as_text=True)
    assert "引擎正通过 /dev/ttyUSB0 收发短信" in admin.get("/lines/").get_data(as_text=True)
