"""The control surface the seat console and the supervisor page use: log a seat in and
out, set its state with a reason code, list seats and queues with the time in each state,
and follow every change as it happens.

These are plain functions over a running :class:`~appliance.acd.service.Acd`, returning
frozen, JSON-ready views, so the engine's control socket (``appliance/control``) can expose
them one to one, and the web never touches a call object. They must run on the engine's
event loop (a state change can ring a seat at once), which the control socket's handler
does. A refused request raises :class:`~appliance.acd.service.AcdError` with the reason and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from appliance.acd import dial as click_to_dial
from appliance.acd import listen as listen_in
from appliance.acd import transfer
from appliance.acd.model import AgentState
from appliance.acd.service import Acd, AcdError, Listener


@dataclass(frozen=True, slots=True)
class SeatView:
    id: str
    name: str
    number: str
    agent: str
    state: str
    reason: str
    since: float
    seconds_in_state: float
    calls: int
    talk_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WaitingView:
    entry: str
    caller: str
    language: str
    priority: int
    position: int
    waited_seconds: float
    callback_number: str | None
    ringing: bool


@dataclass(frozen=True, slots=True)
class QueueView:
    name: str
    strategy: str
    staffed: int
    ready: int
    waiting: tuple[WaitingView, ...]
    longest_wait_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def login(acd: Acd, seat_id: str, agent: str) -> SeatView:
    acd.login(seat_id, agent)
    return seat_view(acd, seat_id)


def logout(acd: Acd, seat_id: str) -> SeatView:
    acd.logout(seat_id)
    return seat_view(acd, seat_id)


def set_state(acd: Acd, seat_id: str, state: str, reason: str = "") -> SeatView:
    """``state`` as the page sends it: ``ready`` or ``not-ready`` (with a reason code)."""
    try:
        wanted = AgentState(state)
    except ValueError:
        raise AcdError(f"state {state!r}: expected one of "
                       f"{', '.join(s.value for s in AgentState)}") from None
    acd.set_state(seat_id, wanted, reason)
    return seat_view(acd, seat_id)


def hold(acd: Acd, seat_id: str) -> int:
    """The agent puts the caller on hold ("please hold" and music); returns the hold's
    number in the call. A hold over ``acd.hold_remind_after`` seconds sends the agent a
    ``hold-reminder`` event."""
    return acd.hold(seat_id)


def unhold(acd: Acd, seat_id: str) -> float:
    """Back to the caller; returns the hold's length in seconds."""
    if transfer.of(acd).consulting(seat_id):
        # Taking the caller off hold now would put them through to the consulted party.
        raise AcdError(f"seat {seat_id}: a consult is in progress: return to the caller, "
                       "complete the transfer or make it a conference")
    return acd.unhold(seat_id)


def seat_view(acd: Acd, seat_id: str) -> SeatView:
    seat = acd.seat(seat_id)
    now = acd.now()
    return SeatView(id=seat.id, name=seat.config.name, number=seat.config.number,
                    agent=seat.agent, state=seat.state.value, reason=seat.reason,
                    since=seat.since, seconds_in_state=round(now - seat.since, 3),
                    calls=seat.calls, talk_seconds=round(seat.talk_seconds, 3))


def seat_states(acd: Acd) -> list[SeatView]:
    return [seat_view(acd, seat_id) for seat_id in acd.seats]


def queue_states(acd: Acd) -> list[QueueView]:
    now = acd.now()
    views = []
    for q in acd.queues.values():
        members = [s for s in acd.seats.values() if q.config.penalty(s.id) is not None]
        waiting = tuple(
            WaitingView(entry=e.key, caller=e.caller, language=e.language, priority=e.priority,
                        position=i + 1, waited_seconds=round(now - e.joined_at, 3),
                        callback_number=e.callback_number, ringing=e.engaged)
            for i, e in enumerate(q.waiting.entries))
        views.append(QueueView(
            name=q.config.name, strategy=q.config.strategy.value,
            staffed=sum(1 for s in members if s.state is not AgentState.LOGGED_OUT),
            ready=sum(1 for s in members if s.state is AgentState.READY),
            waiting=waiting,
            longest_wait_seconds=max((w.waited_seconds for w in waiting), default=0.0)))
    return views


async def hang_up(acd: Acd, seat_id: str) -> SeatView:
    """End the conversation the seat is in; the seat goes to wrap-up."""
    await acd.hang_up(seat_id)
    return seat_view(acd, seat_id)


def listen(acd: Acd, seat_id: str, phone_seat: str, mode: str,
           supervisor: str) -> dict[str, Any]:
    """A supervisor listens in (``listen``) or whispers to the agent (``whisper``) on
    ``seat_id``'s conversation from ``phone_seat``'s phone, which is rung now."""
    return listen_in.start(acd, seat_id, phone_seat, mode, supervisor).view()


def listen_mode(acd: Acd, monitor: str, mode: str) -> dict[str, Any]:
    return listen_in.set_mode(acd, monitor, mode).view()


def listen_stop(acd: Acd, monitor: str) -> dict[str, Any]:
    return listen_in.stop(acd, monitor).view()


def monitors(acd: Acd) -> list[dict[str, Any]]:
    """The listen-ins in progress (ringing the supervisor's phone, or joined)."""
    return [m.view() for m in acd.monitors.values()]


def dial(acd: Acd, seat_id: str, number: str, customer: str = "", queue: str = "",
         language: str = "zh") -> dict[str, Any]:
    """Click-to-dial: ring the seat's phone, then ``number``; the answer never repeats the
    number (the web's roles may not all see it)."""
    key = click_to_dial.start(acd, seat_id, number, customer=customer, queue=queue,
                              language=language)
    return {"dial": key, "seat": seat_id, "customer": customer}


# ---------------------------------------------------------------------- transfers
def call_state(acd: Acd, seat_id: str) -> dict[str, Any]:
    """What the seat's call is doing beyond talking: ``held`` (the caller on hold) and
    ``consult`` (ringing, answered or conference; None when there is none)."""
    talk = acd._talks.get(seat_id)
    return {"held": talk is not None and talk.held_since is not None,
            "consult": transfer.of(acd).step(seat_id)}


def blind_transfer(acd: Acd, seat_id: str, to: str, target: str) -> dict[str, Any]:
    """Hand the seat's caller on to a seat, a queue or an outside number (``to``); the
    agent is released to wrap-up at once. Steps follow as ``transfer`` events."""
    return transfer.of(acd).blind(seat_id, to, target)


def consult(acd: Acd, seat_id: str, to: str, target: str) -> dict[str, Any]:
    """The caller on hold, the agent rings a seat or an outside number to talk first."""
    return transfer.of(acd).consult(seat_id, to, target)


def consult_complete(acd: Acd, seat_id: str) -> dict[str, Any]:
    """The consulted target takes the caller; the agent leaves to wrap-up."""
    return transfer.of(acd).complete(seat_id)


async def consult_return(acd: Acd, seat_id: str) -> dict[str, Any]:
    """The consulted target is hung up; the agent has the caller back."""
    return await transfer.of(acd).back(seat_id)


def conference(acd: Acd, seat_id: str) -> dict[str, Any]:
    """The consult becomes a 3-way conference: caller, agent and target together."""
    return transfer.of(acd).conference(seat_id)


def follow(acd: Acd, listener: Listener) -> Callable[[], None]:
    """Live updates: ``listener(kind, data)`` for each seat state change (``seat``), caller
    joining or leaving a queue (``queue-join``, ``queue-leave``), offer to seats
    (``offer``, with the caller's number and call id and the policy number keyed in the
    IVR for the screen pop), answer (``connected``, with the rings), booked callback
    (``callback-booked``), hold (``hold``, ``unhold``, ``hold-reminder``), each step of a
    transfer (``transfer``, with ``step``), the caller's survey score (``survey``), a
    supervisor's listen-in (``listen``: start, joined, mode, stop) and click-to-dial
    (``dial``, without the number). Returns the function that stops them."""
    return acd.subscribe(listener)


__all__ = ["QueueView", "SeatView", "WaitingView", "blind_transfer", "call_state", "conference",
           "consult", "consult_complete", "consult_return", "dial", "follow", "hang_up", "hold",
           "listen", "listen_mode", "listen_stop", "login", "logout", "monitors", "queue_states",
           "seat_states", "seat_view", "set_state", "unhold"]
