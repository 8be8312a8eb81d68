"""A fake Asterisk Manager Interface: a real TCP server answering as Asterisk 22 does.

The banner, a login checked against one account (``Authentication accepted`` and the
``FullyBooted`` event, or ``Authentication failed`` and the connection closed, as
``main/manager.c`` does), ``Ping``, an error for any other action, and events written
byte for byte on demand. Every block a client sent is kept raw, so tests compare bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def block(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode() + b"\r\n"


def var_set(call: str, channel: int, *, caller: str = "13800138000", exten: str = "s",
            unique: str = "1764150000.12") -> bytes:
    """A VarSet event for the box's dialplan setting APPLIANCE_CALL, field for field."""
    return block(
        "Event: VarSet", "Privilege: dialplan,all", f"Channel: DAHDI/{channel}-1",
        "ChannelState: 6", "ChannelStateDesc: Up", f"CallerIDNum: {caller}",
        "CallerIDName: <unknown>", "ConnectedLineNum: <unknown>",
        "ConnectedLineName: <unknown>", "Language: zh", "AccountCode: ", "Context: engine",
        f"Exten: {exten}", "Priority: 1", f"Uniqueid: {unique}", f"Linkedid: {unique}",
        "Variable: APPLIANCE_CALL", f"Value: {call}/{channel}",
    )


class FakeAmi:
    def __init__(self, *, username: str = "appliance", secret: str = "s3cret-pass",
                 banner: bytes = BANNER, answer: bool = True) -> None:
        self.username, self.secret, self.banner, self.answer = username, secret, banner, answer
        #: actions answered with an Error and this message
        self.refuse: dict[str, str] = {}
        #: the DAHDI channels DAHDIShowChannels lists, with their alarm
        self.dahdi: dict[int, str] = {}
        self.received: list[bytes] = []  # every block clients sent, raw
        self.connections = 0
        self.logins = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def send(self, raw: bytes) -> None:
        """Write ``raw`` to every connected client (an event, or garbage)."""
        for writer in self._writers:
            writer.write(raw)

    def drop(self) -> None:
        """Close every client connection (Asterisk restarting)."""
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        writer.write(self.banner)
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                self.received.append(raw)
                fields = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if line)
                action_id = fields.get("ActionID", "")
                if not self.answer:
                    continue
                if fields.get("Action") == "Login":
                    if (fields.get("Username"), fields.get("Secret")) == (self.username,
                                                                         self.secret):
                        self.logins += 1
                        writer.write(block("Response: Success", f"ActionID: {action_id}",
                                           "Message: Authentication accepted"))
                        writer.write(block("Event: FullyBooted", "Privilege: system,all",
                                           "Uptime: 10", "LastReload: 10",
                                           "Status: Fully Booted"))
                    else:
                        writer.write(block("Response: Error", f"ActionID: {action_id}",
                                           "Message: Authentication failed"))
                        await writer.drain()
                        break
                elif fields.get("Action") in self.refuse:
                    writer.write(block("Response: Error", f"ActionID: {action_id}",
                                       f"Message: {self.refuse[fields['Action']]}"))
                elif fields.get("Action") == "DAHDIShowChannels":
                    writer.write(block("Response: Success", f"ActionID: {action_id}",
                                       "EventList: start",
                                       "Message: DAHDI channel status will follow"))
                    for channel, alarm in sorted(self.dahdi.items()):
                        writer.write(block(
                            "Event: DAHDIShowChannels", f"ActionID: {action_id}",
                            f"DAHDIChannel: {channel}", "Signalling: FXS Kewlstart",
                            "SignallingCode: 2", "Context: from-pstn", "DND: Disabled",
                            f"Alarm: {alarm}", "Description: "))
                    writer.write(block("Event: DAHDIShowChannelsComplete",
                                       f"ActionID: {action_id}", "EventList: Complete",
                                       f"ListItems: {len(self.dahdi)}",
                                       f"Items: {len(self.dahdi)}"))
                elif fields.get("Action") in ("Originate", "Hangup"):
                    message = ("Originate successfully queued" if fields["Action"] == "Originate"
                               else "Channel Hungup")
                    writer.write(block("Response: Success", f"ActionID: {action_id}",
                                       f"Message: {message}"))
                elif fields.get("Action") == "Ping":
                    writer.write(block("Response: Success", f"ActionID: {action_id}",
                                       "Ping: Pong", "Timestamp: 1764150000.000000"))
                else:
                    writer.write(block("Response: Error", f"ActionID: {action_id}",
                                       "Message: Invalid/unknown command"))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if writer in self._writers:
                self._writers.remove(writer)
            writer.close()


@contextlib.asynccontextmanager
async def fake_ami(**kw: object) -> AsyncIterator[FakeAmi]:
    ami = FakeAmi(**kw)  # type: ignore[arg-type]
    await ami.start()
    try:
        yield ami
    finally:
        await ami.close()
