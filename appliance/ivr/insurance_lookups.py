"""The lookups the default insurance flow calls, backed by :mod:`appliance.insurance.lookups`.

The interpreter calls ``lookups[name](*args)`` with the flow's variables as strings, and a
dict result becomes the variables ``<into>.<key>``. The store functions block (SQLite, and
PBKDF2 for PINs), so each adapter runs them in an executor (the loop's default thread pool
unless one is given: a test on the manual clock passes one that runs them at once, so a
lookup takes the same number of ticks however busy the machine is).

A flow can only branch on found / not found, and can only play prompts it names, so values
the caller hears as a recorded word (a policy status, a product, a branch, a licence status)
come back as flags: ``status_in_force = "1"``, ``product_TL20 = "1"``, and the flow asks
``is_set(pol.status_in_force)`` to pick the prompt. Money comes back as yuan with two
decimals (``"1234.50"``), dates as ``YYYY-MM-DD``, as :func:`appliance.ivr.speech.say` reads
them.

Policy enquiries count the caller's failed tries per call (:class:`PolicyLookup`), keyed by
the ``call_id`` the flow passes in. After a failed ``policy`` lookup the flow asks
``policy_to_person`` (too many tries: hand over to a seat) and ``policy_unknown`` (the
number does not exist, rather than the ID digits being wrong).
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, Final, TypeVar

from appliance.insurance.demo_data import BRANCHES, DEMO_PRODUCT_CODES
from appliance.insurance.lookups import (
    PinResult,
    PolicyLookup,
    PolicyOutcome,
    check_pin,
    find_salesperson,
    report_claim,
    salesperson_figures,
)
from appliance.insurance.quote import RateTable, load_rate_table
from appliance.ivr.names import NameRecordings
from appliance.store.db import Store

T = TypeVar("T")
Lookup = Callable[..., Any]

#: keys of the phone quote's choices: sex and payment mode
QUOTE_SEXES: Final = {"1": "M", "2": "F"}
QUOTE_MODES: Final = {"1": "annual", "2": "monthly", "3": "single"}
#: sums insured (and vehicle values) are keyed in 万元, ten thousand yuan
WAN: Final = 10_000

#: calls whose policy try counters are kept; older calls are forgotten first
MAX_TRACKED_CALLS: Final = 10_000
_SAFE: Final = re.compile(r"[^A-Za-z0-9_]")


def money(amount: Decimal) -> str:
    """Yuan as the speech module reads it: ``Decimal("1234.5")`` is ``"1234.50"``."""
    return f"{amount.quantize(Decimal('0.01')):f}"


def _flag(name: str, value: str) -> str:
    return f"{name}_{_SAFE.sub('_', value)}"


@dataclass
class _CallState:
    lookup: PolicyLookup
    last: str = ""  # "ok", "wrong", "unknown", "to_person"


class InsuranceLookups:
    """The flow's lookup functions over one :class:`Store` (see :meth:`functions`)."""

    def __init__(self, store: Store, *, now: Callable[[], datetime] = datetime.now,
                 max_calls: int = MAX_TRACKED_CALLS, executor: Executor | None = None,
                 names: NameRecordings | None = None) -> None:
        self.store = store
        self.names = names  # salespeople's names as recordings (None: names not said)
        self.now = now
        self.executor = executor  # None: the loop's default thread pool
        self.max_calls = max_calls
        self._calls: OrderedDict[str, _CallState] = OrderedDict()

    def functions(self) -> dict[str, Lookup]:
        """The mapping to give :func:`~appliance.ivr.interpreter.make_flow_handler`."""
        return {
            "policy": self.policy,
            "policy_to_person": self.policy_to_person,
            "policy_unknown": self.policy_unknown,
            "policy_exists": self.policy_exists,
            "salesperson": self.salesperson,
            "salesperson_login": self.salesperson_login,
            "report_claim": self.report_claim,
            "quote_product": self.quote_product,
            "quote_age": self.quote_age,
            "quote_sex": quote_sex,
            "quote_term": self.quote_term,
            "quote_sum": self.quote_sum,
            "quote_mode": self.quote_mode,
            "quote_seats": self.quote_seats,
            "quote": self.quote,
            "is_set": is_set,
        }

    async def _blocking(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    def _state(self, call_id: str) -> _CallState:
        state = self._calls.get(call_id)
        if state is None:
            state = self._calls[call_id] = _CallState(PolicyLookup(self.store))
            while len(self._calls) > self.max_calls:
                self._calls.popitem(last=False)
        else:
            self._calls.move_to_end(call_id)
        return state

    # ------------------------------------------------------------------ policies
    def _policy_blocking(self, state: _CallState, number: str,
                         id_last4: str) -> dict[str, str] | None:
        answer = state.lookup.lookup(number, id_last4)
        policy = answer.policy
        if answer.outcome is PolicyOutcome.OK and policy is not None:
            state.last = "ok"
            result = {
                "number": policy.number,
                "status": policy.status,
                _flag("status", policy.status): "1",
                _flag("product", policy.product_code): "1",
                "sum_insured": money(policy.sum_insured),
                "premium": money(policy.premium),
                "payment_mode": policy.payment_mode,
                _flag("pay", policy.payment_mode): "1",
                "has_due": "0",
            }
            if policy.next_due_date is not None and policy.next_due_amount is not None:
                result.update(has_due="1", due_date=policy.next_due_date.isoformat(),
                              due_amount=money(policy.next_due_amount))
            return result
        if answer.outcome is PolicyOutcome.TO_PERSON:
            state.last = "to_person"
        elif not self.store.query("SELECT 1 FROM policies WHERE number = ?", [number.strip()]):
            state.last = "unknown"
        else:
            state.last = "wrong"
        return None

    async def policy(self, call_id: str, number: str, id_last4: str) -> dict[str, str] | None:
        """The policy's variables if ``number`` exists and its holder's ID ends in
        ``id_last4`` (``*`` for X); None otherwise, and the call's try is counted."""
        state = self._state(call_id)
        return await self._blocking(partial(self._policy_blocking, state, number, id_last4))

    def policy_to_person(self, call_id: str) -> str | None:
        """Found when the call's last enquiry used up its tries."""
        return "1" if self._state(call_id).last == "to_person" else None

    def policy_unknown(self, call_id: str) -> str | None:
        """Found when the call's last enquiry failed because the number does not exist."""
        return "1" if self._state(call_id).last == "unknown" else None

    async def policy_exists(self, number: str) -> str | None:
        rows = await self._blocking(partial(
            self.store.query, "SELECT number FROM policies WHERE number = ?", [number.strip()]))
        return str(rows[0]["number"]) if rows else None

    # ------------------------------------------------------------------ salespeople
    async def salesperson(self, code: str, lang: str = "zh") -> dict[str, str] | None:
        """Code, phone number, branch and licence status as flags, and ``name_audio``: a
        recording of the name for a caller in ``lang`` (with ``has_name``) when the box
        keeps name recordings."""
        info = await self._blocking(partial(find_salesperson, self.store, code))
        if info is None:
            return None
        result = {"code": info.code, _flag("licence", info.licence_status): "1"}
        if self.names is not None:
            audio = await self._blocking(partial(self.names.get, info.code, info.name, lang))
            if audio is not None:
                result.update(name_audio=str(audio), has_name="1")
        if info.phone:
            result.update(phone=info.phone, has_phone="1")
        if info.branch in BRANCHES:
            result[f"branch_{BRANCHES.index(info.branch) + 1}"] = "1"
        return result

    def _login_blocking(self, code: str, pin: str) -> dict[str, str] | None:
        outcome = check_pin(self.store, code, pin)
        if outcome is PinResult.UNKNOWN:
            return None
        # All three flags every time: a later try in the same call must not leave an
        # earlier try's "ok" standing.
        result = {"ok": "0", "wrong": "0", "locked": "0", outcome.value: "1"}
        if outcome is PinResult.OK:
            this, last = salesperson_figures(self.store, code, self.now().date())
            result.update(commission=money(this.commission),
                          premium_written=money(this.premium_written),
                          policies_sold=str(this.policies_sold),
                          last_commission=money(last.commission))
        return result

    async def salesperson_login(self, code: str, pin: str) -> dict[str, str] | None:
        """A salesperson's own figures after the PIN check (five wrong PINs in a row lock
        the code, see :func:`~appliance.insurance.lookups.check_pin`). The flags ``ok``,
        ``wrong`` and ``locked`` say how the check went; with ``ok`` come this month's
        ``commission``, ``premium_written`` and ``policies_sold`` and last month's
        ``last_commission``. None when the code does not exist."""
        return await self._blocking(partial(self._login_blocking, code, pin))

    # ------------------------------------------------------------------ claims
    async def report_claim(self, caller: str, policy_number: str,
                           recording: str) -> dict[str, str] | None:
        """A new claim case on ``policy_number``; None when the policy does not exist."""
        try:
            case = await self._blocking(partial(
                report_claim, self.store, policy_number.strip(), now=self.now(),
                caller=caller or None, recording=recording or None))
        except ValueError:
            return None
        return {"case": case}

    # ------------------------------------------------------------------ phone quotes
    # The caller picks a product (1..4, the demo products in order), and the flow asks
    # only for what that product's rate table is priced on (``quote_product``'s flags),
    # checking each answer on its own so an out-of-range one is re-asked at once; ``quote``
    # then prices the whole, with :mod:`appliance.insurance.quote`.
    async def _table(self, code: str) -> RateTable | None:
        try:
            return await self._blocking(partial(load_rate_table, self.store, code))
        except ValueError:
            return None

    async def quote_product(self, key: str) -> dict[str, str] | None:
        """The product keyed (1..4) and which parameters to ask for, as flags."""
        if not (key.isdigit() and 1 <= int(key) <= len(DEMO_PRODUCT_CODES)):
            return None
        code = DEMO_PRODUCT_CODES[int(key) - 1]
        table = await self._table(code)
        if table is None:
            return None

        def flag(needed: bool) -> str:
            return "1" if needed else "0"

        return {"code": code, "age": flag(bool(table.ages)), "sex": flag(len(table.sexes) > 1),
                "term": flag(len(table.terms) > 1), "mode": flag(len(table.modes) > 1),
                "seats": flag(table.by_seats), "motor": flag(table.product.kind == "motor")}

    async def quote_age(self, code: str, age: str) -> str | None:
        table = await self._table(code)
        if table is None or not table.ages or not age.isdigit():
            return None
        lo = min(band[0] or 0 for band in table.ages)
        hi = max(band[1] or 0 for band in table.ages)
        return str(int(age)) if lo <= int(age) <= hi else None

    async def quote_term(self, code: str, term: str) -> str | None:
        table = await self._table(code)
        if table is None or not term.isdigit() or int(term) not in table.terms:
            return None
        return str(int(term))

    async def quote_sum(self, code: str, wan: str) -> str | None:
        """The sum insured (the vehicle's value for motor) keyed in 万元, if in range."""
        table = await self._table(code)
        if table is None or not wan.isdigit():
            return None
        amount = Decimal(int(wan) * WAN)
        return str(int(wan)) if table.product.min_sum <= amount <= table.product.max_sum else None

    async def quote_mode(self, code: str, key: str) -> str | None:
        table = await self._table(code)
        mode = QUOTE_MODES.get(key)
        return mode if table is not None and mode in table.modes else None

    async def quote_seats(self, code: str, seats: str) -> str | None:
        table = await self._table(code)
        if table is None or not table.by_seats or not seats.isdigit():
            return None
        lo = min(r.seats_min or 1 for r in table.rows if r.seats_min is not None)
        hi = max(r.seats_max or 0 for r in table.rows if r.seats_min is not None)
        return str(int(seats)) if lo <= int(seats) <= hi else None

    async def quote(self, code: str, wan: str, age: str, sex: str, term: str, mode: str,
                    seats: str) -> dict[str, str] | None:
        """One payment's premium; None when the rate table has no cell for the mix (each
        parameter was checked on its own). Parameters the product is not priced on are
        ignored, and one it offers a single choice of (a one-year term) is taken."""
        table = await self._table(code)
        if table is None or not wan.isdigit():
            return None

        def pick(options: list[Any], keyed: Any) -> Any:
            if not options:
                return None
            return options[0] if len(options) == 1 else keyed

        priced_on = dict(
            age=int(age) if table.ages and age.isdigit() else None,
            sex=pick(table.sexes, QUOTE_SEXES.get(sex)),
            term=pick(table.terms, int(term) if term.isdigit() else None),
            payment_mode=pick(table.modes, QUOTE_MODES.get(mode)),
            seats=int(seats) if table.by_seats and seats.isdigit() else None)
        try:
            got = table.quote(Decimal(int(wan) * WAN), **priced_on)
        except ValueError:
            return None
        # What it was priced on comes back too, for a fax of the rates ("" when unused).
        return {"premium": money(got.premium), "product_code": code,
                "sum_insured": str(int(wan) * WAN),
                **{k: "" if v is None else str(v) for k, v in priced_on.items()}}


def quote_sex(key: str) -> str | None:
    """1 male, 2 female."""
    return QUOTE_SEXES.get(key)


def is_set(value: str) -> str | None:
    """Found when a flag variable is ``"1"``: how a flow branches on a lookup's value."""
    return "1" if value == "1" else None


__all__ = ["MAX_TRACKED_CALLS", "QUOTE_MODES", "QUOTE_SEXES", "WAN", "InsuranceLookups", "is_set",
           "money", "quote_sex"]
