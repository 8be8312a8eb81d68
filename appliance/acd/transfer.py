"""An agent's transfers: blind, consult (then complete or return) and the 3-way conference.

A **blind** transfer releases the agent at once (their seat goes to wrap-up) and hands the
caller on: to another seat, to a queue, or to an outside number dialled on a trunk of the
caller's own driver. The caller hears "transferring, please hold" and the music until the
target answers, then talks with it. A seat or number that does not answer within the
queue's ring timeout sends the caller back to the front of the queue they came from (their
priority kept): a transfer never drops a caller. A **consult** puts the caller on hold
(the hold is measured like any other) while the agent rings the target and talks to it on
the same bridge (the held caller is muted and hears the music); the agent then
**completes** (caller and target talk, the agent leaves), **returns** (the target is hung
up, the caller is back) or makes it a **conference** of three on the engine's mixer. The
target hanging up during a consult gives the agent the caller back; in a conference
whoever leaves, the other two talk on. The agent hanging up while the target is on the
line completes the transfer.

A caller handed to a seat becomes that seat's conversation (a new queue entry of the
same queue, so the target can hold, transfer and wrap up in turn); a caller handed to an
outside number stays bridged with it until either hangs up. The caller's call is never
ended by a transfer, so its recording runs on across it. Every step is an event
(``transfer``) and a row in ``acd_transfers`` (:mod:`appliance.acd.transfer_log`), with
whether the target answered before the agent left (etiquette, O5).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
import weakref
from dataclasses import dataclass
from typing import Any, Final

from appliance.acd import records
from appliance.acd.hold import hold_tune
from appliance.acd.model import AgentState, SeatStatus
from appliance.acd.routing import Entry
from appliance.acd.service import Acd, AcdError, _hang_up_all, _Queue, _seat_line, _Talk
from appliance.acd.transfer_log import open_transfer, update_transfer
from appliance.acd.waiting import music
from appliance.calls.call import Call, CallEnded
from appliance.media.collector import seconds_to_ticks
from drivers.base import LineError

#: what a transfer may go to; a consult or conference needs someone to talk to
TARGET_KINDS: Final = ("seat", "queue", "number")
CONSULT_TARGET_KINDS: Final = ("seat", "number")
_OUTSIDE: Final = re.compile(r"[0-9]{3,20}")
#: screen-pop field -> the IVR variable it came from (the inverse of POP_VARIABLES)
POP_SOURCES: Final = {"policy": "pol_no", "claim": "claim.case"}


@dataclass(eq=False)
class _Transfer:
    """One transfer in progress, from the agent's conversation ``talk``."""

    key: str
    kind: str  # blind, consult, conference
    talk: _Talk
    queue: _Queue
    target_kind: str
    target: str
    seat: SeatStatus | None  # the target seat, if the target is one
    started_at: float
    leg: Call | None = None  # the target's call, once it rings
    answered_at: float | None = None
    handed: bool = False  # the caller has been handed to the target
    over: bool = False  # this transfer has ended (its outcome is written)
    abort: asyncio.Future[None] | None = None  # stops the ringing


class Transfers:
    """The transfers of one :class:`~appliance.acd.service.Acd` (see :func:`of`)."""

    def __init__(self, acd: Acd) -> None:
        self.acd = acd
        self._consults: dict[str, _Transfer] = {}  # by the agent's seat id

    # ------------------------------------------------------------------ requests
    def blind(self, seat_id: str, target_kind: str, target: str) -> dict[str, Any]:
        """Hand the caller of ``seat_id`` on to ``target`` and release the agent now."""
        acd = self.acd
        talk = self._talk(seat_id)
        if seat_id in self._consults:
            raise AcdError(f"seat {seat_id}: a consult is in progress: complete or return it")
        t = self._new(talk, "blind", target_kind, target, TARGET_KINDS)
        if talk.held_since is not None:
            acd._end_hold(talk, resume=False)
        talk.bridge.remove(talk.caller)
        self._event(t, "started")
        self._left(t)
        talk.released.set_result(None)  # the agent's conversation ends; wrap-up starts
        acd._spawn(self._blind(t), f"blind-{t.key}")
        return self._view(t, "started")

    def consult(self, seat_id: str, target_kind: str, target: str) -> dict[str, Any]:
        """Put the caller on hold and ring ``target`` for the agent to talk to first."""
        acd = self.acd
        talk = self._talk(seat_id)
        if seat_id in self._consults:
            raise AcdError(f"seat {seat_id}: a consult is in progress already")
        t = self._new(talk, "consult", target_kind, target, CONSULT_TARGET_KINDS)
        if talk.held_since is None:
            acd.hold(seat_id)
        self._consults[seat_id] = t
        talk.on_agent_left = lambda: self._agent_left(t)
        talk.after_caller_left = lambda: self._caller_left(t)
        self._event(t, "started")
        acd._spawn(self._consult(t), f"consult-{t.key}")
        return self._view(t, "started")

    def complete(self, seat_id: str) -> dict[str, Any]:
        """The consulted target takes the caller; the agent leaves."""
        t = self._consult_of(seat_id)
        if t.answered_at is None or t.leg is None or t.leg.ended:
            raise AcdError(f"seat {seat_id}: the target has not answered: return to the "
                           "caller or wait")
        self._hand_off(t)
        return self._view(t, "completed")

    async def back(self, seat_id: str) -> dict[str, Any]:
        """Back to the caller: the target (ringing or talking) is hung up."""
        t = self._consult_of(seat_id)
        self._finish(t, "returned")
        if t.abort is not None and not t.abort.done():
            t.abort.set_result(None)
        self._caller_back(t)
        if t.leg is not None:
            await t.leg.hangup("transfer-returned")
        return self._view(t, "returned")

    def conference(self, seat_id: str) -> dict[str, Any]:
        """Caller, agent and the consulted target all hear each other."""
        acd = self.acd
        t = self._consult_of(seat_id)
        if t.answered_at is None or t.leg is None or t.leg.ended:
            raise AcdError(f"seat {seat_id}: the target has not answered: a conference "
                           "needs them on the line")
        if t.kind == "conference":
            raise AcdError(f"seat {seat_id}: the conference is on already")
        t.kind = "conference"
        if t.talk.held_since is not None:
            acd._end_hold(t.talk, resume=True)
        t.talk.bridge.add(t.leg)
        self._write(t, kind="conference")
        self._event(t, "conference")
        return self._view(t, "conference")

    # ------------------------------------------------------------------ blind
    async def _blind(self, t: _Transfer) -> None:
        acd, caller = self.acd, t.talk.caller
        queue, front = t.target, False
        if t.target_kind == "queue":
            try:
                await caller.play("transfer_please_hold", interruptible=False)
            except CallEnded:
                self._finish(t, "caller-hung-up")
                return
            self._finish(t, "completed")
        else:
            tune = asyncio.ensure_future(_transfer_music(caller))
            try:
                leg = await self._ring(t)
            finally:
                tune.cancel()
                if not caller.ended:
                    caller.stop_playing()
            if leg is not None:
                self._finish(t, "answered")
                await self._connect(t, leg)
                return
            if caller.ended:
                return
            # Nobody answered: back to the front of the queue the caller came from.
            self._event(t, "requeued")
            queue, front = t.queue.config.name, True
        # What the caller keyed in the IVR goes with them, for the next seat's screen pop.
        keyed = {POP_SOURCES[k]: v for k, v in self._pop(caller).items() if k in POP_SOURCES}
        outcome = await acd.transfer(caller, queue, priority=t.talk.entry.priority,
                                     variables=keyed, front=front)
        if outcome != "answered" and not caller.ended:
            await caller.hangup()  # voicemail or a callback ended the caller's stay

    # ------------------------------------------------------------------ consult
    async def _consult(self, t: _Transfer) -> None:
        seat_call = t.talk.seat_call
        tone = asyncio.ensure_future(_ringback(seat_call, t.queue.config.ring_timeout + 5))
        try:
            leg = await self._ring(t)
        finally:
            tone.cancel()
        if not seat_call.ended:
            seat_call.stop_playing()
        if leg is None:
            if self._consults.get(t.talk.seat.id) is t:
                # Nobody answered (nor did the agent give up): the caller is theirs again.
                self._finish(t, "no-answer")
                self._caller_back(t)
            return
        t.talk.partner = leg
        t.talk.bridge.add(leg)
        # The target hangs up: the consult (or its part in the conference) is over.
        asyncio.ensure_future(leg.wait_ended()).add_done_callback(
            lambda _: self._partner_left(t))

    def _partner_left(self, t: _Transfer) -> None:
        if t.handed or t.over:
            self._release_target_seat(t)
            return
        self._finish(t, "target-hung-up")
        self._caller_back(t)

    def _caller_back(self, t: _Transfer) -> None:
        """The consult is over with the agent still on: they have their caller again."""
        talk = t.talk
        self._consults.pop(talk.seat.id, None)
        talk.partner = None
        talk.on_agent_left = talk.after_caller_left = None
        if t.leg is not None:
            talk.bridge.remove(t.leg)
        if talk.held_since is not None and not talk.caller.ended and not talk.seat_call.ended:
            self.acd._end_hold(talk, resume=True)
        self._release_target_seat(t)

    def _agent_left(self, t: _Transfer) -> None:
        """The agent hung up during the consult or conference (called by the ACD)."""
        talk = t.talk
        if (t.leg is not None and t.answered_at is not None and not t.leg.ended
                and not talk.caller.ended):
            self._hand_off(t)  # the target is there: they take the caller
            return
        self._left(t)  # before anyone answered: the caller is surveyed and let go
        self._finish(t, "no-answer")
        if t.abort is not None and not t.abort.done():
            t.abort.set_result(None)
        self._consults.pop(talk.seat.id, None)

    async def _caller_left(self, t: _Transfer) -> None:
        """The caller hung up first: in a conference the agent and target talk on until
        one of them leaves; in a consult the target is let go."""
        talk, leg = t.talk, t.leg
        self._consults.pop(talk.seat.id, None)
        talk.partner = None
        if t.kind == "conference" and leg is not None and not leg.ended:
            ends = {asyncio.ensure_future(leg.wait_ended()),
                    asyncio.ensure_future(talk.seat_call.wait_ended())}
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            for fut in ends:
                fut.cancel()
        self._finish(t, "caller-hung-up")
        if t.abort is not None and not t.abort.done():
            t.abort.set_result(None)
        if leg is not None:
            await leg.hangup("transfer-caller-left")

    def _hand_off(self, t: _Transfer) -> None:
        """The target (answered) takes the caller; the agent's conversation ends."""
        acd, talk = self.acd, t.talk
        assert t.leg is not None
        t.handed = True
        self._consults.pop(talk.seat.id, None)
        talk.on_agent_left = talk.after_caller_left = None
        talk.partner = None
        if talk.held_since is not None:
            acd._end_hold(talk, resume=False)
        talk.bridge.remove(talk.caller)
        talk.bridge.remove(t.leg)
        self._left(t)
        self._finish(t, "completed")
        if not talk.released.done():
            talk.released.set_result(None)
        acd._spawn(self._connect(t, t.leg), f"handoff-{t.key}")

    # ------------------------------------------------------------------ the target
    async def _ring(self, t: _Transfer) -> Call | None:
        """Ring the target for the queue's ring timeout; its answered call, or None (no
        answer, unreachable, the caller hung up, or the ringing was stopped)."""
        acd = self.acd
        assert acd.engine is not None
        engine, caller, cfg = acd.engine, t.talk.caller, t.queue.config
        loop = asyncio.get_running_loop()
        t.abort = loop.create_future()
        seat = t.seat
        try:
            if seat is not None:
                acd._set_state(seat, AgentState.RINGING, cfg.name)
                self._offer(t, seat)
                driver, number = seat.config.driver, seat.config.number
            else:
                driver = caller.line.driver_name or t.talk.seat.config.driver
                number = t.target
            leg = await engine.originate(acd._driver(driver), number, flow=_seat_line,
                                         caller=caller.caller,
                                         ring_timeout=cfg.ring_timeout + 10)
        except LineError:
            self._finish(t, "no-answer")
            if seat is not None:
                acd._set_state(seat, AgentState.NOT_READY, "unreachable")
            return None
        t.leg = leg
        answered = asyncio.ensure_future(leg.wait_answered())
        timer = engine.wait_ticks(None, seconds_to_ticks(cfg.ring_timeout))
        gone = asyncio.ensure_future(caller.wait_ended())
        waits: set[asyncio.Future[Any]] = {answered, timer, gone, t.abort}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        ok = (answered.done() and not answered.cancelled() and answered.exception() is None
              and not caller.ended and not t.abort.done())
        for fut in (answered, gone):
            if not fut.done():
                fut.cancel()
        if ok:
            t.answered_at = acd.now()
            self._write(t, answered_at=t.answered_at)
            self._event(t, "answered")
            if seat is not None:
                acd._set_state(seat, AgentState.TALKING, cfg.name)
            return leg
        if not t.over:
            self._finish(t, "caller-hung-up" if caller.ended else "no-answer")
        if seat is not None and seat.state is AgentState.RINGING:
            if timer.done() and cfg.auto_pause and not caller.ended:
                acd._set_state(seat, AgentState.NOT_READY, "no-answer")
            else:
                acd._set_state(seat, AgentState.READY)
        # The target stops ringing now; closing the leg's records (on the store's thread)
        # runs on while the caller goes back to the agent or the front of the queue, as
        # for a queue offer nobody took.
        leg.line.hangup("transfer-not-answered")
        acd._spawn(_hang_up_all([leg], "transfer-not-answered"), f"unanswered-{t.key}")
        return None

    async def _connect(self, t: _Transfer, leg: Call) -> None:
        """The caller and the answered target talk: at a seat as that seat's own
        conversation, with an outside number until either hangs up."""
        acd, caller = self.acd, t.talk.caller
        if caller.ended or leg.ended:
            await asyncio.gather(caller.hangup(), leg.hangup())
            self._release_target_seat(t)
            return
        if t.seat is None:
            assert acd.engine is not None
            acd.engine.create_bridge(caller, leg, name=f"transfer-{t.key}")
            ends = {asyncio.ensure_future(caller.wait_ended()),
                    asyncio.ensure_future(leg.wait_ended())}
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            for fut in ends:
                fut.cancel()
            await asyncio.gather(caller.hangup(), leg.hangup())
            return
        old = t.talk.entry
        now = acd.now()
        entry = Entry(key=uuid.uuid4().hex, queue=old.queue, caller=old.caller,
                      language=caller.language, priority=old.priority, joined_at=now)
        entry.offers = 1
        if acd.store is not None:
            records.open_entry(acd.store, entry.key, old.queue, caller.id, caller.caller,
                               caller.language, entry.priority, now)
        self._write(t, to_entry=entry.key)
        ring = (t.answered_at or now) - t.started_at
        await acd._converse(t.queue, entry, t.seat, leg, caller, None, ring_seconds=ring)

    def _offer(self, t: _Transfer, seat: SeatStatus) -> None:
        """The target seat rings: an offer like a queue's, so its console shows the screen
        pop (with what the caller keyed in the IVR)."""
        acd, caller = self.acd, t.talk.caller
        pop = self._pop(caller)
        acd._emit("offer", queue=t.queue.config.name, entry=t.talk.entry.key,
                  seats=[seat.id], caller=caller.caller, call=caller.id,
                  language=caller.language, priority=t.talk.entry.priority, callback="",
                  transfer=t.key, **pop, at=acd.now())

    def _pop(self, caller: Call) -> dict[str, str]:
        """The screen-pop fields of the caller's first stay in a queue (what they keyed)."""
        return next((w.pop for w in self.acd._waiters.values() if w.call is caller), {})

    def _release_target_seat(self, t: _Transfer) -> None:
        """A target seat whose part is over (not handed the caller) goes to wrap-up."""
        seat = t.seat
        if seat is None or t.handed or seat.state is not AgentState.TALKING:
            return
        self.acd._start_wrap_up(seat, t.queue.config)

    # ------------------------------------------------------------------ bookkeeping
    def consulting(self, seat_id: str) -> bool:
        return seat_id in self._consults

    def step(self, seat_id: str) -> str | None:
        """Where the seat's consult is: ringing, answered or conference (None: none)."""
        t = self._consults.get(seat_id)
        if t is None:
            return None
        if t.kind == "conference":
            return "conference"
        return "ringing" if t.answered_at is None else "answered"

    def _talk(self, seat_id: str) -> _Talk:
        self.acd.seat(seat_id)
        talk = self.acd._talks.get(seat_id)
        if (talk is None or talk.caller.ended or talk.seat_call.ended
                or talk.released.done()):
            raise AcdError(f"seat {seat_id} is not in a conversation: nothing to transfer")
        return talk

    def _consult_of(self, seat_id: str) -> _Transfer:
        self.acd.seat(seat_id)
        t = self._consults.get(seat_id)
        if t is None:
            raise AcdError(f"seat {seat_id}: no consult in progress")
        return t

    def _new(self, talk: _Talk, kind: str, target_kind: str, target: str,
             allowed: tuple[str, ...]) -> _Transfer:
        acd = self.acd
        target = target.strip()
        if target_kind not in allowed:
            raise AcdError(f"a {kind} transfer goes to one of {', '.join(allowed)}; "
                           f"got {target_kind!r}")
        seat: SeatStatus | None = None
        if target_kind == "seat":
            seat = acd.seat(target)
            if seat is talk.seat:
                raise AcdError(f"seat {target}: that is the agent's own seat")
            if seat.state is not AgentState.READY:
                raise AcdError(f"seat {target} is {seat.state.value}: a transfer needs a "
                               "ready seat")
        elif target_kind == "queue":
            acd._queue(target)
        elif not _OUTSIDE.fullmatch(target):
            raise AcdError(f"number {target!r}: expected 3 to 20 digits")
        t = _Transfer(key=uuid.uuid4().hex, kind=kind, talk=talk,
                      queue=acd.queues[talk.entry.queue], target_kind=target_kind,
                      target=target, seat=seat, started_at=acd.now())
        if acd.store is not None:
            open_transfer(acd.store, t.key, entry_key=talk.entry.key, call_id=talk.caller.id,
                          seat_id=talk.seat.id, agent=talk.seat.agent, kind=kind,
                          target_kind=target_kind, target=target, at=t.started_at)
        return t

    def _left(self, t: _Transfer) -> None:
        """The agent leaves the caller: was the target there already?"""
        self._write(t, agent_left_at=self.acd.now(),
                    answered_before_agent_left=int(t.answered_at is not None))

    def _finish(self, t: _Transfer, outcome: str) -> None:
        if t.over:
            return
        t.over = True
        self._write(t, outcome=outcome, ended_at=self.acd.now())
        if outcome != "answered":  # the answer itself was the event
            self._event(t, outcome)

    def _write(self, t: _Transfer, **values: Any) -> None:
        if self.acd.store is not None:
            update_transfer(self.acd.store, t.key, **values)

    def _event(self, t: _Transfer, step: str) -> None:
        self.acd._emit("transfer", **self._view(t, step), at=self.acd.now())

    def _view(self, t: _Transfer, step: str) -> dict[str, Any]:
        return {"seat": t.talk.seat.id, "agent": t.talk.seat.agent, "call": t.talk.caller.id,
                "entry": t.talk.entry.key, "transfer": t.key, "mode": t.kind,
                "to": t.target_kind, "target": t.target, "step": step}


_ALL: weakref.WeakKeyDictionary[Acd, Transfers] = weakref.WeakKeyDictionary()


def of(acd: Acd) -> Transfers:
    """The transfers of ``acd`` (made on first use, one per ACD)."""
    transfers = _ALL.get(acd)
    if transfers is None:
        transfers = _ALL[acd] = Transfers(acd)
    return transfers


async def _transfer_music(call: Call) -> None:
    """What a caller being transferred hears: the prompt, then the music until answered."""
    try:
        await call.play("transfer_please_hold", interruptible=False)
        tune = hold_tune()
        while True:
            await call.play(*music(tune, 60.0), interruptible=False)
    except (CallEnded, asyncio.CancelledError):
        pass


async def _ringback(call: Call, seconds: float) -> None:
    """What the agent hears while the consulted target rings."""
    with contextlib.suppress(CallEnded, asyncio.CancelledError):
        await call.play_tone("ringback", seconds)


__all__ = ["CONSULT_TARGET_KINDS", "TARGET_KINDS", "Transfers", "of"]
