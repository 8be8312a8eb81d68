"""Click-to-dial and a supervisor's listen-in through Flask's test client, against a real
engine (real clock, simulated exchange) over its control API. An agent, who may not see
customers' numbers, dials a customer from the customer's page: the customer's simulated
phone is rung and answers, and the number appears in no page, JSON answer or event the
agent's browser gets. A supervisor rings their own seat's phone to listen in on an agent,
switches to whisper and leaves; each step is in the audit log."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask

from appliance.store.db import Store
from drivers.sim import CallerBot
from tests.control.live import LiveEngine
from tests.web.test_console import live, post, sse  # noqa: F401 (live: the fixture)
from web.supervisor import figures, today


def wait(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def customer_phone(engine: LiveEngine, number: str) -> CallerBot:
    """The customer's own phone on the exchange: it rings, then answers."""
    async def subscribe() -> CallerBot:
        bot = CallerBot(engine.exchange, number, name="customer")
        engine.exchange.subscribe(number, bot, answer_after=1.0, signal_answer=True)
        engine.callers.append(bot)
        return bot

    return engine.run(subscribe())


def customer_with_phone(store: Store) -> dict[str, Any]:
    (row,) = store.query("SELECT id, name, phone FROM customers WHERE phone IS NOT NULL"
                         " ORDER BY id LIMIT 1")
    return row


def events_until(events: Iterator[tuple[str, dict[str, Any]]], kind: str,
                 test: Callable[[dict[str, Any]], bool],
                 seen: list[str]) -> dict[str, Any]:
    for got, data in events:
        seen.append(json.dumps(data, ensure_ascii=False))
        if got == kind and test(data):
            return data
    raise AssertionError(f"the stream ended before the {kind} event")


def test_an_agent_dials_a_customer_without_ever_getting_the_number(
        live: LiveEngine, as_role: Any, store: Store) -> None:  # noqa: F811 (the fixture)
    customer = customer_with_phone(store)
    number = customer["phone"]
    phone = customer_phone(live, number)
    agent, token = as_role("agent")
    form = {"customer": str(customer["id"]), "phone": "phone"}
    refused = post(agent, token, "/console/dial", **form)
    assert (refused["status"], refused["message"]) == (409, "请先登录坐席。")
    assert agent.post("/console/seat", data={"csrf_token": token, "seat": "s1"}).status_code \
        == 302
    page = agent.get(f"/customers/{customer['id']}").get_data(as_text=True)
    assert number not in page and 'action="/console/dial"' in page
    assert f"拨打 {number[:3]}****{number[-4:]}" in page
    assert post(agent, token, "/console/dial", customer="x", phone="phone")["status"] == 400
    assert post(agent, token, "/console/dial", customer="1", phone="fax")["status"] == 400
    assert post(agent, token, "/console/dial", customer="999999", phone="phone")["status"] \
        == 404
    events = sse(agent, "/console/events")
    done = agent.post("/console/dial", data={"csrf_token": token, **form},
                      headers={"Accept": "application/json"})
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and done.get_json()["ok"] and number not in body
    assert customer["name"] in done.get_json()["message"]
    seen: list[str] = []
    ringing = events_until(events, "dial", lambda d: d["action"] == "ringing-customer", seen)
    # The seat answered (its phone answers by itself) before the customer was rung.
    assert live.seat_phones["s1"].connected
    assert events_until(events, "dial", lambda d: d["action"] == "answered", seen)
    assert events_until(events, "connected", lambda d: True, seen)["call"] == ringing["call"]
    events.close()
    assert wait(lambda: phone.connected)
    assert number not in "".join(seen)
    page = agent.get("/console/").get_data(as_text=True)
    assert 'data-state="talking"' in page and number not in page
    live.run(phone.hangup())
    assert wait(lambda: bool(store.query(
        "SELECT 1 FROM acd_dials WHERE outcome = 'answered'")))
    (audit,) = store.query("SELECT username, target, detail FROM audit_log"
                           " WHERE action = 'call.dial'")
    assert (audit["username"], audit["target"]) == ("agent", str(customer["id"]))
    assert number not in audit["detail"] and '"seat": "s1"' in audit["detail"]
    # A supervisor (see_phone) sees the number in full on the same page.
    boss, _ = as_role("supervisor")
    assert number in boss.get(f"/customers/{customer['id']}").get_data(as_text=True)


def test_a_supervisor_listens_in_switches_to_whisper_and_leaves(
        live: LiveEngine, as_role: Any, store: Store) -> None:  # noqa: F811 (the fixture)
    agent, agent_token = as_role("agent")
    agent.post("/console/seat", data={"csrf_token": agent_token, "seat": "s1"})
    boss, token = as_role("supervisor")
    boss.post("/console/seat", data={"csrf_token": token, "seat": "s2"})  # their own phone
    post(boss, token, "/console/state", state="not-ready", reason="meeting")
    live.dial("13700002222")
    assert wait(lambda: live.acd.seats["s1"].state.value == "talking")
    page = boss.get("/supervisor/").get_data(as_text=True)
    assert 'name="seat" value="s1"' in page
    assert '<option value="s2" selected>' in page  # the supervisor's own seat, by default
    assert agent.post("/supervisor/listen", data={"csrf_token": agent_token, "seat": "s1",
                                                  "phone": "s2", "mode": "listen"}
                      ).status_code == 403
    res = boss.post("/supervisor/listen", data={"csrf_token": token, "seat": "s1",
                                                "phone": "s2", "mode": "listen"},
                    follow_redirects=True)
    assert "坐席 s2 的电话正在振铃：接听后开始监听。" in res.get_data(as_text=True)
    boss_phone = live.seat_phones["s2"]
    assert wait(lambda: boss_phone.connected)
    assert wait(lambda: any(m.joined for m in list(live.acd.monitors.values())))
    (key,) = list(live.acd.monitors)
    page = boss.get("/supervisor/").get_data(as_text=True)
    assert f'data-monitor="{key}"' in page and "静默监听" in page
    res = boss.post("/supervisor/listen/mode", data={"csrf_token": token, "monitor": key,
                                                     "mode": "whisper"},
                    follow_redirects=True)
    assert "当前：对坐席耳语" in res.get_data(as_text=True)
    assert live.acd.monitors[key].mode == "whisper"
    res = boss.post("/supervisor/listen/stop", data={"csrf_token": token, "monitor": key},
                    follow_redirects=True)
    assert "您已退出监听，通话继续。" in res.get_data(as_text=True)
    assert wait(lambda: not boss_phone.connected)
    assert live.seat_phones["s1"].connected  # the agent's call goes on
    res = boss.post("/supervisor/listen/stop", data={"csrf_token": token, "monitor": key},
                    follow_redirects=True)
    assert "呼叫引擎拒绝" in res.get_data(as_text=True)
    rows = store.query("SELECT action, target, detail FROM audit_log"
                       " WHERE action LIKE 'supervisor.%' ORDER BY id")
    assert [(r["action"], r["target"]) for r in rows] == [
        ("supervisor.listen", "s1"), ("supervisor.listen_mode", "s1"),
        ("supervisor.listen_stop", "s1")]
    assert all(key in r["detail"] for r in rows)


def test_dialled_calls_are_the_seats_not_the_queues_in_the_figures(app: Flask,
                                                                   store: Store) -> None:
    now = time.time()

    def write(db: Any) -> None:
        for key, outcome, seat in (("q", "answered", "s1"), ("d", "dialled", "s1"),
                                   ("f", "dial-failed", None)):
            db.execute("INSERT INTO acd_entries (key, queue, call_id, caller, language,"
                       " priority, joined_at, ended_at, outcome, waited_seconds, answered_by,"
                       " talk_seconds) VALUES (?, 'service', ?, '139', 'zh', 0, ?, ?, ?, 4,"
                       " ?, 60)", [key, f"c-{key}", now - 100, now - 10, outcome, seat])

    store.write(write)
    with app.test_request_context():
        day = figures(*today(), service_seconds=20)
    assert (day["offered"], day["answered"], day["abandoned"]) == (1, 1, 0)
    assert [(r["seat"], r["calls"]) for r in day["per_seat"]] == [("s1", 2)]
