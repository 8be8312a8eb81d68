"""Staff accounts: argon2 password hashes, the login throttle, the first admin.

A login is refused without checking the password once a username has had
:data:`MAX_FAILURES_PER_USER` failures, or a client address :data:`MAX_FAILURES_PER_ADDRESS`,
in the last :data:`THROTTLE_WINDOW_S` seconds; failures are rows in ``login_failures`` so
every waitress thread (and a restart) sees the same count. Unknown usernames are hashed
against a dummy hash, so a wrong username costs as long as a wrong password.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlite_utils import Database

from appliance.store.db import Store
from web.permissions import ROLES

MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 20
THROTTLE_WINDOW_S = 15 * 60
MIN_PASSWORD_LENGTH = 10

def N_(message: str) -> str:
    """Marks an English message for the translation catalog; the page translates it."""
    return message


_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    must_change: bool
    active: bool
    password_version: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        return cls(row["id"], row["username"], row["display_name"], row["role"],
                   bool(row["must_change"]), bool(row["active"]), row["password_version"])


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_problem(password: str, username: str) -> str | None:
    """Why ``password`` is not acceptable (an English msgid for the page), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return N_("The password must have at least 10 characters.")
    if password.lower() == username.lower():
        return N_("The password must not be the username.")
    if password.isdigit() or password.isalpha():
        return N_("The password must mix letters with digits or symbols.")
    return None


def get_user(store: Store, user_id: int) -> User | None:
    rows = store.query("SELECT * FROM users WHERE id = ?", [user_id])
    return User.from_row(rows[0]) if rows else None


def throttled(store: Store, username: str, address: str, now: float | None = None) -> bool:
    since = (time.time() if now is None else now) - THROTTLE_WINDOW_S
    row = store.query(
        "SELECT (SELECT count(*) FROM login_failures WHERE username = ? AND at > ?) AS u,"
        " (SELECT count(*) FROM login_failures WHERE address = ? AND at > ?) AS a",
        [username, since, address, since])[0]
    return bool(row["u"] >= MAX_FAILURES_PER_USER or row["a"] >= MAX_FAILURES_PER_ADDRESS)


def authenticate(store: Store, username: str, password: str, address: str) -> User | None:
    """The user if the password is right and the account active; records a failure if not.

    The caller checks :func:`throttled` first.
    """
    rows = store.query("SELECT * FROM users WHERE username = ?", [username])
    stored = rows[0]["password_hash"] if rows else _DUMMY_HASH
    try:
        ok = _hasher.verify(stored, password) and bool(rows) and bool(rows[0]["active"])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    now = time.time()
    if not ok:
        def fail(db: Database) -> None:
            db.execute("INSERT INTO login_failures (username, address, at) VALUES (?, ?, ?)",
                       [username, address, now])
            db.execute("DELETE FROM login_failures WHERE at < ?", [now - THROTTLE_WINDOW_S])

        store.write(fail)
        return None
    user = User.from_row(rows[0])
    new_hash = _hasher.hash(password) if _hasher.check_needs_rehash(stored) else None

    def success(db: Database) -> None:
        db.execute("DELETE FROM login_failures WHERE username = ?", [username])
        db.execute("UPDATE users SET last_login_at = ? WHERE id = ?", [now, user.id])
        if new_hash:
            db.execute("UPDATE users SET password_hash = ? WHERE id = ?", [new_hash, user.id])

    store.write(success)
    return user


def verify_password(store: Store, user_id: int, password: str) -> bool:
    rows = store.query("SELECT password_hash FROM users WHERE id = ?", [user_id])
    if not rows:
        return False
    try:
        return _hasher.verify(rows[0]["password_hash"], password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def set_password(db: Database, user_id: int, password_hash: str, *, must_change: bool) -> None:
    """On the writer: a new password (hashed beforehand: argon2 takes tens of milliseconds,
    which the writer should not spend), ending every session issued under the old one."""
    db.execute("UPDATE users SET password_hash = ?, must_change = ?,"
               " password_version = password_version + 1 WHERE id = ?",
               [password_hash, int(must_change), user_id])


def create_user(db: Database, username: str, display_name: str, role: str,
                password_hash: str) -> int:
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    cur = db.execute("INSERT INTO users (username, display_name, role, password_hash,"
                     " must_change, created_at) VALUES (?, ?, ?, ?, 1, ?)",
                     [username, display_name, role, password_hash, time.time()])
    return int(cur.lastrowid or 0)


def generate_password() -> str:
    """A one-time password to type from a printout: no 0/O or 1/l to confuse."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(14))
        if any(c.isdigit() for c in pw) and any(c.isalpha() for c in pw):
            return pw


def ensure_first_admin(store: Store) -> str | None:
    """On a box with no account, or whose first admin never logged in to change the
    password: a fresh first-login password for ``admin``, returned so the console can print
    it. None once the admin has chosen a password of their own."""
    password = generate_password()
    hashed = hash_password(password)

    def ensure(db: Database) -> bool:
        if db.execute("SELECT count(*) FROM users").fetchone()[0] == 0:
            create_user(db, "admin", "Administrator", "admin", hashed)
            return True
        row = db.execute("SELECT id, must_change, last_login_at FROM users"
                         " WHERE username = 'admin'").fetchone()
        if row and row[1] and row[2] is None:
            set_password(db, row[0], hashed, must_change=True)
            return True
        return False

    return password if store.write(ensure) else None
