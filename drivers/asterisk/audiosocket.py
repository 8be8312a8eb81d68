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

With an AMI client (:attr:`AudioSocketDriver.ami`, whose events go to
:meth:`AudioSocketDriver.on_ami_event`) the driver also knows what AudioSocket cannot say:
each inbound call's DAHDI port and numbers (:mod:`drivers.asterisk.channels`), every
DAHDI channel's state for the lines page, and it places outbound calls (an Originate
into ``AudioSocket()`` with a UUID of ours, whose connection then carries the call).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Mapping
from time import monotonic
from types import MappingProxyType
from typing import cast

from appliance.media.frame import FRAME_BYTES
from drivers.asterisk.ami import AmiClient, AmiError, Message
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
from drivers.asterisk.protocol import Message as WireMessage
from drivers.base import (
    CAUSE_BUSY,
    CAUSE_CONGESTION,
    CAUSE_LINE_DROPPED,
    CAUSE_NO_ANSWER,
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

#: The kernel's send buffer for one call (Linux doubles it): about 25 frames. Left to
#: itself it grows to tcp_wmem's 4 MB, and a stalled Asterisk would hold minutes of
#: stale audio per call in kernel memory, shared by every call, before the rule above
#: ever dropped a frame. A frame is acknowledged as soon as Asterisk's kernel has it,
#: so a call that is read never has more than a frame or two here.
SEND_BUFFER_BYTES = 4096

#: how long stop() waits for closed connections to finish before aborting them
STOP_GRACE_S = 1.0
#: Asterisk sends a call's UUID the moment it connects; a connection that has sent none
#: by then is not a call (a port scan, a stuck client) and would hold a descriptor forever
UUID_TIMEOUT_S = 5.0

#: outbound calls go out on chan_dahdi's dial group 1: the trunks not reserved for inbound
#: (appliance.box.ports.GROUP_OUTBOUND), the first free one
DIAL_PREFIX = "DAHDI/g1/"
#: how long Asterisk lets an outbound channel ring before it gives up (Originate Timeout);
#: the engine's own ring timeout ends an analog call sooner, by its audio
ORIGINATE_TIMEOUT_MS = 60_000
DIALABLE = re.compile(r"[0-9*#]{1,32}")
#: OriginateResponse's Reason (an AST_CONTROL value, reference/telephony.md) as the cause
#: an outbound line ends with; 0 is "no channel at all" (every trunk taken, or down)
ORIGINATE_CAUSES = {"0": CAUSE_CONGESTION, "1": CAUSE_REMOTE, "3": CAUSE_NO_ANSWER,
                    "5": CAUSE_BUSY, "8": CAUSE_CONGESTION}
#: the Q.850 cause of a Hangup event before the call connected
HANGUP_CAUSES = {"17": CAUSE_BUSY, "18": CAUSE_NO_ANSWER, "19": CAUSE_NO_ANSWER,
                 "21": CAUSE_REMOTE, "34": CAUSE_CONGESTION, "38": CAUSE_CONGESTION,
                 "42": CAUSE_CONGESTION}
_DAHDI_CHANNEL = re.compile(r"DAHDI/(\d+)-\d+")
MAX_CANCELLED = 1024
#: how often the driver asks the AMI for every DAHDI channel (idle ports, alarms)
CHANNELS_REFRESH_S = 5.0
#: chan_dahdi's alarm text for a channel that is fine
NO_ALARM = "No Alarm"


class AudioSocketLine(Line):
    """One Asterisk call. Its id is the UUID the dialplan gave ``AudioSocket()`` (or the
    driver gave an outbound call's Originate)."""

    # The CDR's driver column, and what the ACD dials a caller's callback or transfer on.
    driver_name = "asterisk"

    def __init__(self, line_id: str, connection: AudioSocketConnection | None,
                 direction: Direction = Direction.INBOUND, callee: str = "") -> None:
        # AudioSocket carries only the call's UUID: its port, caller and number dialled
        # come from the AMI (drivers.asterisk.channels) when the driver has a ChannelMap,
        # set before the engine is offered the line; without one they stay unknown.
        super().__init__(line_id, direction, callee=callee)
        # None while an outbound call rings: Asterisk connects once the channel is up.
        self._connection = connection
        #: outbound frames dropped because Asterisk stopped reading (see WRITE_BUFFER_HIGH)
        self.frames_unsent = 0
        #: an outbound call's channel, as AMI's Newchannel names it (to hang it up)
        self.channel = ""
        self._driver: AudioSocketDriver | None = None  # an outbound call's, to cancel it

    @property
    def peer(self) -> str:
        """Asterisk's address and port, for logs."""
        return self._connection.peer if self._connection is not None else "(not connected)"

    def _bind(self, connection: AudioSocketConnection) -> None:
        """The AudioSocket connection of an outbound call has come: audio flows."""
        self._connection = connection

    def write_frame(self, frame: bytes) -> None:
        # Called once per tick by the engine, which paces; write at once, in one write, so
        # each frame leaves in its own segment when its tick comes.
        if self.state is _ENDED:
            return
        if len(frame) != FRAME_BYTES:
            raise LineError(
                f"line {self.id}: a frame is {FRAME_BYTES} bytes of slin, got {len(frame)}"
            )
        connection = self._connection
        if connection is None:
            return  # an outbound call still dialling: no audio goes anywhere yet
        if connection.paused:
            self.frames_unsent += 1
            return
        connection.transport.write(AUDIO_FRAME_HEADER + frame)

    def answer(self) -> None:
        # AudioSocket() only runs on an answered channel: nothing to send.
        if self.state is LineState.OFFERED:
            self.state = LineState.ANSWERED

    def hangup(self, cause: str = CAUSE_NORMAL) -> None:
        if self.state is _ENDED:
            return
        self._end(cause)
        if self._connection is not None:
            self._connection.close(send_hangup=True)
        elif self._driver is not None:
            self._driver._cancel(self)  # dialling: Asterisk hangs the channel up

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
        self._uuid_timer: asyncio.TimerHandle | None = None  # set when the connection comes
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
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        self._driver._connections.add(self)
        self._uuid_timer = asyncio.get_running_loop().call_later(UUID_TIMEOUT_S, self._no_uuid)
        log.debug("AudioSocket connection from %s", self.peer)

    def _no_uuid(self) -> None:
        self._uuid_timer = None
        if self.line is None and not self.transport.is_closing():
            log.warning("AudioSocket connection from %s sent no UUID in %g s: not a call; "
                        "closed", self.peer, UUID_TIMEOUT_S)
            self.transport.abort()

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
        error: ProtocolError | None = None
        try:
            messages = self._parser.feed(data)
        except ProtocolError as exc:
            # What came before the bad message in this read still happened: a UUID (the
            # call is offered, so it gets its record), frames, a key.
            error, messages = exc, exc.before
        if self._take(messages) and error is not None:
            self._protocol_error(error.reason)

    def _take(self, messages: list[WireMessage]) -> bool:
        """Hand parsed messages to the line; False once the connection is being closed."""
        line = self.line
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
                    return False
            elif kind == KIND_HANGUP:
                # Asterisk never sends it (it just closes), but the protocol allows it.
                self._peer_ended(CAUSE_REMOTE, "sent a hangup message")
                self.close(send_hangup=False)
                return False
        return True

    def eof_received(self) -> bool | None:
        try:
            self._take(self._parser.eof())  # the audio short of a frame, padded
        except ProtocolError as exc:
            self._protocol_error(exc.reason)
            return None
        # Asterisk's way of saying the caller hung up (or AMI Hangup/Redirect took the
        # channel): no hangup message, just the end of the stream.
        self._peer_ended(CAUSE_REMOTE, "closed the connection")
        return None  # asyncio closes the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._driver._connections.discard(self)
        self._cancel_uuid_timer()
        line = self.line
        if line is not None:
            if self._driver._lines.get(line.id) is line:
                del self._driver._lines[line.id]
            if not line.ended:
                if exc is None:
                    self._peer_ended(CAUSE_REMOTE, "closed the connection")
                elif isinstance(exc, ConnectionResetError) and not self._parser.mid_message:
                    # Asterisk closed while one of our frames was still unread, so the
                    # kernel reset the connection instead: a caller hanging up, not a fault.
                    # (A reset inside one of its messages is a dropped line, below.)
                    self._peer_ended(CAUSE_REMOTE, "closed the connection (reset)")
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

    def _cancel_uuid_timer(self) -> None:
        timer, self._uuid_timer = self._uuid_timer, None
        if timer is not None:
            timer.cancel()

    def _offer(self, payload: bytes) -> AudioSocketLine | None:
        self._cancel_uuid_timer()
        line_id = str(uuid.UUID(bytes=payload))
        driver = self._driver
        dialled = driver._outbound.pop(line_id, None)
        if dialled is not None:
            # An outbound call this driver placed: the engine has its line already.
            dialled._bind(self)
            self.line = dialled
            log.info("AudioSocket call %s to %s connected from %s", line_id, dialled.callee,
                     self.peer)
            return dialled
        if line_id in driver._cancelled:
            log.info("AudioSocket call %s: it ended while it was dialled; refused", line_id)
            self.close(send_hangup=True)
            return None
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
                 channels: ChannelMap | None = None, dial_prefix: str = DIAL_PREFIX) -> None:
        self.host = host
        #: the AMI client that places outbound calls (None: the driver cannot); it must hand
        #: its events to :meth:`on_ami_event`
        self.ami: AmiClient | None = None
        self.dial_prefix = dial_prefix
        # Outbound calls until their AudioSocket connection comes, by UUID; and the UUIDs
        # of those the engine hung up before, so a late connection is refused.
        self._outbound: dict[str, AudioSocketLine] = {}
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        # Every DAHDI channel and its alarm as the AMI last listed them (empty: unknown),
        # refreshed while started with an AMI; the trunks kept for inbound calls.
        self._dahdi: dict[int, str] = {}
        self._reserved: frozenset[int] = frozenset()
        self._refresher: asyncio.Task[None] | None = None
        #: each call's channel and numbers from the AMI (None: no AMI, they stay unknown)
        self.channels = channels
        self._offering: set[asyncio.Task[None]] = set()
        # AMI Hangup actions under way; stop() lets them finish (a ringing phone otherwise)
        self._hangups: set[asyncio.Task[None]] = set()
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

    # -- outbound calls, placed through the AMI -----------------------------------------------
    @property
    def connect_address(self) -> str:
        """Where Asterisk connects an outbound call's AudioSocket: this server."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"{host}:{self.port}"

    async def originate(self, number: str, caller: str = "") -> Line:
        """Dial ``number`` on an outbound trunk through the AMI (``Originate`` of the
        channel into ``AudioSocket()`` with a UUID of ours, asynchronous). The line is
        DIALING at once; its audio comes when Asterisk has the channel up and connects
        here (an analog port: when dialing ends, so the engine's call-progress analysis
        hears the ringing; a digital trunk: on the answer). Busy, no answer and
        congestion before that come as AMI events and end the line with that cause."""
        ami = self.ami
        if ami is None:
            raise LineError(f"driver {self.name!r} cannot place outbound calls without the "
                            "AMI (appliance engine --ami)")
        if not DIALABLE.fullmatch(number):
            raise LineError(f"{number!r} is not a number to dial (digits, * and #)")
        line_id = str(uuid.uuid4())
        line = AudioSocketLine(line_id, None, Direction.OUTBOUND, callee=number)
        line.caller = caller
        line._driver = self
        self._outbound[line_id] = line
        self._lines[line_id] = line
        fields = {"Channel": f"{self.dial_prefix}{number}", "Application": "AudioSocket",
                  "Data": f"{line_id},{self.connect_address}", "Async": "true",
                  "ChannelId": line_id, "Timeout": str(ORIGINATE_TIMEOUT_MS)}
        if caller:
            fields["CallerID"] = caller
        try:
            await ami.action("Originate", fields, action_id=f"originate-{line_id}")
        except AmiError as exc:
            # No answer (a timeout, the AMI connection lost) is not a refusal: Asterisk
            # may have queued the call all the same. Its channel is hung up when it shows,
            # and its AudioSocket connection refused, as for a call hung up while dialled.
            self._cancel(line)
            line._end(CAUSE_CONGESTION)
            raise LineError(f"{number}: Asterisk did not place the call: {exc}") from None
        log.info("AudioSocket call %s: dialling %s", line_id, number)
        return line

    def on_ami_event(self, event: Message) -> None:
        """Every AMI event: the inbound calls' channels, and the outbound calls' progress
        before their AudioSocket connection (the AMI client calls this)."""
        if self.channels is not None:
            self.channels.on_event(event)
        kind = event.get("Event")
        if kind not in ("Newchannel", "OriginateResponse", "Hangup"):
            return
        unique = event.get("Uniqueid", "")
        if kind == "Newchannel" and unique in self._cancelled:
            # The channel of a call hung up before Asterisk named it (the Originate's
            # ChannelId is the line's id): hang it up now, or the callee's phone rings on.
            self._hang_up_channel(event.get("Channel", ""))
            return
        call = unique if unique in self._outbound else \
            event.get("ActionID", "").removeprefix("originate-")
        line = self._outbound.get(call)
        if line is None:
            return
        if kind == "Newchannel":
            line.channel = event.get("Channel", "")
            found = _DAHDI_CHANNEL.fullmatch(line.channel)
            line.port = int(found.group(1)) if found else None
        elif kind == "OriginateResponse" and event.get("Response", "").lower() == "failure":
            reason = event.get("Reason", "")
            self._failed(line, ORIGINATE_CAUSES.get(reason, CAUSE_CONGESTION),
                         f"Originate failed, reason {reason}")
        elif kind == "Hangup":
            cause = event.get("Cause", "")
            self._failed(line, HANGUP_CAUSES.get(cause, CAUSE_REMOTE),
                         f"hung up before it connected, cause {cause} "
                         f"({event.get('Cause-txt', '')})")

    def _failed(self, line: AudioSocketLine, cause: str, why: str) -> None:
        log.info("AudioSocket call %s to %s: %s: %s", line.id, line.callee, why, cause)
        # Its AudioSocket connection may still come (the callee answered as the Hangup
        # event was sent): refused, never offered as a new inbound call.
        self._forget_dialled(line)
        line._end(cause)

    def _forget(self, line: AudioSocketLine) -> None:
        self._outbound.pop(line.id, None)
        if self._lines.get(line.id) is line:
            del self._lines[line.id]

    def _forget_dialled(self, line: AudioSocketLine) -> None:
        """An outbound call ended before it connected: forgotten, and its id kept so that
        its AudioSocket connection, if it still comes, is refused."""
        self._forget(line)
        self._cancelled[line.id] = None
        while len(self._cancelled) > MAX_CANCELLED:
            self._cancelled.popitem(last=False)

    def _cancel(self, line: AudioSocketLine) -> None:
        """The engine hung up an outbound call still dialling: Asterisk hangs the channel
        up, and its AudioSocket connection, if it still comes, is refused."""
        self._forget_dialled(line)
        self._hang_up_channel(line.channel)

    def _hang_up_channel(self, channel: str) -> None:
        ami = self.ami
        if not channel or ami is None:
            return  # not created yet: its Newchannel event will be answered with a hangup
        task = asyncio.get_running_loop().create_task(self._ami_hangup(ami, channel))
        self._hangups.add(task)
        task.add_done_callback(self._hangups.discard)

    @staticmethod
    async def _ami_hangup(ami: AmiClient, channel: str) -> None:
        try:
            await ami.action("Hangup", {"Channel": channel, "Cause": "16"})
        except AmiError as exc:
            log.warning("AMI: could not hang up %s: %s", channel, exc)

    def port_states(self) -> list[PortStatus]:
        """The calls Asterisk has handed over, each in call (AudioSocket() runs only on an
        answered channel), with the DAHDI channel the AMI named (empty when it did not:
        no AMI, or its event never came). Idle and alarmed channels are not listed: those
        take AMI's DAHDIShowChannels, which this driver does not ask yet."""
        calls = [line for line in self._lines.values() if not line.ended]
        out = [PortStatus("" if line.port is None else str(line.port),
                          PortState.RINGING if line.id in self._outbound else PortState.IN_CALL,
                          call=line.id, direction=line.direction.value,
                          reserved_inbound=line.port in self._reserved)
               for line in calls]
        taken = {line.port for line in calls}
        for channel, alarm in sorted(self._dahdi.items()):
            if channel in taken:
                continue
            ok = alarm in (NO_ALARM, "")
            out.append(PortStatus(str(channel), PortState.IDLE if ok else PortState.ALARM,
                                  reserved_inbound=channel in self._reserved,
                                  detail="" if ok else alarm))
        return out

    def reserve_inbound(self, ports: frozenset[str]) -> None:
        # Asterisk keeps them out of dial group 1 (the box's chan_dahdi.conf); noted here
        # only so the lines page shows them.
        self._reserved = frozenset(int(p) for p in ports if p.isdigit())

    async def _refresh_channels(self, ami: AmiClient) -> None:
        """Every few seconds, every DAHDI channel and its alarm from the AMI: the idle and
        the alarmed ports the calls alone do not show."""
        said = ""
        while True:
            await ami.logged_in.wait()
            try:
                items = await ami.action_list("DAHDIShowChannels", "DAHDIShowChannelsComplete")
            except AmiError as exc:
                self._dahdi = {}
                if str(exc) != said:  # once, not every few seconds
                    said = str(exc)
                    log.warning("AMI: the DAHDI channels are not known: %s", exc)
            else:
                said = ""
                self._dahdi = {int(item["DAHDIChannel"]): item.get("Alarm", "")
                               for item in items
                               if item.get("DAHDIChannel", "").isdigit()}
            await asyncio.sleep(CHANNELS_REFRESH_S)

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
        if self.ami is not None:
            self._refresher = asyncio.create_task(self._refresh_channels(self.ami))

    async def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._server = None
        server.close()
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        for line in list(self._outbound.values()):
            line.hangup(CAUSE_SHUTDOWN)  # still dialling: Asterisk is asked to hang up
        for task in list(self._offering):
            task.cancel()  # calls still waiting for their AMI event are not offered now
        if self._hangups:
            # The hangups just asked for (the calls still dialling) go out before stop()
            # returns and the AMI client with it; bounded, as the AMI may not answer.
            await asyncio.wait(list(self._hangups), timeout=STOP_GRACE_S)
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
