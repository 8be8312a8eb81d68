"""An in-process telephone exchange for tests, benchmarks, the demo and the admin's test call.

It behaves like the lines the box really has: a fixed number of trunk lines (callers get
congestion when all are taken), inbound calls that ring until the engine answers, and
outbound calls that go to subscribers who answer, are busy or never pick up, with the China
call-progress tones heard on the line meanwhile (so the engine's call-progress analysis runs
on real audio, as on an analog FXO port). Trunks are numbered from 1, as DAHDI numbers its
channels: a call takes the lowest free one, an outbound call never one reserved for inbound
or one in alarm (:meth:`SimExchange.trunk_down`, which drops the call on it), and
:meth:`SimExchange.port_states` says what each trunk is doing; a call's line carries
its trunk as ``port``, so the admin's inbound route of that port applies to it. Seat
phones are subscribers that signal their answer, as an FXS phone going off-hook does; they
hang on the box's seat ports, not on trunks. Audio moves once per engine tick: the
exchange's ``before_tick`` hook carries every far end's frame to the engine, and each frame
the engine writes is handed straight to the far end.
"""

from __future__ import annotations

import enum
import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance.media.frame import SILENCE
from appliance.media.tones import ToneSource
from drivers.base import (
    CAUSE_LINE_DROPPED,
    CAUSE_NORMAL,
    CAUSE_REMOTE,
    CAUSE_SHUTDOWN,
    AcceptLine,
    Direction,
    Driver,
    EventKind,
    Line,
    LineError,
    LineEvent,
    LineState,
    PortState,
    PortStatus,
)

if TYPE_CHECKING:
    from drivers.sim.bot import CallerBot

log = logging.getLogger("drivers.sim")

TICKS_PER_SECOND = 50


class TrunksBusy(LineError):
    """Every trunk line is taken: a caller hears congestion."""


class Behaviour(enum.Enum):
    ANSWER = "answer"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    CONGESTION = "congestion"


@dataclass
class Subscriber:
    bot: CallerBot | None
    behaviour: Behaviour = Behaviour.ANSWER
    answer_after: float = 3.0  # seconds of ringing before the answer
    signal_answer: bool = False  # True: the engine gets an ANSWERED event (seat, digital line)
    is_seat: bool = False


class SimLine(Line):
    """The engine's side of a simulated call."""

    driver_name = "sim"

    def __init__(self, exchange: SimExchange, line_id: str, direction: Direction, caller: str,
                 callee: str) -> None:
        super().__init__(line_id, direction, caller, callee)
        self.exchange = exchange
        self.bot: CallerBot | None = None
        self.connected = False  # far-end audio flows (bot answered / engine answered)
        self.tone: ToneSource | None = None  # what the engine hears while not connected
        self.ring_ticks_left = -1
        self.subscriber: Subscriber | None = None
        self.frames_sent = 0
        self.trunk = 0  # the trunk line it rides (0: a seat phone's line, no trunk)

    def write_frame(self, frame: bytes) -> None:
        if self.state is LineState.ENDED:
            return
        self.frames_sent += 1
        bot = self.bot
        if bot is not None and self.connected:
            bot.receive(frame)

    def answer(self) -> None:
        if self.state is LineState.OFFERED:
            self.state = LineState.ANSWERED
            self.connected = True
            if self.bot is not None:
                self.bot.on_answered()

    def hangup(self, cause: str = CAUSE_NORMAL) -> None:
        if self.state is LineState.ENDED:
            return
        self.state = LineState.ENDED
        self.end_cause = cause
        self.exchange.release(self)
        if self.bot is not None:
            self.bot.on_remote_hangup(cause)


class SimExchange(Driver):
    """Trunks and seats; bots dial in with :meth:`CallerBot.dial`."""

    name = "sim"

    def __init__(self, trunks: int = 30) -> None:
        self.trunks = trunks
        #: trunks in alarm, with why (no calls in or out while down)
        self.alarms: dict[int, str] = {}
        #: trunks that only take inbound calls (the admin's "reserved for inbound")
        self.reserved_inbound: set[int] = set()
        self.lines: dict[str, SimLine] = {}
        self.subscribers: dict[str, Subscriber] = {}
        self._accept: AcceptLine | None = None
        self._ids = itertools.count(1)
        self.tick_no = 0
        self._tick_listeners: list[CallerBot] = []

    # ------------------------------------------------------------------ Driver
    async def start(self, accept: AcceptLine) -> None:
        self._accept = accept

    async def stop(self) -> None:
        for line in list(self.lines.values()):
            # As a dropped trunk does: the engine gets the event, the trunk is free again
            # and the far end is told (line.hangup would do nothing once the event has
            # ended the line).
            line.push_event(LineEvent(EventKind.HANGUP, cause=CAUSE_SHUTDOWN))
            self.release(line)
            if line.bot is not None:
                line.bot.on_remote_hangup(CAUSE_SHUTDOWN)
        self._accept = None

    async def originate(self, number: str, caller: str = "") -> Line:
        sub = self.subscribers.get(number)
        trunk = 0
        if sub is None or not sub.is_seat:
            trunk = self._free_trunk(outbound=True)
        line = SimLine(self, f"sim-{next(self._ids)}", Direction.OUTBOUND, caller, number)
        line.trunk = trunk
        line.port = trunk or None  # a seat phone's line rides no trunk
        self.lines[line.id] = line
        line.subscriber = sub
        if sub is None or sub.behaviour is Behaviour.CONGESTION:
            line.tone = ToneSource("vacant" if sub is None else "congestion")
        elif sub.behaviour is Behaviour.BUSY or _in_call(sub.bot):
            line.tone = ToneSource("busy")  # an off-hook phone gives busy
        else:
            line.tone = ToneSource("ringback")
            if sub.behaviour is Behaviour.ANSWER:
                # At least one tick: "answer at once" is still an answer.
                line.ring_ticks_left = max(1, round(sub.answer_after * TICKS_PER_SECOND))
        return line

    def before_tick(self, tick: int) -> None:
        self.tick_no = tick
        for line in list(self.lines.values()):
            if line.state is LineState.ENDED:
                continue
            if line.connected:
                bot = line.bot
                line.push_frame(bot.produce() if bot is not None else SILENCE)
            else:
                if line.ring_ticks_left > 0:
                    line.ring_ticks_left -= 1
                    if line.ring_ticks_left == 0:
                        self._far_end_answers(line)
                        bot = line.bot
                        line.push_frame(bot.produce() if bot is not None else SILENCE)
                        continue
                line.push_frame(line.tone.next_frame() if line.tone is not None else SILENCE)
        for bot in list(self._tick_listeners):
            bot.on_tick(tick)

    # ------------------------------------------------------------------ exchange side
    def subscribe(self, number: str, bot: CallerBot | None, *,
                  behaviour: Behaviour = Behaviour.ANSWER, answer_after: float = 3.0,
                  signal_answer: bool = False) -> None:
        """Make ``number`` reachable for outbound calls (a bot answers it, or it is busy...)."""
        self.subscribers[number] = Subscriber(bot, behaviour, answer_after, signal_answer)

    def add_seat(self, number: str, bot: CallerBot, answer_after: float = 1.0) -> None:
        """A seat phone: answers after ``answer_after`` seconds and signals off-hook."""
        self.subscribers[number] = Subscriber(bot, Behaviour.ANSWER, answer_after, True, True)

    def dial_in(self, bot: CallerBot, callee: str) -> SimLine:
        """A bot calls the box: offer a new inbound line to the engine."""
        if self._accept is None:
            raise LineError("sim: the exchange is not started (no engine attached)")
        trunk = self._free_trunk(outbound=False)
        line = SimLine(self, f"sim-{next(self._ids)}", Direction.INBOUND, bot.number, callee)
        line.trunk = line.port = trunk
        line.bot = bot
        self.lines[line.id] = line
        self._accept(line)
        return line

    def far_hangup(self, line: SimLine) -> None:
        """The far end (a bot) hung up."""
        if line.state is LineState.ENDED:
            return
        line.push_event(LineEvent(EventKind.HANGUP, cause=CAUSE_REMOTE))
        self.release(line)

    def release(self, line: SimLine) -> None:
        self.lines.pop(line.id, None)

    # ------------------------------------------------------------------ trunks
    def _free_trunk(self, *, outbound: bool) -> int:
        """The lowest trunk a new call may take; TrunksBusy (the caller hears congestion)
        when there is none, saying why."""
        taken = {line.trunk for line in self.lines.values() if line.trunk}
        usable = [n for n in range(1, self.trunks + 1)
                  if n not in self.alarms and not (outbound and n in self.reserved_inbound)]
        for n in usable:
            if n not in taken:
                return n
        if not self.alarms and not (outbound and self.reserved_inbound):
            raise TrunksBusy(f"sim: all {self.trunks} trunk lines are busy")
        down = len([n for n in self.alarms if n <= self.trunks])
        kept = len([n for n in self.reserved_inbound if n <= self.trunks and n not in
                    self.alarms]) if outbound else 0
        raise TrunksBusy(f"sim: no free trunk line for an {'out' if outbound else 'in'}bound"
                         f" call: of {self.trunks}, {down} in alarm, {kept} reserved for"
                         f" inbound, the rest busy")

    def trunk_down(self, trunk: int, reason: str = "no loop current") -> None:
        """Trunk ``trunk`` loses its line (a cut cable, an E1 alarm): the call on it drops
        and no call takes it until :meth:`trunk_up`."""
        self.alarms[trunk] = reason
        for line in list(self.lines.values()):
            if line.trunk == trunk and line.state is not LineState.ENDED:
                line.push_event(LineEvent(EventKind.HANGUP, cause=CAUSE_LINE_DROPPED))
                self.release(line)
                if line.bot is not None:
                    line.bot.on_remote_hangup(CAUSE_LINE_DROPPED)

    def trunk_up(self, trunk: int) -> None:
        self.alarms.pop(trunk, None)

    def reserve_inbound(self, ports: frozenset[str]) -> None:
        self.reserved_inbound = {int(p) for p in ports if p.isdigit()}

    def port_states(self) -> list[PortStatus]:
        on_trunk = {line.trunk: line for line in self.lines.values()
                    if line.trunk and line.state is not LineState.ENDED}
        out = []
        for n in range(1, self.trunks + 1):
            reserved = n in self.reserved_inbound
            if n in self.alarms:
                out.append(PortStatus(str(n), PortState.ALARM, reserved_inbound=reserved,
                                      detail=self.alarms[n]))
                continue
            line = on_trunk.get(n)
            if line is None:
                out.append(PortStatus(str(n), PortState.IDLE, reserved_inbound=reserved))
                continue
            talking = line.connected or line.state is LineState.ANSWERED
            out.append(PortStatus(str(n), PortState.IN_CALL if talking else PortState.RINGING,
                                  call=line.id, direction=line.direction.value,
                                  reserved_inbound=reserved))
        return out

    def listen_ticks(self, bot: CallerBot) -> None:
        if bot not in self._tick_listeners:
            self._tick_listeners.append(bot)

    def unlisten_ticks(self, bot: CallerBot) -> None:
        if bot in self._tick_listeners:
            self._tick_listeners.remove(bot)

    def _far_end_answers(self, line: SimLine) -> None:
        sub = line.subscriber
        assert sub is not None
        if _in_call(sub.bot):
            line.tone = ToneSource("busy")  # picked up another call while this one rang
            return
        line.connected = True
        line.tone = None
        bot = sub.bot
        if bot is not None:
            line.bot = bot
            bot.attach(line)
            bot.on_answered()
        if sub.signal_answer:
            line.push_event(LineEvent(EventKind.ANSWERED))


def _in_call(bot: CallerBot | None) -> bool:
    """Whether the phone ``bot`` is on a call that has not ended."""
    return bot is not None and bot.line is not None and bot.line.state is not LineState.ENDED
