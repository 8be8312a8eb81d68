"""The screen pop: who is calling, found by the policy number they keyed in the IVR or else
by their number, with their policies, last calls and open claims. Read-only queries on the
indexes the book already has (policy number, holder, customer phone, calls by caller,
claims by policy)."""

from __future__ import annotations

from typing import Any

from appliance.store.db import Store

OPEN_CLAIMS = ("reported", "investigating", "approved")
OPEN_ORDERS = ("open", "in_progress")  # orders (F9) the seat should know are pending
LAST_CALLS = 5


def find(store: Store, caller: str, policy: str) -> dict[str, Any]:
    """What the seat sees: ``customer`` (or None), how they were found (``by``: policy,
    phone or None), their ``policies``, ``calls`` from this number, ``claims`` and
    ``orders`` open."""
    customer: dict[str, Any] | None = None
    by = None
    keyed = None
    if policy:
        rows = store.query(
            "SELECT c.id, c.name, c.sex, c.birthday, c.phone, c.id_masked FROM policies p"
            " JOIN customers c ON c.id = p.holder_id WHERE p.number = ?", [policy])
        if rows:
            customer, by, keyed = rows[0], "policy", policy
    if customer is None and caller:
        rows = store.query("SELECT id, name, sex, birthday, phone, id_masked FROM customers"
                           " WHERE phone = ? LIMIT 2", [caller])
        if len(rows) == 1:  # a number two customers share names nobody
            customer, by = rows[0], "phone"
    policies: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    if customer is not None:
        orders = store.query(
            "SELECT id, kind, status, policy_number, updated_at FROM orders"
            " WHERE customer_id = ? AND status IN (?, ?) ORDER BY id DESC LIMIT 10",
            [customer["id"], *OPEN_ORDERS])
        policies = store.query(
            "SELECT p.number, pr.name_zh, pr.name_en, p.status, p.sum_insured_fen,"
            " p.premium_fen, p.payment_mode, p.next_due_date, p.next_due_fen,"
            " p.holder_id = :id AS is_holder FROM policies p"
            " JOIN products pr ON pr.code = p.product_code"
            " WHERE p.number IN (SELECT number FROM policies WHERE holder_id = :id"
            " UNION SELECT number FROM policies WHERE insured_id = :id)"
            " ORDER BY p.number = :keyed DESC, p.number LIMIT 20",
            {"id": customer["id"], "keyed": keyed or ""})
        numbers = [p["number"] for p in policies]
        if numbers:
            marks = ", ".join("?" * len(numbers))
            claims = store.query(
                f"SELECT case_number, policy_number, reported_at, status FROM claims"
                f" WHERE policy_number IN ({marks}) AND status IN"
                f" ({', '.join('?' * len(OPEN_CLAIMS))}) ORDER BY reported_at DESC",
                [*numbers, *OPEN_CLAIMS])
    calls = store.query(
        "SELECT c.call_id, c.started_at, c.answered_at, c.ended_at, c.end_cause,"
        " w.code AS wrap_code, w.note AS wrap_note FROM calls c"
        " LEFT JOIN call_wrapups w ON w.call_id = c.call_id"
        " WHERE c.caller = ? AND c.ended_at IS NOT NULL"
        " ORDER BY c.started_at DESC LIMIT ?", [caller, LAST_CALLS]) if caller else []
    return {"customer": customer, "by": by, "keyed": policy, "policies": policies,
            "claims": claims, "orders": orders, "calls": calls}


__all__ = ["find"]
