"""Premium quotes from the rate tables: the one computation the IVR and the admin share.

A product's rate table (table ``rates``) holds one row a cell, keyed by the dimensions the
product is priced on: age band, sex, term and payment mode for life, accident and critical
illness cover; vehicle-value band and seats for motor. A NULL dimension in a row means the
product is not priced on it. The premium a payment is::

    premium = base + sum_insured / 1000 × rate_per_1000

(``base`` is zero except for motor, where the sum insured is the vehicle's value), computed
in :class:`~decimal.Decimal` and rounded once, at the end, half-up to the fen (0.01 yuan),
as a premium notice prints it. Monthly and single rates are cells of their own, not derived
from the annual rate at quote time, so a quote always equals what the rate table says.

Bad parameters raise :class:`ValueError` naming the parameter and what was wrong, and
nothing is written: a quote only reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from appliance.store.db import Store

FEN = Decimal("0.01")
SEXES = ("M", "F")
PAYMENT_MODES = ("annual", "monthly", "single")
KINDS = ("term_life", "accident", "critical_illness", "motor")


def to_fen(amount: Decimal) -> int:
    """Yuan (already rounded to the fen) as integer fen, as the database stores money."""
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


def from_fen(fen: int) -> Decimal:
    """Integer fen as yuan with two places."""
    return (Decimal(fen) / 100).quantize(FEN)


def round_fen(amount: Decimal) -> Decimal:
    """Round half-up to the fen (0.01 yuan)."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Product:
    code: str
    name_zh: str
    name_en: str
    kind: str
    min_sum: Decimal
    max_sum: Decimal


@dataclass(frozen=True)
class RateRow:
    age_min: int | None
    age_max: int | None
    sex: str | None
    term: int | None
    payment_mode: str | None
    value_min: Decimal | None
    value_max: Decimal | None
    seats_min: int | None
    seats_max: int | None
    rate_per_1000: Decimal
    base: Decimal

    @classmethod
    def from_db(cls, row: Mapping[str, Any]) -> RateRow:
        def money(key: str) -> Decimal | None:
            return None if row[key] is None else from_fen(row[key])

        return cls(
            age_min=row["age_min"], age_max=row["age_max"], sex=row["sex"], term=row["term"],
            payment_mode=row["payment_mode"], value_min=money("value_min_fen"),
            value_max=money("value_max_fen"), seats_min=row["seats_min"],
            seats_max=row["seats_max"], rate_per_1000=Decimal(row["rate_per_1000"]),
            base=from_fen(row["base_fen"]),
        )


@dataclass(frozen=True)
class Quote:
    product_code: str
    sum_insured: Decimal
    payment_mode: str | None
    rate_per_1000: Decimal
    base: Decimal
    premium: Decimal  # one payment in the payment mode, rounded to the fen


class RateTable:
    """One product's rate rows, ready to quote from without touching the database."""

    def __init__(self, product: Product, rows: Iterable[RateRow]) -> None:
        self.product = product
        self.rows = list(rows)
        if not self.rows:
            raise ValueError(f"product {product.code} has no rate table")
        # Which dimensions this product is priced on: those some row sets.
        self.ages = sorted({(r.age_min, r.age_max) for r in self.rows if r.age_min is not None},
                           key=lambda band: band[0] or 0)
        self.sexes = sorted({r.sex for r in self.rows if r.sex is not None})
        self.terms = sorted({r.term for r in self.rows if r.term is not None})
        self.modes = sorted({r.payment_mode for r in self.rows if r.payment_mode is not None})
        self.by_value = any(r.value_min is not None for r in self.rows)
        self.by_seats = any(r.seats_min is not None for r in self.rows)
        # Rows grouped by the exact-match dimensions, so a quote scans a handful of rows
        # (the demo loader quotes 100 000 policies through this).
        self._index: dict[tuple[str | None, int | None, str | None], list[RateRow]] = {}
        for r in self.rows:
            self._index.setdefault((r.sex, r.term, r.payment_mode), []).append(r)

    def quote(
        self,
        sum_insured: Decimal | int | str,
        *,
        age: int | None = None,
        sex: str | None = None,
        term: int | None = None,
        payment_mode: str | None = None,
        seats: int | None = None,
    ) -> Quote:
        p = self.product
        try:
            amount = Decimal(sum_insured)
        except (InvalidOperation, TypeError, ValueError):
            raise ValueError(f"sum_insured {sum_insured!r} is not an amount") from None
        if not amount.is_finite() or amount <= 0:
            raise ValueError(f"sum_insured must be a positive amount, got {sum_insured!r}")
        if amount != round_fen(amount):
            raise ValueError(f"sum_insured {sum_insured!r} has more places than fen")
        if not p.min_sum <= amount <= p.max_sum:
            raise ValueError(f"sum_insured {amount} is outside {p.code}'s range "
                             f"{p.min_sum}–{p.max_sum}")
        if self.ages:
            age = _need("age", age, p.code)
            lo, hi = self.ages[0][0], max(band[1] or 0 for band in self.ages)
            if not (lo or 0) <= age <= hi:
                raise ValueError(f"age {age} is outside {p.code}'s rate table ({lo}–{hi})")
        if self.sexes:
            sex = _need("sex", sex, p.code)
            if sex not in self.sexes:
                raise ValueError(f"sex {sex!r} is not one of {', '.join(self.sexes)}")
        if self.terms:
            term = _need("term", term, p.code)
            if term not in self.terms:
                raise ValueError(f"term {term} is not offered for {p.code} "
                                 f"(terms: {', '.join(map(str, self.terms))})")
        if self.modes:
            payment_mode = _need("payment_mode", payment_mode, p.code)
            if payment_mode not in self.modes:
                raise ValueError(f"payment_mode {payment_mode!r} is not offered for {p.code} "
                                 f"(modes: {', '.join(self.modes)})")
        if self.by_seats:
            seats = _need("seats", seats, p.code)
            if seats < 1:
                raise ValueError(f"seats must be at least 1, got {seats}")
        key = (sex if self.sexes else None, term if self.terms else None,
               payment_mode if self.modes else None)
        for r in self._index.get(key, ()):
            if r.age_min is not None and age is not None and not (
                    r.age_min <= age <= (r.age_max if r.age_max is not None else age)):
                continue
            if r.value_min is not None and not (
                    r.value_min <= amount <= (r.value_max if r.value_max is not None else amount)):
                continue
            if r.seats_min is not None and seats is not None and not (
                    r.seats_min <= seats <= (r.seats_max if r.seats_max is not None else seats)):
                continue
            premium = round_fen(r.base + amount / 1000 * r.rate_per_1000)
            return Quote(p.code, amount, payment_mode, r.rate_per_1000, r.base, premium)
        # Every dimension was valid on its own, but the table has no cell for the mix
        # (e.g. a 30-year term for a 55-year-old, or a vehicle value between bands).
        given = ", ".join(f"{k}={v}" for k, v in (("age", age), ("sex", sex), ("term", term),
                          ("payment_mode", payment_mode), ("seats", seats)) if v is not None)
        raise ValueError(f"{p.code}'s rate table has no rate for sum_insured={amount}"
                         + (f", {given}" if given else ""))


def _need(name: str, value: Any, code: str) -> Any:
    if value is None:
        raise ValueError(f"{name} is required to quote {code}")
    return value


def load_rate_table(store: Store, product_code: str) -> RateTable:
    """The product's rate table; ValueError if the product is unknown."""
    def fetch(db: Any) -> tuple[list[dict], list[dict]]:
        return (list(db.query("SELECT * FROM products WHERE code = ?", [product_code])),
                list(db.query("SELECT * FROM rates WHERE product_code = ? ORDER BY id",
                              [product_code])))

    products, rows = store.read(fetch)
    if not products:
        raise ValueError(f"product_code {product_code!r} is not a known product")
    return RateTable(product_from_row(products[0]), map(RateRow.from_db, rows))


def product_from_row(row: Mapping[str, Any]) -> Product:
    return Product(row["code"], row["name_zh"], row["name_en"], row["kind"],
                   from_fen(row["min_sum_fen"]), from_fen(row["max_sum_fen"]))


def quote(
    store: Store,
    product_code: str,
    sum_insured: Decimal | int | str,
    *,
    age: int | None = None,
    sex: str | None = None,
    term: int | None = None,
    payment_mode: str | None = None,
    seats: int | None = None,
) -> Quote:
    """The premium of one payment of ``product_code`` for these parameters.

    For motor, ``sum_insured`` is the vehicle's value. Raises ValueError naming the
    parameter that is missing, unknown or outside the rate table.
    """
    table = load_rate_table(store, product_code)
    return table.quote(sum_insured, age=age, sex=sex, term=term, payment_mode=payment_mode,
                       seats=seats)
