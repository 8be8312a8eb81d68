"""AudioSocket: the wire format parser, and the driver against a byte-exact fake Asterisk.

The driver tests run a real server on loopback and connect real TCP clients that send
exactly what Asterisk 22 sends (see ``_fake_asterisk``). The test plays the engine: it
accepts lines, reads frames and events, writes one frame per 20 ms.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import itertools
import logging
import re
import statistics
import termios
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.media.frame import FRAME_BYTES, SILENCE
from drivers.asterisk import audiosocket
from drivers.asterisk.audiosocket import (
    SEND_BUFFER_BYTES,
    WRITE_BUFFER_HIGH,
    AudioSocketConnection,
    AudioSocketDriver,
    AudioSocketLine,
)
from drivers.asterisk.channels import ChannelMap
from drivers.asterisk.protocol import (
    HANGUP_MESSAGE,
    KIND_AUDIO,
    KIND_DTMF,
    KIND_ERROR,
    KIND_HANGUP,
    KIND_UUID,
    MAX_PAYLOAD,
    Message,
    Parser,
    ProtocolError,
    audio,
    dtmf,
    encode,
    hangup,
    uuid_msg,
)
from drivers.base import (
    CAUSE_LINE_DROPPED,
    CAUSE_NORMAL,
    CAUSE_PROTOCOL,
    CAUSE_REMOTE,
    CAUSE_SHUTDOWN,
    Direction,
    EventKind,
    Line,
    LineError,
    LineEvent,
    LineState,
)
from tests.drivers._fake_asterisk import FakeAsterisk

CALL_ID = uuid.UUID("8a1f6b52-3c4d-4e5f-9a0b-1c2d3e4f5a6b")
UUID_MSG = b"\x01\x00\x10" + CALL_ID.bytes


def frame(seed: int) -> bytes:
    """A recognisable 320-byte frame."""
    return bytes((seed + i) & 0xFF for i in range(FRAME_BYTES))


def pad(payload: bytes) -> bytes:
    return payload + bytes(-len(payload) % FRAME_BYTES)


# ======================================================================================
# encoding
# ======================================================================================
def test_encoders_write_the_exact_bytes() -> None:
    f = frame(7)
    assert audio(f) == b"\x10\x01\x40" + f
    assert audio(b"\x01\x02") == b"\x10\x00\x02\x01\x02"
    assert hangup() == HANGUP_MESSAGE == b"\x00\x00\x00"
    assert uuid_msg(CALL_ID) == UUID_MSG
    assert dtmf("5") == b"\x03\x00\x015"
    assert dtmf("#") == b"\x03\x00\x01#"
    assert encode(0x42, b"xy") == b"\x42\x00\x02xy"
    assert encode(KIND_AUDIO, bytes(0x1234))[:3] == b"\x10\x12\x34"  # big-endian length


@pytest.mark.parametrize("digit", ["", "55", "E", "a", "é"])
def test_dtmf_encoder_refuses_non_keys(digit: str) -> None:
    with pytest.raises(ValueError, match="DTMF key"):
        dtmf(digit)


def test_encoder_refuses_what_cannot_be_framed() -> None:
    with pytest.raises(ValueError, match="65535"):
        encode(KIND_AUDIO, bytes(65536))
    with pytest.raises(ValueError, match="one byte"):
        encode(256)
    with pytest.raises(ValueError, match="even"):
        audio(b"\x01\x02\x03")


# ======================================================================================
# parsing
# ======================================================================================
def started() -> Parser:
    parser = Parser()
    assert parser.feed(UUID_MSG) == [Message(KIND_UUID, CALL_ID.bytes)]
    return parser


def test_parser_reads_a_call_as_asterisk_sends_it() -> None:
    f1, f2 = frame(1), frame(2)
    stream = UUID_MSG + audio(f1) + dtmf("7") + audio(f2)
    assert Parser().feed(stream) == [
        Message(KIND_UUID, CALL_ID.bytes),
        Message(KIND_AUDIO, f1),
        Message(KIND_DTMF, b"7"),
        Message(KIND_AUDIO, f2),
    ]


def test_short_path_and_general_path_agree() -> None:
    f = frame(3)
    parser = started()
    assert parser.feed(audio(f)) == [Message(KIND_AUDIO, f)]  # one whole message: short path
    assert parser.feed(audio(f) + audio(f)) == [Message(KIND_AUDIO, f)] * 2  # general path
    assert type(parser.feed(audio(f))[0].payload) is bytes
    assert parser.pending == 0


def test_parser_accepts_input_a_byte_at_a_time() -> None:
    stream = UUID_MSG + audio(frame(1)) + dtmf("*") + audio(b"\x05\x06") + audio(frame(2))
    whole = Parser().feed(stream)
    parser = Parser()
    bytewise: list[Message] = []
    for i in range(len(stream)):
        bytewise += parser.feed(stream[i : i + 1])
    assert bytewise == whole
    # UUID, frame 1, the key, then the two samples and 318 bytes of frame 2 as one frame
    assert len(whole) == 4
    assert whole[3] == Message(KIND_AUDIO, b"\x05\x06" + frame(2)[:318])
    assert parser.pending == 2  # the rest of frame 2, short of a whole frame
    assert parser.eof() == [Message(KIND_AUDIO, pad(frame(2)[318:]))]
    assert parser.eof() == []  # given once


def test_parser_holds_an_incomplete_message_until_its_body_arrives() -> None:
    parser = started()
    msg = audio(frame(9))
    assert parser.feed(msg[:2]) == []
    assert parser.feed(msg[2:100]) == []
    assert parser.pending == 100
    assert parser.feed(msg[100:] + msg[:50]) == [Message(KIND_AUDIO, frame(9))]
    assert parser.pending == 50
    assert parser.feed(msg[50:]) == [Message(KIND_AUDIO, frame(9))]


def test_audio_is_cut_into_20ms_frames_whatever_the_message_sizes() -> None:
    parser = started()
    two = frame(1) + frame(2)
    assert parser.feed(audio(two)) == [Message(KIND_AUDIO, frame(1)), Message(KIND_AUDIO, frame(2))]
    biggest = bytes(range(256)) * 7 + bytes(MAX_PAYLOAD - 7 * 256)
    assert [m.payload for m in parser.feed(audio(biggest))] == [
        biggest[i : i + FRAME_BYTES] for i in range(0, MAX_PAYLOAD, FRAME_BYTES)
    ]
    assert parser.feed(encode(KIND_AUDIO)) == []  # an empty payload carries nothing
    # A channel framed at 10 ms: two messages make one frame, not two half-silent ones.
    first, second = frame(3)[:160], frame(3)[160:]
    assert parser.feed(audio(first)) == []
    assert parser.pending == 160
    assert parser.feed(audio(second)) == [Message(KIND_AUDIO, frame(3))]
    # A short piece (the last frame of a file) joins the audio that follows it.
    short = bytes(range(100))
    assert parser.feed(audio(short)) == []
    assert parser.feed(audio(frame(4))) == [Message(KIND_AUDIO, short + frame(4)[:220])]
    assert parser.feed(audio(frame(5))) == [Message(KIND_AUDIO, frame(4)[220:] + frame(5)[:220])]
    assert parser.eof() == [Message(KIND_AUDIO, pad(frame(5)[220:]))]  # the end, padded


def test_ten_ms_messages_keep_the_stream_s_length() -> None:
    # 2 s of audio in 10 ms messages is 100 frames, as in 20 ms ones: not 200.
    samples = bytes(range(256)) * 12 + bytes(128)  # 3200 bytes = 200 ms
    stream = UUID_MSG + b"".join(audio(samples[i : i + 160]) for i in range(0, 3200, 160)) * 10
    got = Parser().feed(stream)
    frames = [m.payload for m in got if m.kind == KIND_AUDIO]
    assert len(frames) == 100
    assert b"".join(frames) == samples * 10


def test_hangup_from_the_peer_is_a_message() -> None:
    assert started().feed(hangup()) == [Message(KIND_HANGUP, b"")]


# Each case: bytes after a valid UUID message (or instead of it) and what the reason says.
MALFORMED = {
    "unknown kind": (UUID_MSG + encode(0x42, b"x"), r"unknown message kind 0x42"),
    "no UUID first": (audio(frame(1)), r"expected the UUID message \(kind 0x01\) first"),
    "DTMF before UUID": (dtmf("1"), r"expected the UUID .* got DTMF"),
    "bad UUID length": (encode(KIND_UUID, bytes(15)), r"UUID payload must be 16 bytes, got 15"),
    "second UUID": (UUID_MSG + UUID_MSG, r"second UUID"),
    "DTMF not a key": (UUID_MSG + encode(KIND_DTMF, b"x"), r"DTMF payload b'x' is not one of"),
    "DTMF two bytes": (UUID_MSG + encode(KIND_DTMF, b"12"), r"DTMF payload must be exactly 1"),
    "DTMF empty": (UUID_MSG + encode(KIND_DTMF), r"DTMF payload must be exactly 1 byte"),
    "odd audio": (UUID_MSG + encode(KIND_AUDIO, bytes(321)), r"odd length 321"),
    "error from peer": (UUID_MSG + encode(KIND_ERROR, b"\x02"), r"error .*code 0x02"),
    "error without code": (UUID_MSG + encode(KIND_ERROR), r"reported an error"),
    "16 kHz audio": (UUID_MSG + encode(0x12, bytes(640)), r"16 kHz \(kind 0x12\) refused"),
    "oversized": (UUID_MSG + b"\x10\xff\xff", r"oversized audio .*65535"),
    "just over the limit": (UUID_MSG + encode(KIND_AUDIO, bytes(1922)), r"oversized .*1922"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_parser_refuses_malformed_input_with_a_reason(case: str) -> None:
    data, reason = MALFORMED[case]
    parser = Parser()
    with pytest.raises(ProtocolError, match=reason) as caught:
        parser.feed(data)
    assert re.search(reason, caught.value.reason)
    with pytest.raises(ProtocolError, match=reason):  # it stays failed
        parser.feed(audio(frame(1)))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"\x10\xff\xff", "oversized"),
        (b"\x10\x00\x03", "odd length"),
        (b"\x01\x00\x20", "UUID payload must be 16"),
        (b"\x03\x00\x02", "DTMF payload must be exactly 1"),
        (b"\x77\x00\x01", "unknown message kind"),
        (b"\x11\x01\x40", r"12 kHz"),
    ],
)
def test_bad_headers_are_refused_before_their_body(header: bytes, reason: str) -> None:
    parser = Parser() if header.startswith(b"\x01") else started()
    assert parser.feed(header[:2]) == []  # not judged on two bytes...
    with pytest.raises(ProtocolError, match=reason):
        parser.feed(header[2:])  # ...but on the third, with no payload byte in


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b"\x10", r"truncated message: .* after 1 of the 3 header bytes"),
        (b"\x10\x01\x40", r"truncated audio \(kind 0x10\) message: .* after 0 of its 320"),
        (audio(frame(1))[:163], r"truncated audio .* after 160 of its 320 payload bytes"),
        (b"\x01\x00\x10" + bytes(4), r"truncated UUID .* after 4 of its 16"),
    ],
)
def test_eof_inside_a_message_is_truncation(tail: bytes, reason: str) -> None:
    parser = Parser() if tail.startswith(b"\x01") else started()
    assert parser.feed(tail) == []
    with pytest.raises(ProtocolError, match=reason):
        parser.eof()


def test_server_direction_parser() -> None:
    """What a fake Asterisk reads: no UUID, only audio and hangup, as Asterisk allows."""
    parser = Parser(from_server=True)
    f = frame(4)
    assert parser.feed(audio(f) + audio(f)[:10]) == [Message(KIND_AUDIO, f)]
    assert parser.feed(audio(f)[10:] + hangup()) == [
        Message(KIND_AUDIO, f),
        Message(KIND_HANGUP, b""),
    ]
    with pytest.raises(ProtocolError, match="a server may only send audio"):
        Parser(from_server=True).feed(dtmf("1"))
    with pytest.raises(ProtocolError, match="a server may only send audio"):
        Parser(from_server=True).feed(UUID_MSG)


DIGITS = st.sampled_from(list("0123456789*#ABCD"))
AUDIO_PAYLOADS = st.integers(min_value=1, max_value=MAX_PAYLOAD // 2).flatmap(
    lambda n: st.binary(min_size=2 * n, max_size=2 * n)
)
ITEMS = st.one_of(
    DIGITS.map(lambda d: ("dtmf", d)),
    AUDIO_PAYLOADS.map(lambda p: ("audio", p)),
)


@settings(max_examples=200, deadline=None)
@given(
    call_id=st.uuids(),
    items=st.lists(ITEMS, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=30000), max_size=20),
)
def test_round_trip_any_valid_stream_in_any_slices(
    call_id: uuid.UUID, items: list[tuple[str, Any]], cuts: list[int]
) -> None:
    stream = uuid_msg(call_id)
    # The model: keys come out where they are; audio comes out as whole frames of the
    # samples so far, and what is left at the end padded to one.
    expected = [Message(KIND_UUID, call_id.bytes)]
    samples = b""
    for kind, value in items:
        if kind == "dtmf":
            stream += dtmf(value)
            expected.append(Message(KIND_DTMF, value.encode()))
        else:
            stream += audio(value)
            samples += value
            while len(samples) >= FRAME_BYTES:
                expected.append(Message(KIND_AUDIO, samples[:FRAME_BYTES]))
                samples = samples[FRAME_BYTES:]
    if samples:
        expected.append(Message(KIND_AUDIO, pad(samples)))
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    parser = Parser()
    got: list[Message] = []
    for lo, hi in itertools.pairwise(bounds):
        got += parser.feed(stream[lo:hi])
    got += parser.eof()
    assert got == expected


# ======================================================================================
# the driver against a fake Asterisk
# ======================================================================================
class Engine:
    """Plays the engine's part: takes every offered line and answers it."""

    def __init__(self) -> None:
        self.lines: list[Line] = []

    def accept(self, line: Line) -> None:
        self.lines.append(line)
        line.answer()

    async def line(self, line_id: str, timeout: float = 3.0) -> AudioSocketLine:
        await until(lambda: any(li.id == line_id for li in self.lines), timeout)
        line = next(li for li in self.lines if li.id == line_id)
        assert isinstance(line, AudioSocketLine)
        return line


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def read_frames(line: Line, count: int, timeout: float = 3.0) -> list[bytes]:
    frames: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count:
        got = line.read_frame()
        if got is not None:
            frames.append(got)
            continue
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} frames, got {len(frames)}")
        await asyncio.sleep(0.005)
    return frames


def hangups(line: Line) -> list[LineEvent]:
    return [e for e in line.events if e.kind is EventKind.HANGUP]


@contextlib.asynccontextmanager
async def serving(
    channels: ChannelMap | None = None,
) -> AsyncIterator[tuple[AudioSocketDriver, Engine, list[FakeAsterisk]]]:
    """A started driver (naming its calls' channels from ``channels`` when given), the
    engine double, and a list whose fakes are closed afterwards."""
    engine = Engine()
    driver = AudioSocketDriver(port=0, channels=channels)
    await driver.start(engine.accept)
    fakes: list[FakeAsterisk] = []
    try:
        yield driver, engine, fakes
    finally:
        await driver.stop()
        for fake in fakes:
            await fake.close()


async def call(driver: AudioSocketDriver, fakes: list[FakeAsterisk], **kw: Any) -> FakeAsterisk:
    fake = await FakeAsterisk.connect(driver.port, **kw)
    fakes.append(fake)
    return fake


def run(main: Callable[[], Coroutine[Any, Any, None]], loop: str = "asyncio") -> None:
    """Run one test's coroutine on a fresh event loop (pytest-asyncio is not used)."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_normal_call(loop: str) -> None:
    inbound = [frame(i) for i in range(5)]
    outbound = [frame(100 + i) for i in range(3)]

    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            assert driver.port != 0
            fake = await call(driver, fakes, call_id=CALL_ID)
            line = await engine.line(str(CALL_ID))
            assert line.direction is Direction.INBOUND
            assert (line.caller, line.callee) == ("", "")
            assert line.state is LineState.ANSWERED
            assert driver.lines[str(CALL_ID)] is line
            # The CDR's driver, and what the ACD dials a callback or transfer on.
            assert line.driver_name == driver.name == "asterisk"

            await fake.stream(inbound)
            assert await read_frames(line, 5) == inbound  # in order, byte-exact

            fake.send_dtmf("5")
            fake.send_dtmf("#")
            await until(lambda: len(line.events) == 2)
            assert list(line.events) == [
                LineEvent(EventKind.DTMF, digit="5"),
                LineEvent(EventKind.DTMF, digit="#"),
            ]

            for f in outbound:
                line.write_frame(f)
            sent = b"".join(b"\x10\x01\x40" + f for f in outbound)
            await fake.wait_bytes(len(sent))
            assert bytes(fake.received) == sent

            line.hangup()
            await fake.wait_eof()
            assert bytes(fake.received) == sent + b"\x00\x00\x00"
            assert fake.messages()[-1] == Message(KIND_HANGUP, b"")
            assert line.ended and line.end_cause == CAUSE_NORMAL
            assert hangups(line) == [LineEvent(EventKind.HANGUP, cause=CAUSE_NORMAL)]

            line.write_frame(SILENCE)  # after the end: ignored
            line.hangup(CAUSE_SHUTDOWN)  # idempotent
            assert hangups(line) == [LineEvent(EventKind.HANGUP, cause=CAUSE_NORMAL)]
            await until(lambda: not driver.lines)

    run(main, loop)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_asterisk_closing_the_socket_is_a_remote_hangup(loop: str) -> None:
    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            fake = await call(driver, fakes)
            line = await engine.line(fake.line_id)
            await fake.stream([frame(1), frame(2)])
            await fake.hang_up()  # mid-stream, no hangup message: what Asterisk does
            await until(lambda: line.ended)
            assert line.end_cause == CAUSE_REMOTE
            assert hangups(line) == [LineEvent(EventKind.HANGUP, cause=CAUSE_REMOTE)]
            assert await read_frames(line, 2) == [frame(1), frame(2)]
            await until(lambda: not driver.lines)

    run(main, loop)


def test_a_hangup_message_from_the_peer_is_a_remote_hangup() -> None:
    """Asterisk only closes, but the protocol lets either side send 0x00."""

    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            fake = await call(driver, fakes)
            line = await engine.line(fake.line_id)
            fake.send(audio(frame(1)) + hangup() + audio(frame(2)))
            await fake.wait_eof()
            assert line.end_cause == CAUSE_REMOTE
            assert bytes(fake.received) == b""  # no hangup sent back to a hangup
            assert await read_frames(line, 1) == [frame(1)]
            assert line.read_frame() is None  # nothing after the hangup is taken

    run(main)


def test_a_reset_mid_stream_is_a_dropped_line(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            fake = await call(driver, fakes)
            line = await engine.line(fake.line_id)
            await fake.stream([frame(1)])
            fake.send(audio(frame(2))[:100])  # mid-message, then the connection dies
            await asyncio.sleep(0.05)
            await fake.reset()
            await until(lambda: line.ended)
            assert line.end_cause == CAUSE_LINE_DROPPED
            assert len(hangups(line)) == 1

    run(main)
    assert "connection lost" in caplog.text


def test_short_messages_are_joined_into_frames_and_long_ones_split() -> None:
    long = frame(1) + frame(2)  # 40 ms in one message

    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            fake = await call(driver, fakes)
            line = await engine.line(fake.line_id)
            fake.send_frame(long)
            assert await read_frames(line, 2) == [frame(1), frame(2)]
            # A channel framed at 10 ms: two messages, one frame.
            fake.send_frame(frame(3)[:160])
            fake.send_frame(frame(3)[160:])
            assert await read_frames(line, 1) == [frame(3)]
            # The last frame of a file, short: it leads the next frame; the call's last
            # samples come padded when Asterisk closes.
            fake.send_frame(frame(4)[:100])
            fake.send_frame(frame(5))
            assert await read_frames(line, 1) == [frame(4)[:100] + frame(5)[:220]]
            await fake.hang_up()
            assert await read_frames(line, 1) == [frame(5)[220:] + bytes(220)]
            await until(lambda: line.ended)
            assert line.end_cause == CAUSE_REMOTE

    run(main)


def test_a_reset_between_messages_is_the_caller_hanging_up(
        caplog: pytest.LogCaptureFixture) -> None:
    # Asterisk closing with one of our frames unread makes the kernel send a reset.
    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            fake = await call(driver, fakes)
            line = await engine.line(fake.line_id)
            await fake.stream([frame(1)])
            await fake.reset()
            await until(lambda: line.ended)
            assert line.end_cause == CAUSE_REMOTE
            assert len(hangups(line)) == 1

    run(main)
    assert "connection lost" not in caplog.text


# Malformed input after (or instead of) the UUID, and the words the log must contain.
DRIVER_MALFORMED = {
    "unknown kind": (encode(0x42, b"x"), "unknown message kind 0x42", True),
    "no UUID first": (audio(frame(1)), "expected the UUID message", False),
    "bad UUID length": (encode(KIND_UUID, bytes(15)), "UUID payload must be 16 bytes", False),
    "invalid DTMF": (encode(KIND_DTMF, b"Z"), "DTMF payload b'Z' is not one of", True),
    "odd audio length": (encode(KIND_AUDIO, bytes(321)), "odd length 321", True),
    "error from Asterisk": (encode(KIND_ERROR, b"\x04"), "code 0x04: memory error", True),
    "16 kHz audio": (encode(0x12, bytes(640)), "16 kHz (kind 0x12) refused", True),
    "second UUID": (uuid_msg(uuid.uuid4()), "second UUID", True),
}


@pytest.mark.parametrize("case", DRIVER_MALFORMED)
def test_malformed_input_ends_that_call_only(case: str, caplog: pytest.LogCaptureFixture) -> None:
    bad, reason, after_uuid = DRIVER_MALFORMED[case]

    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            good = await call(driver, fakes)
            good_line = await engine.line(good.line_id)
            broken = await call(driver, fakes, call_id=CALL_ID, send_uuid=after_uuid)
            broken_line = await engine.line(broken.line_id) if after_uuid else None
            await good.stream([frame(1)])
            await broken.stream([frame(1)] if after_uuid else [])

            broken.send(bad)
            await broken.wait_eof()
            assert bytes(broken.received) == HANGUP_MESSAGE  # told Asterisk to hang up
            if broken_line is not None:
                assert broken_line.ended and broken_line.end_cause == CAUSE_PROTOCOL
                assert hangups(broken_line) == [LineEvent(EventKind.HANGUP, cause=CAUSE_PROTOCOL)]
            else:
                assert [li.id for li in engine.lines] == [good.line_id]  # nothing offered

            # The other call on the same server is untouched: frames flow both ways.
            assert not good_line.ended
            await good.stream([frame(2), frame(3)])
            assert await read_frames(good_line, 3) == [frame(1), frame(2), frame(3)]
            good_line.write_frame(frame(9))
            await good.wait_bytes(323)
            assert bytes(good.received) == audio(frame(9))

    run(main)
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.name == "drivers.asterisk"
    assert reason in warning.getMessage()
    assert "protocol error" in warning.getMessage()
    # The log names the call by its UUID, or by Asterisk's address before the UUID is in.
    who = f"call {CALL_ID} from 127.0.0.1:" if after_uuid else "connection from 127.0.0.1:"
    assert who in warning.getMessage()


def test_what_came_before_a_malformed_message_in_the_same_read_still_counts(
        caplog: pytest.LogCaptureFixture) -> None:
    # UUID, a frame and a key, then garbage, all in one segment: the call is offered (so
    # it gets its record), its frame and key arrive, and it ends for the protocol error.
    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            fake = await call(driver, fakes, call_id=CALL_ID, send_uuid=False)
            fake.send(UUID_MSG + audio(frame(1)) + dtmf("7") + encode(0x42, b"x"))
            line = await engine.line(fake.line_id)
            await fake.wait_eof()
            assert bytes(fake.received) == HANGUP_MESSAGE
            assert line.end_cause == CAUSE_PROTOCOL
            assert await read_frames(line, 1) == [frame(1)]
            assert [(e.kind, e.digit) for e in line.events] == [
                (EventKind.DTMF, "7"), (EventKind.HANGUP, "")]

    run(main)
    assert "unknown message kind 0x42" in caplog.text


@pytest.mark.parametrize(
    "tail",
    [b"\x10\x01\x40", audio(frame(1))[: 3 + 160]],
    ids=["header then close", "half a payload then close"],
)
def test_truncated_message_then_close(tail: bytes, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            fake = await call(driver, fakes, call_id=CALL_ID)
            line = await engine.line(fake.line_id)
            await fake.stream([frame(1)])
            fake.send(tail)
            await asyncio.sleep(0.05)  # let the partial message arrive on its own
            await fake.hang_up()
            await until(lambda: line.ended)
            assert line.end_cause == CAUSE_PROTOCOL
            assert await read_frames(line, 1) == [frame(1)]

    run(main)
    assert f"call {CALL_ID} from 127.0.0.1:" in caplog.text  # names the line
    assert "truncated audio (kind 0x10) message" in caplog.text


def test_oversized_header_is_refused_before_its_body(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            fake = await call(driver, fakes)
            line = await engine.line(fake.line_id)
            fake.send(b"\x10\xff\xff")  # announces 65535 bytes; none follow
            await fake.wait_eof()
            assert bytes(fake.received) == HANGUP_MESSAGE
            assert line.end_cause == CAUSE_PROTOCOL

    run(main)
    assert "oversized audio (kind 0x10) message: header announces 65535" in caplog.text


def test_a_duplicate_uuid_is_refused_and_the_first_call_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            first = await call(driver, fakes, call_id=CALL_ID)
            line = await engine.line(str(CALL_ID))
            second = await call(driver, fakes, call_id=CALL_ID)
            await second.wait_eof()
            assert bytes(second.received) == HANGUP_MESSAGE
            assert len(engine.lines) == 1 and not line.ended
            await first.stream([frame(1)])
            assert await read_frames(line, 1) == [frame(1)]

    run(main)
    assert f"UUID {CALL_ID} is already in use" in caplog.text


def test_silence_written_every_tick_keeps_the_call_alive() -> None:
    """Asterisk hangs up after 2 s with no frame either way: the writer must never go quiet.

    The test is the engine: it writes silence once per 20 ms tick (paced against a fixed
    start) for 3 s while the fake sends nothing. Every frame must reach the fake as it is
    written, one 0x10 message each, with no gap anywhere near 2 s.
    """
    seconds = 3.0
    ticks = int(seconds / 0.02)

    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            fake = await call(driver, fakes)
            line = await engine.line(fake.line_id)
            start = time.monotonic()
            for tick in range(ticks):
                delay = start + tick * 0.02 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                line.write_frame(SILENCE)
            await fake.wait_bytes(ticks * 323)
            assert fake.messages() == [Message(KIND_AUDIO, SILENCE)] * ticks
            times = [start, *fake.message_times(323)]
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert len(gaps) == ticks
            assert max(gaps) < 0.5  # jitter on a busy machine, far from Asterisk's 2 s
            assert 0.015 < statistics.median(gaps[1:]) < 0.025  # one frame per tick
            assert times[-1] - start > seconds - 0.1  # sent as paced, not bunched up
            assert not line.ended

    run(main)


def test_a_stalled_asterisk_gets_no_backlog() -> None:
    """When Asterisk stops reading, frames are dropped rather than queued in memory."""

    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            fake = await call(driver, fakes)
            line = await engine.line(fake.line_id)
            fake._read_task.cancel()  # Asterisk stops reading; the kernel buffers fill
            connection = line._connection
            for sent in range(200_000):
                line.write_frame(SILENCE)
                if line.frames_unsent:
                    break
                if sent % 500 == 0:
                    await asyncio.sleep(0)
            assert line.frames_unsent == 1
            assert connection.transport.get_write_buffer_size() <= WRITE_BUFFER_HIGH + 323
            # Nor in the kernel: its send queue is bounded too (it grew to 4 MB, minutes
            # of stale audio for this one call, before frames were dropped).
            sock = connection.transport.get_extra_info("socket")
            queued = array.array("i", [0])
            fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, queued)
            assert 0 < queued[0] <= 2 * SEND_BUFFER_BYTES
            line.hangup()  # cannot queue a hangup behind stale audio: the call is reset
            await until(lambda: connection.lost.done())
            assert line.end_cause == CAUSE_NORMAL

    run(main)


def test_stop_hangs_up_every_call() -> None:
    async def main() -> None:
        engine = Engine()
        driver = AudioSocketDriver(port=0)
        await driver.start(engine.accept)
        fakes = [await FakeAsterisk.connect(driver.port) for _ in range(3)]
        silent = await FakeAsterisk.connect(driver.port, send_uuid=False)
        try:
            lines = [await engine.line(f.line_id) for f in fakes]
            await driver.stop()
            for fake in [*fakes, silent]:
                await fake.wait_eof()
                assert bytes(fake.received) == HANGUP_MESSAGE
            assert [li.end_cause for li in lines] == [CAUSE_SHUTDOWN] * 3
            assert not driver.lines
            with pytest.raises(OSError):
                await FakeAsterisk.connect(driver.port)
        finally:
            for fake in [*fakes, silent]:
                await fake.close()

    run(main)


def test_an_engine_that_raises_in_accept_does_not_break_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        calls = 0
        accepted: list[Line] = []

        def accept(line: Line) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("engine full")
            accepted.append(line)

        driver = AudioSocketDriver(port=0)
        await driver.start(accept)
        refused = await FakeAsterisk.connect(driver.port)
        fine = await FakeAsterisk.connect(driver.port)
        try:
            await refused.wait_eof()
            assert bytes(refused.received) == HANGUP_MESSAGE
            await until(lambda: len(accepted) == 1)
            assert accepted[0].id == fine.line_id and not accepted[0].ended
        finally:
            await driver.stop()
            await refused.close()
            await fine.close()

    run(main)
    assert "the engine refused the line" in caplog.text


def test_originate_needs_ami() -> None:
    async def main() -> None:
        with pytest.raises(LineError, match="cannot place outbound calls"):
            await AudioSocketDriver().originate("10086")

    run(main)


# ======================================================================================
# the hot path, without sockets
# ======================================================================================
class RecordingTransport(asyncio.Transport):
    """Just enough of a transport to drive a connection by hand and count writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


def test_write_frame_is_one_write_of_one_message() -> None:
    async def main() -> None:
        driver = AudioSocketDriver(port=0)
        offered: list[Line] = []
        driver._accept = offered.append
        connection = AudioSocketConnection(driver)
        transport = RecordingTransport()
        connection.connection_made(transport)
        connection.data_received(UUID_MSG)
        (line,) = offered
        assert isinstance(line, AudioSocketLine)
        for i in range(3):
            line.write_frame(frame(i))
        assert transport.writes == [b"\x10\x01\x40" + frame(i) for i in range(3)]
        with pytest.raises(LineError, match="a frame is 320 bytes"):
            line.write_frame(b"\x00" * 100)
        line.hangup()
        assert transport.writes[-1] == HANGUP_MESSAGE and transport.closed
        connection.connection_lost(None)
        assert line.end_cause == CAUSE_NORMAL

    run(main)


def test_arrival_times_are_kept_only_once_asked_and_each_taken_once() -> None:
    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            fake = await call(driver, fakes, call_id=CALL_ID)
            line = await engine.line(str(CALL_ID))
            await fake.stream([frame(i) for i in range(5)])
            await read_frames(line, 5)
            assert driver.take_arrivals() == []  # nobody asked: nothing kept, nothing grows
            driver.track_arrivals()
            before = time.monotonic()
            await fake.stream([frame(i) for i in range(7)])
            await read_frames(line, 7)
            taken = driver.take_arrivals()
            assert len(taken) == 7 and all(before <= t <= time.monotonic() for t in taken)
            assert taken == sorted(taken)
            assert driver.take_arrivals() == []

    run(main)


def test_a_connection_that_sends_no_uuid_is_closed_and_calls_go_on(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # It held its descriptor forever: a thousand of them and the next real call found the
    # process out of file descriptors, with nothing logged.
    monkeypatch.setattr(audiosocket, "UUID_TIMEOUT_S", 0.3)

    async def main() -> None:
        async with serving() as (driver, engine, fakes):
            reader, writer = await asyncio.open_connection("127.0.0.1", driver.port)
            fake = await call(driver, fakes)  # a real call, its UUID at once
            line = await engine.line(fake.line_id)
            try:
                with contextlib.suppress(ConnectionResetError):
                    assert await asyncio.wait_for(reader.read(100), 3) == b""
            finally:
                writer.close()
            await asyncio.sleep(0.4)
            assert not line.ended and not hangups(line)

    run(main)
    assert "sent no UUID in 0.3 s: not a call" in caplog.text
