"""An Asterisk Manager Interface (AMI) client: one TCP connection to Asterisk, logged in,
its events handed to a callback, actions sent and their responses awaited.

The wire format (``reference/telephony.md``, asterisk ``main/manager.c``): a banner line
``Asterisk Call Manager/<version>``, then blocks of ``Key: Value`` lines, each block ended
by an empty line. A block with ``Response:`` answers the action whose ``ActionID`` it
carries; a block with ``Event:`` is an event. The client logs in with ``Events: on`` and
keeps the connection: when it drops (Asterisk restarted, the box's firmware reloading it)
every waiting action fails with :class:`AmiError` and the client connects again after a
growing delay, so the engine keeps taking AudioSocket calls without it meanwhile. What is
not AMI gets a reason in the log, not a crash: a peer whose banner is something else, a
refused login (the delay before the next try is the longest, so a wrong secret does not
hammer Asterisk), a block longer than :data:`MAX_BLOCK` (the connection is dropped), and a
line that is not ``Key: Value`` (that block is skipped, the rest goes on).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Final

log = logging.getLogger("drivers.asterisk.ami")

BANNER: Final = b"Asterisk Call Manager/"
EOL: Final = b"\r\n"
#: the longest block taken; AMI's events are a few hundred bytes, a Command's output more
MAX_BLOCK: Final = 64 * 1024
#: seconds between connection attempts, growing to the last (a refused login waits that)
RECONNECT_DELAYS: Final = (1.0, 2.0, 5.0, 10.0, 30.0)
#: how long Asterisk may take to send its banner or answer an action
ANSWER_TIMEOUT: Final = 5.0

Message = dict[str, str]
EventHandler = Callable[[Message], None]


class AmiError(Exception):
    """Asterisk refused an action, or the connection is not there; the message says which."""


def encode(fields: Mapping[str, str]) -> bytes:
    """One block as AMI reads it: ``Key: Value`` lines and the empty line that ends it."""
    for key, value in fields.items():
        if not key or any(c in key for c in ":\r\n") or any(c in value for c in "\r\n"):
            # The value is not shown: it may be the account's secret.
            raise ValueError(f"AMI field {key!r}: its value cannot be sent on one line")
    return b"".join(f"{k}: {v}".encode() + EOL for k, v in fields.items()) + EOL


def parse(block: bytes) -> Message:
    """The fields of one block (without its empty line); a key that repeats (``Variable``,
    ``Output``) keeps every value, joined by newlines. Raises ValueError naming a line that
    is not ``Key: Value``."""
    fields: Message = {}
    for raw in block.split(EOL):
        if not raw:
            continue
        line = raw.decode("utf-8", "replace")
        key, sep, value = line.partition(":")
        if not sep or not key or key != key.strip():
            raise ValueError(f"not a 'Key: Value' line: {line[:80]!r}")
        value = value.strip()
        fields[key] = f"{fields[key]}\n{value}" if key in fields else value
    return fields


class AmiClient:
    """Keeps one logged-in AMI connection to ``host:port`` while started; every event goes
    to ``on_event`` (on the event loop; it must not block)."""

    def __init__(self, host: str, port: int, username: str, secret: str, *,
                 on_event: EventHandler, reconnect_delays: Sequence[float] = RECONNECT_DELAYS,
                 answer_timeout: float = ANSWER_TIMEOUT) -> None:
        if not reconnect_delays:
            raise ValueError("reconnect_delays: at least one delay is needed")
        self.host, self.port = host, port
        self._username, self._secret = username, secret
        self._on_event = on_event
        self._delays = tuple(reconnect_delays)
        self._answer_timeout = answer_timeout
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, asyncio.Future[Message]] = {}
        # The events of list actions still coming, by ActionID (see action_list).
        self._lists: dict[str, list[Message]] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.logged_in = asyncio.Event()
        #: why the last connection ended or failed, for the lines page and the logs
        self.last_error = ""
        self.sessions = 0  # logins that succeeded, since start

    # -- lifetime --------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"ami {self.host}:{self.port}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        # Again until it ends: a cancellation that meets an awaited result at the same
        # moment can be absorbed, and the loop must not then go on connecting.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)

    # -- actions ---------------------------------------------------------------------------
    async def action(self, name: str, fields: Mapping[str, str] | None = None, *,
                     action_id: str = "") -> Message:
        """Send action ``name`` with ``fields``; return its response, or raise AmiError
        (Asterisk said Error, no answer in time, or no connection). ``action_id``: the
        ActionID to send (events an action causes, such as OriginateResponse, carry it);
        by default one of the client's own."""
        writer = self._writer
        if writer is None or not self.logged_in.is_set():
            raise AmiError(f"{name}: not connected to Asterisk's AMI at {self.host}:{self.port}"
                           + (f" ({self.last_error})" if self.last_error else ""))
        return await self._send(writer, name, dict(fields or {}), action_id)

    async def action_list(self, name: str, complete: str,
                          fields: Mapping[str, str] | None = None) -> list[Message]:
        """A list action (``DAHDIShowChannels``, ...): Asterisk answers, then sends one
        event per item carrying the action's ActionID and ends with the event
        ``complete``; returns the items. Raises AmiError as :meth:`action` does."""
        action_id = f"appliance-{next(self._ids)}"
        items = self._lists[action_id] = []
        done: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[f"{action_id}/{complete}"] = done
        try:
            await self.action(name, fields, action_id=action_id)
            try:
                async with asyncio.timeout(self._answer_timeout):
                    await done
            except TimeoutError:
                raise AmiError(f"{name}: the list did not end ({complete}) within "
                               f"{self._answer_timeout:g} s") from None
            return items
        finally:
            self._lists.pop(action_id, None)
            self._pending.pop(f"{action_id}/{complete}", None)

    async def _send(self, writer: asyncio.StreamWriter, name: str,
                    fields: dict[str, str], action_id: str = "") -> Message:
        action_id = action_id or f"appliance-{next(self._ids)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        try:
            writer.write(encode({"Action": name, "ActionID": action_id, **fields}))
            try:
                async with asyncio.timeout(self._answer_timeout):
                    reply = await future
            except TimeoutError:
                raise AmiError(f"{name}: no answer from Asterisk within "
                               f"{self._answer_timeout:g} s") from None
        finally:
            self._pending.pop(action_id, None)
        if reply.get("Response", "").lower() == "error":
            raise AmiError(f"{name}: Asterisk refused it: {reply.get('Message', 'no reason')}")
        return reply

    # -- the connection --------------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            refused = False
            try:
                refused = await self._session()
                attempt = 0 if not refused else len(self._delays) - 1
            except (OSError, EOFError, ValueError, AmiError,
                    asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                self.last_error = _reason(exc)
                log.warning("AMI %s:%d: %s; connecting again", self.host, self.port,
                            self.last_error)
            finally:
                self._disconnected()
            delay = self._delays[min(attempt, len(self._delays) - 1)]
            attempt += 1
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """One connection, until it ends; True if Asterisk refused the login."""
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_BLOCK)
        try:
            async with asyncio.timeout(self._answer_timeout):
                banner = await reader.readline()
            if not banner.startswith(BANNER):
                raise AmiError(f"not Asterisk's AMI: it began with {banner[:60]!r}")
            self._writer = writer
            login = asyncio.create_task(self._send(writer, "Login", {
                "Username": self._username, "Secret": self._secret, "Events": "on"}))
            reading = asyncio.create_task(self._read(reader))
            try:
                await asyncio.wait({login, reading}, return_when=asyncio.FIRST_COMPLETED)
                if not login.done():
                    login.cancel()
                    reading.result()  # the connection ended before the answer
                    raise EOFError("the connection closed before the login was answered")
                try:
                    login.result()
                except AmiError as exc:
                    self.last_error = f"login as {self._username!r} refused ({exc})"
                    log.error("AMI %s:%d: %s; check the AMI user and secret", self.host,
                              self.port, self.last_error)
                    return True
                self.sessions += 1
                self.last_error = ""
                self.logged_in.set()
                log.info("AMI %s:%d: logged in as %s (%s)", self.host, self.port,
                         self._username, banner.decode("ascii", "replace").strip())
                await reading
                raise EOFError("Asterisk closed the connection")
            finally:
                for task in (login, reading):
                    task.cancel()
                await asyncio.gather(login, reading, return_exceptions=True)
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                block = await reader.readuntil(EOL + EOL)
            except asyncio.LimitOverrunError:
                raise AmiError(f"a message longer than {MAX_BLOCK} bytes") from None
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    raise EOFError(f"the connection closed inside a message: "
                                   f"{exc.partial[:60]!r}") from None
                return
            try:
                message = parse(block)
            except ValueError as exc:
                log.warning("AMI %s:%d: a message skipped: %s", self.host, self.port, exc)
                continue
            self._dispatch(message)

    def _dispatch(self, message: Message) -> None:
        # Events first: some carry a Response field of their own (OriginateResponse).
        if "Event" in message:
            action_id = message.get("ActionID", "")
            items = self._lists.get(action_id)
            if items is not None:  # an item of a list action, or its end
                end = self._pending.get(f"{action_id}/{message['Event']}")
                if end is not None and not end.done():
                    end.set_result(message)
                else:
                    items.append(message)
                return
            try:
                self._on_event(message)
            except Exception:
                log.exception("AMI event %s: the handler failed", message.get("Event"))
            return
        if "Response" in message:
            future = self._pending.get(message.get("ActionID", ""))
            if future is not None and not future.done():
                future.set_result(message)

    def _disconnected(self) -> None:
        self.logged_in.clear()
        self._writer = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(AmiError(f"the AMI connection ended ({self.last_error})"))
        self._pending.clear()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is Asterisk running, with AMI enabled?)"
    if isinstance(exc, TimeoutError):
        return "no banner within the timeout"
    return str(exc) or type(exc).__name__


__all__ = ["AmiClient", "AmiError", "Message", "encode", "parse"]
