"""SMS through a GSM modem in PDU mode (``AT+CMGF=0``), over an open :class:`AtSession`.

PDU mode, not text mode, because Chinese text must go as UCS-2 and anything longer than
one message as concatenated parts with a user data header, which text mode cannot say.
The PDU codec is python-gsmmodem-new's ``gsmmodem.pdu`` (GSM 7-bit or UCS-2 chosen by the
text, concatenation headers, SMS-DELIVER decoding); this module only speaks the AT side:
``AT+CMGS`` per part, ``AT+CMGL=4`` to list the SIM's messages, ``AT+CMGD`` to delete
one. ``+CMS ERROR`` codes (3GPP TS 27.005 3.2.5, TS 24.011 E.2) become an
:class:`SmsError` saying what the code means and whether trying again later may help.

A listing is read message by message: a PDU that does not decode is reported with its
index (:class:`BadMessage`) and the others are still returned, so one garbled message
never hides the rest of the inbox.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from gsmmodem.pdu import Concatenation, Pdu, decodeSmsPdu, encodeSmsSubmitPdu

from drivers.gsm.at import AtSession, Garbage, ModemError, Reply

#: a waiting network can take this long to accept a message
SEND_TIMEOUT: Final = 60.0
#: a listing of a full SIM (about 50 messages of up to 176 octets, in hex) is far less
LIST_LIMIT: Final = 64 * 1024
#: the most parts one message may take (a longer text is refused, not sent in pieces)
MAX_PARTS: Final = 8
#: characters per message: GSM 7-bit alone / in parts, UCS-2 alone / in parts
GSM7_SINGLE, GSM7_PART, UCS2_SINGLE, UCS2_PART = 160, 153, 70, 67
NUMBER_RE: Final = re.compile(r"\+?[0-9]{3,20}")
CMGL_RE: Final = re.compile(r"\+CMGL:\s*(\d+),\s*(\d+),[^,]*,\s*(\d+)")
CMGS_RE: Final = re.compile(r"\+CMGS:\s*(\d+)")
#: +CMGL <stat>: 0 received unread, 1 received read (2 and 3 are stored outgoing ones)
RECEIVED_STATS: Final = frozenset({0, 1})

#: what the common +CMS ERROR codes mean (TS 24.011 E.2 for the network's, TS 27.005
#: 3.2.5 for the modem's own)
CMS_ERRORS: Final = {
    1: "unassigned (unallocated) number", 8: "operator determined barring",
    10: "call barred", 21: "short message transfer rejected",
    27: "destination out of service", 28: "unidentified subscriber",
    29: "facility rejected", 30: "unknown subscriber", 38: "network out of order",
    41: "temporary failure", 42: "congestion", 47: "resources unavailable",
    50: "requested facility not subscribed", 69: "requested facility not implemented",
    96: "invalid mandatory information", 111: "protocol error",
    300: "ME failure", 301: "SMS service of ME reserved", 302: "operation not allowed",
    303: "operation not supported", 304: "invalid PDU mode parameter",
    310: "SIM not inserted", 311: "SIM PIN required", 313: "SIM failure", 314: "SIM busy",
    316: "SIM PUK required", 320: "memory failure", 321: "invalid memory index",
    322: "memory full", 330: "SMSC address unknown", 331: "no network service",
    332: "network timeout", 500: "unknown error",
}
#: the codes worth another try later: the network or the SIM may be back by then
TEMPORARY: Final = frozenset({38, 41, 42, 47, 300, 314, 331, 332, 500})


class SmsError(ModemError):
    """The modem or the network refused; ``code`` is the +CMS ERROR code when it gave one."""

    def __init__(self, message: str, code: int | None = None, *,
                 temporary: bool = False) -> None:
        super().__init__(message)
        self.code, self.temporary = code, temporary


class TextError(ValueError):
    """A number or text that cannot be sent; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Received:
    """A received message, its parts joined; ``indexes`` are its places on the SIM."""

    indexes: tuple[int, ...]
    number: str
    text: str
    sent_at: datetime | None  # the network's timestamp (with the sender's offset)
    pdus: tuple[str, ...]  # the PDUs as listed: what identifies the message

    @property
    def key(self) -> str:
        return "|".join(self.pdus)


@dataclass(frozen=True, slots=True)
class BadMessage:
    index: int
    reason: str
    pdu: str = ""  # as listed, kept so nothing is lost when it is taken off the SIM


@dataclass(slots=True)
class Inbox:
    messages: list[Received] = field(default_factory=list)
    #: parts of a concatenated message whose other parts have not arrived (yet)
    partial: list[Received] = field(default_factory=list)
    bad: list[BadMessage] = field(default_factory=list)


def cms_error(reply: Reply, what: str) -> SmsError:
    """The :class:`SmsError` for a reply that is not OK."""
    code_text = reply.final.partition(":")[2].strip()
    if reply.final.startswith("+CMS ERROR:") and code_text.isdigit():
        code = int(code_text)
        meaning = CMS_ERRORS.get(code, "see 3GPP TS 27.005 3.2.5")
        return SmsError(f"{what}: +CMS ERROR {code}: {meaning}", code,
                        temporary=code in TEMPORARY)
    if reply.final.startswith(("+CMS ERROR:", "+CME ERROR:")) and code_text:
        return SmsError(f"{what}: {reply.final}")  # verbose errors say it themselves
    return SmsError(f"{what}: the modem answered {reply.final}")


def check_number(number: str) -> str:
    """``number`` without spaces and dashes; raises :class:`TextError` naming it."""
    clean = re.sub(r"[\s-]", "", number)
    if not NUMBER_RE.fullmatch(clean):
        raise TextError(f"{number!r} is not a phone number (digits, optionally a leading +)")
    return clean


def check_text(text: str) -> None:
    """Raise :class:`TextError` for a text no SMS can carry (empty, characters outside
    UCS-2 such as emoji, more than :data:`MAX_PARTS` parts)."""
    if not text.strip():
        raise TextError("the text is empty")
    for i, ch in enumerate(text):
        if ord(ch) > 0xFFFF:
            raise TextError(f"character {i + 1} ({ch!r}) cannot be sent by SMS (outside "
                            "UCS-2, such as an emoji)")
    n = count_parts(text)
    if n > MAX_PARTS:
        raise TextError(f"the text takes {n} messages, more than {MAX_PARTS}: shorten it")


def count_parts(text: str) -> int:
    """How many messages ``text`` goes as (what the page's counter shows)."""
    if not text:
        return 0
    # A character outside UCS-2 cannot be sent (check_text says so); counted as one here,
    # so that a page can still show the count of a text it refuses.
    bmp = "".join(ch if ord(ch) <= 0xFFFF else "\ufffd" for ch in text)
    return len(encodeSmsSubmitPdu("10086", bmp, requestStatusReport=False))


def encode(number: str, text: str, *, reference: int = 0, smsc: str = "") -> list[Pdu]:
    """The SMS-SUBMIT PDUs of ``text`` to ``number``: one, or the concatenated parts, all
    with ``reference`` (0-255) in their header. No status report is asked for."""
    check_text(text)
    return list(encodeSmsSubmitPdu(check_number(number), text, reference=reference & 0xFF,
                                   smsc=smsc or None, requestStatusReport=False))


def pdu_hex(pdu: Pdu) -> str:
    return bytes(pdu.data).hex().upper()


def tpdu_length(pdu: Pdu) -> int:
    """The octets after the SMSC field: what ``AT+CMGS=<length>`` counts. (gsmmodem's own
    ``tpduLength`` counts the SMSC address too when one is given, which modems refuse.)"""
    data = bytes(pdu.data)
    return len(data) - 1 - data[0]


class SmsSession:
    """SMS over one open :class:`AtSession`: :meth:`setup` once, then send, list, delete."""

    def __init__(self, at: AtSession, *, smsc: str = "",
                 send_timeout: float = SEND_TIMEOUT, reference: int = 0) -> None:
        self.at, self.smsc, self.send_timeout = at, smsc, send_timeout
        self._reference = reference & 0xFF

    def setup(self) -> None:
        """Check the modem answers, switch it to PDU mode and have received messages
        stored (``AT+CNMI=0,1``: kept in storage, where :meth:`inbox` finds them, rather
        than handed over once as ``+CMT`` lines a poller would miss). A modem that refuses
        that setting keeps its own, which on the usual sticks stores them anyway."""
        hello = self.at.command("AT")
        if not hello.ok:
            raise Garbage(f"{self.at.device}: AT: answered {hello.final}, not OK")
        reply = self.at.command("AT+CMGF=0")
        if not reply.ok:
            raise cms_error(reply, f"{self.at.device}: AT+CMGF=0 (PDU mode)")
        self.at.command("AT+CNMI=0,1")

    def next_reference(self) -> int:
        """A concatenation reference of its own for each long message (the phone joins
        parts by sender and reference)."""
        self._reference = (self._reference + 1) & 0xFF
        return self._reference

    def send(self, number: str, text: str) -> list[int]:
        """Send ``text`` to ``number``; the message reference of each part."""
        pdus = encode(number, text, reference=self.next_reference(), smsc=self.smsc)
        return [self.send_pdu(pdu, part=i + 1, parts=len(pdus)) for i, pdu in enumerate(pdus)]

    def send_pdu(self, pdu: Pdu, *, part: int = 1, parts: int = 1) -> int:
        """Send one encoded part; its message reference (``+CMGS: <mr>``)."""
        what = f"{self.at.device}: part {part} of {parts}" if parts > 1 else \
            f"{self.at.device}: AT+CMGS"
        reply = self.at.submit(f"AT+CMGS={tpdu_length(pdu)}", pdu_hex(pdu),
                               timeout=self.send_timeout)
        if not reply.ok:
            raise cms_error(reply, what)
        for line in reply.lines:
            m = CMGS_RE.fullmatch(line)
            if m:
                return int(m.group(1))
        raise Garbage(f"{what}: OK without +CMGS: <reference> in {list(reply.lines)!r}")

    def inbox(self) -> Inbox:
        """Every received message on the SIM (AT+CMGL=4: read and unread), concatenated
        parts joined; garbled ones reported by index."""
        reply = self.at.command("AT+CMGL=4", limit=LIST_LIMIT)
        if not reply.ok:
            raise cms_error(reply, f"{self.at.device}: AT+CMGL=4")
        return join_parts(*read_listing(reply.lines))

    def delete(self, index: int) -> None:
        reply = self.at.command(f"AT+CMGD={index}")
        if not reply.ok:
            raise cms_error(reply, f"{self.at.device}: AT+CMGD={index}")


@dataclass(frozen=True, slots=True)
class _Part:
    index: int
    pdu: str
    number: str
    text: str
    sent_at: datetime | None
    concat: tuple[int, int, int] | None  # reference, parts, this part's number


def read_listing(lines: Iterable[str]) -> tuple[list[_Part], list[BadMessage]]:
    """The received parts in a +CMGL listing, and the entries that could not be read."""
    parts: list[_Part] = []
    bad: list[BadMessage] = []
    header: tuple[int, int] | None = None
    for line in lines:
        m = CMGL_RE.match(line)
        if m:
            if header is not None:
                bad.append(BadMessage(header[0], f"message {header[0]}: no PDU line"))
            header = (int(m.group(1)), int(m.group(2)))
            continue
        if header is None:
            continue  # an unsolicited line (+CMTI ...) between the entries
        index, stat = header
        header = None
        if stat not in RECEIVED_STATS:
            continue  # a stored outgoing message: not ours to read or delete
        try:
            parts.append(_decode(index, line))
        except Exception as exc:  # any failure of the codec is this PDU's
            bad.append(BadMessage(index, f"message {index}: the PDU does not decode "
                                         f"({type(exc).__name__}: {exc}): {line[:40]!r}",
                                  line))
    if header is not None:
        bad.append(BadMessage(header[0], f"message {header[0]}: no PDU line"))
    return parts, bad


def _decode(index: int, pdu: str) -> _Part:
    if not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", pdu):
        raise ValueError("not hexadecimal octets")
    d: dict[str, Any] = decodeSmsPdu(pdu)
    if d.get("type") != "SMS-DELIVER":
        raise ValueError(f"a {d.get('type')}, not a received message")
    concat = next(((ie.reference, ie.parts, ie.number) for ie in d.get("udh", [])
                   if isinstance(ie, Concatenation)), None)
    return _Part(index, pdu.upper(), str(d["number"]), str(d["text"]), d.get("time"),
                 concat if concat and concat[1] > 1 else None)


def join_parts(parts: list[_Part], bad: list[BadMessage]) -> Inbox:
    """Single messages as they are; concatenated ones joined in part order once every
    part is there, else kept aside as partial."""
    inbox = Inbox(bad=list(bad))
    groups: dict[tuple[str, int, int], dict[int, _Part]] = {}
    for p in parts:
        if p.concat is None:
            inbox.messages.append(Received((p.index,), p.number, p.text, p.sent_at,
                                           (p.pdu,)))
        else:
            ref, total, number = p.concat
            groups.setdefault((p.number, ref, total), {})[number] = p
    for (_number, _ref, total), got in groups.items():
        ordered = [got[k] for k in sorted(got)]
        msg = Received(tuple(p.index for p in ordered), ordered[0].number,
                       "".join(p.text for p in ordered),
                       min((p.sent_at for p in ordered if p.sent_at), default=None),
                       tuple(p.pdu for p in ordered))
        complete = set(got) == set(range(1, total + 1))
        (inbox.messages if complete else inbox.partial).append(msg)
    inbox.messages.sort(key=lambda m: m.indexes[0])
    return inbox


__all__ = ["CMS_ERRORS", "MAX_PARTS", "BadMessage", "Inbox", "Received", "SmsError",
           "SmsSession", "TextError", "check_number", "check_text", "cms_error",
           "count_parts", "encode", "join_parts", "pdu_hex", "read_listing", "tpdu_length"]
