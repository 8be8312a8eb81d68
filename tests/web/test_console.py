"""The seat console and the supervisor page through Flask's test client, against a real
engine (real clock, simulated exchange, ACD) reached over its control API: seat log-in,
states with reasons, the queue, the screen pop of a call with the keyed policy, hang-up and
wrap-up stored with the call; numbers by role; the figures of the day; the engine down."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.store.db import Store
from tests.control.live import LiveEngine, live_engine
from tests.web.conftest import login
from web import create_app
from web.supervisor import figures, today


@pytest.fixture
def live(data_dir: Path) -> Iterator[LiveEngine]:
    store = Store(data_dir / "appliance.db")
    try:
        with live_engine(data_dir, store, answer_after=0.5) as engine:
            yield engine
    finally:
        store.close()


def sse(client: FlaskClient, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The page's event stream, subscribed when this returns."""
    res = client.get(path, buffered=False)
    assert res.status_code == 200 and res.mimetype == "text/event-stream"
    chunks = iter(res.response)
    assert next(chunks) in (b"retry: 2000\n\n", "retry: 2000\n\n")
    return _events(res, chunks)


def _events(res: Any, chunks: Iterator[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        for chunk in chunks:
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            if text.startswith("event: "):
                head, data = text.split("\n", 2)[:2]
                yield head[len("event: "):], json.loads(data[len("data: "):])
    finally:
        res.close()


def until(events: Iterator[tuple[str, dict[str, Any]]], kind: str) -> dict[str, Any]:
    for got, data in events:
        if got == kind:
            return data
    raise AssertionError(f"the stream ended before a {kind} event")


def post(client: FlaskClient, token: str, path: str, **form: str) -> dict[str, Any]:
    res = client.post(path, data={"csrf_token": token, **form},
                      headers={"Accept": "application/json"})
    doc: dict[str, Any] = res.get_json()
    doc["status"] = res.status_code
    return doc


def a_customer(store: Store) -> dict[str, Any]:
    (row,) = store.query(
        "SELECT p.number, c.name, c.phone FROM policies p JOIN customers c ON"
        " c.id = p.holder_id WHERE c.phone IS NOT NULL ORDER BY p.number LIMIT 1")
    return row


def test_an_agent_takes_a_call_with_its_screen_pop_hangs_up_and_wraps_up(
        app: Flask, store: Store, live: LiveEngine, as_role: Any, data_dir: Path) -> None:
    agent, token = as_role("agent")
    page = agent.get("/console/").get_data(as_text=True)
    assert "登录坐席" in page and "坐席一" in page
    res = agent.post("/console/seat", data={"csrf_token": token, "seat": "s1"})
    assert res.status_code == 302
    page = agent.get("/console/").get_data(as_text=True)
    assert 'data-state="ready"' in page and "就绪" in page
    # Not ready needs a reason from the list; the engine's view changes only when valid.
    assert post(agent, token, "/console/state", state="not-ready", reason="nap")["status"] == 400
    done = post(agent, token, "/console/state", state="not-ready", reason="lunch")
    assert done["ok"] and done["result"]["reason"] == "lunch" and done["message"] == "当前：示忙"
    customer = a_customer(store)
    events = sse(agent, "/console/events")
    caller = "13912345678"
    live.dial(caller, {"pol_no": customer["number"], "pol_id": "9X7Y"})
    queue = until(events, "queue")["html"]
    assert "139****5678" in queue and caller not in queue  # agents see masked numbers
    boss, _ = as_role("supervisor")
    assert caller in boss.get("/supervisor/").get_data(as_text=True)
    assert post(agent, token, "/console/state", state="ready")["ok"]
    pop = until(events, "pop")
    assert customer["number"] in pop["html"] and customer["name"] in pop["html"]
    assert customer["phone"] not in pop["html"] and "139****5678" in pop["html"]
    assert "按键输入的保单号" in pop["html"]
    assert until(events, "connected")["call"] == pop["call"]
    events.close()
    # The web restarts mid-call (a new app on the same folder, a new browser): the call
    # goes on in the engine, and the agent finds the seat and the call again.
    with Store(data_dir / "appliance.db") as web_store:
        agent = create_app(data_dir, {"TESTING": True}, store=web_store).test_client()
        token = login(agent, "agent")
        page = agent.get("/console/").get_data(as_text=True)
        assert 'data-state="talking"' in page and f'value="{pop["call"]}"' in page
        assert f'data-call="{pop["call"]}"' in page and customer["name"] in page  # the pop
        assert live.seat_phones["s1"].line is not None and live.seat_phones["s1"].line.connected
        events = sse(agent, "/console/events")
        assert post(agent, token, "/console/hangup")["ok"]
        assert until(events, "seat")["state"] == "wrap-up"
        events.close()
        assert 'data-state="wrap-up"' in agent.get("/console/").get_data(as_text=True)
        _wrap_up_and_log_out(agent, token, store, pop["call"])


def _wrap_up_and_log_out(agent: FlaskClient, token: str, store: Store, call: str) -> None:
    done = post(agent, token, "/console/wrap-up", call=call, code="payment",
                note="客户问下次缴费日期")
    assert done["ok"] and done["message"] == "话后小结已保存：保费缴纳"
    assert post(agent, token, "/console/wrap-up", call="nope", code="payment")["status"] == 409
    for _ in range(50):
        rows = store.query("SELECT * FROM call_wrapups")
        if rows:
            break
        time.sleep(0.05)
    assert [(r["call_id"], r["seat_id"], r["agent"], r["code"], r["note"]) for r in rows] == [
        (call, "s1", "agent", "payment", "客户问下次缴费日期")]
    actions = [r["action"] for r in store.query("SELECT action FROM audit_log ORDER BY id")]
    assert {"seat.login", "customer.screen_pop", "call.hangup", "call.wrap_up"} <= set(actions)
    res = agent.post("/console/seat/logout", data={"csrf_token": token})
    assert res.status_code == 302


def test_who_may_open_the_console_and_the_supervisor_page(live: LiveEngine,
                                                          as_role: Any) -> None:
    for role, console, supervisor in (("admin", 200, 200), ("supervisor", 200, 200),
                                      ("agent", 200, 403), ("salesperson", 403, 403),
                                      ("auditor", 403, 403)):
        client, _ = as_role(role)
        assert client.get("/console/").status_code == console, role
        assert client.get("/supervisor/").status_code == supervisor, role
        for path, code in (("/console/events", console), ("/supervisor/events", supervisor)):
            res = client.get(path, buffered=False)
            assert res.status_code == code, (role, path)
            res.close()


def test_the_console_says_so_when_the_engine_is_not_running(as_role: Any) -> None:
    agent, token = as_role("agent")
    page = agent.get("/console/").get_data(as_text=True)
    assert "呼叫引擎没有运行" in page
    res = post(agent, token, "/console/seat", seat="s1")
    assert res["status"] == 503 and not res["ok"]


def test_the_figures_of_the_day_from_the_acd_records(app: Flask, store: Store,
                                                     as_role: Any) -> None:
    now = time.time()
    rows = [  # (outcome, waited, seat, talk)
        ("answered", 5.0, "s1", 60.0), ("answered", 30.0, "s1", 120.0),
        ("answered", 10.0, "s2", 90.0), ("abandoned", 40.0, None, None),
        ("shutdown", 1.0, None, None)]

    def write(db: Any) -> None:
        db.execute("INSERT INTO acd_queues (name, strategy, config, updated_at) VALUES"
                   " ('service', 'longest-idle', '{\"wrap_up\": 10.0}', 0)")
        db.execute("INSERT INTO acd_seats (id, number, driver, name, skills, updated_at)"
                   " VALUES ('s1', '8001', 'sim', '坐席一', '{}', 0)")
        for i, (outcome, waited, seat, talk) in enumerate(rows):
            db.execute("INSERT INTO acd_entries (key, queue, call_id, caller, language,"
                       " priority, joined_at, ended_at, outcome, waited_seconds, answered_by,"
                       " talk_seconds) VALUES (?, 'service', ?, '139', 'zh', 0, ?, ?, ?, ?,"
                       " ?, ?)", [f"k{i}", f"c{i}", now - 100, now - 10, outcome, waited,
                                   seat, talk])
        # Yesterday's call does not count.
        db.execute("INSERT INTO acd_entries (key, queue, call_id, caller, language, priority,"
                   " joined_at, ended_at, outcome, waited_seconds) VALUES ('old', 'service',"
                   " 'c-old', '139', 'zh', 0, ?, ?, 'abandoned', 3)",
                   [now - 2 * 86400, now - 2 * 86400])

    store.write(write)
    with app.test_request_context():
        day = figures(*today(), service_seconds=20)
    assert (day["offered"], day["answered"], day["within"], day["abandoned"]) == (4, 3, 2, 1)
    assert day["service_level"] == 0.5 and day["abandon_rate"] == 0.25
    assert day["avg_wait"] == pytest.approx(85 / 4)
    assert day["avg_handle"] == pytest.approx(90 + 10)
    assert [(r["seat"], r["name"], r["calls"], r["within"]) for r in day["per_seat"]] == [
        ("s1", "坐席一", 2, 1), ("s2", None, 1, 1)]
    boss, _ = as_role("supervisor")
    page = boss.get("/supervisor/?sl=60").get_data(as_text=True)
    assert "呼叫引擎没有运行" in page  # no engine here: the figures still show
    assert "75 %" in page and "25 %" in page  # 3 of 4 within 60 s; 1 of 4 abandoned


def test_the_supervisor_page_follows_seats_and_queues_live(live: LiveEngine,
                                                           as_role: Any) -> None:
    boss, _ = as_role("supervisor")
    page = boss.get("/supervisor/").get_data(as_text=True)
    assert "坐席一" in page and "未登录" in page
    events = sse(boss, "/supervisor/events")
    agent, token = as_role("agent")
    agent.post("/console/seat", data={"csrf_token": token, "seat": "s2"})
    first = until(events, "live")["html"]
    assert "<td>坐席二</td><td>agent</td><td>就绪</td><td></td>" in first  # the log-in
    post(agent, token, "/console/state", state="not-ready", reason="training")
    second = until(events, "live")["html"]
    assert "<td>坐席二</td><td>agent</td><td>示忙</td><td>培训</td>" in second
    events.close()


def test_a_calls_transfers_are_shown_with_it_and_outside_numbers_masked(
        as_role: Any, store: Store) -> None:
    def write(db: Any) -> None:
        db.execute("INSERT INTO calls (call_id, line, driver, direction, caller, callee,"
                   " started_at) VALUES ('c-t1', 'sim-1', 'sim', 'in', '13800138000',"
                   " '95500', 1780000000.0)")
        db.execute("INSERT INTO acd_entries (key, queue, call_id, caller, language, priority,"
                   " joined_at, answered_by, agent, rings, ring_seconds, hold_count,"
                   " hold_seconds, hung_up_first, survey_score, survey_status) VALUES"
                   " ('e-t1', 'service', 'c-t1', '13800138000', 'zh', 0, 1780000000.0, 's1',"
                   " 'A001', 2, 7.5, 1, 30.0, 'caller', 4, 'scored')")
        for key, kind, to, target, answered, before in (
                ("t1", "consult", "seat", "s2", 1780000010.0, 1),
                ("t2", "blind", "number", "02088880000", None, 0)):
            db.execute("INSERT INTO acd_transfers (key, entry_key, call_id, seat_id, agent,"
                       " kind, target_kind, target, started_at, answered_at,"
                       " answered_before_agent_left) VALUES (?, 'e-t1', 'c-t1', 's1', 'A001',"
                       " ?, ?, ?, ?, ?, ?)",
                       [key, kind, to, target, 1780000005.0 + len(key), answered, before])

    store.write(write)
    agent, _ = as_role("agent")
    html = agent.get("/calls/").get_data(as_text=True)
    assert "咨询转接到坐席 s2（坐席离开前已接听）" in html
    assert "直接转接到号码" in html and "（未接听）" in html
    assert "02088880000" not in html  # an agent lacks see_phone
    # The call's etiquette facts beside it, and summed for the agent in the reports.
    assert "坐席员 A001：振铃 2 声接听 · 保持 1 次，共 30 秒 · 客户先挂机 · 评分 4" in html
    report = as_role("supervisor")[0].get("/reports/?from=2026-05-29&to=2026-05-29")
    cells = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", report.get_data(as_text=True)))
    # calls, within 3 rings, rings, talk, holds, longest hold, caller / agent first,
    # transfers (answered before the agent left), score
    assert "A001 1 1 2.0 0 1 0 1 0 2 (1) 4.00 (1)" in cells
    supervisor, _ = as_role("supervisor")
    assert "直接转接到号码 02088880000（未接听）" in supervisor.get("/calls/").get_data(
        as_text=True)


def test_the_agent_holds_is_reminded_then_consults_and_completes_from_the_console(
        live: LiveEngine, as_role: Any, store: Store) -> None:
    live.acd.hold_remind_after = 1.0
    agent, token = as_role("agent")
    agent.post("/console/seat", data={"csrf_token": token, "seat": "s1"})
    events = sse(agent, "/console/events")
    live.dial("13912345678")
    until(events, "connected")
    assert post(agent, token, "/console/unhold")["status"] == 409  # not on hold yet
    done = post(agent, token, "/console/hold")
    assert done["ok"] and done["message"] == "来电保持中。" and done["result"]["hold"] == 1
    assert until(events, "call")["state"] == "held"
    reminder = until(events, "call")
    assert reminder["reminder"] and reminder["text"] == "来电已保持 1 秒。"
    assert post(agent, token, "/console/unhold")["ok"]
    assert until(events, "call")["state"] == "talking"
    # Bad forms are refused before the engine is asked.
    refused = post(agent, token, "/console/transfer", to="desk", target="s2")
    assert refused["status"] == 400 and "坐席、队列或外部号码" in refused["message"]
    refused = post(agent, token, "/console/transfer", to="seat", target="s2")
    assert refused["status"] == 409 and "s2 is logged-out" in refused["message"]

    async def second_agent() -> None:
        live.acd.login("s2", "A002")

    live.run(second_agent())
    done = post(agent, token, "/console/transfer", to="seat", target="s2", mode="consult")
    assert done["ok"] and done["message"] == "正在咨询 s2，来电保持中。"
    steps = [until(events, "call") for _ in range(3)]
    assert [s.get("step") for s in steps] == [None, "started", "answered"]  # hold first
    assert steps[2]["text"] == "转接到坐席 s2：转接对象已接听"
    done = post(agent, token, "/console/consult/complete")
    assert done["ok"] and done["message"] == "已转接：来电已接通转接对象。"
    assert until(events, "seat")["state"] == "wrap-up"
    events.close()
    actions = [r["action"] for r in store.query("SELECT action FROM audit_log ORDER BY id")]
    assert [a for a in actions if a.startswith("call.")] == [
        "call.hold", "call.unhold", "call.transfer", "call.transfer_complete"]
    (row,) = store.query("SELECT detail FROM audit_log WHERE action = 'call.transfer'")
    assert json.loads(row["detail"]) == {"transfer_to": "seat", "transfer_target": "s2",
                                         "transfer_mode": "consult"}
