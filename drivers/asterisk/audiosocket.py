"""The AudioSocket server: one TCP connection from Asterisk per call, turned into a Line.

Asterisk's ``AudioSocket(${UUID},host:port)`` dialplan application answers the call,
connects here and sends the UUID, then 20 ms slin frames and DTMF keys; it hangs up when we
send a hangup message, and simply closes the socket when the caller hangs up (or an AMI
Hangup/Redirect takes the channel away). This module maps that onto the Line interface:
inbound frames and keys are queued on the line, the engine's one frame per tick goes out
as one audio message, and every way a connection can end becomes one HANGUP event with a
cause. Pacing is the engine's: Asterisk neither paces nor buffers what we send, and hangs
up after 2 s without a frame either way, so nothing here buffers, delays or generates
audio. Each connection is its own asyncio.Protocol (cheaper than streams at 600 calls x 50
messages a second), so a peer that breaks the protocol loses its own call and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from array import array
from collections.abc import Mapping
from time import monotonic
from types import MappingProxyType
from typing import cast

from appliance.media.frame import FRAME_BYTES
from drivers.asterisk.channels import WAIT_S, ChannelInfo, ChannelMap
from drivers.asterisk.protocol import (
    AUDIO_FRAME_HEADER,
    AUDIO_MESSAGE_BYTES,
    HANGUP_MESSAGE,
    KIND_AUDIO,
    KIND_DTMF,
    KIND_HANGUP,
    KIND_UUID,
    Parser,
    ProtocolError,
)
from drivers.base import (
    CAUSE_LINE_DROPPED,
    CAUSE_NORMAL,
    CAUSE_PROTOCOL,
    CAUSE_REMOTE,
    CAUSE_SHUTDOWN,
    AcceptLine,
    Direction,
    Driver,
    EventKind,
    Line,
    LineError,
    LineEvent,
    LineState,
    PortState,
    PortStatus,
)

log = logging.getLogger("drivers.asterisk")

_ENDED = LineState.ENDED

#: Outbound bytes asyncio may hold for one call before we stop writing. The kernel's send
#: buffer takes a frame at once while Asterisk reads; past this, Asterisk has stalled and a
#: late frame is worse than a lost one (it would be played late, and it costs memory).
WRITE_BUFFER_HIGH = 4 * (3 + FRAME_BYTES)

#: how long stop() waits for closed connections to finish before aborting them
STOP_GRACE_S = 1.0


class AudioSocketLine(Line):
    """One Asterisk call. Its id is the UUID the dialplan gave ``AudioSocket()``."""

    def __init__(self, line_id: str, connection: AudioSocketConnection) -> None:
        # AudioSocket carries only the call's UUID: its port, caller and number dialled
        # come from the AMI (drivers.asterisk.channels) when the driver has a ChannelMap,
        # set before the engine is offered the line; without one they stay unknown.
        super().__init__(line_id, Direction.INBOUND)
        self._connection = connection
        self._transport = connection.transport
        #: outbound frames dropped because Asterisk stopped reading (see WRITE_BUFFER_HIGH)
        self.frames_unsent = 0

    @property
    def peer(self) -> str:
        """Asterisk's address and port, for logs."""
        return self._connection.peer

    def write_frame(self, frame: bytes) -> None:
        # Called once per tick by the engine, which paces; write at once, in one write, so
        # each frame leaves in its own segment when its tick comes.
        if self.state is _ENDED:
            return
        if len(frame) != FRAME_BYTES:
            raise LineError(
                f"line {self.id}: a frame is {FRAME_BYTES} bytes of slin, got {len(frame)}"
            )
        if self._connection.paused:
            self.frames_unsent += 1
            return
        self._transport.write(AUDIO_FRAME_HEADER + frame)

    def answer(self) -> None:
        # AudioSocket() only runs on an answered channel: nothing to send.
        if self.state is LineState.OFFERED:
            self.state = LineState.ANSWERED

    def hangup(self, cause: str = CAUSE_NORMAL) -> None:
        if self.state is _ENDED:
            return
        self._end(cause)
        self._connection.close(send_hangup=True)

    def _end(self, cause: str) -> None:
        """Mark the line ended: one HANGUP event, whichever side ended it."""
        self.push_event(LineEvent(EventKind.HANGUP, cause=cause))


class AudioSocketConnection(asyncio.Protocol):
    """One TCP connection from Asterisk; holds its line once the UUID has arrived."""

    def __init__(self, driver: AudioSocketDriver) -> None:
        self._driver = driver
        self._parser = Parser()
        self.transport: asyncio.Transport
        self.peer = "?"
        self.line: AudioSocketLine | None = None
        self.paused = False
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio callbacks -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCPTransport does not subclass asyncio's.
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = f"{peer[0]}:{peer[1]}"
        # asyncio and uvloop both set TCP_NODELAY on TCP sockets: a 323-byte write leaves at once.
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self._driver._connections.add(self)
        log.debug("AudioSocket connection from %s", self.peer)

    def data_received(self, data: bytes) -> None:
        line = self.line
        # The short path, for nearly every read: one whole audio message on a call that is
        # under way. The same test Parser.feed makes first, without building a Message.
        if (
            line is not None
            and len(data) == AUDIO_MESSAGE_BYTES
            and data[:3] == AUDIO_FRAME_HEADER
            and not self._parser.pending
        ):
            line.push_frame(data[3:])
            if self._driver.tracking_arrivals:
                self._driver.arrivals.append(monotonic())
            return
        try:
            messages = self._parser.feed(data)
        except ProtocolError as exc:
            self._protocol_error(exc.reason)
            return
        for kind, payload in messages:
            if kind == KIND_AUDIO and line is not None:  # nearly every message
                line.push_frame(payload)
                if self._driver.tracking_arrivals:
                    self._driver.arrivals.append(monotonic())
            elif kind == KIND_DTMF and line is not None:
                line.push_event(LineEvent(EventKind.DTMF, digit=chr(payload[0])))
            elif kind == KIND_UUID:
                line = self._offer(payload)
                if line is None:
                    return
            elif kind == KIND_HANGUP:
                # Asterisk never sends it (it just closes), but the protocol allows it.
                self._peer_ended(CAUSE_REMOTE, "sent a hangup message")
                self.close(send_hangup=False)
                return

    def eof_received(self) -> bool | None:
        try:
            self._parser.eof()
        except ProtocolError as exc:
            self._protocol_error(exc.reason)
            return None
        # Asterisk's way of saying the caller hung up (or AMI Hangup/Redirect took the
        # channel): no hangup message, just the end of the stream.
        self._peer_ended(CAUSE_REMOTE, "closed the connection")
        return None  # asyncio closes the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._driver._connections.discard(self)
        line = self.line
        if line is not None:
            if self._driver._lines.get(line.id) is line:
                del self._driver._lines[line.id]
            if not line.ended:
                if exc is None:
                    self._peer_ended(CAUSE_REMOTE, "closed the connection")
                else:
                    log.warning(
                        "AudioSocket call %s from %s: connection lost: %s",
                        line.id,
                        self.peer,
                        exc,
                    )
                    line._end(CAUSE_LINE_DROPPED)
        elif exc is not None:
            log.warning("AudioSocket connection from %s lost before its UUID: %s", self.peer, exc)
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    # -- our side --------------------------------------------------------------------------
    def close(self, *, send_hangup: bool) -> None:
        """Close the connection, first asking Asterisk to hang up when ``send_hangup``."""
        transport = self.transport
        if transport.is_closing():
            return
        if self.paused:
            # Asterisk is not reading: a hangup message would wait behind stale audio and
            # keep the connection alive; a reset ends the call at once.
            transport.abort()
            return
        if send_hangup:
            transport.write(HANGUP_MESSAGE)
        transport.close()  # after the buffered bytes, including the hangup, are sent

    def _offer(self, payload: bytes) -> AudioSocketLine | None:
        line_id = str(uuid.UUID(bytes=payload))
        driver = self._driver
        other = driver._lines.get(line_id)
        if other is not None:
            self._protocol_error(
                f"UUID {line_id} is already in use by the live call from {other.peer}; "
                "the dialplan must give every call its own UUID (${UUID})"
            )
            return None
        line = AudioSocketLine(line_id, self)
        self.line = line
        driver._lines[line_id] = line
        log.info("AudioSocket call %s from %s", line_id, self.peer)
        if driver.channels is not None:
            info = driver.channels.take(line_id)
            if info is None:
                # Its channel's AMI event is still on its way (another connection): offer
                # the line once it comes, or without it after a moment. Frames that come
                # meanwhile queue on the line as usual.
                task = asyncio.create_task(self._offer_when_known(line, driver.channels))
                driver._offering.add(task)
                task.add_done_callback(driver._offering.discard)
                return line
            _fill(line, info)
        return self._hand_over(line)

    async def _offer_when_known(self, line: AudioSocketLine, channels: ChannelMap) -> None:
        info = await channels.wait(line.id)
        if line.ended:
            return  # Asterisk hung up meanwhile; connection_lost has said so
        if info is None:
            log.warning("AudioSocket call %s: no AMI event named its channel within %g s; "
                        "offered without its port and numbers", line.id, WAIT_S)
        else:
            _fill(line, info)
        self._hand_over(line)

    def _hand_over(self, line: AudioSocketLine) -> AudioSocketLine | None:
        driver = self._driver
        line_id = line.id
        # Asterisk hangs up after 2 s without a frame either way. Nothing is needed for the
        # gap until the engine's first tick with this line: the engine attaches new lines on
        # its next tick (<= 20 ms) and from then on writes a frame every tick, silence if it
        # has nothing to say; meanwhile Asterisk's own frames keep its timer from firing.
        try:
            driver._accept(line)
        except Exception:
            log.exception("AudioSocket call %s: the engine refused the line", line_id)
            line.hangup(CAUSE_NORMAL)
            return None
        return line if not line.ended else None

    def _peer_ended(self, cause: str, how: str) -> None:
        line = self.line
        if line is None:
            # Nothing was offered (a port probe, or Asterisk giving up while connecting).
            log.info("AudioSocket connection from %s %s before its UUID", self.peer, how)
            return
        if not line.ended:
            log.info("AudioSocket call %s from %s: Asterisk %s", line.id, self.peer, how)
            line._end(cause)

    def _protocol_error(self, reason: str) -> None:
        line = self.line
        if line is not None:
            log.warning(
                "AudioSocket call %s from %s: protocol error: %s; hanging up",
                line.id,
                self.peer,
                reason,
            )
        else:
            log.warning(
                "AudioSocket connection from %s: protocol error: %s; hanging up",
                self.peer,
                reason,
            )
        self.close(send_hangup=True)
        if line is not None:
            line._end(CAUSE_PROTOCOL)


class AudioSocketDriver(Driver):
    """A TCP server Asterisk's ``AudioSocket()`` connects to, offering one line per call."""

    far_end_clocked = True

    name = "asterisk"

    def __init__(self, host: str = "127.0.0.1", port: int = 9092, *,
                 channels: ChannelMap | None = None) -> None:
        self.host = host
        #: each call's channel and numbers from the AMI (None: no AMI, they stay unknown)
        self.channels = channels
        self._offering: set[asyncio.Task[None]] = set()
        #: the bound port once started (useful when 0 asked for any free port)
        self.port = port
        self._server: asyncio.Server | None = None
        self._accept: AcceptLine = _refuse
        self._connections: set[AudioSocketConnection] = set()
        self._lines: dict[str, AudioSocketLine] = {}
        # When each inbound frame came, kept only once the engine asks (track_arrivals),
        # as 8-byte doubles, and emptied by each take_arrivals.
        self.tracking_arrivals = False
        self.arrivals = array("d")

    def track_arrivals(self) -> None:
        self.tracking_arrivals = True

    def take_arrivals(self) -> list[float]:
        taken = self.arrivals.tolist()
        del self.arrivals[:]
        return taken

    @property
    def lines(self) -> Mapping[str, AudioSocketLine]:
        """Live calls by UUID (the AMI client finds a channel's line here)."""
        return MappingProxyType(self._lines)

    def port_states(self) -> list[PortStatus]:
        """The calls Asterisk has handed over, each in call (AudioSocket() runs only on an
        answered channel), with the DAHDI channel the AMI named (empty when it did not:
        no AMI, or its event never came). Idle and alarmed channels are not listed: those
        take AMI's DAHDIShowChannels, which this driver does not ask yet."""
        return [PortStatus("" if line.port is None else str(line.port), PortState.IN_CALL,
                           call=line.id, direction="in")
                for line in self._lines.values() if not line.ended]

    async def start(self, accept: AcceptLine) -> None:
        if self._server is not None:
            raise LineError(f"driver {self.name!r} is already listening on port {self.port}")
        self._accept = accept
        loop = asyncio.get_running_loop()
        # A backlog for a burst of calls: every E1 channel of a box may be offered at once.
        self._server = await loop.create_server(
            lambda: AudioSocketConnection(self), self.host, self.port, backlog=512
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("AudioSocket server listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._server = None
        server.close()
        for task in list(self._offering):
            task.cancel()  # calls still waiting for their AMI event are not offered now
        connections = list(self._connections)
        for connection in connections:
            if connection.line is not None:
                connection.line.hangup(CAUSE_SHUTDOWN)
            connection.close(send_hangup=True)  # no-op when the hangup above closed it
        # Wait for the connections ourselves, with a bound: a close waits for unsent bytes,
        # and a peer that stopped reading would otherwise hold stop() (and, on Python >=
        # 3.12, server.wait_closed(), which waits for every connection) forever.
        waiting = [c.lost for c in connections if not c.lost.done()]
        if waiting:
            _done, late = await asyncio.wait(waiting, timeout=STOP_GRACE_S)
            for connection in connections:
                if not connection.lost.done():
                    connection.transport.abort()
            if late:
                await asyncio.wait(late, timeout=STOP_GRACE_S)
        await server.wait_closed()
        self._accept = _refuse
        log.info("AudioSocket server stopped")


def _fill(line: AudioSocketLine, info: ChannelInfo) -> None:
    line.port, line.caller, line.callee = info.port, info.caller, info.callee
    log.info("AudioSocket call %s is %s (port %s) from %s to %s", line.id, info.channel,
             info.port, info.caller or "an unknown number", info.callee or "the line")


def _refuse(line: Line) -> None:
    raise LineError(f"no engine accepts lines yet: {line.id} refused")
