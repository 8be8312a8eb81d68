"""Staff phone PINs: what an admin keys, after their staff number (the account's id), to
record prompts over the phone.

A PIN is 4 to 8 digits, stored only as a salted PBKDF2 hash (the salespeople's hashing).
As with salespeople, :data:`MAX_FAILURES` wrong PINs in a row lock it, and a locked PIN
refuses even the right digits until a new PIN is set. Only an active admin account's PIN
opens the recording line: an account demoted or switched off is refused whatever it keys.
The slow hash is checked off the writer thread; the failure count is one SQL statement on
it, so two calls trying the same account cannot lose a failure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from sqlite_utils import Database

from appliance.insurance.hashing import hash_pin, pin_matches
from appliance.store.db import Store

#: the number that reaches the recording line (beside 95500 the IVR, 95599 the rooms)
DEFAULT_NUMBER: Final = "95598"
PIN_DIGITS: Final = (4, 8)
#: wrong PINs in a row that lock it (as the salespeople's)
MAX_FAILURES: Final = 5
#: the role whose accounts may record prompts (the web's prompts.replace)
ROLE: Final = "admin"


class PinError(ValueError):
    """A PIN refused when set; says what was expected."""


class PinCheck(enum.Enum):
    OK = "ok"
    WRONG = "wrong"  # also: no such account, or not an admin (the caller is not told which)
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class Staff:
    id: int
    username: str
    role: str


def valid_pin(pin: str) -> str | None:
    """Why ``pin`` cannot be a phone PIN, or None."""
    lo, hi = PIN_DIGITS
    if not (pin.isascii() and pin.isdigit()):
        return f"the PIN must be digits only (0-9), {lo} to {hi} of them"
    if not lo <= len(pin) <= hi:
        return f"the PIN must have {lo} to {hi} digits, not {len(pin)}"
    return None


def set_pin(db: Database, user_id: int, pin: str, now: float, *,
            iterations: int | None = None) -> None:
    """Inside a write: set (or replace) the account's phone PIN; this clears a lock."""
    problem = valid_pin(pin)
    if problem:
        raise PinError(problem)
    hashed = hash_pin(pin) if iterations is None else hash_pin(pin, iterations=iterations)
    db.execute("INSERT INTO staff_phone_pins (user_id, pin_hash, failed_pins, locked, set_at) "
               "VALUES (?, ?, 0, 0, ?) ON CONFLICT (user_id) DO UPDATE SET "
               "pin_hash = excluded.pin_hash, failed_pins = 0, locked = 0, "
               "set_at = excluded.set_at", [user_id, hashed, now])


def pin_state(store: Store, user_id: int) -> str:
    """``none``, ``set`` or ``locked``: what the page says about the account's PIN."""
    rows = store.query("SELECT locked FROM staff_phone_pins WHERE user_id = ?", [user_id])
    if not rows:
        return "none"
    return "locked" if rows[0]["locked"] else "set"


def check_pin(store: Store, staff_no: str, pin: str) -> tuple[PinCheck, Staff | None]:
    """Check the PIN keyed for staff number ``staff_no``: the account when it is right."""
    if not (staff_no.isascii() and staff_no.isdigit()) or len(staff_no) > 9:
        return PinCheck.WRONG, None
    rows = store.query(
        "SELECT u.id, u.username, u.role, u.active, p.pin_hash, p.locked "
        "FROM users u JOIN staff_phone_pins p ON p.user_id = u.id WHERE u.id = ?",
        [int(staff_no)])
    if not rows or rows[0]["role"] != ROLE or not rows[0]["active"]:
        return PinCheck.WRONG, None
    row = rows[0]
    if row["locked"]:
        return PinCheck.LOCKED, None
    user_id = row["id"]
    if pin_matches(pin, row["pin_hash"]):
        def reset(db: Database) -> bool:
            # Locked meanwhile by another call's failures: the lock wins.
            locked = db.execute("SELECT locked FROM staff_phone_pins WHERE user_id = ?",
                                [user_id]).fetchone()[0]
            if not locked:
                db.execute("UPDATE staff_phone_pins SET failed_pins = 0 WHERE user_id = ?",
                           [user_id])
            return not locked

        if store.write(reset):
            return PinCheck.OK, Staff(user_id, row["username"], row["role"])
        return PinCheck.LOCKED, None

    def fail(db: Database) -> bool:
        db.execute("UPDATE staff_phone_pins SET failed_pins = failed_pins + 1, locked = CASE "
                   "WHEN failed_pins + 1 >= ? THEN 1 ELSE locked END WHERE user_id = ?",
                   [MAX_FAILURES, user_id])
        return bool(db.execute("SELECT locked FROM staff_phone_pins WHERE user_id = ?",
                               [user_id]).fetchone()[0])

    return (PinCheck.LOCKED if store.write(fail) else PinCheck.WRONG), None
