"""A fake Asterisk for driver tests: a real TCP client speaking AudioSocket byte for byte.

It behaves like Asterisk 22's ``AudioSocket()`` application as observed
(``/work/shared/reference/telephony.md``): the UUID message first, then one message per
write (0x10 frames of 320 bytes, 0x03 keys), and on caller hang-up it just closes the
socket. Everything the server sends is kept raw, with arrival times, so tests can compare
bytes exactly and measure gaps. Methods for misbehaving (raw bytes, a reset) are here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
import uuid

from drivers.asterisk.protocol import Message, Parser, audio, dtmf, uuid_msg


class FakeAsterisk:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, call_id: uuid.UUID
    ) -> None:
        self.call_id = call_id
        self._reader = reader
        self._writer = writer
        self.received = bytearray()
        #: (monotonic time, total bytes received so far) after each read
        self.arrivals: list[tuple[float, int]] = []
        self.read_error: BaseException | None = None
        self.eof = asyncio.Event()
        self._read_task = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls, port: int, call_id: uuid.UUID | None = None, *, send_uuid: bool = True
    ) -> FakeAsterisk:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # Asterisk sets TCP_NODELAY on its AudioSocket connections.
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fake = cls(reader, writer, call_id or uuid.uuid4())
        if send_uuid:
            fake.send(uuid_msg(fake.call_id))
        return fake

    @property
    def line_id(self) -> str:
        return str(self.call_id)

    async def _read(self) -> None:
        try:
            while data := await self._reader.read(65536):
                self.received += data
                self.arrivals.append((time.monotonic(), len(self.received)))
        except OSError as exc:  # a reset from the server
            self.read_error = exc
        finally:
            self.eof.set()

    # -- what Asterisk sends -----------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Raw bytes, in one write (as Asterisk writes each message)."""
        self._writer.write(data)

    def send_frame(self, payload: bytes) -> None:
        self.send(audio(payload))

    def send_dtmf(self, digit: str) -> None:
        self.send(dtmf(digit))

    async def stream(self, frames: list[bytes], interval: float = 0.02) -> None:
        """Send frames paced against a fixed start, as Asterisk does (one per 20 ms)."""
        start = time.monotonic()
        for i, frame in enumerate(frames):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.send_frame(frame)
        await self._writer.drain()

    async def hang_up(self) -> None:
        """Caller hang-up: Asterisk closes the socket without a hangup message."""
        if not self._writer.is_closing():
            self._writer.close()
        await self._wait_writer_closed()

    async def reset(self) -> None:
        """The connection dies abruptly: close with SO_LINGER 0, so the server gets a RST."""
        sock = self._writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._writer.transport.abort()
        await self._wait_writer_closed()

    async def close(self) -> None:
        """Test clean-up: close whatever is still open and stop reading."""
        if not self._writer.is_closing():
            self._writer.close()
        await self._wait_writer_closed()
        self._read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._read_task

    async def _wait_writer_closed(self) -> None:
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    # -- what the server sent ----------------------------------------------------------
    async def wait_eof(self, timeout: float = 3.0) -> None:
        await asyncio.wait_for(self.eof.wait(), timeout)

    async def wait_bytes(self, count: int, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} bytes, got {len(self.received)}")
            await asyncio.sleep(0.005)

    def messages(self) -> list[Message]:
        """The server's bytes parsed as Asterisk would read them."""
        return Parser(from_server=True).feed(bytes(self.received))

    def message_times(self, size: int) -> list[float]:
        """Arrival time of each complete ``size``-byte message (all messages that size)."""
        times: list[float] = []
        for at, total in self.arrivals:
            while (len(times) + 1) * size <= total:
                times.append(at)
        return times
