"""The engine's SMS service against the simulated modem on a real pseudo-terminal: queued
rows go out (a long Chinese text as two parts under one reference) and end ``sent``; a
network refusal is retried, then fails with its meaning while the next message still
goes; noise fails the message without sending it twice; received messages become rows
(matched to the customer) and leave the SIM only once committed, never stored twice; no
modem, or a disabled one, leaves the queue waiting and says why."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.box.settings import ModemSettings, save_modem
from appliance.sms import messages
from appliance.sms.service import SmsService
from appliance.store.db import Store
from drivers.gsm.simulated import SimulatedModem
from tests.drivers.gsm.test_sms import CHINESE_100, DELIVER_PDU


class Modem(SimulatedModem):
    """The simulated modem, which also notes whether the store held each received message
    at the moment it was deleted from the SIM, and can refuse deletions (a box that stops
    between the commit and the deletion)."""

    def __init__(self, store: Store, **kwargs: Any) -> None:
        self.db_store = store
        self.stored_when_deleted: list[bool] = []
        self.refuse_delete = False
        super().__init__(**kwargs)

    def _simple(self, upper: str) -> bytes:
        if upper.startswith("AT+CMGD="):
            if self.refuse_delete:
                return b"ERROR"
            stored = self.sim[int(upper.partition("=")[2])]
            rows = self.db_store.query("SELECT 1 FROM sms_messages WHERE sim_key LIKE ?",
                                       [f"%{stored.pdu}%"])
            self.stored_when_deleted.append(bool(rows))
        return super()._simple(upper)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "appliance.db")
    s.write(lambda db: db.execute(
        "INSERT INTO customers (id, name, phone, id_salt, id_hash, id_masked, id_last4)"
        " VALUES (7, '王芳', '13900139000', 's', 'h', '1101**********123X', '123X')"))
    yield s
    s.close()


@pytest.fixture
def modem(store: Store) -> Iterator[Modem]:
    m = Modem(store)
    yield m
    m.close()


def enable(store: Store, modem: SimulatedModem, enabled: bool = True) -> None:
    save_modem(store, ModemSettings(modem.path, 115200, "", enabled), by="admin")


def service(store: Store, **kwargs: Any) -> SmsService:
    return SmsService(store, at_timeout=1.0, send_timeout=2.0, **kwargs)


def send(store: Store, number: str, text: str) -> int:
    return store.write(lambda db: messages.queue(db, number, text, by="agent", now=time.time()))


def row(store: Store, message_id: int) -> dict[str, Any]:
    return store.query("SELECT * FROM sms_messages WHERE id = ?", [message_id])[0]


def test_queued_messages_go_out_and_a_long_one_in_two_parts(store: Store,
                                                            modem: Modem) -> None:
    enable(store, modem)
    short, long = send(store, "13800138000", "您好"), send(store, "13800138000", CHINESE_100)
    svc = service(store)
    svc.run_once()
    assert [(row(store, i)["status"], row(store, i)["parts"]) for i in (short, long)] == [
        ("sent", 1), ("sent", 2)]
    assert row(store, long)["refs"] == "2,3" and row(store, long)["sent_at"] is not None
    texts = [s["text"] for s in modem.sent]
    assert texts[0] == "您好" and "".join(texts[1:]) == CHINESE_100
    refs = {s["udh"][0].reference for s in modem.sent[1:]}
    assert len(refs) == 1 and refs == {row(store, long)["reference"]}
    assert messages.service_state(store)["state"] == "ready"


def test_a_refusal_is_retried_then_fails_with_its_meaning_and_the_next_still_goes(
        store: Store, modem: Modem) -> None:
    modem.on_submit = lambda pdu: b"+CMS ERROR: 38" if pdu["number"] == "13800000001" \
        else None
    enable(store, modem)
    bad, good = send(store, "13800000001", "第一条"), send(store, "13800138000", "第二条")
    svc = service(store, max_attempts=2, retry_after=0.0)
    svc.run_once()
    assert row(store, bad)["status"] == "queued"
    assert "network out of order (try 1 of 2)" in row(store, bad)["error"]
    assert row(store, good)["status"] == "sent"
    svc.run_once()
    failed = row(store, bad)
    assert (failed["status"], failed["attempts"]) == ("failed", 2)
    assert failed["error"].endswith("+CMS ERROR 38: network out of order")
    assert [s["text"] for s in modem.sent] == ["第二条"]


def test_a_modem_that_gives_no_prompt_sent_nothing_so_the_message_is_tried_again(
        store: Store, modem: Modem) -> None:
    enable(store, modem)
    modem.prompt = False
    queued = send(store, "13800138000", "再试一次")
    svc = service(store, retry_after=0.0)
    svc.run_once()
    waiting = row(store, queued)
    assert (waiting["status"], waiting["attempts"]) == ("queued", 1)
    assert "no prompt within 1 s (try 1 of 3)" in waiting["error"]
    assert messages.service_state(store)["state"] == "error"
    modem.prompt = True
    svc.run_once()
    assert row(store, queued)["status"] == "sent"
    assert [s["text"] for s in modem.sent] == ["再试一次"]


def test_noise_fails_the_message_once_and_the_next_goes_after_a_reopen(
        store: Store, modem: Modem) -> None:
    modem.on_submit = lambda pdu: b"\xf8\x80\x00\xfe" if pdu["text"] == "噪声" else None
    enable(store, modem)
    bad, good = send(store, "13800138000", "噪声"), send(store, "13800138000", "正常")
    svc = service(store)
    svc.run_once()
    failed = row(store, bad)
    assert failed["status"] == "failed" and "the reply is not text" in failed["error"]
    assert "not sent again by itself" in failed["error"]
    svc.run_once()
    assert row(store, good)["status"] == "sent"
    assert modem.commands.count("AT+CMGF=0") == 2  # the port was opened afresh


def test_received_messages_are_stored_then_deleted_and_never_twice(store: Store,
                                                                   modem: Modem) -> None:
    enable(store, modem)
    modem.deliver("+8613900139000", CHINESE_100)  # a customer's number, as the network says
    modem.store(DELIVER_PDU)
    modem.store("07915892000000F0040B9158922143")  # garbled: index 4
    svc = service(store)
    modem.refuse_delete = True  # the box "stops" between the commit and the deletion
    svc.run_once()
    assert len(modem.sim) == 4
    modem.refuse_delete = False
    svc.run_once()
    assert modem.sim == {} and modem.stored_when_deleted == [True] * 4
    rows = store.query("SELECT * FROM sms_messages ORDER BY id")
    assert [(r["direction"], r["status"], r["number"], r["text"], r["parts"],
             r["customer_id"]) for r in rows[:2]] == [
        ("in", "received", "+8613900139000", CHINESE_100, 2, 7),
        ("in", "received", "+85291234567",
         "It is easy to read text messages via AT commands.", 1, None)]
    assert rows[1]["sent_at"] == pytest.approx(1176391542.0)  # 2007-04-12 23:25:42 +08:00
    garbled = rows[2]
    assert garbled["text"] == "07915892000000F0040B9158922143"
    assert garbled["error"].startswith("message 4: the PDU does not decode")
    assert len(rows) == 3


def test_a_part_whose_partner_never_comes_is_kept_after_the_wait(store: Store,
                                                                 modem: Modem) -> None:
    enable(store, modem)
    first, _second = modem.deliver("13900139000", CHINESE_100)
    del modem.sim[_second]
    now = [1000.0]
    svc = service(store, clock=lambda: now[0], partial_wait=600.0)
    svc.run_once()
    assert first in modem.sim and not store.query("SELECT 1 FROM sms_messages")
    now[0] += 600
    svc.run_once()
    kept = store.query("SELECT text, error, customer_id FROM sms_messages")[0]
    assert kept == {"text": CHINESE_100[:67], "error": "only some parts of this message "
                    "arrived", "customer_id": 7}
    assert modem.sim == {}


def test_without_a_modem_messages_wait_and_the_state_says_why(store: Store,
                                                              modem: Modem) -> None:
    queued = send(store, "13800138000", "等一等")
    svc = service(store)
    svc.run_once()
    assert row(store, queued)["status"] == "queued"
    assert messages.service_state(store)["detail"] == "no modem configured"
    enable(store, modem, enabled=False)
    svc.run_once()
    assert messages.service_state(store)["detail"] == f"{modem.path}: disabled"
    assert row(store, queued)["status"] == "queued" and modem.commands == []
    save_modem(store, ModemSettings("/dev/ttyUSB97", 115200, "", True), by="admin")
    svc.run_once()
    state = messages.service_state(store)
    assert state["state"] == "error" and "/dev/ttyUSB97: no such device" in state["detail"]
    enable(store, modem)
    svc.run_once()
    assert row(store, queued)["status"] == "sent"


def test_the_thread_sends_and_a_message_cut_off_by_a_stop_is_not_resent(
        store: Store, modem: Modem) -> None:
    enable(store, modem)
    cut = send(store, "13800138000", "发送中断")
    store.write(lambda db: db.execute("UPDATE sms_messages SET status = 'sending'"))
    fresh = send(store, "13800138000", "新的一条")
    events: list[tuple[str, dict[str, Any]]] = []
    svc = service(store, poll=0.05, on_event=lambda kind, data: events.append((kind, data)))
    svc.start()
    try:
        deadline = time.monotonic() + 5
        while row(store, fresh)["status"] != "sent" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        svc.stop()
    assert row(store, fresh)["status"] == "sent"
    assert (row(store, cut)["status"], row(store, cut)["error"]) == ("failed",
                                                                     messages.INTERRUPTED)
    assert [s["text"] for s in modem.sent] == ["新的一条"]
    assert ("sent", {"id": fresh, "number": "13800138000", "text": "新的一条", "refs": [1]}) \
        in events
