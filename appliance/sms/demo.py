"""``make run``'s SMS: a simulated GSM modem on a pseudo-terminal, so a newcomer sees one
message sent through the whole path (a queued row, the service, AT+CMGS in PDU mode) and
one received (a customer's question on the SIM, stored as a row, deleted from the SIM).

The modem row of the store is pointed at the simulated modem only when no one else set it
(absent, or written by an earlier ``make run``): a modem the admin configured is left as
it is, and then the demo has no simulated one.
"""

from __future__ import annotations

import time
from typing import Any, Final

from appliance.box.settings import ModemSettings, load_modem, save_modem
from appliance.sms import messages
from appliance.store.db import Store
from drivers.gsm.simulated import SimulatedModem

DEMO_BY: Final = "make run"
OUTGOING: Final = ("尊敬的客户：您的保单下期保费即将到期，请按时缴费以免影响保障。"
                   "如有疑问请致电95500。")
INCOMING: Final = "你好，我想问一下我的保单下次缴费是什么时候？谢谢。"


def start_demo_modem(store: Store) -> SimulatedModem | None:
    """The simulated modem, set as the box's enabled modem; None when the admin has
    configured a modem of their own."""
    updated_by = store.query("SELECT updated_by FROM sms_modem WHERE id = 1")
    if load_modem(store) is not None and updated_by[0]["updated_by"] != DEMO_BY:
        return None
    modem = SimulatedModem()
    save_modem(store, ModemSettings(modem.path, 115200, "", True), by=DEMO_BY)
    return modem


def stop_demo_modem(store: Store, modem: SimulatedModem) -> None:
    """Close the simulated modem and disable its row (see :func:`forget_demo_modem`)."""
    modem.close()
    forget_demo_modem(store)


def forget_demo_modem(store: Store) -> bool:
    """Disable the modem row an earlier ``make run`` left enabled (it was stopped, or
    killed before it could say so); True when there was one. Its pseudo-terminal is gone,
    and the kernel gives the number to the next terminal opened, perhaps an admin's SSH
    session: an engine would write AT commands into it and set it raw."""
    # One statement: the check and the change cannot be split by the admin saving a modem.
    return store.write(lambda db: db.execute(
        "UPDATE sms_modem SET enabled = 0, updated_at = ? WHERE id = 1 AND enabled"
        " AND updated_by = ?", [time.time(), DEMO_BY]).rowcount) == 1


def demo_traffic(store: Store, modem: SimulatedModem) -> dict[str, Any] | None:
    """Queue a premium reminder to a demo customer and have the same customer's question
    arrive on the SIM; the customer, or None when the book has no one with a phone."""
    rows = store.query("SELECT id, name, phone FROM customers WHERE phone IS NOT NULL"
                       " AND phone != '' ORDER BY id LIMIT 1")
    if not rows:
        return None
    c = rows[0]
    store.write(lambda db: messages.queue(db, c["phone"], OUTGOING, by=DEMO_BY,
                                          now=time.time(), customer_id=c["id"]))
    modem.deliver("+86" + c["phone"], INCOMING)
    return c


__all__ = ["DEMO_BY", "demo_traffic", "forget_demo_modem", "start_demo_modem", "stop_demo_modem"]
