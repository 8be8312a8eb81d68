"""Cross-sell and service hints from a customer's policies (O2), for the seat's screen.

A pure function over what the book already says about the customer: which kinds of cover
they hold and in what state, their age, and the products on sale. Each hint names why it
is offered, so the page can say it in the staff's language:

* ``lapsed`` — a lapsed policy: offer reinstatement before offering anything new;
* ``due_soon`` — a premium falls due within :data:`DUE_SOON_DAYS`: remind while on the phone;
* ``add_critical_illness`` — life cover in force but no critical-illness cover;
* ``add_accident`` — motor cover in force but no accident cover for the driver;
* ``add_term_life`` — aged 18–55 with cover in force but none of it life cover;
* ``similar`` — a kind of cover the customer lacks that a large share of similar
  customers hold in force (same sex, same ten-year age band, holding in force a kind of
  cover the customer holds): the hint carries the share, the number of such customers
  and what made them similar, so the page can say why.

The rules come first (they name a concrete gap); the similar-customer hints add kinds of
cover the rules did not already offer. :func:`peer_counts` asks the book for the counts
behind them with one query over the customers of the same sex and age band and
their policies (index ``customers_sex_birthday``), kept a few minutes by :class:`PeerCache`.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

DUE_SOON_DAYS = 30
#: Similar customers must be at least this many for their habits to mean anything ...
MIN_PEERS = 10
#: ... and a kind of cover is offered when at least this share of them hold it in force.
MIN_SHARE = 0.2
#: At most this many similar-customer hints, highest share first.
MAX_PEER_HINTS = 2


@dataclass(frozen=True)
class Holding:
    policy_number: str
    kind: str  # products.kind
    status: str
    next_due_date: date | None


@dataclass(frozen=True)
class PeerGroup:
    """Customers like this one, and how many of them hold each kind of cover in force."""

    sex: str  # 'M' or 'F'
    age_from: int  # the ten-year band, e.g. 30..39
    age_to: int
    holding: tuple[str, ...]  # kinds they hold in force as the customer does (may be empty)
    count: int
    holders_by_kind: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Hint:
    reason: str
    policy_number: str | None = None  # the policy the hint is about, for service hints
    product_code: str | None = None  # the product to offer, for cross-sell hints
    peers: PeerGroup | None = None  # for ``similar``: who the similar customers are
    share: float = 0.0  # for ``similar``: the share of them holding the offered kind
    kind: str = ""  # for ``similar``: the kind of cover offered


def age_on(birthday: date, today: date) -> int:
    return today.year - birthday.year - ((today.month, today.day)
                                         < (birthday.month, birthday.day))


def hints(holdings: Iterable[Holding], *, birthday: date | None, today: date,
          products_by_kind: Mapping[str, str],
          peers: PeerGroup | None = None) -> list[Hint]:
    """Service hints first (lapsed, then due soon), then products to offer: by rule, then
    by what similar customers (``peers``, from :func:`peer_counts`) hold."""
    held = list(holdings)
    out = [Hint("lapsed", h.policy_number) for h in held if h.status == "lapsed"]
    out += [Hint("due_soon", h.policy_number) for h in held
            if h.status == "in_force" and h.next_due_date is not None
            and 0 <= (h.next_due_date - today).days <= DUE_SOON_DAYS]
    in_force = {h.kind for h in held if h.status == "in_force"}
    age = age_on(birthday, today) if birthday is not None else None

    def offer(reason: str, kind: str) -> None:
        if kind in products_by_kind:
            out.append(Hint(reason, product_code=products_by_kind[kind]))

    if "term_life" in in_force and "critical_illness" not in in_force:
        offer("add_critical_illness", "critical_illness")
    if "motor" in in_force and "accident" not in in_force:
        offer("add_accident", "accident")
    if in_force and "term_life" not in in_force and age is not None and 18 <= age <= 55:
        offer("add_term_life", "term_life")
    if peers is not None and peers.count >= MIN_PEERS:
        offered = {h.product_code for h in out if h.product_code}
        shares = sorted(((n / peers.count, kind) for kind, n in peers.holders_by_kind.items()
                         if kind not in in_force and kind in products_by_kind
                         and products_by_kind[kind] not in offered),
                        key=lambda sk: (-sk[0], sk[1]))
        out += [Hint("similar", product_code=products_by_kind[kind], peers=peers,
                     share=share, kind=kind)
                for share, kind in shares[:MAX_PEER_HINTS] if share >= MIN_SHARE]
    return out


Query = Callable[[str, Sequence[Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class _Band:
    held_by: Mapping[int, frozenset[str]]  # holder id -> kinds they hold in force
    customers: int  # everyone in the band, with or without cover in force


class PeerCache:
    """Each band's figures (one sex, one ten-year age band) kept for ``ttl`` seconds: the
    query reads a tenth of the book, and the seat's screen and the customer page ask for
    the same few bands all day; five-minute-old habits are still the habits."""

    def __init__(self, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._bands: dict[tuple[str, str, str], tuple[float, _Band]] = {}

    def band(self, query: Query, sex: str, born_after: str, born_by: str) -> _Band:
        key = (sex, born_after, born_by)
        now = self.clock()
        kept = self._bands.get(key)
        if kept is not None and now - kept[0] < self.ttl:
            return kept[1]
        band = _read_band(query, sex, born_after, born_by)
        self._bands = {k: v for k, v in self._bands.items() if now - v[0] < self.ttl}
        self._bands[key] = (now, band)
        return band


def _read_band(query: Query, sex: str, born_after: str, born_by: str) -> _Band:
    params = [sex, born_after, born_by]
    # Customers of the band first (index on sex and birthday), their policies by holder:
    # CROSS JOIN keeps SQLite from starting at the policies in force, most of the book.
    rows = query("SELECT p.holder_id, pr.kind FROM customers c CROSS JOIN policies p"
                 " ON p.holder_id = c.id JOIN products pr ON pr.code = p.product_code"
                 " WHERE c.sex = ? AND c.birthday > ? AND c.birthday <= ?"
                 " AND p.status = 'in_force'", params)
    held_by: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        held_by[row["holder_id"]].add(row["kind"])
    customers = query("SELECT COUNT(*) AS n FROM customers WHERE sex = ? AND birthday > ?"
                      " AND birthday <= ?", params)[0]["n"]
    return _Band({h: frozenset(k) for h, k in held_by.items()}, customers)


def peer_counts(query: Query, *, customer_id: int, sex: str | None, birthday: date | None,
                holding: Iterable[str], today: date,
                cache: PeerCache | None = None) -> PeerGroup | None:
    """The customers similar to ``customer_id`` (same sex, same ten-year age band, holding
    in force one of the kinds in ``holding`` if any) and how many of them hold each kind
    in force; None when the customer's sex or birthday is unknown."""
    if sex not in ("M", "F") or birthday is None:
        return None
    age = age_on(birthday, today)
    age_from = age // 10 * 10
    age_to = age_from + 9
    # Born after (today - age_to - 1 years) and on or before (today - age_from years).
    born_after = _years_before(today, age_to + 1).isoformat()
    born_by = _years_before(today, age_from).isoformat()
    band = (cache or PeerCache(ttl=0)).band(query, sex, born_after, born_by)
    kinds = tuple(sorted(set(holding)))
    others = [held for holder, held in band.held_by.items() if holder != customer_id]
    if kinds:
        peers = [held for held in others if not held.isdisjoint(kinds)]
        count = len(peers)
    else:
        peers = others
        count = band.customers - 1  # the band always holds the customer asking
    return PeerGroup(sex, age_from, age_to, kinds, count,
                     dict(Counter(kind for held in peers for kind in held)))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)
