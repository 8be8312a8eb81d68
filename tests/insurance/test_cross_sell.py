"""Cross-sell and service hints from a customer's holdings."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from appliance.insurance.cross_sell import (
    Hint,
    Holding,
    PeerCache,
    PeerGroup,
    hints,
    peer_counts,
)
from appliance.store.db import Store

TODAY = date(2026, 11, 26)
PRODUCTS = {"term_life": "TL20", "accident": "ACC1", "critical_illness": "CI30",
            "motor": "MOT1"}


def _reasons(holdings: list[Holding], birthday: date | None = date(1990, 5, 1)) -> list[Hint]:
    return hints(holdings, birthday=birthday, today=TODAY, products_by_kind=PRODUCTS)


def test_service_hints_come_first_then_products() -> None:
    got = _reasons([Holding("P1", "term_life", "in_force", date(2026, 12, 20)),
                    Holding("P2", "motor", "lapsed", None)])
    assert got == [Hint("lapsed", "P2"), Hint("due_soon", "P1"),
                   Hint("add_critical_illness", product_code="CI30")]


def test_due_soon_only_within_thirty_days_and_not_past() -> None:
    assert _reasons([Holding("P", "critical_illness", "in_force", date(2026, 12, 26))]
                    )[0] == Hint("due_soon", "P")
    for due in (date(2026, 12, 27), date(2026, 11, 25), None):
        assert all(h.reason != "due_soon" for h in _reasons(
            [Holding("P", "critical_illness", "in_force", due)]))


def test_what_is_offered_depends_on_what_is_in_force_and_age() -> None:
    motor = Holding("M", "motor", "in_force", None)
    assert [h.product_code for h in _reasons([motor])] == ["ACC1", "TL20"]
    # Too old for term life: only accident.
    assert [h.product_code for h in _reasons([motor], date(1960, 1, 1))] == ["ACC1"]
    # Age is counted to the day: 55 on 26 Nov 2026 if born 26 Nov 1971, 54 the day before.
    assert "TL20" in [h.product_code for h in _reasons([motor], date(1971, 11, 26))]
    assert "TL20" not in [h.product_code for h in _reasons([motor], date(1970, 11, 26))]
    # Life and critical illness both in force: nothing to add.
    assert _reasons([Holding("L", "term_life", "in_force", None),
                     Holding("C", "critical_illness", "in_force", None)]) == []
    # Only surrendered cover: nothing in force, nothing offered.
    assert _reasons([Holding("S", "motor", "surrendered", None)]) == []
    # A product kind not on sale is not offered.
    assert hints([motor], birthday=None, today=TODAY, products_by_kind={}) == []


def _peer_book(tmp_path: Path) -> Store:
    """A book where men in their thirties with motor cover mostly hold critical-illness
    cover too, women of the same age hold accident cover, and men in their fifties term
    life."""
    store = Store(tmp_path / "book.db")

    def fill(db: Database) -> None:
        for kind, code in PRODUCTS.items():
            db.execute("INSERT INTO products (code, name_zh, name_en, kind, min_sum_fen,"
                       " max_sum_fen) VALUES (?, ?, ?, ?, 1, 2)", [code, code, code, kind])
        n = 0

        def customer(sex: str, birthday: str, *kinds: str, status: str = "in_force") -> None:
            nonlocal n
            n += 1
            db.execute("INSERT INTO customers (id, name, sex, birthday, id_salt, id_hash,"
                       " id_masked, id_last4) VALUES (?, ?, ?, ?, '', '', '', '')",
                       [n, f"c{n}", sex, birthday])
            for i, kind in enumerate(kinds):
                db.execute("INSERT INTO policies (number, product_code, holder_id,"
                           " insured_id, status, sum_insured_fen, premium_fen, payment_mode,"
                           " issued_on) VALUES (?, ?, ?, ?, ?, 1, 1, 'annual', '2020-01-01')",
                           [f"P{n}-{i}", PRODUCTS[kind], n, n, status])

        customer("M", "1991-06-01", "motor")  # the customer asking: 35
        for i in range(20):  # men aged 30–39 with motor cover: 15 also critical illness
            customer("M", f"{1988 + i % 8}-03-0{1 + i % 9}", "motor",
                     *(["critical_illness"] if i < 15 else []))
        customer("M", "1986-11-27", "motor")  # 39 until tomorrow: counted
        customer("M", "1986-11-26", "motor")  # 40 today: not counted
        customer("M", "1990-01-01", "motor", status="lapsed")  # nothing in force
        for _ in range(20):  # women the same age: not counted
            customer("F", "1990-02-02", "motor", "accident")
        for _ in range(20):  # men in their fifties: not counted
            customer("M", "1972-02-02", "motor", "term_life")
        customer("M", "1990-05-05", "term_life", "accident")  # no motor: not similar

    store.write(fill)
    return store


def test_similar_customers_are_counted_from_the_book(tmp_path: Path) -> None:
    with _peer_book(tmp_path) as store:
        peers = peer_counts(store.query, customer_id=1, sex="M", birthday=date(1991, 6, 1),
                            holding={"motor"}, today=TODAY)
        anyone = peer_counts(store.query, customer_id=1, sex="M",
                             birthday=date(1991, 6, 1), holding=(), today=TODAY)
    assert peers == PeerGroup("M", 30, 39, ("motor",), 21,
                              {"motor": 21, "critical_illness": 15})
    # Holding nothing in force: every man in his thirties is similar.
    assert anyone is not None and anyone.count == 23
    assert anyone.holders_by_kind == {"motor": 21, "critical_illness": 15, "term_life": 1,
                                      "accident": 1}


def test_similar_customers_hint_comes_after_the_rules_with_its_figures(
        tmp_path: Path) -> None:
    with _peer_book(tmp_path) as store:
        peers = peer_counts(store.query, customer_id=1, sex="M", birthday=date(1991, 6, 1),
                            holding={"motor"}, today=TODAY)
    got = hints([Holding("P1-0", "motor", "in_force", None)], birthday=date(1991, 6, 1),
                today=TODAY, products_by_kind=PRODUCTS, peers=peers)
    assert [(h.reason, h.product_code) for h in got] == [
        ("add_accident", "ACC1"), ("add_term_life", "TL20"), ("similar", "CI30")]
    assert got[-1].peers == peers and got[-1].kind == "critical_illness"
    assert round(got[-1].share, 3) == round(15 / 21, 3)


def test_similar_customer_hints_need_enough_customers_and_share() -> None:
    held = [Holding("X", "motor", "in_force", None)]
    few = PeerGroup("M", 30, 39, ("motor",), 9, {"critical_illness": 9})
    rare = PeerGroup("M", 30, 39, ("motor",), 100, {"critical_illness": 19})
    common = PeerGroup("M", 30, 39, ("motor",), 100, {"critical_illness": 20, "motor": 100})
    ci = {"critical_illness": "CI30", "motor": "MOT1"}
    assert hints(held, birthday=None, today=TODAY, products_by_kind=ci, peers=few) == []
    assert hints(held, birthday=None, today=TODAY, products_by_kind=ci, peers=rare) == []
    # Motor is held already: never offered, however common.
    assert [(h.product_code, h.share) for h in hints(
        held, birthday=None, today=TODAY, products_by_kind=ci, peers=common)
            ] == [("CI30", 0.2)]
    assert peer_counts(lambda sql, params: [], customer_id=1, sex=None,
                       birthday=date(1990, 1, 1), holding=(), today=TODAY) is None


def test_a_band_is_read_once_per_ttl_and_shared_by_its_customers(tmp_path: Path) -> None:
    asked: list[str] = []
    now = [0.0]
    cache = PeerCache(ttl=300, clock=lambda: now[0])
    with _peer_book(tmp_path) as store:
        def query(sql: str, params: Any) -> list[dict[str, Any]]:
            asked.append(sql)
            return store.query(sql, params)

        def ask(customer: int, birthday: date) -> PeerGroup | None:
            return peer_counts(query, customer_id=customer, sex="M", birthday=birthday,
                               holding={"motor"}, today=TODAY, cache=cache)

        first = ask(1, date(1991, 6, 1))
        assert len(asked) == 2
        # Another man of the band: no query, and he is left out of his own peers instead.
        assert ask(2, date(1988, 3, 1)) == PeerGroup(
            "M", 30, 39, ("motor",), 21, {"motor": 21, "critical_illness": 14})
        assert ask(1, date(1991, 6, 1)) == first and len(asked) == 2
        now[0] = 301.0
        assert ask(1, date(1991, 6, 1)) == first and len(asked) == 4
