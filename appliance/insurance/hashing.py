"""How the insurance tables keep secrets: ID card numbers and salesperson PINs.

An ID card number is stored only as a salted SHA-256 hash (a random salt per customer), the
masked form pages show (``110***********1234``) and its last four characters, which the IVR
asks for to verify a caller. The last four are kept in clear because the masked form shows
them anyway; hashing four characters (10^4 guesses) would protect nothing. A full ID number
can be checked against a customer (:func:`id_matches`) but never looked up or read back.

A PIN is hashed with PBKDF2-HMAC-SHA256 from the standard library, with a random salt and
an iteration count stored in the hash string itself, so the cost can be raised later
without invalidating PINs already set.
"""

from __future__ import annotations

import hashlib
import hmac
import os

PIN_ITERATIONS = 150_000  # ~35 ms a check on this box: slow for guessing, fine for a call


def hash_id_number(id_number: str, salt: bytes | None = None) -> tuple[str, str]:
    """``(salt_hex, hash_hex)`` of an ID card number (upper-cased: a trailing x is X)."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.sha256(salt + id_number.strip().upper().encode()).hexdigest()
    return salt.hex(), digest


def id_matches(id_number: str, salt_hex: str, hash_hex: str) -> bool:
    _, digest = hash_id_number(id_number, bytes.fromhex(salt_hex))
    return hmac.compare_digest(digest, hash_hex)


def mask_id_number(id_number: str) -> str:
    """First 3 and last 4 characters, the rest as ``*``: 110***********1234."""
    n = id_number.strip().upper()
    return n[:3] + "*" * (len(n) - 7) + n[-4:]


def hash_pin(pin: str, *, iterations: int = PIN_ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$iterations$salt_hex$hash_hex``."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def pin_matches(pin: str, stored: str) -> bool:
    try:
        scheme, iterations, salt_hex, hash_hex = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt_hex),
                                     int(iterations))
    except ValueError:
        return False  # a malformed hash matches no PIN
    return hmac.compare_digest(digest.hex(), hash_hex)
