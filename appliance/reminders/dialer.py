"""The reminder dialer: passes over the due policies, calling their holders on the engine.

A pass reads the settings (so a change on the web page counts from the next pass), selects
the policies due a reminder (:func:`appliance.reminders.selection.due_now`) and calls them
in that order through :meth:`Engine.originate` on the given driver, at most
``max_concurrent`` at once, starting each only while the calling window is open. The
answer comes from the line's signal or the engine's call-progress analysis; busy, no
answer and congestion end the call with that cause, which is the attempt's outcome. An
answered holder hears the message in their language and the menu: 1 confirms, 2 goes to
the ACD's service queue (when the box has one), 9 repeats. Each attempt is a row of the
attempt log, opened as it is dialled and finished with its outcome, its call (whose CDR
row and recording the engine keeps as for every call) and when to try again.

The engine process runs :meth:`ReminderDialer.serve` (a pass every ``interval`` seconds
while the settings say enabled); the control op ``reminders-run`` is
:meth:`ReminderDialer.run_now`, a pass at once whatever ``enabled`` says (the window and
holidays still apply). One pass at a time, so the limit on concurrent calls holds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from appliance.calls.call import Call
from appliance.media.prompts import PromptNotFound
from appliance.reminders import attempts as log
from appliance.reminders import message as msg
from appliance.reminders.selection import (
    Closed,
    Due,
    closed,
    closed_reason,
    due_now,
    holidays,
)
from appliance.reminders.settings import ReminderSettings, load
from appliance.store.db import Store
from drivers.base import (
    CAUSE_BUSY,
    CAUSE_CONGESTION,
    CAUSE_NO_ANSWER,
    CAUSE_SHUTDOWN,
    Driver,
    LineError,
)

if TYPE_CHECKING:
    from appliance.calls.engine import Engine

log_ = logging.getLogger("appliance.reminders")
T = TypeVar("T")

#: how long a holder's phone rings before the attempt is no answer
RING_SECONDS: Final = 30.0
#: how long the menu waits for a key
MENU_SECONDS: Final = 6.0
#: menus a call goes through at most (9 to hear again, or a wrong key)
MAX_MENUS: Final = 4
#: the queue a holder who presses 2 is handed to
SERVICE_QUEUE: Final = "service"
RUNNING: Final = Closed("running", "", "a reminder pass is already running")
OPEN: Final = Closed("", "", "")
_CAUSES: Final = {CAUSE_BUSY: "busy", CAUSE_NO_ANSWER: "no_answer",
                  CAUSE_CONGESTION: "congested"}


class QueueTransfer(Protocol):
    """The ACD as the dialer needs it: hand an answered call to a queue."""

    def has_queue(self, name: str) -> bool: ...

    async def transfer(self, call: Call, queue: str, *, priority: int = 0,
                       variables: Mapping[str, str] | None = None) -> str: ...


@dataclass
class _Talk:
    """What happened on one answered call, as its flow saw it."""

    answered: bool = False
    heard: bool = False  # the whole message played (or a key interrupted it)
    outcome: str = ""  # set by a key: confirmed, transferred
    detail: str = ""


@dataclass
class PassResult:
    """One pass: the policies it found due and the outcome of each call it placed."""

    started: bool = True
    reason: str = ""  # why no call was placed (outside the window, a pass running)
    due: int = 0
    outcomes: list[str] = field(default_factory=list)


class ReminderDialer:
    def __init__(self, engine: Engine, driver: Driver, store: Store, *,
                 acd: QueueTransfer | None = None, queue: str = SERVICE_QUEUE,
                 local_now: Callable[[], dt.datetime] | None = None,
                 ring_seconds: float = RING_SECONDS, executor: Executor | None = None,
                 on_outcome: Callable[[Due, int, str, str], None] | None = None) -> None:
        self.engine = engine
        self.on_outcome = on_outcome  # (policy, attempt, outcome, detail): the demo prints it
        self.driver = driver
        self.store = store
        self.acd = acd
        self.queue = queue
        self.ring_seconds = ring_seconds
        self.executor = executor  # None: the loop's default thread pool
        # The box's local time on the engine's clock (a test moves it with the clock).
        self.local_now = local_now or (lambda: dt.datetime.fromtimestamp(engine.clock.wall()))
        self.active = 0  # reminder calls in progress now
        self._pass: asyncio.Task[PassResult] | None = None
        self._choosing = False  # a pass is choosing its policies (not yet a task)
        # Why the pass places no more calls: no line to dial on, or the engine stopping
        # (its calls end with "shutdown"); the next pass tries again.
        self._halt = ""

    async def _blocking(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    # ------------------------------------------------------------------ passes
    @property
    def running(self) -> bool:
        return self._pass is not None and not self._pass.done()

    async def recover(self) -> int:
        """Attempts a stop or crash left open are failed, to be tried again."""
        now = self.engine.clock.wall()
        settings = await self._blocking(lambda: load(self.store))
        closed = await self._blocking(lambda: self.store.write(
            lambda db: log.close_interrupted(db, now, now + settings.retry_minutes * 60)))
        if closed:
            log_.warning("%d reminder attempt(s) cut off by the last stop: marked failed",
                         closed)
        return closed

    async def run_now(self) -> dict[str, Any]:
        """Start a pass now (the control op): how many policies it found, or why it did not
        start (``why``: ``running``, ``window`` or ``holiday``, with ``detail`` the window
        or the holiday's name, and ``reason`` in words). Returns once the pass has chosen
        its policies, not when its calls end."""
        task, due, why = await self._begin()
        if task is not None:
            return {"started": True, "due": due, "why": "", "detail": "", "reason": ""}
        return {"started": False, "due": 0, "why": why.kind, "detail": why.detail,
                "reason": why.text}

    async def pass_once(self) -> PassResult:
        """One pass to the end (its calls finished); refused while another runs."""
        task, _, why = await self._begin()
        return PassResult(False, why.text) if task is None else await task

    async def _begin(self) -> tuple[asyncio.Task[PassResult] | None, int, Closed]:
        """Choose the policies and start the pass's task: (task, how many, _) or (None, 0,
        why not). Marked running before the choice, so two requests never start two."""
        if self.running or self._choosing:
            return None, 0, RUNNING
        self._choosing = True
        try:
            settings = await self._blocking(lambda: load(self.store))
            due, why = await self._select(settings)
        finally:
            self._choosing = False
        if why is not None:
            return None, 0, why
        self._pass = asyncio.create_task(self._call_all(settings, due), name="reminders-pass")
        return self._pass, len(due), OPEN

    async def serve(self, interval: float = 60.0) -> None:
        """Pass after pass, ``interval`` seconds of engine time apart, while the settings
        say enabled; returns once the engine has stopped (a pass in hand ends with it)."""
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        await self.recover()
        try:
            while not self.engine.stopped.is_set():
                try:
                    settings = await self._blocking(lambda: load(self.store))
                    if settings.enabled and not self.running:
                        result = await self.pass_once()
                        if result.outcomes:
                            log_.info("reminder pass: %d due, outcomes %s", result.due,
                                      ", ".join(result.outcomes))
                except Exception:
                    # A pass that failed (the database busy past its timeout, a bug) must
                    # not end the reminders for good: the next one tries again.
                    log_.exception("reminder pass failed")
                await self.engine.pause(interval)
        finally:
            if self._pass is not None:
                await asyncio.gather(self._pass, return_exceptions=True)

    async def _select(self, settings: ReminderSettings) -> tuple[list[Due], Closed | None]:
        now = self.local_now()
        days = await self._blocking(lambda: self.store.read(holidays))
        why = closed(settings, now, days)
        if why is not None:
            return [], why
        wall = self.engine.clock.wall()
        due = await self._blocking(lambda: self.store.read(
            lambda db: due_now(db, settings, today=now.date(), now=wall)))
        return due, None

    async def _call_all(self, settings: ReminderSettings, due: list[Due]) -> PassResult:
        result = PassResult(due=len(due))
        slots = asyncio.Semaphore(settings.max_concurrent)
        days = await self._blocking(lambda: self.store.read(holidays))
        calls: list[asyncio.Task[str]] = []
        self._halt = ""
        for item in due:
            await slots.acquire()
            reason = self._halt or closed_reason(settings, self.local_now(), days)
            if reason or self.engine.stopped.is_set():
                slots.release()
                result.reason = reason or "the engine stopped"
                break
            calls.append(asyncio.create_task(self._attempt(item, settings, slots),
                                             name=f"reminder-{item.policy_number}"))
        for outcome in await asyncio.gather(*calls, return_exceptions=True):
            result.outcomes.append(outcome if isinstance(outcome, str) else "failed")
        return result

    # ------------------------------------------------------------------ one attempt
    async def _attempt(self, due: Due, settings: ReminderSettings,
                       slots: asyncio.Semaphore) -> str:
        key = log.Attempt(due.policy_number, due.due_date.isoformat(), due.next_attempt)
        try:
            # Committed before the call and after it (the reads of the next pass are not
            # on the writer's thread): a pass never chooses a policy whose row is in flight.
            await asyncio.wrap_future(log.open_attempt(
                self.store, key, number=due.phone, language=due.language,
                started_at=self.engine.clock.wall()))
        except BaseException:
            slots.release()
            raise
        self.active += 1
        outcome, detail, call_id = "failed", "", None
        try:
            talk = _Talk()
            try:
                call = await self.engine.originate(
                    self.driver, due.phone, flow=lambda c: self._converse(c, due, talk),
                    ring_timeout=self.ring_seconds)
            except LineError as exc:
                detail = self._halt = str(exc)
            else:
                call_id = call.id
                cause = await call.wait_ended()
                outcome, detail = _outcome(talk, cause)
                if cause == CAUSE_SHUTDOWN:
                    self._halt = "the engine is stopping"
        except asyncio.CancelledError:
            detail = log.INTERRUPTED
            raise
        finally:
            self.active -= 1
            ended = self.engine.clock.wall()
            retry = (ended + settings.retry_minutes * 60
                     if outcome not in log.FINAL and key.attempt < settings.max_attempts
                     else None)
            # The last attempt reached nobody: the reminder goes by SMS, if the box says so
            # (not for a call the engine's stop cut short: that one is tried again).
            sms = ((due.phone, msg.sms_text(due, self.local_now().date()))
                   if settings.sms_after_calls and retry is None
                   and outcome not in log.FINAL and detail != log.INTERRUPTED
                   and self._halt != "the engine is stopping" else None)
            closed = log.close_attempt(self.store, key, outcome=outcome, ended_at=ended,
                                       call_id=call_id, detail=detail, next_retry_at=retry,
                                       sms=sms)
            try:
                await asyncio.wrap_future(closed)
            finally:
                slots.release()
                if self.on_outcome is not None:
                    self.on_outcome(due, key.attempt, outcome, detail)
        return outcome

    async def _converse(self, call: Call, due: Due, talk: _Talk) -> None:
        """The answered call: the message, then the menu; keys decide the outcome."""
        await call.wait_answered()
        talk.answered = True
        call.language = due.language
        today = self.local_now().date()
        playlist = msg.message(due, today, self._has_prompt)
        again = True
        for _ in range(MAX_MENUS):
            if again:
                await call.play(*playlist)
                talk.heard = True
            got = await call.collect(1, terminator="", first_timeout=MENU_SECONDS,
                                     prompt=[msg.MENU])
            again = got.digits == "9"
            if got.digits == "1":
                talk.outcome = "confirmed"
                await call.play(msg.CONFIRMED, interruptible=False)
                return
            if got.digits == "2":
                talk.outcome = "transferred"
                await self._to_agent(call, due, talk)
                return
            if not got.digits:
                break
            if not again:
                await call.play(msg.INVALID)
        await call.play(msg.GOODBYE, interruptible=False)

    async def _to_agent(self, call: Call, due: Due, talk: _Talk) -> None:
        acd = self.acd
        if acd is None or not acd.has_queue(self.queue):
            talk.detail = "no queue to hand the call to"
            await call.play(msg.NO_AGENT, interruptible=False)
            return
        talk.detail = f"queue {self.queue}"
        await call.play(msg.TO_AGENT, interruptible=False)
        # The policy goes with the call, as a caller's keyed number does: the seat's screen
        # pop finds the customer by it.
        got = await acd.transfer(call, self.queue, variables={"pol_no": due.policy_number})
        talk.detail = f"queue {self.queue}: {got}"

    def _has_prompt(self, name: str, lang: str) -> bool:
        try:
            self.engine.prompts.get(name, lang)
        except PromptNotFound:
            return False
        return True


def _outcome(talk: _Talk, cause: str) -> tuple[str, str]:
    """The attempt's outcome and detail from what its call did and how it ended."""
    if talk.outcome:
        return talk.outcome, talk.detail
    if talk.answered and talk.heard:
        return "heard", "" if cause != CAUSE_SHUTDOWN else "the engine stopped after it"
    if talk.answered and cause != CAUSE_SHUTDOWN:
        return "hung_up", f"ended ({cause}) during the message"
    if cause in _CAUSES:
        return _CAUSES[cause], ""
    return "failed", cause


__all__ = ["MAX_MENUS", "MENU_SECONDS", "RING_SECONDS", "SERVICE_QUEUE", "PassResult",
           "QueueTransfer", "ReminderDialer"]
