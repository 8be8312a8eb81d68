"""The ACD at run time: callers wait in queues, seats are rung, answered calls are bridged.

:meth:`Acd.transfer` is what the IVR's ``transfer`` node awaits: the caller joins the
queue (priority from the IVR: a claim just reported, a VIP), hears music on hold with
position and expected-wait announcements in their language, and either reaches a seat, or
after the queue's maximum wait leaves a message in the queue's voicemail box or books a
callback that keeps their place. Seats are phones reached through the Line interface:
offering a call is ``engine.originate`` on the seat's driver; the first seat to answer is
bridged with the caller by the engine (so the caller's stereo recording keeps both sides);
a seat that lets the call ring for the queue's ring timeout is set not ready ("no-answer")
and the next seat is tried. After each call the seat has its wrap-up time, then is ready.
Every agent state change, every stay in a queue and every callback is written to the
store (:mod:`appliance.acd.records`), and listeners get each change as an event for the
live pages. Routing itself is the pure :func:`appliance.acd.routing.decide`.

Etiquette is measured on every answered call, not asked of anyone: how long the seat rang
(and so how many rings of China's 1 s on / 4 s off cadence), each hold the agent put the
caller on (:meth:`Acd.hold` / :meth:`Acd.unhold`: the caller hears "please hold" and the
music, the agent hears nothing of them, and a hold longer than ``hold_remind_after``
reminds the agent by an event), and who hung up first. When the agent hangs up first the
caller stays on the line for the satisfaction survey (:mod:`appliance.acd.survey`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from appliance.acd import records
from appliance.acd.hold import estimate_wait, hold_tune
from appliance.acd.model import (
    AGENT_SETTABLE,
    PRIORITY_CLAIM,
    PRIORITY_VIP,
    REASONS,
    AgentState,
    ConfigError,
    Overflow,
    QueueConfig,
    SeatConfig,
    SeatStatus,
    check_queues,
    check_seats,
)
from appliance.acd.routing import Entry, Offer, RoundRobinMemory, WaitingList, decide
from appliance.acd.survey import ask_rating, rings
from appliance.acd.waiting import ask_callback, confirm_callback, hold, music
from appliance.calls.bridge import Bridge
from appliance.calls.call import Call, CallEnded
from appliance.media.collector import seconds_to_ticks
from appliance.store.db import Store
from appliance.voicemail import leave_message, queue_box
from drivers.base import CAUSE_SHUTDOWN, Driver, LineError

if TYPE_CHECKING:
    from appliance.acd.listen import Monitor
    from appliance.calls.engine import Engine

log = logging.getLogger("appliance.acd")

#: IVR variables that raise a caller's priority when set (non-empty) on their call
DEFAULT_PRIORITY_RULES: Final = {"claim": PRIORITY_CLAIM, "vip": PRIORITY_VIP}
#: how long a booked callback rings the customer before it counts as not answered
CALLBACK_RING_SECONDS: Final = 30.0
#: answered calls a queue averages for its expected-wait announcements
HANDLE_SAMPLES: Final = 20
#: a hold longer than this reminds the agent (and again after each further period)
HOLD_REMIND_SECONDS: Final = 60.0
#: ever lower sequence numbers for callers put back at the front of a queue
_FRONT: Final = itertools.count(1)

Listener = Callable[[str, dict[str, Any]], None]


class AcdError(ValueError):
    """A request the ACD refuses (unknown seat or queue, a state change not allowed now);
    the message says which and why."""


@dataclass(eq=False)
class _Queue:
    config: QueueConfig
    waiting: WaitingList = field(default_factory=WaitingList)
    handle_times: deque[float] = field(default_factory=lambda: deque(maxlen=HANDLE_SAMPLES))

    def handle_seconds(self) -> float:
        if not self.handle_times:
            return self.config.handle_seconds
        return sum(self.handle_times) / len(self.handle_times)


@dataclass(eq=False)
class _Talk:
    """A conversation in progress at a seat: what hold and unhold act on."""

    entry: Entry
    seat: SeatStatus
    caller: Call
    seat_call: Call
    bridge: Bridge
    hold_count: int = 0
    hold_seconds: float = 0.0
    held_since: float | None = None
    hold_id: int = 0  # the hold's number in this conversation (1, 2, ...)
    music: asyncio.Task[None] | None = None
    reminder: asyncio.Task[None] | None = None
    reminders: int = 0
    # Transfers (appliance.acd.transfer): the agent's part ends without the caller's when
    # ``released`` is done (handed on); a consult or conference target is the ``partner``.
    released: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    partner: Call | None = None
    #: called when the agent's leg ends first (may hand the caller on to the partner)
    on_agent_left: Callable[[], None] | None = None
    #: awaited when the caller leaves first (a conference: the agent talks on)
    after_caller_left: Callable[[], Awaitable[None]] | None = None


@dataclass(eq=False)
class _Waiter:
    """A caller on the line in a queue: their call, what they hear, how their wait ends."""

    entry: Entry
    call: Call
    driver: str
    connected: asyncio.Future[tuple[SeatStatus, Call]]
    gone: asyncio.Future[None]  # the caller left the queue (hung up, overflowed)
    hold: asyncio.Task[None] | None = None
    #: what the caller keyed in the IVR that a seat's screen pop needs
    pop: dict[str, str] = field(default_factory=dict)


class Acd:
    """Seats and queues of one box. Give it to the IVR (``make_flow_handler(acd=...)``)
    and :meth:`bind` it to the engine before calls arrive."""

    def __init__(self, seats: Sequence[SeatConfig], queues: Sequence[QueueConfig], *,
                 store: Store | None = None, executor: Executor | None = None,
                 messages_dir: Path | None = None,
                 priority_rules: Mapping[str, int] = DEFAULT_PRIORITY_RULES,
                 wall: Callable[[], float] = time.time, survey: bool = True,
                 hold_remind_after: float = HOLD_REMIND_SECONDS) -> None:
        check_seats(list(seats))
        self.seats: dict[str, SeatStatus] = {
            cfg.id: SeatStatus(cfg, i) for i, cfg in enumerate(seats)}
        try:
            check_queues(list(queues), list(self.seats))
        except ConfigError as exc:
            raise AcdError(str(exc)) from None
        self.queues: dict[str, _Queue] = {q.name: _Queue(q) for q in queues}
        self.store = store
        self.executor = executor
        self.messages_dir = messages_dir
        self.priority_rules = dict(priority_rules)
        self.survey = survey
        if hold_remind_after <= 0:
            raise AcdError(f"hold_remind_after {hold_remind_after}: expected seconds > 0")
        self.hold_remind_after = hold_remind_after
        self._talks: dict[str, _Talk] = {}  # by seat id
        #: supervisors listening in, by key (appliance.acd.listen)
        self.monitors: dict[str, Monitor] = {}
        self.engine: Engine | None = None
        self.memory = RoundRobinMemory()
        self._wall = wall
        self._listeners: list[Listener] = []
        self._waiters: dict[Entry, _Waiter] = {}
        self._callback_drivers: dict[Entry, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        now = wall()
        for seat in self.seats.values():
            seat.since = seat.idle_since = now
        if store is not None:
            for cfg in seats:
                records.save_seat(store, cfg, now)
            for q in queues:
                records.save_queue(store, q, now)

    # ------------------------------------------------------------------ wiring
    def bind(self, engine: Engine) -> None:
        """Use ``engine`` to ring seats and place callbacks, and its clock from now on."""
        self.engine = engine
        self._wall = engine.clock.wall

    def has_queue(self, name: str) -> bool:
        return name in self.queues

    def reconfigure(self, seats: Sequence[SeatConfig], queues: Sequence[QueueConfig]) -> None:
        """Take new seat and queue settings between calls, dropping none in progress.

        A queue keeps its waiting callers and takes the new settings from its next offer
        (a caller already waiting keeps the maximum wait they joined with); a seat keeps its
        agent and state and is rung on its new number from its next offer. A seat can go
        only when logged out and a queue only when nobody waits in it; otherwise nothing
        changes and :class:`AcdError` says why."""
        seats, queues = list(seats), list(queues)
        try:
            check_seats(seats)
            check_queues(queues, [s.id for s in seats])
        except ConfigError as exc:
            raise AcdError(str(exc)) from None
        wanted = {s.id for s in seats}
        for gone in [s for s in self.seats.values() if s.id not in wanted]:
            if gone.state is not AgentState.LOGGED_OUT or gone.id in self._talks:
                raise AcdError(f"seat {gone.id} is {gone.state.value} ({gone.agent}): log it "
                               "out before removing it")
            if any(m.phone.id == gone.id for m in self.monitors.values()):
                raise AcdError(f"seat {gone.id}: a supervisor is listening in from its phone; "
                               "remove it when they have left the call")
        names = {q.name for q in queues}
        for name, q in self.queues.items():
            if name not in names and len(q.waiting):
                raise AcdError(f"queue {name} has {len(q.waiting)} callers waiting: it can "
                               "be removed when it is empty")
        now = self._wall()
        for cfg in seats:
            status = self.seats.get(cfg.id)
            if status is None:
                index = max((s.index for s in self.seats.values()), default=-1) + 1
                self.seats[cfg.id] = SeatStatus(cfg, index, since=now, idle_since=now)
            else:
                status.config = cfg
        for seat_id in [i for i in self.seats if i not in wanted]:
            del self.seats[seat_id]
        for qc in queues:
            if qc.name in self.queues:
                self.queues[qc.name].config = qc
            else:
                self.queues[qc.name] = _Queue(qc)
        for name in [n for n in self.queues if n not in names]:
            del self.queues[name]
        self._emit("config", seats=[s.id for s in seats], queues=[q.name for q in queues])

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(kind, data)`` on every change; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def now(self) -> float:
        return self._wall()

    def _emit(self, kind: str, **data: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, data)
            except Exception:
                # A broken page must not break a call.
                log.exception("ACD listener failed on %s", kind)

    # ------------------------------------------------------------------ agent states
    def seat(self, seat_id: str) -> SeatStatus:
        try:
            return self.seats[seat_id]
        except KeyError:
            raise AcdError(f"no seat {seat_id!r} (seats: {', '.join(self.seats)})") from None

    def login(self, seat_id: str, agent: str) -> None:
        seat = self.seat(seat_id)
        if not agent.strip():
            raise AcdError(f"seat {seat_id}: logging in needs the agent's code")
        if seat.state is not AgentState.LOGGED_OUT:
            raise AcdError(f"seat {seat_id} is already logged in by {seat.agent}")
        seat.agent = agent.strip()
        seat.calls, seat.talk_seconds = 0, 0.0
        seat.idle_since = self.now()
        self._set_state(seat, AgentState.READY)

    def logout(self, seat_id: str) -> None:
        seat = self.seat(seat_id)
        if seat.state in (AgentState.RINGING, AgentState.TALKING):
            raise AcdError(f"seat {seat_id} is {seat.state.value}: log out after the call")
        self._set_state(seat, AgentState.LOGGED_OUT)
        seat.agent = ""

    def set_state(self, seat_id: str, state: AgentState, reason: str = "") -> None:
        """What an agent or supervisor may ask: ready, or not ready with a reason code."""
        seat = self.seat(seat_id)
        if state not in AGENT_SETTABLE:
            raise AcdError(f"seat {seat_id}: {state.value} is set by calls; an agent may set "
                           "ready or not-ready")
        if seat.state is AgentState.LOGGED_OUT:
            raise AcdError(f"seat {seat_id} is logged out: log in first")
        if seat.state in (AgentState.RINGING, AgentState.TALKING):
            raise AcdError(f"seat {seat_id} is {seat.state.value}: change the state after "
                           "the call (during wrap-up)")
        if state is AgentState.NOT_READY and reason not in REASONS:
            raise AcdError(f"seat {seat_id}: not ready needs a reason code, one of "
                           f"{', '.join(sorted(REASONS))}; got {reason!r}")
        self._set_state(seat, state, reason if state is AgentState.NOT_READY else "")

    def _set_state(self, seat: SeatStatus, state: AgentState, reason: str = "") -> None:
        now = self.now()
        seat.state, seat.reason, seat.since = state, reason, now
        if self.store is not None:
            records.log_state(self.store, seat.id, seat.agent, state.value, reason, now)
        self._emit("seat", seat=seat.id, agent=seat.agent, state=state.value, reason=reason,
                   at=now)
        if state is AgentState.READY:
            self._dispatch()

    async def hang_up(self, seat_id: str) -> None:
        """End the conversation ``seat_id`` is in (the agent's hang-up button); both
        sides are hung up and the seat goes to wrap-up as when either side hangs up."""
        seat = self.seat(seat_id)
        talk = self._talks.get(seat_id)
        if talk is None:
            raise AcdError(f"seat {seat_id} is {seat.state.value}, not in a call: "
                           "nothing to hang up")
        await talk.seat_call.hangup("agent")

    # ------------------------------------------------------------------ callers
    def priority_for(self, priority: int, variables: Mapping[str, str]) -> int:
        rules = [p for name, p in self.priority_rules.items() if variables.get(name)]
        return max([priority, *rules])

    async def transfer(self, call: Call, queue: str, *, priority: int = 0,
                       variables: Mapping[str, str] | None = None,
                       ivr_path: Sequence[Any] = (), front: bool = False) -> str:
        """Put ``call`` into ``queue`` until it reaches a seat (and the conversation ends),
        the caller hangs up, or the maximum wait sends it to voicemail or a callback.
        With ``front`` the caller goes ahead of everyone of their priority (a transfer that
        was not answered brings them back). Returns the outcome: answered, abandoned,
        voicemail, callback or shutdown."""
        q = self._queue(queue)
        if self.engine is None:
            self.bind(call.engine)
        engine = call.engine
        loop = asyncio.get_running_loop()
        entry = Entry(key=uuid.uuid4().hex, queue=queue, caller=call.caller,
                      language=call.language,
                      priority=self.priority_for(priority, variables or {}),
                      joined_at=self.now())
        if front:
            entry.seq = -next(_FRONT)
        waiter = _Waiter(entry, call, call.line.driver_name or "", loop.create_future(),
                         loop.create_future(), pop=pop_variables(variables or {}))
        if self.store is not None:
            records.open_entry(self.store, entry.key, queue, call.id, call.caller,
                               call.language, entry.priority, entry.joined_at)
        q.waiting.add(entry)
        self._waiters[entry] = waiter
        self._emit("queue-join", queue=queue, entry=entry.key, caller=call.caller,
                   priority=entry.priority, position=q.waiting.position(entry))
        self._dispatch()
        if not waiter.connected.done():
            waiter.hold = loop.create_task(
                hold(call, q.config, lambda: q.waiting.position(entry),
                     lambda: estimate_wait(q.waiting.position(entry), self._staffed(q.config),
                                           q.handle_seconds()),
                     ringing=entry.engaged),
                name=f"hold-{call.id}")
        ended = asyncio.ensure_future(call.wait_ended())
        try:
            deadline = engine.wait_ticks(call, seconds_to_ticks(q.config.max_wait))
            while True:
                waits: set[asyncio.Future[Any]] = {waiter.connected, ended, deadline}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if waiter.connected.done() or call.ended or not entry.engaged:
                    break
                # The maximum wait passed while a seat rings for this caller: let it ring
                # out before sending them elsewhere.
                deadline = engine.wait_ticks(call, seconds_to_ticks(1.0))
            if waiter.connected.done():
                await ended  # the conversation: the ACD hangs up both sides at its end
                return "answered"
            if call.ended:
                # The engine stopping is not a caller giving up: the reports tell them apart.
                gone = "shutdown" if call.end_cause == CAUSE_SHUTDOWN else "abandoned"
                self._leave(q, waiter, gone)
                return gone
            return await self._overflow(q, waiter, ivr_path)
        finally:
            self._stop_hold(waiter)
            if entry in q.waiting and entry.callback_number is None:
                # Only when this coroutine itself was cancelled or failed: no caller may
                # stay in the list with nobody on the line.
                self._leave(q, waiter, "shutdown")
            self._waiters.pop(entry, None)
            if not ended.done():
                ended.cancel()

    def _queue(self, name: str) -> _Queue:
        try:
            return self.queues[name]
        except KeyError:
            raise AcdError(f"no queue {name!r} (queues: {', '.join(self.queues)})") from None

    def _leave(self, q: _Queue, waiter: _Waiter, outcome: str) -> None:
        q.waiting.remove(waiter.entry)
        if not waiter.gone.done():
            waiter.gone.set_result(None)
        self._close(q, waiter.entry, outcome)

    def _close(self, q: _Queue, entry: Entry, outcome: str, left_at: float | None = None) -> None:
        """The entry's record: waited until ``left_at`` (default now), ended now."""
        now = self.now()
        waited = (now if left_at is None else left_at) - entry.joined_at
        if self.store is not None:
            records.close_entry(self.store, entry.key, outcome, now, waited,
                                offers=entry.offers)
        self._emit("queue-leave", queue=q.config.name, entry=entry.key, outcome=outcome)

    def _stop_hold(self, waiter: _Waiter) -> None:
        hold, waiter.hold = waiter.hold, None
        if hold is not None and not hold.done():
            hold.cancel()
            waiter.call.stop_playing()

    def _staffed(self, cfg: QueueConfig) -> int:
        return sum(1 for s in self.seats.values()
                   if s.state is not AgentState.LOGGED_OUT and cfg.penalty(s.id) is not None)

    async def _overflow(self, q: _Queue, waiter: _Waiter, ivr_path: Sequence[Any]) -> str:
        call, entry = waiter.call, waiter.entry
        left_at = self.now()
        entry.engaged = True  # deciding: no seat is offered this caller meanwhile
        self._stop_hold(waiter)
        try:
            if q.config.overflow is Overflow.CALLBACK:
                number = await ask_callback(call)
                if number:
                    return await self._book_callback(q, waiter, number)
            self._leave_quietly(q, waiter)
            await self._voicemail(q, waiter, ivr_path)
        except CallEnded:
            self._leave_quietly(q, waiter)
            self._close(q, entry, "abandoned", left_at)
            return "abandoned"
        self._close(q, entry, "voicemail", left_at)
        return "voicemail"

    def _leave_quietly(self, q: _Queue, waiter: _Waiter) -> None:
        """Out of the waiting list (others move up), the record closed later."""
        q.waiting.remove(waiter.entry)
        if not waiter.gone.done():
            waiter.gone.set_result(None)

    async def _book_callback(self, q: _Queue, waiter: _Waiter, number: str) -> str:
        call, entry = waiter.call, waiter.entry
        await confirm_callback(call, number)
        # The entry stays where it is in the waiting list: the callback keeps the place.
        entry.callback_number = number
        self._callback_drivers[entry] = waiter.driver
        self._waiters.pop(entry, None)
        if not waiter.gone.done():
            waiter.gone.set_result(None)
        now = self.now()
        if self.store is not None:
            records.mark_entry(self.store, entry.key, "callback", now - entry.joined_at)
            records.book_callback(self.store, entry.key, q.config.name, number, now)
        self._emit("callback-booked", queue=q.config.name, entry=entry.key, number=number,
                   position=q.waiting.position(entry))
        entry.engaged = False
        self._dispatch()
        await call.hangup()
        return "callback"

    async def _voicemail(self, q: _Queue, waiter: _Waiter, ivr_path: Sequence[Any]) -> None:
        if self.store is None:
            log.warning("queue %s: no store, so no voicemail; the caller is let go",
                        q.config.name)
            return
        loop = asyncio.get_running_loop()
        box = await loop.run_in_executor(self.executor, queue_box, self.store, q.config.name)
        await leave_message(waiter.call, box, waiter.call.language, self.store,
                            ivr_path=ivr_path, messages_dir=self.messages_dir,
                            executor=self.executor)

    # ------------------------------------------------------------------ routing
    def _dispatch(self) -> None:
        """Offer waiting callers to ready seats until no queue has a match; the queue whose
        next caller ranks highest (priority, then arrival) goes first."""
        if self.engine is None:
            return
        # A seat whose phone a supervisor is listening in on takes no calls meanwhile.
        phones = {m.phone.id for m in self.monitors.values()}
        seats = [s for s in self.seats.values() if s.id not in phones]
        while True:
            heads = [(e.order, q) for q in self.queues.values()
                     for e in q.waiting.entries[:1] if not e.engaged]
            order = [q for _, q in sorted(heads, key=lambda h: h[0])]
            order += [q for q in self.queues.values() if q not in order]
            for q in order:
                offer = decide(q.config, q.waiting, seats, self.memory)
                if offer is not None:
                    self._start_offer(q, offer)
                    break
            else:
                return

    def _start_offer(self, q: _Queue, offer: Offer) -> None:
        entry = offer.entry
        entry.engaged = True
        entry.offers += 1
        for seat in offer.seats:
            seat.offers += 1
            self._set_state(seat, AgentState.RINGING, q.config.name)
        waiter = self._waiters.get(entry)
        self._emit("offer", queue=q.config.name, entry=entry.key,
                   seats=[s.id for s in offer.seats], caller=entry.caller,
                   call=waiter.call.id if waiter is not None else "",
                   language=entry.language, priority=entry.priority,
                   callback=entry.callback_number or "",
                   **(waiter.pop if waiter is not None else {}), at=self.now())
        self._spawn(self._run_offer(q, offer), f"offer-{entry.key}")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ACD task %s failed", task.get_name(), exc_info=task.exception())

    def _driver(self, name: str) -> Driver:
        assert self.engine is not None
        for driver in self.engine.drivers:
            if driver.name == name:
                return driver
        raise LineError(f"no driver {name!r} in the engine (drivers: "
                        f"{', '.join(d.name for d in self.engine.drivers)})")

    async def _run_offer(self, q: _Queue, offer: Offer) -> None:
        assert self.engine is not None
        engine, cfg, entry = self.engine, q.config, offer.entry
        waiter = self._waiters.get(entry)
        rings: dict[asyncio.Future[None], tuple[SeatStatus, Call]] = {}
        rang_at = self.now()
        for seat in offer.seats:
            try:
                seat_call = await engine.originate(
                    self._driver(seat.config.driver), seat.config.number, flow=_seat_line,
                    caller=entry.caller, ring_timeout=cfg.ring_timeout + 10)
            except LineError as exc:
                log.warning("seat %s: cannot ring %s: %s", seat.id, seat.config.number, exc)
                self._set_state(seat, AgentState.NOT_READY, "unreachable")
                continue
            rings[asyncio.ensure_future(seat_call.wait_answered())] = (seat, seat_call)
        timer = engine.wait_ticks(None, seconds_to_ticks(cfg.ring_timeout))
        gone: asyncio.Future[None] = waiter.gone if waiter is not None else _never()
        winner: tuple[SeatStatus, Call] | None = None
        pending = set(rings)
        while pending and winner is None and not timer.done() and not gone.done():
            done, pending = await asyncio.wait(pending | {timer, gone},
                                               return_when=asyncio.FIRST_COMPLETED)
            pending -= {timer, gone}
            for fut in done:
                if fut in rings and fut.exception() is None and winner is None:
                    winner = rings[fut]
        for fut in pending:
            fut.cancel()
        timed_out = winner is None and timer.done() and not gone.done()
        losers: list[Call] = []
        # States first, hang-ups after: a hang-up waits for its records to close, and the
        # seat's state must change at the moment the ring ended.
        for fut, (seat, seat_call) in rings.items():
            if winner is not None and seat is winner[0]:
                continue
            if fut.done() and not fut.cancelled() and fut.exception() is not None:
                if seat_call.end_cause == CAUSE_SHUTDOWN:
                    continue  # the box is stopping: not the seat's fault
                # The seat's line ended while ringing (busy, unplugged, rejected).
                self._set_state(seat, AgentState.NOT_READY, "unreachable")
                entry.tried.add(seat.id)
                continue
            losers.append(seat_call)
            if timed_out:
                entry.tried.add(seat.id)
            if timed_out and cfg.auto_pause:
                self._set_state(seat, AgentState.NOT_READY, "no-answer")
            elif seat.state is AgentState.RINGING:
                self._set_state(seat, AgentState.READY)
        present = entry in q.waiting and (waiter is None or not gone.done())
        if winner is not None and not present:
            losers.append(winner[1])  # answered just as the caller left
            self._set_state(winner[0], AgentState.READY)
        for seat_call in losers:
            seat_call.line.hangup("acd-not-needed")  # the far end stops ringing now
        # Closing their records (on the store's thread, in real time) runs on while the
        # caller is offered to the next seat or talks to this one.
        if losers:
            self._spawn(_hang_up_all(losers, "acd-not-needed"), f"release-{entry.key}")
        if winner is None or not present:
            entry.engaged = False
            self._dispatch()
            return
        seat, seat_call = winner
        ring_seconds = (seat_call.answered_at or self.now()) - rang_at
        if waiter is not None:
            await self._converse(q, entry, seat, seat_call, waiter.call, waiter,
                                 ring_seconds=ring_seconds)
        else:
            await self._call_back(q, entry, seat, seat_call, ring_seconds)

    async def _converse(self, q: _Queue, entry: Entry, seat: SeatStatus, seat_call: Call,
                        caller: Call, waiter: _Waiter | None, *,
                        outcome: str = "answered", ring_seconds: float = 0.0) -> None:
        """Bridge the caller and the seat until either hangs up; then wrap-up, and the
        survey when the agent hung up first."""
        assert self.engine is not None
        q.waiting.remove(entry)
        self._set_state(seat, AgentState.TALKING, q.config.name)
        if waiter is not None:
            self._stop_hold(waiter)
        start = self.now()
        waited = start - entry.joined_at
        bridge = self.engine.create_bridge(caller, seat_call, name=f"acd-{entry.key}")
        talk = _Talk(entry, seat, caller, seat_call, bridge)
        self._talks[seat.id] = talk
        if waiter is not None:
            waiter.connected.set_result((seat, seat_call))
        self._emit("connected", queue=q.config.name, entry=entry.key, seat=seat.id,
                   agent=seat.agent, caller=entry.caller, waited=waited, call=caller.id,
                   at=start, ring_seconds=round(ring_seconds, 3), rings=rings(ring_seconds))
        try:
            await _talk_over(talk)
        finally:
            self._talks.pop(seat.id, None)
            if talk.held_since is not None:
                self._end_hold(talk, resume=False)
        first = _first_to_hang_up(caller, seat_call)
        talked = self.now() - start
        seat.calls += 1
        seat.talk_seconds += talked
        q.handle_times.append(talked + q.config.wrap_up)
        if self.store is not None:
            records.close_entry(self.store, entry.key, outcome, self.now(), waited,
                                answered_by=seat.id, talk_seconds=talked, offers=entry.offers)
            records.etiquette(self.store, entry.key, agent=seat.agent,
                              ring_seconds=ring_seconds, rings=rings(ring_seconds),
                              hung_up_first=first, hold_count=talk.hold_count,
                              hold_seconds=talk.hold_seconds)
        self._emit("queue-leave", queue=q.config.name, entry=entry.key, outcome=outcome,
                   hung_up_first=first)
        # Wrap-up starts now; the hang-ups below wait for the recordings to close.
        wrap = self._start_wrap_up(seat, q.config)
        await seat_call.hangup()
        if talk.released.done():
            # Handed on (a transfer, or the agent left a conference): the caller stays.
            await wrap
            return
        if first == "agent" and self.survey and not caller.ended:
            # The caller is not dropped: out of the bridge, they are asked for a score.
            bridge.remove(caller)
            result = await ask_rating(caller)
            if self.store is not None:
                records.save_survey(self.store, entry.key, result.status.value,
                                    result.score, self.now())
            self._emit("survey", queue=q.config.name, entry=entry.key, seat=seat.id,
                       agent=seat.agent, status=result.status.value, score=result.score)
        # Otherwise whoever hung up first ends the conversation for both.
        await caller.hangup()
        await wrap

    def _start_wrap_up(self, seat: SeatStatus, cfg: QueueConfig) -> asyncio.Future[None]:
        """Wrap-up for ``cfg.wrap_up`` seconds, then ready; the future is done then."""
        assert self.engine is not None
        seat.idle_since = self.now()
        self._set_state(seat, AgentState.WRAP_UP, cfg.name)
        timer = self.engine.wait_ticks(None, seconds_to_ticks(cfg.wrap_up))

        def ready(fut: asyncio.Future[None]) -> None:
            # Cancelled, the wrap-up did not run out: the box is stopping (the task
            # awaiting it was cancelled), and the store may be closed already.
            if fut.cancelled():
                return
            # The agent may have gone not ready (or logged out) during wrap-up: keep that.
            if seat.state is AgentState.WRAP_UP:
                self._set_state(seat, AgentState.READY)

        timer.add_done_callback(ready)
        return timer

    async def _call_back(self, q: _Queue, entry: Entry, seat: SeatStatus,
                         seat_call: Call, ring_seconds: float) -> None:
        """A booked callback reached a seat: the agent hears ringback while the box dials the
        customer; if they answer they hear why we call, then they talk."""
        assert self.engine is not None and entry.callback_number is not None
        engine = self.engine
        self._set_state(seat, AgentState.TALKING, q.config.name)
        tone = asyncio.ensure_future(seat_call.play_tone("ringback", CALLBACK_RING_SECONDS + 5))
        placed = self.now()
        customer: Call | None = None
        try:
            customer = await engine.originate(
                self._driver(self._callback_drivers.get(entry, "") or seat.config.driver),
                entry.callback_number, flow=_seat_line, ring_timeout=CALLBACK_RING_SECONDS)
            customer.language = entry.language
            answered = asyncio.ensure_future(customer.wait_answered())
            timer = engine.wait_ticks(None, seconds_to_ticks(CALLBACK_RING_SECONDS))
            waits: set[asyncio.Future[Any]] = {answered, timer,
                                               asyncio.ensure_future(seat_call.wait_ended())}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            ok = answered.done() and answered.exception() is None and not seat_call.ended
            if not answered.done():
                answered.cancel()
            if ok:
                seat_call.stop_playing()
                await customer.play("queue_callback_intro", interruptible=False)
        except (LineError, CallEnded):
            ok = False
        finally:
            tone.cancel()
        if not ok:
            q.waiting.remove(entry)
            self._callback_drivers.pop(entry, None)
            if self.store is not None:
                records.close_callback(self.store, entry.key, "no-answer", placed,
                                       customer.id if customer else None, seat.id)
                records.close_entry(self.store, entry.key, "callback-failed", self.now(),
                                    placed - entry.joined_at, offers=entry.offers)
            self._emit("queue-leave", queue=q.config.name, entry=entry.key,
                       outcome="callback-failed")
            seat.idle_since = self.now()
            self._set_state(seat, AgentState.READY)
            await _hang_up_all([c for c in (customer, seat_call) if c is not None],
                               "acd-callback-failed")
            return
        assert customer is not None
        self._callback_drivers.pop(entry, None)
        if self.store is not None:
            records.close_callback(self.store, entry.key, "answered", placed, customer.id,
                                   seat.id)
        await self._converse(q, entry, seat, seat_call, customer, None,
                             outcome="callback-answered", ring_seconds=ring_seconds)

    # ------------------------------------------------------------------ hold
    def _talk(self, seat_id: str) -> _Talk:
        self.seat(seat_id)
        talk = self._talks.get(seat_id)
        if talk is None or talk.caller.ended or talk.seat_call.ended:
            raise AcdError(f"seat {seat_id} is not in a conversation: nothing to hold")
        return talk

    def hold(self, seat_id: str) -> int:
        """The agent at ``seat_id`` puts their caller on hold: the caller hears "please
        hold" and the music, the agent hears nothing of the caller. Returns the hold's
        number in this call (1 for the first)."""
        talk = self._talk(seat_id)
        if talk.held_since is not None:
            raise AcdError(f"seat {seat_id}: the caller is already on hold")
        assert self.engine is not None
        now = self.now()
        talk.held_since = now
        talk.hold_count += 1
        talk.hold_id = talk.hold_count
        talk.reminders = 0
        talk.bridge.add(talk.caller, muted=True)
        loop = asyncio.get_running_loop()
        talk.music = loop.create_task(_hold_music(talk.caller), name=f"held-{talk.caller.id}")
        talk.reminder = loop.create_task(self._remind(talk), name=f"remind-{seat_id}")
        self._emit("hold", seat=seat_id, agent=talk.seat.agent, entry=talk.entry.key,
                   hold=talk.hold_id, at=now)
        return talk.hold_id

    def unhold(self, seat_id: str) -> float:
        """Take the caller off hold (they and the agent hear each other again); returns
        how long the hold lasted, in seconds."""
        talk = self._talk(seat_id)
        if talk.held_since is None:
            raise AcdError(f"seat {seat_id}: the caller is not on hold")
        return self._end_hold(talk, resume=True)

    def _end_hold(self, talk: _Talk, *, resume: bool) -> float:
        assert talk.held_since is not None
        now = self.now()
        seconds = now - talk.held_since
        for task in (talk.music, talk.reminder):
            if task is not None and not task.done():
                task.cancel()
        talk.music = talk.reminder = None
        if not talk.caller.ended:
            talk.caller.stop_playing()
        if resume:
            talk.bridge.add(talk.caller, muted=False)
        talk.hold_seconds += seconds
        if self.store is not None:
            records.log_hold(self.store, talk.entry.key, talk.seat.id, talk.seat.agent,
                             talk.held_since, now, seconds, talk.reminders)
        talk.held_since = None
        self._emit("unhold", seat=talk.seat.id, agent=talk.seat.agent, entry=talk.entry.key,
                   hold=talk.hold_id, seconds=round(seconds, 3))
        return seconds

    async def _remind(self, talk: _Talk) -> None:
        """Every ``hold_remind_after`` seconds on hold: an event for the agent's console."""
        assert self.engine is not None
        while True:
            await self.engine.wait_ticks(None, seconds_to_ticks(self.hold_remind_after))
            if talk.held_since is None:
                return
            talk.reminders += 1
            self._emit("hold-reminder", seat=talk.seat.id, agent=talk.seat.agent,
                       entry=talk.entry.key, hold=talk.hold_id,
                       held_seconds=round(self.now() - talk.held_since, 3))

    # ------------------------------------------------------------------ restart
    def restore_callbacks(self) -> int:
        """Booked callbacks a previous run left open go back into their queues, in their
        original order (joined time), so a restart loses no caller's place."""
        if self.store is None:
            return 0
        rows = self.store.query(
            "SELECT e.key, e.queue, e.caller, e.language, e.priority, e.joined_at, c.number "
            "FROM acd_entries e JOIN acd_callbacks c ON c.entry_key = e.key "
            "WHERE e.outcome = 'callback' AND e.ended_at IS NULL AND c.outcome IS NULL "
            "ORDER BY e.joined_at")
        count = 0
        for row in rows:
            q = self.queues.get(row["queue"])
            if q is None:
                log.warning("callback %s: queue %s no longer exists", row["key"], row["queue"])
                continue
            q.waiting.add(Entry(key=row["key"], queue=row["queue"], caller=row["caller"],
                                language=row["language"], priority=row["priority"],
                                joined_at=row["joined_at"], callback_number=row["number"]))
            count += 1
        return count


async def _hold_music(call: Call) -> None:
    """What a caller on hold hears: "please hold", then the music until taken off hold."""
    try:
        await call.play("hold_please", interruptible=False)
        tune = hold_tune()
        while True:
            await call.play(*music(tune, 60.0), interruptible=False)
    except (CallEnded, asyncio.CancelledError):
        pass


async def _talk_over(talk: _Talk) -> None:
    """Until the agent's part of a conversation ends: either side hangs up, or a transfer
    releases the agent. The hooks a transfer sets decide what a hang-up means meanwhile."""
    caller_end = asyncio.ensure_future(talk.caller.wait_ended())
    seat_end = asyncio.ensure_future(talk.seat_call.wait_ended())
    try:
        waits: set[asyncio.Future[Any]] = {caller_end, seat_end, talk.released}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if talk.released.done():
            return
        if seat_end.done():
            if talk.on_agent_left is not None:
                talk.on_agent_left()
        elif talk.after_caller_left is not None:
            await talk.after_caller_left()
    finally:
        for fut in (caller_end, seat_end):
            fut.cancel()


def _first_to_hang_up(caller: Call, seat_call: Call) -> str:
    """``caller``, ``agent``, or ``box`` when the engine stopping ended the call."""
    if CAUSE_SHUTDOWN in (caller.end_cause, seat_call.end_cause):
        return "box"
    if caller.ended and seat_call.ended:
        return "caller" if (caller.ended_at or 0.0) <= (seat_call.ended_at or 0.0) else "agent"
    return "caller" if caller.ended else "agent"


async def _hang_up_all(calls: list[Call], cause: str) -> None:
    await asyncio.gather(*(c.hangup(cause) for c in calls))


async def _seat_line(call: Call) -> None:
    """The flow of a seat's (or a called-back customer's) leg: it only lasts; the ACD
    answers for it, bridges it and hangs it up."""
    await call.wait_ended()


#: IVR variables a seat's screen pop uses, as the offer event names them: the policy
#: number keyed for an enquiry (``pol_no``) or a claim report (``cl_no``)
POP_VARIABLES: Final = {"pol_no": "policy", "cl_no": "policy", "claim.case": "claim"}


def pop_variables(variables: Mapping[str, str]) -> dict[str, str]:
    """What the seat's screen pop needs of the caller's IVR variables (never secrets such
    as the ID digits): the policy number keyed, and the claim case just reported."""
    pop: dict[str, str] = {}
    for name, key in POP_VARIABLES.items():
        value = str(variables.get(name, "") or "")
        if value and key not in pop:
            pop[key] = value
    return pop


def _never() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


__all__ = ["DEFAULT_PRIORITY_RULES", "POP_VARIABLES", "Acd", "AcdError", "Listener",
           "pop_variables"]
