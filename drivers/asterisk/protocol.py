"""The AudioSocket wire format: encoding messages and parsing a byte stream into them.

Pure and I/O-free so the driver, the benchmark's load generator (a fake Asterisk in its own
process) and the tests share one definition of the bytes. A message is one byte of kind, a
two-byte big-endian payload length and the payload. :class:`Parser` is incremental (TCP
delivers arbitrary slices of the stream) and strict: everything Asterisk 22 does not send on
a slin 8 kHz ``AudioSocket()`` call is refused with a :class:`ProtocolError` that says what
was wrong, as early as the bytes allow, so one broken peer ends its own call and nothing
else. Audio comes out as 320-byte (20 ms) frames, which is what lines carry: the stream's
samples are cut into frames whatever the size of the messages that brought them.
Facts and their sources: ``/work/shared/reference/telephony.md`` (AudioSocket) and asterisk
``res/res_audiosocket.c``.
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

from appliance.media.frame import FRAME_BYTES

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10  # slin, 8 kHz: the only rate this appliance speaks
KIND_ERROR = 0xFF

#: the other slin kinds Asterisk defines (>= 22.4), refused: the dialplan forces 8 kHz
AUDIO_RATES = {
    0x11: 12000,
    0x12: 16000,
    0x13: 24000,
    0x14: 32000,
    0x15: 44100,
    0x16: 48000,
    0x17: 96000,
    0x18: 192000,
}

#: largest payload accepted: 120 ms of slin 8 kHz. Asterisk sends 20 ms; a peer announcing
#: more is broken or hostile, and refusing at the header bounds what one call can buffer.
MAX_PAYLOAD = 6 * FRAME_BYTES  # 1920
UUID_BYTES = 16
DTMF_KEYS = frozenset(b"0123456789*#ABCD")

#: Asterisk's error codes in an 0xFF payload (AudioSocket protocol definition)
ERROR_CODES = {
    0x00: "no error",
    0x01: "the calling party hung up",
    0x02: "frame forwarding error",
    0x04: "memory error",
}

_KIND_NAMES = {
    KIND_HANGUP: "hangup",
    KIND_UUID: "UUID",
    KIND_DTMF: "DTMF",
    KIND_AUDIO: "audio",
    KIND_ERROR: "error",
}

HEADER_BYTES = 3
#: header of the one message that makes up nearly all traffic: 320 bytes of 8 kHz audio
AUDIO_FRAME_HEADER = bytes((KIND_AUDIO, FRAME_BYTES >> 8, FRAME_BYTES & 0xFF))
AUDIO_MESSAGE_BYTES = HEADER_BYTES + FRAME_BYTES  # 323
HANGUP_MESSAGE = b"\x00\x00\x00"

_PAD = bytes(FRAME_BYTES)


class ProtocolError(Exception):
    """The peer broke the protocol; ``reason`` says how, in words fit for a log line.
    ``before`` holds the good messages that came ahead of the bad one in the same read
    (the UUID of a call whose next message is broken, its last frames, a key): they
    happened, so the call is still offered, recorded and ended for the right reason."""

    def __init__(self, reason: str, before: list[Message] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.before: list[Message] = before or []


class Message(NamedTuple):
    kind: int
    payload: bytes


def kind_name(kind: int) -> str:
    """``audio (kind 0x10)``: how errors name a kind."""
    if kind in AUDIO_RATES:
        name = f"audio at {AUDIO_RATES[kind] / 1000:g} kHz"
    else:
        name = _KIND_NAMES.get(kind, "unknown")
    return f"{name} (kind 0x{kind:02x})"


# -- encoding ----------------------------------------------------------------------------
def encode(kind: int, payload: bytes = b"") -> bytes:
    """One message of any kind (tests use it to forge malformed ones too)."""
    if not 0 <= kind <= 0xFF:
        raise ValueError(f"a message kind is one byte, got {kind}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"a payload is at most 65535 bytes, got {len(payload)}")
    return bytes((kind, len(payload) >> 8, len(payload) & 0xFF)) + payload


def audio(frame: bytes) -> bytes:
    """An 8 kHz slin audio message (normally one 320-byte frame)."""
    if len(frame) == FRAME_BYTES:
        return AUDIO_FRAME_HEADER + frame
    if len(frame) % 2:
        raise ValueError(f"slin audio has an even number of bytes, got {len(frame)}")
    return encode(KIND_AUDIO, frame)


def hangup() -> bytes:
    return HANGUP_MESSAGE


def uuid_msg(call_id: uuid.UUID) -> bytes:
    """The first message of every call: the UUID given to ``AudioSocket()`` as 16 raw bytes."""
    return encode(KIND_UUID, call_id.bytes)


def dtmf(digit: str) -> bytes:
    key = digit.encode("ascii", "replace")
    if len(key) != 1 or key[0] not in DTMF_KEYS:
        raise ValueError(f"a DTMF key is one of 0-9 * # A-D, got {digit!r}")
    return encode(KIND_DTMF, key)


# -- parsing -----------------------------------------------------------------------------
class Parser:
    """Cut a byte stream into messages, refusing anything malformed.

    By default it reads what Asterisk sends a server: the UUID first, then audio and DTMF.
    With ``from_server=True`` it reads the other direction (what a fake Asterisk receives):
    no UUID, only audio and hangup, as Asterisk hangs up on any other kind. Audio comes
    out as 320-byte frames cut from the stream of samples: a longer payload gives several
    20 ms frames, and shorter ones (a channel framed at 10 ms, the last frame of a file)
    are joined with what follows, so 10 ms messages make one frame every 20 ms and time
    is neither stretched nor lost. What is left at the end of the stream comes out of
    :meth:`eof` zero-padded to a frame. An empty audio payload carries nothing.

    After a :class:`ProtocolError` the parser stays failed: further input raises again.
    """

    __slots__ = ("_audio", "_error", "_from_server", "_need", "_pending", "_started")

    def __init__(self, *, from_server: bool = False) -> None:
        self._from_server = from_server
        # False until the UUID is in; also forced False on failure, which keeps the fast
        # path in feed() from accepting input after an error.
        self._started = from_server
        self._pending = bytearray()  # bytes of an incomplete message
        self._need = HEADER_BYTES  # how many pending bytes before parsing can progress
        self._audio = bytearray()  # samples short of a whole frame, waiting for the next
        self._error = ""

    @property
    def pending(self) -> int:
        """Bytes held back: the start of an incomplete message, and audio short of a
        whole frame."""
        return len(self._pending) + len(self._audio)

    @property
    def mid_message(self) -> bool:
        """The stream so far stops inside a message (its header or body is incomplete)."""
        return bool(self._pending)

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by ``data``, in order; raises :class:`ProtocolError`."""
        # The short path: one whole 320-byte audio message per read, which is what a
        # socket fed by Asterisk's 20 ms writes delivers nearly every time.
        if (
            len(data) == AUDIO_MESSAGE_BYTES
            and not self._pending
            and not self._audio
            and self._started
            and data[:3] == AUDIO_FRAME_HEADER
        ):
            return [Message(KIND_AUDIO, data[3:])]
        out: list[Message] = []
        try:
            self._feed(data, out)
        except ProtocolError as exc:
            exc.before = out
            raise
        return out

    def eof(self) -> list[Message]:
        """The peer closed the stream: the audio short of a frame that it left, padded
        to one; raises if it stopped inside a message."""
        pending = self._pending
        if self._error:
            return []
        if not pending:
            if not self._audio:
                return []
            last = bytes(self._audio) + _PAD[len(self._audio) :]
            self._audio.clear()
            return [Message(KIND_AUDIO, last)]
        if len(pending) < HEADER_BYTES:
            raise self._fail(
                f"truncated message: the connection closed after {len(pending)} of the "
                f"{HEADER_BYTES} header bytes"
            )
        length = (pending[1] << 8) | pending[2]
        raise self._fail(
            f"truncated {kind_name(pending[0])} message: the connection closed after "
            f"{len(pending) - HEADER_BYTES} of its {length} payload bytes"
        )

    # -- the general path ------------------------------------------------------------------
    def _feed(self, data: bytes, out: list[Message]) -> None:
        """Append to ``out`` the messages ``data`` completes (it keeps those before an
        error)."""
        if self._error:
            raise ProtocolError(self._error)
        pending = self._pending
        buf: bytes
        if pending:
            pending += data
            if len(pending) < self._need:  # e.g. a body arriving a byte at a time
                return
            buf = bytes(pending)
            pending.clear()
        else:
            buf = data
        pos = 0
        end = len(buf)
        while end - pos >= HEADER_BYTES:
            kind = buf[pos]
            length = (buf[pos + 1] << 8) | buf[pos + 2]
            # Judge the header before waiting for its body: an oversized or wrong message
            # is refused as soon as its first three bytes are in.
            if kind != KIND_AUDIO or length > MAX_PAYLOAD or length & 1 or not self._started:
                self._check_header(kind, length)
            start = pos + HEADER_BYTES
            stop = start + length
            if stop > end:
                pending += memoryview(buf)[pos:]
                self._need = HEADER_BYTES + length
                return
            pos = stop
            if kind == KIND_AUDIO:
                if length == FRAME_BYTES and not self._audio:
                    out.append(Message(KIND_AUDIO, buf[start:stop]))
                elif length:
                    self._frames(buf[start:stop], out)
            else:
                out.append(self._check_body(kind, buf[start:stop]))
        if pos < end:
            pending += memoryview(buf)[pos:]
        self._need = HEADER_BYTES

    def _frames(self, payload: bytes, out: list[Message]) -> None:
        """Audio of any length onto the stream: out go the whole frames it completes."""
        audio = self._audio
        audio += payload
        whole = len(audio) - len(audio) % FRAME_BYTES
        for i in range(0, whole, FRAME_BYTES):
            out.append(Message(KIND_AUDIO, bytes(audio[i : i + FRAME_BYTES])))
        del audio[:whole]

    def _check_header(self, kind: int, length: int) -> None:
        if kind in AUDIO_RATES:
            raise self._fail(
                f"{kind_name(kind)} refused: only slin 8 kHz (kind 0x10) is accepted; the "
                "dialplan must use AudioSocket(), which forces slin"
            )
        if kind not in _KIND_NAMES:
            raise self._fail(f"unknown message kind 0x{kind:02x} (payload length {length})")
        if length > MAX_PAYLOAD:
            raise self._fail(
                f"oversized {kind_name(kind)} message: header announces {length} payload "
                f"bytes, the limit is {MAX_PAYLOAD}"
            )
        if kind == KIND_ERROR:
            return  # reported with its code once the payload is in
        if self._from_server:
            if kind not in (KIND_AUDIO, KIND_HANGUP):
                raise self._fail(
                    f"{kind_name(kind)} from the server: a server may only send audio "
                    "(kind 0x10) or hangup (kind 0x00)"
                )
        elif not self._started:
            if kind != KIND_UUID:
                raise self._fail(
                    f"expected the UUID message (kind 0x01) first, got {kind_name(kind)}"
                )
        elif kind == KIND_UUID:
            raise self._fail("a second UUID message (kind 0x01): the UUID is sent once, first")
        if kind == KIND_UUID and length != UUID_BYTES:
            raise self._fail(f"UUID payload must be {UUID_BYTES} bytes, got {length}")
        if kind == KIND_DTMF and length != 1:
            raise self._fail(f"DTMF payload must be exactly 1 byte (one key), got {length}")
        if kind == KIND_AUDIO and length & 1:
            raise self._fail(f"audio payload of odd length {length}: slin samples are 2 bytes each")

    def _check_body(self, kind: int, payload: bytes) -> Message:
        if kind == KIND_UUID:
            self._started = True
        elif kind == KIND_DTMF:
            if payload[0] not in DTMF_KEYS:
                raise self._fail(f"DTMF payload {payload!r} is not one of 0-9 * # A-D")
        elif kind == KIND_ERROR:
            if not payload:
                raise self._fail("the peer reported an error (kind 0xff, no error code)")
            code = payload[0]
            meaning = ERROR_CODES.get(code, "unknown code")
            raise self._fail(
                f"the peer reported an error (kind 0xff, code 0x{code:02x}: {meaning})"
            )
        return Message(kind, payload)

    def _fail(self, reason: str) -> ProtocolError:
        self._error = reason
        self._started = False
        self._pending.clear()
        self._audio.clear()
        return ProtocolError(reason)
