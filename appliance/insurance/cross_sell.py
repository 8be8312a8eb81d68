"""Cross-sell and service hints from a customer's policies (O2), for the seat's screen.

A pure function over what the book already says about the customer: which kinds of cover
they hold and in what state, their age, and the products on sale. Each hint names why it
is offered, so the page can say it in the staff's language:

* ``lapsed`` — a lapsed policy: offer reinstatement before offering anything new;
* ``due_soon`` — a premium falls due within :data:`DUE_SOON_DAYS`: remind while on the phone;
* ``add_critical_illness`` — life cover in force but no critical-illness cover;
* ``add_accident`` — motor cover in force but no accident cover for the driver;
* ``add_term_life`` — aged 18–55 with cover in force but none of it life cover.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

DUE_SOON_DAYS = 30


@dataclass(frozen=True)
class Holding:
    policy_number: str
    kind: str  # products.kind
    status: str
    next_due_date: date | None


@dataclass(frozen=True)
class Hint:
    reason: str
    policy_number: str | None = None  # the policy the hint is about, for service hints
    product_code: str | None = None  # the product to offer, for cross-sell hints


def hints(holdings: Iterable[Holding], *, birthday: date | None, today: date,
          products_by_kind: Mapping[str, str]) -> list[Hint]:
    """Service hints first (lapsed, then due soon), then products to offer."""
    held = list(holdings)
    out = [Hint("lapsed", h.policy_number) for h in held if h.status == "lapsed"]
    out += [Hint("due_soon", h.policy_number) for h in held
            if h.status == "in_force" and h.next_due_date is not None
            and 0 <= (h.next_due_date - today).days <= DUE_SOON_DAYS]
    in_force = {h.kind for h in held if h.status == "in_force"}
    age = None
    if birthday is not None:
        age = today.year - birthday.year - ((today.month, today.day)
                                            < (birthday.month, birthday.day))

    def offer(reason: str, kind: str) -> None:
        if kind in products_by_kind:
            out.append(Hint(reason, product_code=products_by_kind[kind]))

    if "term_life" in in_force and "critical_illness" not in in_force:
        offer("add_critical_illness", "critical_illness")
    if "motor" in in_force and "accident" not in in_force:
        offer("add_accident", "accident")
    if in_force and "term_life" not in in_force and age is not None and 18 <= age <= 55:
        offer("add_term_life", "term_life")
    return out
