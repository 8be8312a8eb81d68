"""A fake GSM modem on a real pseudo-terminal: pyserial opens the slave side as it would
/dev/ttyUSB0, and a thread on the master side answers as a modem does (echo on, replies
ended by OK or ERROR, each line with CR LF), or answers noise, or nothing at all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from drivers.gsm.simulated import PtyPeer

Answer = Callable[[str], bytes]

GOOD = {
    "AT": b"OK",
    "AT+CPIN?": b"+CPIN: READY\r\n\r\nOK",
    "AT+CSQ": b"+CSQ: 21,99\r\n\r\nOK",
    "AT+CMGF=1": b"OK",
}


def gsm_modem(replies: dict[str, bytes] | None = None, *, echo: bool = True) -> Answer:
    """A modem like a SIMCom or Huawei stick: it echoes the command, then ``replies``."""
    table = dict(GOOD, **(replies or {}))

    def answer(command: str) -> bytes:
        body = table.get(command, b"ERROR")
        return (command.encode() + b"\r" if echo else b"") + b"\r\n" + body + b"\r\n"

    return answer


def garbage(command: str) -> bytes:
    """What a modem at another baud rate sounds like: bytes, none of them text."""
    return b"\xf8\x80\x00\xfe\x1c\x9e\xe6\x80\x98\xf8"


def silent(command: str) -> bytes:
    return b""


class FakeModem(PtyPeer):
    """A modem that answers each command line with ``answer(command)``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.commands: list[str] = []
        self._buf = b""
        super().__init__()

    def feed(self, data: bytes) -> None:
        self._buf += data
        while b"\r" in self._buf:
            line, self._buf = self._buf.split(b"\r", 1)
            command = line.strip().decode("ascii", "replace")
            if command:
                self.commands.append(command)
                self.write(self.answer(command))


@contextmanager
def fake_modem(answer: Answer) -> Iterator[FakeModem]:
    modem = FakeModem(answer)
    try:
        yield modem
    finally:
        modem.close()
