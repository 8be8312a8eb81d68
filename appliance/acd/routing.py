"""Routing decisions: which waiting caller goes next, and which seats to ring for them.

Pure functions over the waiting list and the seats' live state, with no clock or line, so
the strategies are tested with Hypothesis and timed by ``appliance bench acd`` exactly as
the runtime calls them. The waiting list is ordered by caller priority (higher first),
then by arrival; a caller who takes a callback keeps their entry and so their place. A
decision only ever offers seats that are READY, serve the queue, hold its skills (and the
caller's language when the queue routes by language), and sit in the lowest penalty tier
among those; a seat that already let this caller's call ring out is skipped until every
eligible seat has had its turn.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from appliance.acd.model import AgentState, QueueConfig, SeatStatus, Strategy

_SEQ = itertools.count()


@dataclass(eq=False, slots=True)
class Entry:
    """A caller waiting in a queue (or, once ``callback_number`` is set, a booked callback
    standing in their place)."""

    key: str  # unique, names the row in acd_entries
    queue: str
    caller: str
    language: str
    priority: int
    joined_at: float  # wall clock, for the waiting time and the records
    seq: int = field(default_factory=lambda: next(_SEQ))
    callback_number: str | None = None
    engaged: bool = False  # seats ring for it, or the caller is deciding on a callback
    offers: int = 0  # times seats were rung for it
    tried: set[str] = field(default_factory=set)  # seats whose ring timed out for it

    @property
    def order(self) -> tuple[int, int]:
        return (-self.priority, self.seq)


class WaitingList:
    """A queue's waiting entries in answer order."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._entries: list[Entry] = sorted(entries, key=_order)

    def add(self, entry: Entry) -> None:
        bisect.insort(self._entries, entry, key=_order)

    def remove(self, entry: Entry) -> bool:
        try:
            self._entries.remove(entry)
        except ValueError:
            return False
        return True

    def position(self, entry: Entry) -> int:
        """1 for the caller answered next."""
        return self._entries.index(entry) + 1

    def __contains__(self, entry: object) -> bool:
        return entry in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> Sequence[Entry]:
        return tuple(self._entries)


def _order(entry: Entry) -> tuple[int, int]:
    return entry.order


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring ``seats`` (all at once for ring-all, else one) for ``entry``."""

    entry: Entry
    seats: tuple[SeatStatus, ...]


class RoundRobinMemory:
    """The seat each queue offered last, so round robin starts after it next time."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: dict[str, int] = {}


def eligible(queue: QueueConfig, entry: Entry, seats: Iterable[SeatStatus]) -> list[SeatStatus]:
    """READY seats that serve ``queue`` and hold its skills, lowest penalty tier only."""
    need = queue.skills + ((entry.language,) if queue.language_skill else ())
    found: list[tuple[int, SeatStatus]] = []
    ready = AgentState.READY
    for seat in seats:
        if seat.state is not ready:
            continue
        penalty = queue.penalty(seat.config.id)
        if penalty is None or (need and not seat.has_skills(need)):
            continue
        found.append((penalty, seat))
    if not found:
        return []
    fresh = [(p, s) for p, s in found if s.config.id not in entry.tried]
    if not fresh:
        # Every eligible seat let this caller ring out once: start a new round.
        entry.tried.clear()
        fresh = found
    low = min(p for p, _ in fresh)
    return [s for p, s in fresh if p == low]


def order_seats(strategy: Strategy, seats: list[SeatStatus], last: int | None,
                total: int) -> list[SeatStatus]:
    """``seats`` in the order ``strategy`` would ring them."""
    if strategy is Strategy.ROUND_ROBIN:
        start = -1 if last is None else last
        return sorted(seats, key=lambda s: (s.index - start - 1) % max(total, 1))
    if strategy is Strategy.LONGEST_IDLE:
        return sorted(seats, key=lambda s: (s.idle_since, s.index))
    if strategy is Strategy.FEWEST_CALLS:
        return sorted(seats, key=lambda s: (s.calls, s.idle_since, s.index))
    if strategy is Strategy.LEAST_TALK:
        return sorted(seats, key=lambda s: (s.talk_seconds, s.idle_since, s.index))
    return sorted(seats, key=lambda s: s.index)  # ring all: every seat, in seat order


def decide(queue: QueueConfig, waiting: WaitingList, seats: Sequence[SeatStatus],
           memory: RoundRobinMemory) -> Offer | None:
    """The next offer for ``queue``: the first waiting entry not yet being offered that has
    an eligible seat, with the seats to ring. Round robin's memory moves on here."""
    for entry in waiting._entries:
        if entry.engaged:
            continue
        candidates = eligible(queue, entry, seats)
        if not candidates:
            continue
        ordered = order_seats(queue.strategy, candidates, memory.last.get(queue.name),
                              len(seats))
        if queue.strategy is not Strategy.RING_ALL:
            ordered = ordered[:1]
        memory.last[queue.name] = ordered[0].index
        return Offer(entry, tuple(ordered))
    return None


__all__ = ["Entry", "Offer", "RoundRobinMemory", "WaitingList", "decide", "eligible",
           "order_seats"]
