"""The queues-and-seats page: edits saved as the engine loads them (records.load_*),
checked with the ACD model's own checks (the field named, nothing written), audited, and
offered to a running engine, which takes them live; roles and CSRF."""

from __future__ import annotations

import asyncio
import html
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.acd import Acd, QueueConfig, SeatConfig, Strategy, records
from appliance.control import ControlServer
from appliance.store.db import Store

SEATS = [SeatConfig("s1", "8001", name="坐席一"), SeatConfig("s2", "8002", name="坐席二")]
SERVICE = QueueConfig("service", Strategy.LONGEST_IDLE, members={"s1": 0, "s2": 1},
                      ring_timeout=15.0)


@pytest.fixture
def saved(store: Store) -> Store:
    """The box as an engine left it: two seats and the service queue."""
    store.write(lambda db: records.replace_config(db, SEATS, [SERVICE], 1.0))
    return store


def queue_form(token: str, **changes: str) -> dict[str, str]:
    form = {"csrf_token": token, "name": "service", "strategy": "round-robin",
            "ring_timeout": "8", "max_wait": "120", "overflow": "callback", "wrap_up": "5",
            "announce_every": "20", "skills": "", "member_s1": "1", "penalty_s1": "0",
            "member_s2": "1", "penalty_s2": "2", "auto_pause": "1"}
    form.update(changes)
    return form


def test_a_queue_edit_is_what_the_engine_loads_next(as_role: Any, saved: Store) -> None:
    client, token = as_role("admin")
    html = client.get("/settings/acd/").get_data(as_text=True)
    assert 'id="queue-service"' in html and "坐席二" in html
    res = client.post("/settings/acd/queues", data=queue_form(token))
    assert res.status_code == 303
    (queue,) = records.load_queues(saved)
    assert (queue.strategy, queue.ring_timeout, queue.max_wait, queue.overflow.value,
            queue.wrap_up, queue.announce_every, dict(queue.members)) == (
        Strategy.ROUND_ROBIN, 8.0, 120.0, "callback", 5.0, 20.0, {"s1": 0, "s2": 2})
    # The engine loads exactly this (the same records functions `appliance engine` uses).
    acd = Acd(records.load_seats(saved), records.load_queues(saved))
    assert acd.queues["service"].config.ring_timeout == 8.0
    (row,) = saved.query("SELECT detail FROM audit_log WHERE action = 'acd.queue_save'")
    assert '"ring_timeout": 8.0' in row["detail"] and '"ring_timeout": 15.0' in row["detail"]
    # No engine runs in this test: the page says when the change applies.
    page = client.get("/settings/acd/").get_data(as_text=True)
    assert "下次启动" in page or "next engine start" in page


@pytest.mark.parametrize(("change", "said"), [
    ({"ring_timeout": "0"}, "ring_timeout 0.0: expected a number >= 1.0"),
    ({"max_wait": "soon"}, "'soon'"),
    ({"penalty_s2": "-1"}, "member 's2' penalty -1"),
    ({"penalty_s2": "x"}, "s2"),
    ({"strategy": "random"}, "Not saved: Strategy: choose one"),
    ({"name": "new queue!"}, "queue name 'new queue!'"),
])
def test_bad_queue_values_are_named_and_nothing_changes(as_role: Any, saved: Store,
                                                         change: dict[str, str],
                                                         said: str) -> None:
    client, token = as_role("admin")
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    res = client.post("/settings/acd/queues", data=queue_form(token, **change))
    assert res.status_code == 400
    assert said in html.unescape(res.get_data(as_text=True))
    assert records.load_queues(saved) == [SERVICE]
    assert not saved.query("SELECT 1 FROM audit_log WHERE action LIKE 'acd.%'")


def test_seats_added_edited_and_removed_within_the_model_limits(as_role: Any,
                                                                saved: Store) -> None:
    client, token = as_role("admin")
    res = client.post("/settings/acd/seats", data={
        "csrf_token": token, "id": "s3", "name": "耳麦", "driver": "sound", "number": "8003",
        "skills": "zh:2, en"})
    assert res.status_code == 303
    s3 = next(s for s in records.load_seats(saved) if s.id == "s3")
    assert (s3.driver, s3.number, dict(s3.skills)) == ("sound", "8003", {"zh": 2, "en": 1})
    bad = client.post("/settings/acd/seats", data={
        "csrf_token": token, "id": "s2", "name": "x", "driver": "sim", "number": "80-02"})
    assert bad.status_code == 400
    assert "number '80-02' is not a dialable" in html.unescape(bad.get_data(as_text=True))
    assert next(s for s in records.load_seats(saved) if s.id == "s2").number == "8002"
    for i in range(4, 9):
        assert client.post("/settings/acd/seats", data={
            "csrf_token": token, "id": f"s{i}", "driver": "sim", "number": f"800{i}"}
        ).status_code == 303
    ninth = client.post("/settings/acd/seats", data={
        "csrf_token": token, "id": "s9", "driver": "sim", "number": "8009"})
    assert ninth.status_code == 400 and "1 to 8 seats" in ninth.get_data(as_text=True)
    assert len(records.load_seats(saved)) == 8
    # Removing a seat takes it out of the queue's members.
    assert client.post("/settings/acd/seats/s2/delete", data={"csrf_token": token}
                       ).status_code == 303
    assert dict(records.load_queues(saved)[0].members) == {"s1": 0}
    # The last member of a queue cannot go: the queue would ring every seat instead.
    res = client.post("/settings/acd/seats/s1/delete", data={"csrf_token": token})
    assert res.status_code == 400 and "唯一成员" in res.get_data(as_text=True)


def test_a_queue_the_ivr_transfers_to_is_not_removed(as_role: Any, saved: Store) -> None:
    client, token = as_role("admin")
    from appliance.ivr import versions
    from web.flows import DEFAULT_FLOW

    versions.seed(saved, DEFAULT_FLOW, now=1.0)  # published, as the engine does at start
    res = client.post("/settings/acd/queues/service/delete", data={"csrf_token": token})
    assert res.status_code == 400 and "operator" in res.get_data(as_text=True)
    assert [q.name for q in records.load_queues(saved)] == ["service"]


def test_only_the_admin_edits_and_csrf_is_required(as_role: Any, saved: Store) -> None:
    admin, _ = as_role("admin")
    assert admin.post("/settings/acd/queues", data=queue_form("")).status_code == 400
    sup, token = as_role("supervisor")
    assert sup.get("/settings/acd/").status_code == 200
    assert sup.post("/settings/acd/queues", data=queue_form(token)).status_code == 403
    assert records.load_queues(saved) == [SERVICE]


@pytest.fixture
def engine_running(saved: Store, data_dir: Path) -> Iterator[Acd]:
    """An ACD with its control API on its own loop and thread, as the engine serves it."""
    acd = Acd(SEATS, [SERVICE])
    loop = asyncio.new_event_loop()
    server = ControlServer(acd, data_dir, store=saved)
    # The loop lives only in its thread (Playwright's tests leave one marked running here).
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
    yield acd
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_a_running_engine_takes_the_edit_at_once(as_role: Any, saved: Store,
                                                 engine_running: Acd) -> None:
    client, token = as_role("admin")
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    res = client.post("/settings/acd/queues", data=queue_form(token, ring_timeout="6"),
                      follow_redirects=True)
    assert "applied to the running engine" in res.get_data(as_text=True)
    assert engine_running.queues["service"].config.ring_timeout == 6.0
    assert engine_running.queues["service"].config.strategy is Strategy.ROUND_ROBIN
    # A seat logged in at the engine cannot be removed live: saved, and the page says so.
    engine_running.login("s2", "A002")
    client.post("/settings/acd/queues", data=queue_form(token, member_s2=""))
    res = client.post("/settings/acd/seats/s2/delete", data={"csrf_token": token},
                      follow_redirects=True)
    page = res.get_data(as_text=True)
    assert "keeps its current settings until it restarts" in page and "log it out" in page
    assert "s2" in engine_running.seats
    assert [s.id for s in records.load_seats(saved)] == ["s1"]
