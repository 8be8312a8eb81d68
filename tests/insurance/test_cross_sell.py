"""Cross-sell and service hints from a customer's holdings."""

from __future__ import annotations

from datetime import date

from appliance.insurance.cross_sell import Hint, Holding, hints

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
