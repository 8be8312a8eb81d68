"""What the IVR and the seat console look up in the insurance book, and the claim report.

* Policy lookup by number, verified by the last four characters of the policyholder's ID
  number. A :class:`PolicyLookup` lives for one call and counts the caller's tries: an
  unknown number counts as a wrong try too (otherwise the IVR would tell a stranger which
  numbers exist), and after :data:`MAX_POLICY_TRIES` failures it answers ``to_person`` so
  the flow hands the caller to a seat. An ID ending in X is keyed as ``*`` on a phone.
* Salesperson lookup by code, and the PIN check: :data:`MAX_PIN_FAILURES` wrong PINs in a
  row lock the code, and a locked code stays locked whatever PIN is keyed, until an admin
  clears it. The PIN's slow hash is checked off the writer thread (it takes tens of ms);
  only the counter update goes through :meth:`Store.write`, as one SQL statement, so two
  calls checking the same code cannot lose a failure.
* A salesperson's this-month and last-month commission, premium written and policies sold.
* Claim reports: a new case number ``YYYYMMDD`` + four-digit daily sequence, digits only
  so the IVR can read it back, allocated on the writer thread so numbers never collide.

Reads go through :meth:`Store.query`; writes through :meth:`Store.write`. Both block the
calling thread (a lookup is a few hundredths of a millisecond; a PIN check tens of
milliseconds for its hash), so the engine loop calls them through
``loop.run_in_executor``. Money comes back as :class:`~decimal.Decimal` yuan.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlite_utils import Database

from appliance.insurance.hashing import pin_matches
from appliance.insurance.quote import from_fen
from appliance.store.db import Store

MAX_POLICY_TRIES = 3
MAX_PIN_FAILURES = 5


@dataclass(frozen=True)
class PolicyInfo:
    number: str
    status: str
    product_code: str
    product_name_zh: str
    product_name_en: str
    sum_insured: Decimal
    premium: Decimal
    payment_mode: str
    next_due_date: date | None
    next_due_amount: Decimal | None


class PolicyOutcome(enum.Enum):
    OK = "ok"
    WRONG = "wrong"  # unknown number or wrong ID digits: the caller may try again
    TO_PERSON = "to_person"  # too many tries: hand the caller to a seat


@dataclass(frozen=True)
class PolicyAnswer:
    outcome: PolicyOutcome
    policy: PolicyInfo | None
    tries: int  # failed tries so far in this call


_POLICY_SQL = """
    SELECT p.number, p.status, p.product_code, pr.name_zh, pr.name_en, p.sum_insured_fen,
           p.premium_fen, p.payment_mode, p.next_due_date, p.next_due_fen, c.id_last4
    FROM policies p
    JOIN products pr ON pr.code = p.product_code
    JOIN customers c ON c.id = p.holder_id
    WHERE p.number = ?
"""


def _normalise_last4(keyed: str) -> str:
    # A phone has no X key; Chinese IVRs take * for the X an ID number can end with.
    return keyed.strip().upper().replace("*", "X")


def find_policy(store: Store, number: str, id_last4: str) -> PolicyInfo | None:
    """The policy if it exists and its holder's ID ends in ``id_last4``; else None."""
    rows = store.query(_POLICY_SQL, [number.strip()])
    if not rows:
        return None
    r = rows[0]
    if not hmac.compare_digest(_normalise_last4(id_last4).encode(), r["id_last4"].encode()):
        return None
    return PolicyInfo(
        number=r["number"], status=r["status"], product_code=r["product_code"],
        product_name_zh=r["name_zh"], product_name_en=r["name_en"],
        sum_insured=from_fen(r["sum_insured_fen"]), premium=from_fen(r["premium_fen"]),
        payment_mode=r["payment_mode"],
        next_due_date=date.fromisoformat(r["next_due_date"]) if r["next_due_date"] else None,
        next_due_amount=None if r["next_due_fen"] is None else from_fen(r["next_due_fen"]),
    )


class PolicyLookup:
    """One call's policy enquiries, counting the failed tries."""

    def __init__(self, store: Store, max_tries: int = MAX_POLICY_TRIES) -> None:
        self.store = store
        self.max_tries = max_tries
        self.tries = 0

    def lookup(self, number: str, id_last4: str) -> PolicyAnswer:
        if self.tries >= self.max_tries:
            return PolicyAnswer(PolicyOutcome.TO_PERSON, None, self.tries)
        policy = find_policy(self.store, number, id_last4)
        if policy is not None:
            return PolicyAnswer(PolicyOutcome.OK, policy, self.tries)
        self.tries += 1
        outcome = PolicyOutcome.TO_PERSON if self.tries >= self.max_tries else PolicyOutcome.WRONG
        return PolicyAnswer(outcome, None, self.tries)


@dataclass(frozen=True)
class SalespersonInfo:
    code: str
    name: str
    branch: str
    licence_no: str
    licence_status: str
    phone: str | None


def find_salesperson(store: Store, code: str) -> SalespersonInfo | None:
    rows = store.query("SELECT code, name, branch, licence_no, licence_status, phone "
                       "FROM salespeople WHERE code = ?", [code.strip()])
    return SalespersonInfo(**rows[0]) if rows else None


class PinResult(enum.Enum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"  # too many wrong PINs: the right one is refused too
    UNKNOWN = "unknown"  # no such salesperson code


def check_pin(store: Store, code: str, pin: str) -> PinResult:
    """Check a salesperson's PIN, counting failures and locking after five in a row."""
    code = code.strip()
    rows = store.query("SELECT pin_hash, locked FROM salespeople WHERE code = ?", [code])
    if not rows:
        return PinResult.UNKNOWN
    if rows[0]["locked"]:
        return PinResult.LOCKED
    if pin_matches(pin, rows[0]["pin_hash"]):
        def reset(db: Database) -> bool:
            # Locked meanwhile by another call's failures: the lock wins.
            if db.execute("SELECT locked FROM salespeople WHERE code = ?", [code]).fetchone()[0]:
                return False
            db.execute("UPDATE salespeople SET failed_pins = 0 WHERE code = ?", [code])
            return True

        return PinResult.OK if store.write(reset) else PinResult.LOCKED

    def fail(db: Database) -> bool:
        db.execute(
            "UPDATE salespeople SET failed_pins = failed_pins + 1, "
            "locked = CASE WHEN failed_pins + 1 >= ? THEN 1 ELSE locked END WHERE code = ?",
            [MAX_PIN_FAILURES, code])
        return bool(db.execute("SELECT locked FROM salespeople WHERE code = ?",
                               [code]).fetchone()[0])

    return PinResult.LOCKED if store.write(fail) else PinResult.WRONG


def unlock_salesperson(store: Store, code: str) -> None:
    """An admin clears the lock and the failure count."""
    store.write(lambda db: db.execute(
        "UPDATE salespeople SET failed_pins = 0, locked = 0 WHERE code = ?", [code]))


@dataclass(frozen=True)
class MonthFigures:
    month: str  # YYYY-MM
    commission: Decimal
    premium_written: Decimal
    policies_sold: int


def _month(d: date, back: int) -> str:
    y, m = divmod(d.month - 1 - back, 12)
    return f"{d.year + y:04d}-{m + 1:02d}"


def salesperson_figures(store: Store, code: str, today: date) -> tuple[MonthFigures,
                                                                       MonthFigures]:
    """(this month, last month) for ``code``; zero figures for a month with no row.

    The caller checks the PIN first: this only reads.
    """
    months = (_month(today, 0), _month(today, 1))
    rows = {r["month"]: r for r in store.query(
        "SELECT month, commission_fen, premium_fen, policies_sold FROM commissions "
        "WHERE salesperson_code = ? AND month IN (?, ?)", [code.strip(), *months])}

    def figures(month: str) -> MonthFigures:
        r = rows.get(month)
        if r is None:
            return MonthFigures(month, from_fen(0), from_fen(0), 0)
        return MonthFigures(month, from_fen(r["commission_fen"]), from_fen(r["premium_fen"]),
                            r["policies_sold"])

    return figures(months[0]), figures(months[1])


def report_claim(store: Store, policy_number: str, *, now: datetime, caller: str | None = None,
                 recording: str | None = None) -> str:
    """Record a first notice of loss on ``policy_number``; return the new case number.

    ``recording`` is the path of the caller's spoken description. ValueError if the policy
    does not exist (nothing is written).
    """
    day = f"{now:%Y%m%d}"

    def create(db: Database) -> str:
        if not db.execute("SELECT 1 FROM policies WHERE number = ?",
                          [policy_number]).fetchone():
            raise ValueError(f"policy_number {policy_number!r} is not a known policy")
        # On the single writer, inside its transaction: max + 1 cannot be taken twice.
        last = db.execute("SELECT max(case_number) FROM claims WHERE case_number LIKE ?",
                          [day + "%"]).fetchone()[0]
        seq = int(last[len(day):]) + 1 if last else 1
        case = f"{day}{seq:04d}"
        db.execute("INSERT INTO claims (case_number, policy_number, reported_at, caller, "
                   "description_recording, status) VALUES (?, ?, ?, ?, ?, 'reported')",
                   [case, policy_number, now.isoformat(), caller, recording])
        return case

    return store.write(create)
