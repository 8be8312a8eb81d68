"""The lines page: each line's calls from the CDR (open now, today, answered); the ports
edited by the admin (checked, audited, refused naming the field, nothing half-written)
and the DAHDI text they give; the SMS modem's settings and its test against a fake modem
on a pseudo-terminal; the live state of each line from a running engine."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from appliance.store.db import Store
from tests.control.live import LiveEngine
from tests.drivers.gsm.fake_modem import fake_modem, garbage, gsm_modem
from tests.web.test_console import live, sse, until  # noqa: F401 (the engine fixture)


def test_each_line_with_its_calls_now_and_today(as_role: Any, store: Store) -> None:
    now = time.time()
    rows = [("a", now - 60, None, None), ("b", now - 300, now - 290, now - 200),
            ("c", now - 13 * 3600, None, None)]  # left open by a crash, long ago

    def add(db: Any) -> None:
        for call_id, start, answered, ended in rows:
            db.execute("INSERT INTO calls (call_id, line, driver, direction, caller, callee,"
                       " started_at, answered_at, ended_at) VALUES"
                       " (?, 'dahdi-3', 'asterisk', 'in', '13800000000', '95500', ?, ?, ?)",
                       [call_id, start, answered, ended])

    store.write(add)
    client, _ = as_role("supervisor")
    html = client.get("/lines/").get_data(as_text=True)
    row = html[html.index("<td>dahdi-3</td>"):].split("</tr>")[0]
    cells = [c.split("</td>")[0] for c in row.split("<td")[1:]]
    # busy now (and one stale), calls today (the stale one may be yesterday's), answered
    assert cells[2].startswith(' class="num">1') and "1 条未结束" in cells[2]
    today = int(cells[3].split(">")[1])
    assert today in (2, 3)
    assert cells[5] == f' class="num">{round(100 / today)}%'
    assert "sim-1" in html  # the test book's line, no call today
    assert "13800000000" not in html


# ---------------------------------------------------------------------------- ports

PORT = {"channel": "32", "label": "外线1", "kind": "fxo", "signalling": "fxs_ks",
        "caller_id": "bell", "route_kind": "number", "route_target": "8001",
        "reserved_inbound": "1"}


def ports(store: Store) -> list[dict[str, Any]]:
    return store.query("SELECT channel, kind, signalling, caller_id, route_kind,"
                       " route_target, reserved_inbound, label FROM line_ports ORDER BY channel")


def actions(store: Store, prefix: str) -> list[dict[str, Any]]:
    return store.query("SELECT action, target, username, detail FROM audit_log"
                       " WHERE action LIKE ? ORDER BY id", [prefix + "%"])


def test_the_admin_adds_edits_and_deletes_a_port_each_change_audited(
        as_role: Any, store: Store) -> None:
    admin, token = as_role("admin")
    form = admin.get("/lines/ports/edit").get_data(as_text=True)
    assert "新端口" in form and 'name="csrf_token"' in form
    res = admin.post("/lines/ports/save", data={"csrf_token": token, **PORT})
    assert res.status_code == 303
    assert ports(store) == [{"channel": 32, "kind": "fxo", "signalling": "fxs_ks",
                             "caller_id": "bell", "route_kind": "number",
                             "route_target": "8001", "reserved_inbound": 1, "label": "外线1"}]
    page = admin.get("/lines/").get_data(as_text=True)
    assert "端口 32 已保存" in page
    row = page[page.index('<tr data-channel="32">'):].split("</tr>")[0]
    assert "外线1" in row and "FXO（外线）" in row and "FSK（Bell 202），首次振铃后" in row
    assert "号码: 8001" in row and "<td>是</td>" in row
    # The form of the saved port holds its values; moving it to another channel.
    form = admin.get("/lines/ports/edit?channel=32").get_data(as_text=True)
    assert 'value="外线1"' in form and 'name="old_channel" value="32"' in form
    res = admin.post("/lines/ports/save", data={"csrf_token": token, **PORT,
                                                 "old_channel": "32", "channel": "33",
                                                 "caller_id": "dtmf"})
    assert res.status_code == 303
    assert [(r["channel"], r["caller_id"]) for r in ports(store)] == [(33, "dtmf")]
    conf = admin.get("/lines/config").get_data(as_text=True)
    assert "fxsks=33\n" in conf and "cidsignalling=dtmf\ncidstart=polarity\n" in conf
    assert "group=2\n" in conf  # reserved for inbound: out of the dial group
    res = admin.post("/lines/ports/delete", data={"csrf_token": token, "old_channel": "33"})
    assert res.status_code == 303 and ports(store) == []
    audited = actions(store, "port.")
    assert [(a["action"], a["target"], a["username"]) for a in audited] == [
        ("port.save", "32", "admin"), ("port.save", "33", "admin"),
        ("port.delete", "33", "admin")]
    first, second = (json.loads(a["detail"]) for a in audited[:2])
    assert first["before"] is None and first["after"]["channel"] == 32
    assert second["before"]["caller_id"] == "bell" and second["after"]["caller_id"] == "dtmf"


def test_the_page_says_what_each_ports_route_does_now(as_role: Any, store: Store) -> None:
    """A route the next call follows, in words; one whose flow lost its published version
    since it was saved says the calls get the default flow."""
    from appliance.box.ports import Port
    from appliance.box.settings import save_port
    from appliance.ivr.versions import publish, save_draft

    night = {"name": "night", "version": 1, "languages": ["zh"], "start": "hello",
             "nodes": {"hello": {"type": "play", "prompts": ["welcome"], "next": "bye"},
                       "bye": {"type": "hangup"}}}
    publish(store, "night", save_draft(store, night, by="admin", now=1.0), by="admin",
            now=1.0)
    admin, token = as_role("admin")
    for channel, kind, target in (("32", "flow", "night"), ("34", "number", "95599"),
                                  ("35", "none", "")):
        res = admin.post("/lines/ports/save", data={
            "csrf_token": token, **PORT, "channel": channel, "route_kind": kind,
            "route_target": target})
        assert res.status_code == 303
    save_port(store, Port(33, "fxo", "fxs_ks", "none", "flow", "gone"), old_channel=None,
              by="admin")  # a flow deleted after the route was saved
    page = admin.get("/lines/").get_data(as_text=True)

    def row(channel: int) -> str:
        return page[page.index(f'<tr data-channel="{channel}">'):].split("</tr>")[0]

    assert "来电进入流程“night”的已发布版本" in row(32)
    assert "流程“gone”没有已发布版本：来电进入默认语音导航流程" in row(33)
    assert "来电按拨打 95599 处理" in row(34)
    assert "来电进入默认语音导航流程" in row(35)


@pytest.mark.parametrize(("change", "words"), [
    ({"kind": "fxa"}, "端口类型: 须为 fxo, fxs, e1 之一，不能是“fxa”"),
    ({"channel": "abc"}, "通道: 须为 1 到 312 的整数，不能是“abc”"),
    ({"signalling": "fxo_ks"}, "信令: 须为 fxs_ks, fxs_ls 之一，不能是“fxo_ks”"),
    ({"caller_id": "fsk"}, "来电显示: 须为 none, bell, v23, dtmf, dtmf-ring 之一"),
    ({"route_kind": "queue", "route_target": "sales"}, "路由目标: 没有队列“sales”"),
    ({"route_target": "80-01"}, "路由目标: 须为 1 到 20 位数字"),
    ({"kind": "fxs", "signalling": "fxo_ks"}, "呼入路由: FXS 端口接坐席话机"),
    ({"channel": "16", "kind": "e1", "signalling": "mfcr2", "caller_id": "none"},
     "通道: 通道 16 是 E1 第 1 路的第 16 时隙"),
])
def test_a_bad_value_is_refused_naming_the_field_and_nothing_is_written(
        as_role: Any, store: Store, change: dict[str, str], words: str) -> None:
    admin, token = as_role("admin")
    res = admin.post("/lines/ports/save", data={"csrf_token": token, **PORT, **change})
    html = res.get_data(as_text=True)
    assert res.status_code == 400
    assert words in html
    assert 'value="外线1"' in html  # the form comes back as it was filled in
    assert ports(store) == [] and actions(store, "port.") == []


def test_a_port_on_a_taken_channel_or_in_an_e1_span_is_refused(as_role: Any,
                                                                 store: Store) -> None:
    admin, token = as_role("admin")
    e1 = {"channel": "1", "kind": "e1", "signalling": "mfcr2", "caller_id": "none",
          "route_kind": "none", "label": "E1-1"}
    assert admin.post("/lines/ports/save", data={"csrf_token": token, **e1}).status_code == 303
    res = admin.post("/lines/ports/save", data={"csrf_token": token, **e1, "label": "again"})
    assert res.status_code == 400 and "通道: 通道 1 已是端口“E1-1”" in res.get_data(as_text=True)
    res = admin.post("/lines/ports/save", data={"csrf_token": token, **PORT, "channel": "5"})
    assert "通道: 通道 5 属于 E1 第 1 路（通道 1–31）" in res.get_data(as_text=True)
    assert [r["channel"] for r in ports(store)] == [1]


def test_port_and_modem_forms_need_the_csrf_token_and_the_admin(as_role: Any,
                                                                store: Store) -> None:
    admin, _ = as_role("admin")
    for data in ({}, {"csrf_token": "forged"}):
        assert admin.post("/lines/ports/save", data={**data, **PORT}).status_code == 400
        assert admin.post("/lines/modem", data={**data, "device": "/dev/ttyUSB0",
                                                "baud": "115200"}).status_code == 400
    boss, boss_token = as_role("supervisor")
    res = boss.post("/lines/ports/save", data={"csrf_token": boss_token, **PORT})
    assert res.status_code == 403
    page = boss.get("/lines/").get_data(as_text=True)
    assert "添加端口" not in page and "测试短信猫" not in page  # reads, does not change
    assert ports(store) == [] and store.query("SELECT * FROM sms_modem") == []


# ---------------------------------------------------------------------------- modem

def test_modem_settings_are_checked_saved_and_audited(as_role: Any, store: Store) -> None:
    admin, token = as_role("admin")
    bad = [({"device": "ttyUSB0", "baud": "115200"}, "串口设备: 须为 /dev 下的串口设备"),
           ({"device": "/dev/sda", "baud": "115200"}, "不能是“/dev/sda”"),
           ({"device": "/dev/ttyUSB0/../sda", "baud": "115200"}, "串口设备: 须为"),
           ({"device": "/dev/ttyUSB0", "baud": "2400"},
            "波特率: 须为 9600, 19200, 38400, 57600, 115200 之一，不能是“2400”"),
           ({"device": "/dev/ttyUSB0", "baud": "9600", "smsc": "1380010050x"},
            "短信中心号码: 须为电话号码")]
    for form, words in bad:
        res = admin.post("/lines/modem", data={"csrf_token": token, **form})
        assert res.status_code == 400 and words in res.get_data(as_text=True)
    assert store.query("SELECT * FROM sms_modem") == []
    res = admin.post("/lines/modem", data={"csrf_token": token, "device": "/dev/ttyUSB2",
                                           "baud": "9600", "smsc": "+86 138 0010 0500",
                                           "enabled": "1"})
    assert res.status_code == 303
    (row,) = store.query("SELECT device, baud, smsc, enabled, updated_by FROM sms_modem")
    assert row == {"device": "/dev/ttyUSB2", "baud": 9600, "smsc": "+8613800100500",
                   "enabled": 1, "updated_by": "admin"}
    (entry,) = actions(store, "modem.save")
    assert json.loads(entry["detail"])["after"]["smsc"] == "+8613800100500"
    page = admin.get("/lines/").get_data(as_text=True)
    assert 'value="/dev/ttyUSB2"' in page and '<option value="9600" selected>' in page


def test_the_modem_test_shows_the_sim_and_signal_or_what_went_wrong(as_role: Any,
                                                                   store: Store) -> None:
    admin, token = as_role("admin")

    def test(device: str) -> str:
        res = admin.post("/lines/modem/test", data={"csrf_token": token, "device": device,
                                                    "baud": "115200"})
        assert res.status_code == 303
        return admin.get("/lines/").get_data(as_text=True)

    with fake_modem(gsm_modem()) as modem:
        page = test(modem.path)
        good = modem.path
    assert "短信猫有应答。SIM 卡：就绪。信号：-71 dBm（CSQ 21 / 31）。短信文本模式：是。" in page
    assert modem.commands == ["AT", "AT+CPIN?", "AT+CSQ", "AT+CMGF=1"]
    page = test("/dev/ttyUSB97")
    assert "短信猫测试失败：/dev/ttyUSB97: no such device" in page
    with fake_modem(garbage) as modem:
        page = test(modem.path)
        noisy = modem.path
    assert f"短信猫测试失败：{noisy}: AT: the reply is not text" in page
    logged = [(a["target"], json.loads(a["detail"])["ok"]) for a in actions(store, "modem.test")]
    assert logged == [(good, True), ("/dev/ttyUSB97", False), (noisy, False)]
    assert store.query("SELECT * FROM sms_modem") == []  # a test saves nothing


# ---------------------------------------------------------------------------- live state

def live_row(html: str, port: str) -> str:
    return html[html.index(f'<tr data-port="{port}"'):].split("</tr>")[0]


def test_the_live_table_follows_each_line(live: LiveEngine, as_role: Any) -> None:  # noqa: F811
    admin, token = as_role("admin")
    admin.post("/lines/ports/save", data={"csrf_token": token, **PORT, "channel": "1"})
    live.dial("13800000001")  # answered by the box, waiting in the queue: trunk 1
    page = admin.get("/lines/").get_data(as_text=True)
    first = live_row(page, "1")
    assert 'data-state="in-call"' in first and "通话中" in first and "外线1" in first
    # Reserved for inbound: the running engine took the setting at once.
    assert "呼入" in first and "<td>是</td>" in first
    assert live.exchange.reserved_inbound == {1}
    assert "空闲" in live_row(page, "2") and "呼叫引擎未运行" not in page
    events = sse(admin, "/lines/events")
    assert 'data-state="in-call"' in live_row(until(events, "live")["html"], "1")
    live.loop.call_soon_threadsafe(live.exchange.trunk_down, 3, "red alarm")
    html = until(events, "live")["html"]
    assert 'data-state="alarm"' in live_row(html, "3") and "告警" in live_row(html, "3")
    assert "red alarm" in live_row(html, "3")
    events.close()


def test_without_the_engine_the_ports_show_and_the_state_is_unknown(as_role: Any) -> None:
    admin, token = as_role("admin")
    admin.post("/lines/ports/save", data={"csrf_token": token, **PORT})
    page = admin.get("/lines/").get_data(as_text=True)
    assert "呼叫引擎未运行：线路实时状态未知。" in page
    assert "未知" in live_row(page, "32") and "外线1" in live_row(page, "32")


def test_a_port_saved_while_the_engine_runs_is_reserved_for_inbound_at_once(
        live: LiveEngine, as_role: Any) -> None:  # noqa: F811
    admin, token = as_role("admin")
    for channel in ("2", "3"):
        admin.post("/lines/ports/save", data={"csrf_token": token, **PORT, "channel": channel})
    assert live.exchange.reserved_inbound == {2, 3}
    admin.post("/lines/ports/save", data={"csrf_token": token, **PORT, "channel": "2",
                                          "old_channel": "2", "reserved_inbound": ""})
    assert live.exchange.reserved_inbound == {3}
    admin.post("/lines/ports/delete", data={"csrf_token": token, "old_channel": "3"})
    assert live.exchange.reserved_inbound == set()
    # A change the engine did not hear of (made while it was down) is shown as pending.
    live.exchange.reserved_inbound = {2}
    row = live_row(admin.get("/lines/").get_data(as_text=True), "2")
    assert "<td>否 <small>(引擎下次启动时生效)</small></td>" in row


def test_a_whole_e1_span_is_added_at_once_or_not_at_all(as_role: Any, store: Store) -> None:
    admin, token = as_role("admin")
    # Channel 40 (span 2) is an analog port already: the span is refused, nothing added.
    admin.post("/lines/ports/save", data={"csrf_token": token, **PORT, "channel": "40"})
    span = {"csrf_token": token, "span": "2", "signalling": "mfcr2", "route_kind": "none"}
    res = admin.post("/lines/ports/span", data=span)
    assert res.status_code == 400
    assert "通道: 通道 40 属于 E1 第 2 路（通道 32–62）" in res.get_data(as_text=True)
    assert [r["channel"] for r in ports(store)] == [40]
    res = admin.post("/lines/ports/span", data={**span, "span": "1",
                                                "reserved_inbound": "1"})
    assert res.status_code == 303
    rows = [r for r in ports(store) if r["kind"] == "e1"]
    assert [r["channel"] for r in rows] == [c for c in range(1, 32) if c != 16]
    assert {(r["signalling"], r["reserved_inbound"]) for r in rows} == {("mfcr2", 1)}
    assert "已添加 E1 第 1 路：通道 1-15,17-31。" in admin.get("/lines/").get_data(as_text=True)
    (entry,) = actions(store, "port.span_add")
    assert entry["target"] == "E1 1" and json.loads(entry["detail"])["channels"] == \
        "1-15,17-31"
    conf = admin.get("/lines/config").get_data(as_text=True)
    assert "cas=1-15:1101\ncas=17-31:1101\n" in conf
