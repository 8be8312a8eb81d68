"""Conference rooms in the store: a room number, its party PIN and host PIN, kept only as
salted PBKDF2 hashes (the salespeople's PIN hashing, :mod:`appliance.insurance.hashing`),
and every join, leave, mute, drop and refusal as an event row.

The admin creates rooms (:func:`create_room`); a caller's room number and PIN are checked
by :func:`check_pin`, which says whether the PIN is the host's, a party's, or neither.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

from sqlite_utils import Database

from appliance.insurance.hashing import hash_pin, pin_matches
from appliance.store.db import Store

#: the engine's mixer takes this many parties in one room
MAX_PARTIES: Final = 8
ROOM_DIGITS: Final = (1, 8)
PIN_DIGITS: Final = (4, 8)


class RoomError(ValueError):
    """A room or PIN the store refuses; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class Room:
    room: str
    name: str
    max_parties: int
    pin_hash: str
    host_pin_hash: str


def _digits(what: str, value: str, bounds: tuple[int, int]) -> None:
    lo, hi = bounds
    if not (value.isdigit() and value.isascii() and lo <= len(value) <= hi):
        raise RoomError(f"{what} {value!r}: expected {lo} to {hi} digits")


def create_room(store: Store, room: str, pin: str, host_pin: str, *, name: str = "",
                max_parties: int = MAX_PARTIES, now: float) -> Room:
    """Create (or replace) ``room`` with its PINs; only their hashes are stored."""
    _digits("room", room, ROOM_DIGITS)
    _digits("PIN", pin, PIN_DIGITS)
    _digits("host PIN", host_pin, PIN_DIGITS)
    if pin == host_pin:
        raise RoomError(f"room {room}: the host PIN must differ from the parties' PIN")
    if not 2 <= max_parties <= MAX_PARTIES:
        raise RoomError(f"room {room}: max_parties {max_parties}: expected 2 to {MAX_PARTIES}")
    row = Room(room, name, max_parties, hash_pin(pin), hash_pin(host_pin))

    def write(db: Database) -> None:
        db.execute("INSERT INTO conference_rooms (room, name, pin_hash, host_pin_hash,"
                   " max_parties, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room) DO"
                   " UPDATE SET name = excluded.name, pin_hash = excluded.pin_hash,"
                   " host_pin_hash = excluded.host_pin_hash,"
                   " max_parties = excluded.max_parties",
                   [room, name, row.pin_hash, row.host_pin_hash, max_parties, now])

    store.submit(write).result()
    return row


def find_room(store: Store, room: str) -> Room | None:
    rows = store.query("SELECT room, name, max_parties, pin_hash, host_pin_hash "
                       "FROM conference_rooms WHERE room = ?", [room])
    return Room(**rows[0]) if rows else None


def check_pin(store: Store, room: str, pin: str) -> tuple[Room, bool] | None:
    """``(room, is_host)`` when ``pin`` opens ``room``; None for an unknown room or a
    wrong PIN (the caller is not told which)."""
    found = find_room(store, room) if room else None
    if found is None or not pin:
        return None
    if pin_matches(pin, found.host_pin_hash):
        return found, True
    if pin_matches(pin, found.pin_hash):
        return found, False
    return None


def log_event(store: Store, room: str, call_id: str, caller: str, event: str, at: float, *,
              host: bool = False) -> Future[None]:
    def write(db: Database) -> None:
        db.execute("INSERT INTO conference_events (room, call_id, caller, event, host, at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", [room, call_id, caller, event, int(host), at])

    return store.submit(write)


def events(store: Store, room: str) -> list[dict[str, Any]]:
    return store.query("SELECT * FROM conference_events WHERE room = ? ORDER BY id", [room])


__all__ = ["MAX_PARTIES", "Room", "RoomError", "check_pin", "create_room", "events",
           "find_room", "hash_pin", "log_event", "pin_matches"]
