"""The ACD's rows in the store: seats and queues as configured, agent state changes,
each caller's stay in a queue with its outcome, and booked callbacks.

Every write is handed to the store's writer thread and not waited for, so a state change
or a caller joining never makes the 20 ms tick wait for the disk; the writer runs them in
the order they were submitted, which is what lets an entry's close follow its open without
carrying a row id around (entries are keyed by a string the ACD makes). The read helpers
are for the web and for tests.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from dataclasses import asdict
from typing import Any

from sqlite_utils import Database

from appliance.acd.model import (
    Overflow,
    QueueConfig,
    SeatConfig,
    Strategy,
    check_queues,
    check_seats,
)
from appliance.store.db import Store


def save_seat(store: Store, seat: SeatConfig, now: float) -> Future[None]:
    return store.submit(lambda db: _seat_row(db, seat, now))


def _seat_row(db: Database, seat: SeatConfig, now: float) -> None:
    db.execute(
        "INSERT INTO acd_seats (id, number, driver, name, skills, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET number = excluded.number,"
        " driver = excluded.driver, name = excluded.name, skills = excluded.skills,"
        " updated_at = excluded.updated_at",
        [seat.id, seat.number, seat.driver, seat.name,
         json.dumps(dict(seat.skills), sort_keys=True), now])


def _queue_rows(db: Database, queue: QueueConfig, now: float) -> None:
    db.execute(
        "INSERT INTO acd_queues (name, strategy, config, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET strategy = excluded.strategy,"
        " config = excluded.config, updated_at = excluded.updated_at",
        [queue.name, queue.strategy.value, json.dumps(queue_document(queue), sort_keys=True),
         now])
    db.execute("DELETE FROM acd_queue_members WHERE queue = ?", [queue.name])
    for seat_id, penalty in sorted(queue.members.items()):
        db.execute("INSERT INTO acd_queue_members (queue, seat_id, penalty) "
                   "VALUES (?, ?, ?)", [queue.name, seat_id, penalty])


def check_config(seats: list[SeatConfig], queues: list[QueueConfig]) -> None:
    """The model's checks of a whole configuration (ConfigError); seats may come before any
    queue."""
    check_seats(seats)
    if queues:
        check_queues(queues, [s.id for s in seats])


def replace_config(db: Database, seats: list[SeatConfig], queues: list[QueueConfig],
                   now: float) -> None:
    """Inside a write: the box's whole seat and queue configuration becomes exactly this
    (checked first with the model's own checks; ConfigError and nothing written). Seats
    may come before any queue: the engine starts its ACD once the box has both."""
    check_config(seats, queues)
    for seat in seats:
        _seat_row(db, seat, now)
    for queue in queues:
        _queue_rows(db, queue, now)
    keep_seats, keep_queues = [s.id for s in seats], [q.name for q in queues]
    db.execute("DELETE FROM acd_seats WHERE id NOT IN (SELECT value FROM json_each(?))",
               [json.dumps(keep_seats)])
    # json_each: one parameter however many queues (none at all included).
    names = json.dumps(keep_queues)
    db.execute("DELETE FROM acd_queue_members WHERE queue NOT IN"
               " (SELECT value FROM json_each(?))", [names])
    db.execute("DELETE FROM acd_queues WHERE name NOT IN (SELECT value FROM json_each(?))",
               [names])


def queue_document(queue: QueueConfig) -> dict[str, Any]:
    """A queue's settings as JSON-ready values (enums by value)."""
    doc = asdict(queue)
    doc["strategy"] = queue.strategy.value
    doc["overflow"] = queue.overflow.value
    doc["members"] = dict(queue.members)
    doc["skills"] = list(queue.skills)
    return doc


def save_queue(store: Store, queue: QueueConfig, now: float) -> Future[None]:
    return store.submit(lambda db: _queue_rows(db, queue, now))


def load_seats(store: Store) -> list[SeatConfig]:
    """The seats as last saved, in id order (what the box starts with next time)."""
    return [SeatConfig(id=r["id"], number=r["number"], driver=r["driver"], name=r["name"],
                       skills=json.loads(r["skills"]))
            for r in store.query("SELECT * FROM acd_seats ORDER BY id")]


def load_queues(store: Store) -> list[QueueConfig]:
    """The queues as last saved; each is checked again as it is built (ConfigError)."""
    queues = []
    for row in store.query("SELECT config FROM acd_queues ORDER BY name"):
        doc = json.loads(row["config"])
        doc["strategy"] = Strategy(doc["strategy"])
        doc["overflow"] = Overflow(doc["overflow"])
        doc["skills"] = tuple(doc["skills"])
        queues.append(QueueConfig(**doc))
    return queues


def log_state(store: Store, seat_id: str, agent: str, state: str, reason: str,
              at: float) -> Future[None]:
    def write(db: Database) -> None:
        db.execute("INSERT INTO acd_agent_states (seat_id, agent, state, reason, at) "
                   "VALUES (?, ?, ?, ?, ?)", [seat_id, agent, state, reason, at])

    return store.submit(write)


def open_entry(store: Store, key: str, queue: str, call_id: str, caller: str, language: str,
               priority: int, joined_at: float) -> Future[None]:
    def write(db: Database) -> None:
        db.execute("INSERT INTO acd_entries (key, queue, call_id, caller, language, priority,"
                   " joined_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [key, queue, call_id, caller, language, priority, joined_at])

    return store.submit(write)


def close_entry(store: Store, key: str, outcome: str, ended_at: float, waited: float, *,
                answered_by: str | None = None, talk_seconds: float | None = None,
                offers: int = 0) -> Future[None]:
    def write(db: Database) -> None:
        db.execute("UPDATE acd_entries SET outcome = ?, ended_at = ?, waited_seconds = ?,"
                   " answered_by = ?, talk_seconds = ?, offers = ? WHERE key = ?",
                   [outcome, ended_at, round(waited, 3), answered_by,
                    None if talk_seconds is None else round(talk_seconds, 3), offers, key])

    return store.submit(write)


def mark_entry(store: Store, key: str, outcome: str, waited: float) -> Future[None]:
    """An outcome reached while the entry stays open (a callback booked keeps its place)."""
    def write(db: Database) -> None:
        db.execute("UPDATE acd_entries SET outcome = ?, waited_seconds = ? WHERE key = ?",
                   [outcome, round(waited, 3), key])

    return store.submit(write)


def book_callback(store: Store, entry_key: str, queue: str, number: str,
                  at: float) -> Future[None]:
    def write(db: Database) -> None:
        db.execute("INSERT INTO acd_callbacks (entry_key, queue, number, requested_at) "
                   "VALUES (?, ?, ?, ?)", [entry_key, queue, number, at])

    return store.submit(write)


def close_callback(store: Store, entry_key: str, outcome: str, placed_at: float | None,
                   call_id: str | None, seat_id: str | None) -> Future[None]:
    def write(db: Database) -> None:
        db.execute("UPDATE acd_callbacks SET outcome = ?, placed_at = ?, call_id = ?,"
                   " seat_id = ? WHERE entry_key = ? AND outcome IS NULL",
                   [outcome, placed_at, call_id, seat_id, entry_key])

    return store.submit(write)


def etiquette(store: Store, key: str, *, agent: str, ring_seconds: float, rings: int,
              hung_up_first: str, hold_count: int, hold_seconds: float) -> Future[None]:
    """An answered entry's measured etiquette (migration ``0012_acd_survey``)."""
    def write(db: Database) -> None:
        db.execute("UPDATE acd_entries SET agent = ?, ring_seconds = ?, rings = ?,"
                   " hung_up_first = ?, hold_count = ?, hold_seconds = ? WHERE key = ?",
                   [agent, round(ring_seconds, 3), rings, hung_up_first, hold_count,
                    round(hold_seconds, 3), key])

    return store.submit(write)


def log_hold(store: Store, key: str, seat_id: str, agent: str, started_at: float,
             ended_at: float, seconds: float, reminders: int) -> Future[None]:
    def write(db: Database) -> None:
        db.execute("INSERT INTO acd_holds (entry_key, seat_id, agent, started_at, ended_at,"
                   " seconds, reminders) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [key, seat_id, agent, started_at, ended_at, round(seconds, 3), reminders])

    return store.submit(write)


def save_survey(store: Store, key: str, status: str, score: int | None,
                at: float) -> Future[None]:
    def write(db: Database) -> None:
        db.execute("UPDATE acd_entries SET survey_status = ?, survey_score = ?, survey_at = ?"
                   " WHERE key = ?", [status, score, at, key])

    return store.submit(write)


def holds(store: Store, key: str) -> list[dict[str, Any]]:
    return store.query("SELECT * FROM acd_holds WHERE entry_key = ? ORDER BY id", [key])


def state_log(store: Store, seat_id: str) -> list[dict[str, Any]]:
    return store.query("SELECT agent, state, reason, at FROM acd_agent_states "
                       "WHERE seat_id = ? ORDER BY id", [seat_id])


def entries(store: Store, queue: str | None = None) -> list[dict[str, Any]]:
    if queue is None:
        return store.query("SELECT * FROM acd_entries ORDER BY joined_at, key")
    return store.query("SELECT * FROM acd_entries WHERE queue = ? ORDER BY joined_at, key",
                       [queue])


def callbacks(store: Store) -> list[dict[str, Any]]:
    return store.query("SELECT * FROM acd_callbacks ORDER BY id")


__all__ = ["book_callback", "callbacks", "check_config", "close_callback", "close_entry",
           "entries", "etiquette", "holds", "load_queues", "load_seats", "log_hold",
           "log_state", "mark_entry", "open_entry", "queue_document", "replace_config",
           "save_queue", "save_seat", "save_survey", "state_log"]
