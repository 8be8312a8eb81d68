"""AT commands to a GSM modem on a serial port (pyserial): one command at a time, its
reply read up to the final result code (``OK``, ``ERROR``, ``+CME ERROR``, ``+CMS
ERROR``), and :func:`probe`, the admin's "test modem": ``AT``, ``AT+CPIN?``, ``AT+CSQ``
and ``AT+CMGF=1`` (text mode, which SMS sending needs), read into the SIM's state and the
signal quality. :meth:`AtSession.submit` is the two-step command SMS sending needs
(``AT+CMGS=n``, the modem's ``> `` prompt, then the PDU and Ctrl-Z).

What goes wrong on a real box gets its own error, since the admin must tell them apart: no
such device (the USB modem is not plugged in, or the path is wrong), no answer at all
(not a modem, or switched off), and bytes that are not an AT reply (most often a wrong
baud rate, which turns every reply into noise). The port is opened with an exclusive
lock: while the engine's SMS service holds the modem, the test says the port is busy
instead of two programs talking over each other on one serial line.
"""

from __future__ import annotations

import errno
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import serial

DEFAULT_TIMEOUT: Final = 2.0
FINAL_OK: Final = "OK"
FINAL_ERRORS: Final = ("ERROR", "+CME ERROR:", "+CMS ERROR:", "NO CARRIER")
#: the most a reply may be before it is taken for noise (a line of +CMGL is far less)
MAX_REPLY: Final = 4096
#: +CME error codes about the SIM (3GPP TS 27.007, 9.2.1), as the page says them
CME_SIM: Final = {10: "SIM not inserted", 11: "SIM PIN required", 12: "SIM PUK required",
                  13: "SIM failure", 14: "SIM busy", 15: "SIM wrong"}
CSQ_RE: Final = re.compile(r"\+CSQ:\s*(\d{1,2}),\s*(\d{1,2})")
CPIN_RE: Final = re.compile(r"\+CPIN:\s*(.+)")
_PRINTABLE: Final = frozenset(range(0x20, 0x7F)) | {0x0D, 0x0A}
CTRL_Z: Final = b"\x1a"
#: what a modem sends when it is ready for the PDU of AT+CMGS (27.005 3.5.1)
PROMPT: Final = b"> "


class ModemError(Exception):
    """The modem could not be asked; the message says what to check."""


class NoDevice(ModemError):
    """The serial device does not exist (or cannot be opened)."""


class NoAnswer(ModemError):
    """Nothing came back within the timeout."""


class Garbage(ModemError):
    """Bytes came back that are not an AT reply (a wrong baud rate, or not a modem)."""


class Busy(NoDevice):
    """Another program (the engine's SMS service) holds the port."""


class NoPrompt(NoAnswer):
    """A two-step command got no ``> `` prompt: its body was never sent."""


@dataclass(frozen=True, slots=True)
class Reply:
    command: str
    lines: tuple[str, ...]  # the information lines, without the echo and the final code
    final: str  # OK, ERROR, +CME ERROR: 10, ...

    @property
    def ok(self) -> bool:
        return self.final == FINAL_OK


@dataclass(frozen=True, slots=True)
class ModemStatus:
    device: str
    sim: str  # READY, SIM PIN, SIM not inserted, ...
    rssi: int | None  # 0-31 (CSQ), None when the modem does not know (99)
    ber: int | None
    text_mode: bool  # AT+CMGF=1 accepted
    replies: tuple[Reply, ...] = field(default=())

    @property
    def sim_ready(self) -> bool:
        return self.sim == "READY"

    @property
    def dbm(self) -> int | None:
        """The received signal in dBm (CSQ 0 is -113 or less, 31 is -51 or more)."""
        return None if self.rssi is None else -113 + 2 * self.rssi


def open_port(device: str, baud: int) -> serial.Serial:
    try:
        return serial.Serial(device, baud, timeout=0.05, write_timeout=DEFAULT_TIMEOUT,
                             exclusive=True)
    except serial.SerialException as exc:
        code = exc.errno if isinstance(exc.errno, int) else None
        if code in (errno.EAGAIN, errno.EWOULDBLOCK):
            raise Busy(f"{device}: in use by another program (the engine's SMS service "
                       "holds the modem while it is enabled)") from None
        if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            raise NoDevice(f"{device}: no such device (is the modem plugged in?)") from None
        if code in (errno.EACCES, errno.EPERM):
            raise NoDevice(f"{device}: permission denied (the appliance's user must be in "
                           "the dialout group)") from None
        raise NoDevice(f"{device}: cannot open it as a serial port: {exc}") from None


class AtSession:
    """One open serial port to a modem; :meth:`command` sends one AT command."""

    def __init__(self, port: serial.Serial, device: str, *,
                 timeout: float = DEFAULT_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.port, self.device, self.timeout, self.clock = port, device, timeout, clock

    def command(self, command: str, *, limit: int = MAX_REPLY,
                timeout: float | None = None) -> Reply:
        """Send ``command`` and read its reply up to the final result code (``limit``: the
        most bytes the reply may be, more for a listing of stored messages)."""
        self._send(command.encode("ascii") + b"\r")
        return self._reply(command, b"", limit=limit, timeout=timeout)

    def submit(self, command: str, body: str, *, timeout: float | None = None) -> Reply:
        """Send ``command``, wait for the ``> `` prompt, send ``body`` and Ctrl-Z, and read
        the reply. A modem refusing the command outright (ERROR instead of the prompt)
        gives that reply; ``body`` is never sent then."""
        self._send(command.encode("ascii") + b"\r")
        raw = b""
        deadline = self.clock() + self.timeout
        while PROMPT not in raw:
            if self.clock() >= deadline:
                got = raw.replace(command.encode("ascii"), b"").strip()  # beyond the echo
                raise NoPrompt(f"{self.device}: {command}: no prompt within {self.timeout:g}"
                               f" s" + (f", got {_show(got)}" if got else ""))
            try:
                raw += self._chunk(command, raw, MAX_REPLY)
            except Garbage as exc:
                raise NoPrompt(str(exc)) from None
            refused = _parse(command, raw)
            if refused is not None:
                return refused
        self.port.write(body.encode("ascii") + CTRL_Z)
        self.port.flush()
        # Some modems echo the PDU (and the Ctrl-Z) back: that is not part of the reply.
        return self._reply(command, b"", limit=MAX_REPLY, timeout=timeout,
                           echoes=(body, body + CTRL_Z.decode()))

    def _send(self, data: bytes) -> None:
        self.port.reset_input_buffer()  # nothing left over from before belongs to this
        self.port.write(data)
        self.port.flush()

    def _chunk(self, command: str, raw: bytes, limit: int) -> bytes:
        chunk: bytes = self.port.read(256)
        if any(b not in _PRINTABLE and b != CTRL_Z[0] for b in chunk) \
                or len(raw) + len(chunk) > limit:
            raise Garbage(f"{self.device}: {command}: the reply is not text "
                          f"({_show(raw + chunk)}); check the baud rate")
        return chunk

    def _reply(self, command: str, raw: bytes, *, limit: int, timeout: float | None,
               echoes: tuple[str, ...] = ()) -> Reply:
        wait = self.timeout if timeout is None else timeout
        deadline = self.clock() + wait
        while self.clock() < deadline:
            chunk = self._chunk(command, raw, limit)
            if not chunk:
                continue
            raw += chunk
            reply = _parse(command, raw, echoes)
            if reply is not None:
                return reply
        if not raw.strip():
            raise NoAnswer(f"{self.device}: {command}: no answer within {wait:g} s "
                           "(is it a modem, switched on, at this baud rate?)")
        raise Garbage(f"{self.device}: {command}: no final OK or ERROR within "
                      f"{wait:g} s, got {_show(raw)}")


def _parse(command: str, raw: bytes, echoes: tuple[str, ...] = ()) -> Reply | None:
    """The reply in ``raw`` once its final result code has arrived, else None."""
    if not raw.endswith(b"\n"):
        return None
    lines = [ln.strip().lstrip("> ") for ln in raw.decode("ascii").splitlines()]
    # Blank lines, the echo, and the prompt with what followed it on its line.
    lines = [ln for ln in lines if ln and ln != command and ln not in echoes]
    if not lines:
        return None
    last = lines[-1]
    if last == FINAL_OK or last.startswith(FINAL_ERRORS):
        return Reply(command, tuple(lines[:-1]), last)
    return None


def _show(raw: bytes) -> str:
    return repr(raw[:40]) + ("…" if len(raw) > 40 else "")


def probe(device: str, baud: int, *, timeout: float = DEFAULT_TIMEOUT) -> ModemStatus:
    """Ask the modem at ``device`` whether it answers, its SIM's state and its signal
    quality, and switch it to SMS text mode; raises a :class:`ModemError`."""
    port = open_port(device, baud)
    try:
        at = AtSession(port, device, timeout=timeout)
        hello = at.command("AT")
        if not hello.ok:
            raise Garbage(f"{device}: AT: answered {hello.final}, not OK")
        cpin = at.command("AT+CPIN?")
        csq = at.command("AT+CSQ")
        cmgf = at.command("AT+CMGF=1")
    finally:
        port.close()
    sim = _sim_state(device, cpin)
    rssi, ber = _signal(device, csq)
    return ModemStatus(device, sim, rssi, ber, cmgf.ok, (hello, cpin, csq, cmgf))


def _sim_state(device: str, reply: Reply) -> str:
    if reply.ok:
        for line in reply.lines:
            m = CPIN_RE.fullmatch(line)
            if m:
                return m.group(1).strip()
        raise Garbage(f"{device}: AT+CPIN?: no +CPIN line in {list(reply.lines)!r}")
    code = reply.final.partition(":")[2].strip()
    if code.isdigit():
        return CME_SIM.get(int(code), reply.final)
    return code or reply.final  # verbose errors: "+CME ERROR: SIM not inserted"


def _signal(device: str, reply: Reply) -> tuple[int | None, int | None]:
    if not reply.ok:
        return None, None
    for line in reply.lines:
        m = CSQ_RE.fullmatch(line)
        if m:
            rssi, ber = int(m.group(1)), int(m.group(2))
            if rssi > 31 and rssi != 99:
                raise Garbage(f"{device}: AT+CSQ: signal {rssi} is out of range (0-31, 99)")
            return (None if rssi == 99 else rssi), (None if ber == 99 else ber)
    raise Garbage(f"{device}: AT+CSQ: no +CSQ line in {list(reply.lines)!r}")


__all__ = ["AtSession", "Busy", "Garbage", "ModemError", "ModemStatus", "NoAnswer", "NoDevice",
           "NoPrompt",
           "Reply", "open_port", "probe"]
