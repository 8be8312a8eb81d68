"""The premium reminders page and the reports' reminder outcomes, over the test book: the
settings form (each refusal names its field, nothing saved), the attempt list with its
filters and an export of every matching row, "run now" without an engine and against a
running one, and the report's counts for a date range with its export of every day."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlite_utils import Database

from appliance.reminders import settings as rs
from appliance.reminders.attempts import OUTCOMES
from appliance.reminders.dialer import ReminderDialer
from appliance.store.db import Store
from drivers.sim.exchange import Behaviour
from tests.control.live import live_engine

TZ = ZoneInfo("Asia/Shanghai")
GOOD = {"enabled": "on", "days_ahead": "5", "overdue_days": "10", "window_start": "08:30",
        "window_end": "19:00", "max_concurrent": "3", "retry_minutes": "45",
        "max_attempts": "4"}


def _at(day: str, hour: int = 10) -> float:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00").replace(tzinfo=TZ).timestamp()


def add_attempts(store: Store, rows: list[tuple[str, str, int, str | None, float]]) -> None:
    """(policy, due date, attempt, outcome, started at) rows of the attempt log."""

    def write(db: Database) -> None:
        for policy, due, attempt, outcome, at in rows:
            db.execute("INSERT INTO reminder_attempts (policy_number, due_date, attempt, number,"
                       " language, started_at, ended_at, outcome) VALUES (?, ?, ?,"
                       " '13912345678', 'zh', ?, ?, ?)",
                       [policy, due, attempt, at, at + 30 if outcome else None, outcome])

    store.write(write)


def due_today_all_day(store: Store) -> dict[str, Any]:
    """One policy of the book (number, holder's phone) made due today, the only one the
    settings choose, with calls allowed all day (a test may run at any hour)."""
    (policy,) = store.query(
        "SELECT p.number, c.phone FROM policies p JOIN customers c ON c.id = p.holder_id"
        " WHERE p.status = 'in_force' AND p.next_due_date IS NOT NULL ORDER BY p.number"
        " LIMIT 1")
    today = datetime.now().date()
    tomorrow = (today + timedelta(days=1)).isoformat()

    def only_this_one_due_today(db: Any) -> None:
        # The demo book spreads its due dates over the days around the one it was made
        # for: on some dates another of its policies falls due today too.
        db.execute("UPDATE policies SET next_due_date = ? WHERE next_due_date = ?",
                   [tomorrow, today.isoformat()])
        db.execute("UPDATE policies SET next_due_date = ? WHERE number = ?",
                   [today.isoformat(), policy["number"]])

    store.write(only_this_one_due_today)
    store.write(lambda db: rs.save(db, rs.ReminderSettings(
        days_ahead=0, overdue_days=0, window_start="00:00", window_end="24:00"), by="t", at=0))
    return policy


def test_settings_are_saved_with_an_audit_row(as_role: Any, store: Store) -> None:
    client, token = as_role("supervisor")
    html = client.get("/reminders/").get_data(as_text=True)
    assert "续期缴费提醒" in html and 'name="days_ahead" type="number" value="3"' in html
    res = client.post("/reminders/settings", data={**GOOD, "csrf_token": token})
    assert res.status_code == 303
    assert rs.load(store) == rs.ReminderSettings(True, 5, 10, "08:30", "19:00", 3, 45, 4)
    (row,) = store.query("SELECT * FROM audit_log WHERE action = 'reminder.settings'")
    assert row["username"] == "supervisor" and '"days_ahead": 5' in row["detail"]


def test_sms_after_the_calls_is_a_setting_and_the_list_names_the_sms(
        as_role: Any, store: Store) -> None:
    client, token = as_role("admin")
    res = client.post("/reminders/settings",
                      data={**GOOD, "sms_after_calls": "on", "csrf_token": token})
    assert res.status_code == 303 and rs.load(store).sms_after_calls is True
    html = client.get("/reminders/").get_data(as_text=True)
    assert 'name="sms_after_calls" value="on" checked' in html
    assert "电话均未接通时改发短信提醒" in html
    add_attempts(store, [("P7777", "2026-11-28", 3, "no_answer", _at("2026-11-26"))])
    store.write(lambda db: db.execute(
        "INSERT INTO sms_messages (id, direction, number, text, status, parts, created_at,"
        " created_by) VALUES (41, 'out', '13912345678', '提醒', 'queued', 1, 0, 'reminders')"))
    store.write(lambda db: db.execute("UPDATE reminder_attempts SET sms_id = 41"))
    html = client.get("/reminders/?policy=P7777").get_data(as_text=True)
    assert "已改发短信提醒（第 41 条）" in html


@pytest.mark.parametrize(("field", "value", "label"), [
    ("days_ahead", "99", "应缴日前提前天数"), ("overdue_days", "abc", "逾期最多天数"),
    ("window_start", "7点", "拨打开始时间"), ("window_end", "08:00", "拨打截止时间"),
    ("max_concurrent", "0", "同时拨打路数"), ("retry_minutes", "-5", "重拨间隔（分钟）"),
    ("max_attempts", "20", "最多拨打次数"),
])
def test_a_bad_setting_is_refused_naming_its_field(as_role: Any, store: Store, field: str,
                                                   value: str, label: str) -> None:
    client, token = as_role("admin")
    res = client.post("/reminders/settings", data={**GOOD, field: value, "csrf_token": token})
    html = res.get_data(as_text=True)
    assert res.status_code == 400
    assert f'<p class="error" role="alert" id="settings-error">未保存：{label}' in html
    assert f'name="{field}"' in html and 'aria-invalid="true"' in html
    assert store.query("SELECT * FROM reminder_settings") == []  # nothing written
    assert not store.query("SELECT 1 FROM audit_log WHERE action = 'reminder.settings'")


def test_agents_and_auditors_may_not_see_the_page(as_role: Any) -> None:
    for role in ("agent", "auditor", "salesperson"):
        client, token = as_role(role)
        assert client.get("/reminders/").status_code == 403
        assert client.post("/reminders/run", data={"csrf_token": token}).status_code == 403


def test_the_list_filters_and_the_export_holds_every_matching_attempt(
        as_role: Any, store: Store) -> None:
    rows: list[tuple[str, str, int, str | None, float]] = [
        (f"P{i:04d}", "2026-11-28", 1, "busy" if i % 2 else "confirmed",
         _at("2026-11-26") + i) for i in range(130)]
    rows.append(("P9999", "2026-11-28", 1, None, _at("2026-11-26", 11)))
    rows.append(("P8888", "2026-11-20", 1, "no_answer", _at("2026-11-20")))
    add_attempts(store, rows)
    client, _ = as_role("admin")
    html = client.get("/reminders/?outcome=busy&from=2026-11-26&to=2026-11-26").get_data(
        as_text=True)
    assert "65 条记录" in html and html.count("忙音") >= 50
    assert "P0129" in html and "P0128" not in html  # newest first, busy only
    html = client.get("/reminders/?outcome=open").get_data(as_text=True)
    assert "P9999" in html and "正在拨打" in html and "1 条记录" in html
    res = client.get("/reminders/export.csv?outcome=busy&from=2026-11-26&to=2026-11-26")
    got = list(csv.reader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))
    assert got[0][0] == "保单号" and len(got) == 1 + 65
    assert {r[8] for r in got[1:]} == {"busy"} and got[1][4] == "13912345678"
    res = client.get("/reminders/export.xlsx?policy=P8888")
    sheet = load_workbook(io.BytesIO(res.data)).active
    values = [[c.value for c in r] for r in sheet.iter_rows()]
    assert len(values) == 2 and values[1][0] == "P8888" and values[1][8] == "no_answer"
    actions = [r["action"] for r in store.query("SELECT action FROM audit_log")]
    assert "reminder.list" in actions and "reminder.export" in actions


def test_run_now_without_an_engine_says_so(as_role: Any) -> None:
    client, token = as_role("admin")
    res = client.post("/reminders/run", data={"csrf_token": token}, follow_redirects=True)
    assert "系统引擎未运行" in res.get_data(as_text=True)


def test_run_now_asks_the_running_engine_and_the_attempt_appears(
        as_role: Any, store: Store, data_dir: Any) -> None:
    policy = due_today_all_day(store)
    client, token = as_role("admin")
    engine_store = Store(data_dir / "appliance.db")
    try:
        with live_engine(data_dir, engine_store) as live:
            live.exchange.subscribe(policy["phone"], None, behaviour=Behaviour.BUSY)
            live.control.reminders = ReminderDialer(live.engine, live.exchange, engine_store,
                                                    acd=live.acd)
            res = client.post("/reminders/run", data={"csrf_token": token},
                              follow_redirects=True)
            assert "已开始催缴拨打：共 1 张保单待拨打。" in res.get_data(as_text=True)
            for _ in range(100):
                rows = store.query("SELECT * FROM reminder_attempts WHERE outcome IS NOT NULL")
                if rows:
                    break
                time.sleep(0.1)
    finally:
        engine_store.close()
    (row,) = rows
    assert row["policy_number"] == policy["number"] and row["outcome"] == "busy"
    html = client.get("/reminders/").get_data(as_text=True)
    assert policy["number"] in html and "忙音" in html


def test_the_report_counts_outcomes_in_the_range_and_exports_every_day(
        as_role: Any, store: Store) -> None:
    add_attempts(store, [
        ("P1", "2026-11-27", 1, "busy", _at("2026-11-24")),
        ("P1", "2026-11-27", 2, "confirmed", _at("2026-11-25")),
        ("P2", "2026-11-27", 1, "heard", _at("2026-11-25")),
        ("P3", "2026-11-27", 1, "hung_up", _at("2026-11-25")),
        ("P4", "2026-11-27", 1, "no_answer", _at("2026-11-25", 23)),
        ("P5", "2026-11-27", 1, "transferred", _at("2026-11-26")),
        ("P6", "2026-11-27", 1, "confirmed", _at("2026-11-27")),  # after the range
    ])
    client, _ = as_role("auditor")
    html = client.get("/reports/?from=2026-11-24&to=2026-11-26").get_data(as_text=True)
    section = html[html.index('id="reminder-outcomes"'):]
    section = section[:section.index("</h2>", section.index("</h2>") + 1)]
    assert re.search(r'<span class="figure">6</span><span>催缴电话', section)
    # Answered: confirmed, heard, hung up, transferred: 4 of 6; confirmed 1 of those 4.
    assert re.search(r'<span class="figure">66.7%</span><span>接通率', section)
    assert re.search(r'<span class="figure">25.0%</span><span>确认率', section)
    assert re.search(r'<span class="figure">5</span><span>提醒保单数', section)
    counts = dict(re.findall(r'<tr><td>([^<]+)</td><td class="num">(\d+)</td></tr>', section))
    assert counts["已确认（按1）"] == "1" and counts["忙音"] == "1"
    assert counts["无人接听"] == "1" and counts["转人工（按2）"] == "1"
    assert counts["线路拥塞"] == "0"
    assert section.count("<rect") == len(OUTCOMES)
    res = client.get("/reports/export/reminders.csv?from=2026-11-24&to=2026-11-26")
    got = list(csv.reader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))
    assert got[0][:3] == ["日期", "拨打次数", "已确认"]
    assert [r[0] for r in got[1:]] == ["2026-11-24", "2026-11-25", "2026-11-26"]
    assert [r[1] for r in got[1:]] == ["1", "4", "1"]
    day25 = got[2]
    assert day25[2] == "1" and day25[7] == "1"  # confirmed, no answer
    assert day25[11] == "0.75" and day25[12] == "0.3333"  # 3 of 4 answered, 1 of 3 confirmed


def test_the_page_says_whether_calls_may_be_placed_now(as_role: Any, store: Store) -> None:
    client, _ = as_role("supervisor")
    store.write(lambda db: rs.save(db, rs.ReminderSettings(
        enabled=False, window_start="00:00", window_end="24:00"), by="t", at=0))
    html = client.get("/reminders/").get_data(as_text=True)
    assert "自动催缴已关闭" in html and "现在可以拨打" in html
    today = datetime.now(TZ).date().isoformat()
    store.write(lambda db: db.execute(
        "INSERT INTO holidays (date, name, kind) VALUES (?, '测试节', 'holiday')", [today]))
    html = client.get("/reminders/").get_data(as_text=True)
    assert "现在不拨打：今天是法定节假日（测试节）。" in html
