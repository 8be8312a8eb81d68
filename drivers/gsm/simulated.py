"""A simulated GSM modem on a real pseudo-terminal, for ``make run`` and the tests.

pyserial opens the slave side exactly as it would ``/dev/ttyUSB0``; a thread on the master
side answers as a SIMCom or Huawei stick does in PDU mode: echo on, replies ended by
``OK`` or ``+CMS ERROR``, ``AT+CMGS=<n>`` answered by the ``> `` prompt, the PDU read up
to Ctrl-Z and checked against ``<n>``, a SIM of stored messages listed by ``AT+CMGL=4``
and deleted by ``AT+CMGD``. :meth:`SimulatedModem.deliver` puts a message from a phone
on the SIM (as SMS-DELIVER PDUs, UCS-2 and concatenated when the text needs it);
``on_submit`` lets a test make the network refuse a message, or the modem answer noise.
Every PDU sent is kept (:attr:`SimulatedModem.sent`) with what it decodes to.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from gsmmodem.pdu import (
    Concatenation,
    _encodeAddressField,
    _encodeTimestamp,
    decodeSmsPdu,
    divideTextGsm7,
    divideTextUcs2,
    encodeGsm7,
    encodeUcs2,
    packSeptets,
)

CTRL_Z: Final = 0x1A
ESC: Final = 0x1B  # cancels a message at the prompt, as on a real modem
CHINA: Final = timezone(timedelta(hours=8))
#: what the modem answers an AT+CMGS it takes: the reply bytes, or None for the usual
Submit = Callable[[dict[str, Any]], bytes | None]


class PtyPeer(ABC):
    """The master side of a pseudo-terminal in raw mode, read on a thread of its own;
    subclasses say what to do with the bytes (:meth:`feed`) and answer with :meth:`write`.
    """

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave  # held open so the pty stays up between pyserial's opens
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sim-modem")
        self._thread.start()

    @abstractmethod
    def feed(self, data: bytes) -> None:
        """Bytes the program on the slave side wrote (the reading thread calls this)."""

    def write(self, data: bytes) -> None:
        if data:
            os.write(self.master, data)

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            self.feed(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self._slave)


@dataclass(frozen=True, slots=True)
class Stored:
    index: int
    stat: int  # 0 received unread, 1 received read
    pdu: str


def deliver_pdus(number: str, text: str, *, when: datetime | None = None,
                 reference: int = 0) -> list[str]:
    """The SMS-DELIVER PDUs (hex) a network hands a phone for ``text`` from ``number``:
    GSM 7-bit when every character has a code there, else UCS-2; concatenated parts with
    ``reference`` when one message cannot hold it. (gsmmodem encodes only SMS-SUBMIT.)"""
    when = when or datetime.now(CHINA).replace(microsecond=0)
    try:
        septets = len(encodeGsm7(text))
        dcs, single, pieces = 0x00, 160, divideTextGsm7
    except ValueError:
        septets, dcs, single, pieces = len(text), 0x08, 70, divideTextUcs2
    chunks = [text] if septets <= single else pieces(text)
    out = []
    for i, chunk in enumerate(chunks):
        udh = bytearray()
        if len(chunks) > 1:
            ie = Concatenation()
            ie.reference, ie.parts, ie.number = reference & 0xFF, len(chunks), i + 1
            udh = bytearray([len(ie.encode())]) + ie.encode()
        pdu = bytearray([0x00, 0x44 if udh else 0x04])  # no SMSC; SMS-DELIVER (+UDHI)
        pdu += _encodeAddressField(number) + bytearray([0x00, dcs]) + _encodeTimestamp(when)
        if dcs == 0x08:
            body = encodeUcs2(chunk)
            pdu += bytearray([len(udh) + len(body)]) + udh + body
        else:
            # The header ends on a septet boundary: the same fill as gsmmodem's SUBMIT.
            gsm = encodeGsm7(chunk)
            shift = (len(udh) * 8) % 7 if udh else 0
            length = len(gsm) + (len(udh) + (1 if shift else 0) if udh else 0)
            pdu += bytearray([length]) + udh + packSeptets(gsm, padBits=shift)
        out.append(bytes(pdu).hex().upper())
    return out


class SimulatedModem(PtyPeer):
    """A GSM modem with a SIM: see the module's docstring."""

    def __init__(self, *, on_submit: Submit | None = None, first_reference: int = 1) -> None:
        self.commands: list[str] = []
        self.sent: list[dict[str, Any]] = []  # each PDU sent, decoded, with "pdu" and "mr"
        self.sim: dict[int, Stored] = {}
        self.deleted: list[int] = []
        self.on_submit = on_submit
        self.prompt = True  # False: AT+CMGS goes unanswered, as from a modem busy elsewhere
        self.pdu_mode = False
        self._mr = first_reference
        self._buf = b""
        self._pending: int | None = None  # the <length> of an AT+CMGS awaiting its PDU
        self._lock = threading.Lock()  # the SIM is changed by the test thread and this one
        super().__init__()

    # -- the phone side ---------------------------------------------------------------

    def deliver(self, number: str, text: str, *, when: datetime | None = None,
                reference: int = 7) -> list[int]:
        """A message from ``number`` arrives: its parts go on the SIM; their indexes."""
        return [self.store(pdu) for pdu in deliver_pdus(number, text, when=when,
                                                        reference=reference)]

    def store(self, pdu: str, stat: int = 0) -> int:
        """Put a PDU (hex, whatever it holds) on the SIM at the first free index."""
        with self._lock:
            index = next(i for i in range(1, 1000) if i not in self.sim)
            self.sim[index] = Stored(index, stat, pdu)
            return index

    # -- the serial side --------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._buf += data
        while self._buf:
            if self._pending is not None:
                end = next((i for i, b in enumerate(self._buf) if b in (CTRL_Z, ESC)), -1)
                if end < 0:
                    return
                body, stop, self._buf = self._buf[:end], self._buf[end], self._buf[end + 1:]
                length, self._pending = self._pending, None
                self.write(body)  # echoed as typed
                self.write(b"\r\n" + (self._submit(body, length) if stop == CTRL_Z
                                      else b"OK") + b"\r\n")
                continue
            if b"\r" not in self._buf:
                return
            line, self._buf = self._buf.split(b"\r", 1)
            command = line.strip().decode("ascii", "replace")
            if command:
                self.commands.append(command)
                self.write(command.encode() + b"\r")
                self.write(self._answer(command))

    def _answer(self, command: str) -> bytes:
        upper = command.upper()
        if upper.startswith("AT+CMGS="):
            if not self.pdu_mode:
                return b"\r\n+CMS ERROR: 304\r\n"  # text mode wants a number, not a length
            arg = upper.partition("=")[2]
            if not arg.isdigit() or not 7 <= int(arg) <= 164:
                return b"\r\n+CMS ERROR: 304\r\n"
            if not self.prompt:
                return b""
            self._pending = int(arg)
            return b"\r\n> "
        return b"\r\n" + self._simple(upper) + b"\r\n"

    def _simple(self, upper: str) -> bytes:
        if upper in ("AT", "ATE1", "ATZ", "AT+CNMI=0,1"):
            return b"OK"
        if upper == "AT+CPIN?":
            return b"+CPIN: READY\r\n\r\nOK"
        if upper == "AT+CSQ":
            return b"+CSQ: 21,99\r\n\r\nOK"
        if upper in ("AT+CMGF=0", "AT+CMGF=1"):
            self.pdu_mode = upper.endswith("0")
            return b"OK"
        if upper == "AT+CMGL=4":
            if not self.pdu_mode:
                return b"+CMS ERROR: 302"
            with self._lock:
                stored = sorted(self.sim.values(), key=lambda s: s.index)
                for s in stored:
                    self.sim[s.index] = Stored(s.index, 1 if s.stat == 0 else s.stat, s.pdu)
            listing = b"".join(
                f"+CMGL: {s.index},{s.stat},,{max(0, len(s.pdu) // 2 - 1)}\r\n{s.pdu}\r\n"
                .encode() for s in stored)
            return listing + b"\r\nOK"
        if upper.startswith("AT+CMGD="):
            arg = upper.partition("=")[2].split(",")[0]
            with self._lock:
                if not arg.isdigit() or int(arg) not in self.sim:
                    return b"+CMS ERROR: 321"
                del self.sim[int(arg)]
                self.deleted.append(int(arg))
            return b"OK"
        return b"ERROR"

    def _submit(self, body: bytes, length: int) -> bytes:
        text = body.decode("ascii", "replace")
        try:
            octets = bytes.fromhex(text)
            decoded: dict[str, Any] = decodeSmsPdu(text)
        except Exception:  # whatever the codec says, the modem says 304
            return b"+CMS ERROR: 304"
        if len(octets) - 1 - octets[0] != length:  # <length> counts the TPDU only
            return b"+CMS ERROR: 304"
        decoded["pdu"] = text.upper()
        custom = self.on_submit(decoded) if self.on_submit is not None else None
        if custom is not None:
            return custom
        decoded["mr"] = self._mr
        self.sent.append(decoded)
        self._mr = (self._mr + 1) & 0xFF
        return f"+CMGS: {decoded['mr']}\r\n\r\nOK".encode()


__all__ = ["PtyPeer", "SimulatedModem", "Stored", "deliver_pdus"]
