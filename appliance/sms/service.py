"""The engine's SMS service: owns the GSM modem's serial port while ``sms_modem`` has it
enabled, sends the queued messages and stores the received ones.

Serial I/O blocks (a network can take many seconds to take a message), so the service is
a thread of its own and never runs on the engine's event loop; it talks to the rest of the
box only through the store. Each round (every ``poll`` seconds) it reads the modem
settings (an admin's change reopens the port; disabled or absent, the port is let go and
queued messages wait), sends the due messages oldest first, then reads the SIM's inbox.

Sending: a message is claimed (``sending``), its parts are sent one by one, and the row
ends ``sent``, ``failed`` with the modem's or network's reason, or ``queued`` again after
a temporary refusal (network out of order, congestion, no service) until ``max_attempts``
tries (as is a modem that gave no prompt for the PDU, which therefore never went); the
parts already taken are not sent again. A reply the service cannot read leaves
it unknown whether the message went, so that message fails (never sent twice by itself)
and the port is reopened; the next message still goes. Receiving: each message (its
parts joined) is committed as a ``received`` row first and deleted from the SIM only
after, so a stop in between loses nothing and, since a stored message is recognised by its
PDUs, stores nothing twice. A PDU that does not decode is kept as a row with the reason and
its raw hex; the parts of a message whose other parts never come are stored as they are
after ``partial_wait`` seconds, so the SIM does not fill up.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import serial

from appliance.box.settings import ModemSettings, load_modem
from appliance.sms import messages
from appliance.store.db import Store
from drivers.gsm.at import AtSession, ModemError, NoPrompt, open_port
from drivers.gsm.sms import BadMessage, Inbox, Received, SmsError, SmsSession, TextError, encode

log = logging.getLogger("appliance.sms")

POLL_SECONDS: Final = 5.0
MAX_ATTEMPTS: Final = 3
RETRY_AFTER: Final = 60.0  # seconds, times the attempt number
PARTIAL_WAIT: Final = 3600.0
HEARTBEAT: Final = 60.0  # the state row is refreshed at least this often
UNSURE: Final = " (whether it reached the network is unknown: not sent again by itself)"

Opener = Callable[[str, int], serial.Serial]
Event = Callable[[str, dict[str, Any]], None]


class SmsService:
    """See the module's docstring. :meth:`start` / :meth:`stop` run it on its thread;
    :meth:`run_once` is one round, for tests that drive it step by step."""

    def __init__(self, store: Store, *, poll: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.time, opener: Opener = open_port,
                 on_event: Event | None = None, max_attempts: int = MAX_ATTEMPTS,
                 retry_after: float = RETRY_AFTER, partial_wait: float = PARTIAL_WAIT,
                 at_timeout: float = 2.0, send_timeout: float = 60.0) -> None:
        self.store, self.poll, self.clock, self.opener = store, poll, clock, opener
        self.on_event = on_event
        self.max_attempts, self.retry_after = max_attempts, retry_after
        self.partial_wait = partial_wait
        self.at_timeout, self.send_timeout = at_timeout, send_timeout
        self._settings: ModemSettings | None = None
        self._port: serial.Serial | None = None
        self._session: SmsSession | None = None
        self._state: tuple[str, str] = ("", "")
        self._state_at = 0.0
        self._partial_seen: dict[str, float] = {}
        self._bad_seen: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifetime ---------------------------------------------------------------------

    def start(self) -> None:
        abandoned = messages.abandon_interrupted(self.store, self.clock())
        if abandoned:
            log.warning("sms: %d message(s) cut off by the last stop marked failed",
                        abandoned)
        self._thread = threading.Thread(target=self._run, name="sms-service", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.send_timeout + 5)
        self._close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the service must outlive one bad round; it is logged
                log.exception("sms: round failed")
                self._close()
            self._stop.wait(self.poll)

    # -- one round --------------------------------------------------------------------

    def run_once(self) -> None:
        session = self._connect()
        if session is None:
            return
        try:
            self._send_due(session)
            if self._session is session:
                self._receive(session)
        except ModemError as exc:  # the listing or a deletion: the modem, not a message
            self._close()
            self._say("error", str(exc))

    def _connect(self) -> SmsSession | None:
        settings = load_modem(self.store)
        if settings is None or not settings.device:
            self._close()
            self._say("off", "no modem configured")
            return None
        if not settings.enabled:
            self._close()
            self._say("off", f"{settings.device}: disabled")
            return None
        if self._session is not None and settings == self._settings:
            self._say("ready", settings.device)
            return self._session
        self._close()
        try:
            self._port = self.opener(settings.device, settings.baud)
            at = AtSession(self._port, settings.device, timeout=self.at_timeout)
            session = SmsSession(at, smsc=settings.smsc, send_timeout=self.send_timeout,
                                 reference=random.randrange(256))
            session.setup()
        except ModemError as exc:
            self._close()
            self._say("error", str(exc))
            return None
        self._settings, self._session = settings, session
        self._say("ready", settings.device)
        return session

    def _close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except (OSError, serial.SerialException):
                log.warning("sms: closing %s failed", self._port.port)
        self._port = self._session = self._settings = None

    def _say(self, state: str, detail: str) -> None:
        now = self.clock()
        if (state, detail) != self._state:
            log.info("sms: %s %s", state, detail)
        elif now - self._state_at < HEARTBEAT:
            return
        self._state, self._state_at = (state, detail), now
        messages.set_state(self.store, state, detail, now)

    def _event(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)

    # -- sending ----------------------------------------------------------------------

    def _send_due(self, session: SmsSession) -> None:
        for msg in messages.due(self.store, self.clock()):
            if self._stop.is_set() or self._session is not session:
                return
            if messages.claim(self.store, msg.id, session.next_reference()):
                self._send(session, msg)

    def _send(self, session: SmsSession, msg: messages.Outgoing) -> None:
        reference = self.store.query("SELECT reference FROM sms_messages WHERE id = ?",
                                     [msg.id])[0]["reference"]
        refs = list(msg.refs)
        try:
            pdus = encode(msg.number, msg.text, reference=reference, smsc=session.smsc)
            for i in range(len(refs), len(pdus)):
                refs.append(session.send_pdu(pdus[i], part=i + 1, parts=len(pdus)))
        except TextError as exc:
            self._fail(msg, str(exc), refs)
        except SmsError as exc:
            self._retry_or_fail(msg, exc, refs, temporary=exc.temporary)
        except NoPrompt as exc:  # the part never went: safe to try again
            self._retry_or_fail(msg, exc, refs, temporary=True)
            self._close()
            self._say("error", str(exc))
        except ModemError as exc:
            self._fail(msg, str(exc) + UNSURE, refs)
            self._close()  # out of step with the modem: start afresh next round
            self._say("error", str(exc))
        else:
            messages.finish(self.store, msg.id, status="sent", now=self.clock(),
                            refs=tuple(refs))
            self._event("sent", id=msg.id, number=msg.number, text=msg.text, refs=refs)

    def _retry_or_fail(self, msg: messages.Outgoing, exc: ModemError, refs: list[int], *,
                       temporary: bool) -> None:
        tries = msg.attempts + 1
        if temporary and tries < self.max_attempts:
            messages.finish(self.store, msg.id, status="queued", now=self.clock(),
                            error=f"{exc} (try {tries} of {self.max_attempts})",
                            refs=tuple(refs), retry_at=self.clock() + self.retry_after * tries)
            self._event("retry", id=msg.id, number=msg.number, error=str(exc))
        else:
            self._fail(msg, str(exc), refs)

    def _fail(self, msg: messages.Outgoing, error: str, refs: list[int]) -> None:
        messages.finish(self.store, msg.id, status="failed", now=self.clock(), error=error,
                        refs=tuple(refs))
        log.warning("sms %d to %s failed: %s", msg.id, msg.number, error)
        self._event("failed", id=msg.id, number=msg.number, error=error)

    # -- receiving --------------------------------------------------------------------

    def _receive(self, session: SmsSession) -> None:
        inbox = session.inbox()
        for msg in inbox.messages:
            self._keep(session, msg)
        now = self.clock()
        for msg in inbox.partial:
            first = self._partial_seen.setdefault(msg.key, now)
            if now - first >= self.partial_wait:
                self._keep(session, msg, error="only some parts of this message arrived")
                self._partial_seen.pop(msg.key, None)
        self._keep_bad(session, inbox)

    def _keep(self, session: SmsSession, msg: Received, error: str = "") -> None:
        sent_at = msg.sent_at.timestamp() if msg.sent_at else None
        now = self.clock()
        row = self.store.write(lambda db: messages.receive(
            db, number=msg.number, text=msg.text, sent_at=sent_at, key=msg.key, now=now,
            parts=len(msg.indexes), error=error))
        # Committed (or already stored): only now may it leave the SIM.
        for index in msg.indexes:
            session.delete(index)
        if row is not None:
            self._event("received", id=row, number=msg.number, text=msg.text)

    def _keep_bad(self, session: SmsSession, inbox: Inbox) -> None:
        for bad in inbox.bad:
            if bad.index not in self._bad_seen:
                log.warning("sms: %s", bad.reason)
                self._bad_seen.add(bad.index)
            if bad.pdu:  # (a header without its PDU: the listing was cut; next round)
                self._store_bad(bad)
                session.delete(bad.index)
                self._bad_seen.discard(bad.index)

    def _store_bad(self, bad: BadMessage) -> None:
        """A PDU nobody can read is still a message someone sent: kept as its hex."""
        now = self.clock()
        self.store.write(lambda db: messages.receive(
            db, number="", text=bad.pdu, sent_at=None, key=bad.pdu, now=now,
            error=bad.reason))


__all__ = ["SmsService"]
