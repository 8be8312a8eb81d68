"""The Line interface: what every driver hands the engine, and nothing more.

A line is one call leg between the engine and the outside world. Whatever is behind it (a
simulated exchange, an Asterisk AudioSocket stream fed by a DAHDI card, a sound card), the
engine sees the same thing: 320-byte frames of 20 ms slin in and out, and a few events
(answered, an out-of-band DTMF key, hang-up). The engine reads exactly one inbound frame and
writes exactly one outbound frame per line per 20 ms tick, so pacing is the engine's job and
drivers only move bytes. Drivers never import the engine; the engine never imports a concrete
driver (they are chosen by the CLI and passed in).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class Direction(enum.Enum):
    INBOUND = "in"
    OUTBOUND = "out"


class LineState(enum.Enum):
    OFFERED = "offered"  # inbound, not yet answered
    DIALING = "dialing"  # outbound, not yet answered
    ANSWERED = "answered"
    ENDED = "ended"


class EventKind(enum.Enum):
    ANSWERED = "answered"  # the far end answered an originated call
    DTMF = "dtmf"  # a key reported out of band (e.g. AudioSocket kind 0x03)
    HANGUP = "hangup"  # the far end or the line went away; ``cause`` says why


@dataclass(frozen=True, slots=True)
class LineEvent:
    kind: EventKind
    digit: str = ""
    cause: str = ""


# Hang-up causes shared by drivers and the CDR.
CAUSE_NORMAL = "normal"  # the engine hung up
CAUSE_REMOTE = "remote"  # the far end hung up
CAUSE_LINE_DROPPED = "line-dropped"  # transport lost without a hang-up
CAUSE_PROTOCOL = "protocol-error"  # the far end sent something malformed
CAUSE_SHUTDOWN = "shutdown"  # the engine is stopping
CAUSE_BUSY = "busy"
CAUSE_NO_ANSWER = "no-answer"
CAUSE_CONGESTION = "congestion"


class PortState(enum.Enum):
    """What a physical line (a trunk, a DAHDI channel) is doing, for the admin's live view."""

    IDLE = "idle"
    RINGING = "ringing"  # a call offered to the box, or one the box is dialling
    IN_CALL = "in-call"
    ALARM = "alarm"  # the line is down (no loop current, E1 red/blue alarm): no calls


@dataclass(frozen=True, slots=True)
class PortStatus:
    """One physical line as its driver sees it now."""

    port: str  # the driver's name for it: a trunk or DAHDI channel number
    state: PortState
    call: str = ""  # the id of the Line on it, if any
    direction: str = ""  # "in" / "out" when a call is on it
    reserved_inbound: bool = False  # never taken for an outbound call
    detail: str = ""  # why it is in alarm

    def as_dict(self) -> dict[str, object]:
        return {"port": self.port, "state": self.state.value, "call": self.call,
                "direction": self.direction, "reserved_inbound": self.reserved_inbound,
                "detail": self.detail}


class LineError(Exception):
    """A driver could not do what was asked (the message names the line and the reason)."""


class Line(ABC):
    """One call leg. Subclasses fill ``inbound`` and ``events``; the engine drains them."""

    #: the driver's name, for the CDR
    driver_name = ""
    #: most frames a line queues before dropping the oldest (bounds latency after a stall)
    MAX_QUEUED = 6  # one AudioSocket message of 120 ms (the largest accepted) fits whole

    def __init__(
        self, line_id: str, direction: Direction, caller: str = "", callee: str = ""
    ) -> None:
        self.id = line_id
        self.direction = direction
        self.caller = caller
        self.callee = callee
        self.state = LineState.OFFERED if direction is Direction.INBOUND else LineState.DIALING
        self.inbound: deque[bytes] = deque()
        self.events: deque[LineEvent] = deque()
        self.frames_dropped = 0
        self.end_cause = ""
        #: the physical line the call rides, as DAHDI numbers its channels (the admin's
        #: ports are keyed by it: an inbound call follows its port's route); None when the
        #: driver does not know it
        self.port: int | None = None

    # -- driver side -------------------------------------------------------------------
    def push_frame(self, frame: bytes) -> None:
        """Queue one inbound 320-byte frame (drivers call this)."""
        if len(self.inbound) >= self.MAX_QUEUED:
            self.inbound.popleft()
            self.frames_dropped += 1
        self.inbound.append(frame)

    def push_event(self, event: LineEvent) -> None:
        if event.kind is EventKind.HANGUP:
            if self.state is LineState.ENDED:
                return
            self.state = LineState.ENDED
            self.end_cause = event.cause
        elif event.kind is EventKind.ANSWERED:
            self.state = LineState.ANSWERED
        self.events.append(event)

    # -- engine side -------------------------------------------------------------------
    def read_frame(self) -> bytes | None:
        """The oldest queued inbound frame, or None if none arrived in time."""
        inbound = self.inbound
        return inbound.popleft() if inbound else None

    @abstractmethod
    def write_frame(self, frame: bytes) -> None:
        """Send one 320-byte frame toward the far end (once per tick)."""

    @abstractmethod
    def answer(self) -> None:
        """Answer an offered inbound line."""

    @abstractmethod
    def hangup(self, cause: str = CAUSE_NORMAL) -> None:
        """End the leg from the engine's side; idempotent."""

    @property
    def ended(self) -> bool:
        return self.state is LineState.ENDED

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.direction.value} {self.state.value}>"


AcceptLine = Callable[[Line], None]


class Driver(ABC):
    """A source of lines. ``start`` begins offering inbound lines to ``accept``."""

    name = "driver"
    #: frames arrive when the far end sends them (a network peer clocked by the line card),
    #: not when the engine asks: the engine then aligns its tick just after their arrival
    far_end_clocked = False

    @abstractmethod
    async def start(self, accept: AcceptLine) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def originate(self, number: str, caller: str = "") -> Line:
        """Place an outbound call; the line reports ANSWERED or HANGUP (busy, no answer...)."""
        raise LineError(f"driver {self.name!r} cannot place outbound calls")

    def port_states(self) -> list[PortStatus]:
        """Each physical line this driver has and what it is doing (none by default: a
        driver whose calls do not ride numbered lines, such as a headset)."""
        return []

    def reserve_inbound(self, ports: frozenset[str]) -> None:
        """Keep ``ports`` (as :class:`PortStatus` names them) for inbound calls: an outbound
        call never takes one. Nothing by default: a driver that does not pick the line
        for an outbound call (Asterisk dials a DAHDI group the port is left out of)."""
        return None

    def track_arrivals(self) -> None:
        """Start keeping arrival times for :meth:`take_arrivals` (a far-end clocked driver;
        until asked, none are kept, so nothing grows when no one takes them)."""
        return None

    def take_arrivals(self) -> list[float]:
        """Arrival times (CLOCK_MONOTONIC) of the inbound frames since the last call, for a
        far-end clocked driver; the engine aligns its tick to them."""
        return []

    def before_tick(self, tick: int) -> None:
        """Called by the engine at the start of every tick (simulated lines produce audio here)."""
        return None

    def after_tick(self, tick: int) -> None:
        """Called by the engine after every line got its outbound frame for the tick."""
        return None
