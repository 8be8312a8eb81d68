"""The screen pop's lookup on the demo book: by the policy number keyed, else by the
caller's number (not when two customers share it), with policies, open claims only, and
the last calls from the number with their wrap-up codes."""

from __future__ import annotations

from typing import Any

from appliance.store.db import Store
from web.screenpop import find


def test_found_by_policy_or_number_with_claims_and_last_calls(store: Store) -> None:
    (p,) = store.query("SELECT p.number, p.holder_id, c.phone FROM policies p JOIN customers c"
                       " ON c.id = p.holder_id WHERE c.phone IS NOT NULL ORDER BY p.number"
                       " LIMIT 1")

    def write(db: Any) -> None:
        db.execute("DELETE FROM claims")
        for case, status in (("C1", "investigating"), ("C2", "paid")):
            db.execute("INSERT INTO claims (case_number, policy_number, reported_at, status)"
                       " VALUES (?, ?, '2026-11-20', ?)", [case, p["number"], status])
        for i in range(7):
            db.execute("INSERT INTO calls (call_id, line, driver, direction, caller, callee,"
                       " started_at, ended_at) VALUES (?, 'sim-1', 'sim', 'in', '13900001111',"
                       " '95500', ?, ?)", [f"pc{i}", 1000.0 + i, 1010.0 + i])
        db.execute("INSERT INTO call_wrapups (call_id, seat_id, agent, code, note, at) VALUES"
                   " ('pc6', 's1', 'agent', 'payment', '问缴费', 1020)")

    store.write(write)
    pop = find(store, "13900001111", p["number"])
    assert (pop["by"], pop["customer"]["id"], pop["keyed"]) == ("policy", p["holder_id"],
                                                                p["number"])
    assert pop["policies"][0]["number"] == p["number"]  # the keyed one first
    assert [c["case_number"] for c in pop["claims"]] == ["C1"]  # paid is not open
    assert [c["call_id"] for c in pop["calls"]] == ["pc6", "pc5", "pc4", "pc3", "pc2"]
    assert (pop["calls"][0]["wrap_code"], pop["calls"][0]["wrap_note"]) == ("payment", "问缴费")

    by_phone = find(store, p["phone"], "")
    assert (by_phone["by"], by_phone["customer"]["id"]) == ("phone", p["holder_id"])
    assert find(store, "13900001111", "000")["customer"] is None  # no such policy or phone
    store.write(lambda db: db.execute("UPDATE customers SET phone = ? WHERE id IN"
                                      " (SELECT id FROM customers ORDER BY id LIMIT 2)",
                                      [p["phone"]]))
    assert find(store, p["phone"], "")["customer"] is None  # shared: names nobody
