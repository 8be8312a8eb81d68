"""What the ACD is configured with and what it knows about each seat, as plain data.

Seats (1 to 8 a box) and queues are described by frozen configuration objects that check
themselves when built, so a bad setting is refused with a message naming it before any
call depends on it. A :class:`SeatStatus` is the live side of a seat: the agent logged in,
the state with its reason code and since when, and the load figures (calls answered, talk
time, idle since) that the balancing strategies read. Nothing here touches a line, the
clock or the disk; the runtime (:mod:`appliance.acd.service`) changes these objects and
the routing (:mod:`appliance.acd.routing`) reads them.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

MAX_SEATS: Final = 8
_ID: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_NUMBER: Final = re.compile(r"[0-9*#+]{1,32}")


class AgentState(enum.Enum):
    LOGGED_OUT = "logged-out"
    READY = "ready"  # 就绪: may be offered a call
    NOT_READY = "not-ready"  # 示忙, always with a reason code
    RINGING = "ringing"  # a call is being offered to the seat's phone
    TALKING = "talking"
    WRAP_UP = "wrap-up"  # 话后处理: after a call, before the next one


#: reason codes for NOT_READY; the last two are set by the ACD itself
REASONS: Final = frozenset({"break", "lunch", "meeting", "training", "after-call-work",
                            "other", "no-answer", "unreachable"})
#: states an agent (or the supervisor page) may ask for; the others belong to calls
AGENT_SETTABLE: Final = frozenset({AgentState.READY, AgentState.NOT_READY})


class Strategy(enum.Enum):
    RING_ALL = "ring-all"
    ROUND_ROBIN = "round-robin"  # with memory: starts after the seat offered last
    LONGEST_IDLE = "longest-idle"
    FEWEST_CALLS = "fewest-calls"
    LEAST_TALK = "least-talk"  # least talk time since login


class Overflow(enum.Enum):
    """Where a caller goes after the queue's maximum wait."""

    VOICEMAIL = "voicemail"
    CALLBACK = "callback"  # offered a callback that keeps their place (else voicemail)


# Caller priorities the IVR sets; higher is answered first.
PRIORITY_NORMAL: Final = 0
PRIORITY_CLAIM: Final = 5  # a caller who has just reported a claim (出险报案)
PRIORITY_VIP: Final = 10


class ConfigError(ValueError):
    """A seat or queue setting is wrong; the message names it and what was expected."""


@dataclass(frozen=True, slots=True)
class SeatConfig:
    """A seat: the phone number the ACD dials on ``driver`` and the agent skills it has
    (skill -> level, 1 and up)."""

    id: str
    number: str
    driver: str = "sim"
    name: str = ""
    skills: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.id):
            raise ConfigError(f"seat id {self.id!r}: expected 1-32 letters, digits, _ . -")
        if not _NUMBER.fullmatch(self.number):
            raise ConfigError(f"seat {self.id}: number {self.number!r} is not a dialable number")
        for skill, level in self.skills.items():
            if not isinstance(level, int) or isinstance(level, bool) or level < 1:
                raise ConfigError(f"seat {self.id}: skill {skill!r} level {level!r}: "
                                  "expected an integer >= 1")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A queue. ``members`` maps seat id -> penalty (lower penalties are tried first; an
    empty mapping means every seat, penalty 0). ``skills`` must all be held by a seat, and
    with ``language_skill`` the caller's language (zh, yue, en) too."""

    name: str
    strategy: Strategy = Strategy.LONGEST_IDLE
    members: Mapping[str, int] = field(default_factory=dict)
    skills: tuple[str, ...] = ()
    language_skill: bool = False
    ring_timeout: float = 15.0  # seconds a seat rings before the next one is tried
    max_wait: float = 300.0  # seconds in the queue before the overflow
    overflow: Overflow = Overflow.VOICEMAIL
    wrap_up: float = 10.0  # seconds of wrap-up after every call
    announce_every: float = 30.0  # seconds of music between position announcements
    periodic_every: int = 2  # every Nth announcement adds "thank you for waiting"
    auto_pause: bool = True  # a seat that lets a call ring out is set not ready
    handle_seconds: float = 180.0  # handle time assumed until the queue has measured some

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.name):
            raise ConfigError(f"queue name {self.name!r}: expected 1-32 letters, digits, _ . -")
        if not isinstance(self.strategy, Strategy):
            raise ConfigError(f"queue {self.name}: strategy {self.strategy!r}: expected one of "
                              f"{', '.join(s.value for s in Strategy)}")
        for what, value, low in (("ring_timeout", self.ring_timeout, 1.0),
                                 ("max_wait", self.max_wait, 1.0),
                                 ("wrap_up", self.wrap_up, 0.0),
                                 ("announce_every", self.announce_every, 1.0),
                                 ("handle_seconds", self.handle_seconds, 1.0)):
            if not isinstance(value, int | float) or not math.isfinite(value) or value < low:
                raise ConfigError(f"queue {self.name}: {what} {value!r}: expected a number "
                                  f">= {low} (seconds)")
        if self.periodic_every < 1:
            raise ConfigError(f"queue {self.name}: periodic_every {self.periodic_every!r}: "
                              "expected an integer >= 1")
        for seat, penalty in self.members.items():
            if not isinstance(penalty, int) or isinstance(penalty, bool) or penalty < 0:
                raise ConfigError(f"queue {self.name}: member {seat!r} penalty {penalty!r}: "
                                  "expected an integer >= 0")

    def penalty(self, seat_id: str) -> int | None:
        """The seat's penalty in this queue, None if it does not serve the queue."""
        if not self.members:
            return 0
        return self.members.get(seat_id)


@dataclass(eq=False, slots=True)
class SeatStatus:
    """The live state of a seat. ``idle_since`` is when it last became free (login or the
    end of its last call), which longest-idle orders by."""

    config: SeatConfig
    index: int  # position in the box's seat list: round robin's order
    state: AgentState = AgentState.LOGGED_OUT
    reason: str = ""
    agent: str = ""
    since: float = 0.0
    idle_since: float = 0.0
    calls: int = 0
    talk_seconds: float = 0.0
    offers: int = 0

    @property
    def id(self) -> str:
        return self.config.id

    def has_skills(self, skills: tuple[str, ...]) -> bool:
        own = self.config.skills
        return all(own.get(s, 0) >= 1 for s in skills)


def check_seats(seats: list[SeatConfig]) -> None:
    if not 1 <= len(seats) <= MAX_SEATS:
        raise ConfigError(f"a box has 1 to {MAX_SEATS} seats, got {len(seats)}")
    ids = [s.id for s in seats]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"seat ids must be unique; repeated: {', '.join(dupes)}")


def check_queues(queues: list[QueueConfig], seat_ids: list[str]) -> None:
    """One or more queues with unique names, each member one of the box's seats."""
    names = [q.name for q in queues]
    if not queues or len(set(names)) != len(names):
        raise ConfigError(f"queues must be one or more with unique names, got {names}")
    for q in queues:
        unknown = sorted(set(q.members) - set(seat_ids))
        if unknown:
            raise ConfigError(f"queue {q.name}: members {', '.join(unknown)} are not seats "
                              f"(seats: {', '.join(seat_ids)})")


__all__ = ["AGENT_SETTABLE", "MAX_SEATS", "PRIORITY_CLAIM", "PRIORITY_NORMAL", "PRIORITY_VIP",
           "REASONS", "AgentState", "ConfigError", "Overflow", "QueueConfig", "SeatConfig",
           "SeatStatus", "Strategy", "check_queues", "check_seats"]
