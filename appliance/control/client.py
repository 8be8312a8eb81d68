"""The web's side of the control API: a small blocking client (the web's request threads
are plain threads), one connection a request or one a followed event stream."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from appliance.control.protocol import ControlError, encode, read_address


class ControlUnavailable(ConnectionError):
    """No engine answers: it is not running, or has not started its control API."""


class ControlClient:
    def __init__(self, host: str, port: int, token: str, timeout: float = 5.0) -> None:
        self.host, self.port, self.token, self.timeout = host, port, token, timeout

    @classmethod
    def for_data(cls, data: Path, timeout: float = 5.0) -> ControlClient:
        """The client of the engine that uses the data folder ``data``."""
        address = read_address(data)
        if address is None:
            raise ControlUnavailable(f"no engine has published its control API in {data}")
        return cls(*address, timeout=timeout)

    def _connect(self, timeout: float | None) -> socket.socket:
        try:
            return socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as exc:
            raise ControlUnavailable(f"engine control API at {self.host}:{self.port}: "
                                     f"{exc.strerror or exc}") from None

    def request(self, op: str, **fields: Any) -> Any:
        """One request; its result, or :class:`ControlError` with the engine's reason."""
        with self._connect(self.timeout) as sock:
            sock.sendall(encode({"token": self.token, "op": op, **fields}))
            with sock.makefile("rb") as f:
                answer = _answer(f.readline())
        return answer

    def follow(self, idle: float = 15.0) -> EventStream:
        """Subscribe now (the events from this moment on are kept for the caller) and
        return the events as they come (``{"event": kind, "data": {...}}``), with None
        after each ``idle`` seconds without one (so a caller can check that its own client
        is still there). The iteration ends when the engine closes the stream."""
        sock = self._connect(self.timeout)
        try:
            sock.sendall(encode({"token": self.token, "op": "follow"}))
            buf = b""
            while b"\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
            line, _, buf = buf.partition(b"\n")
            _answer(line)
        except OSError as exc:
            sock.close()
            raise ControlUnavailable(f"engine event stream: {exc}") from None
        except BaseException:
            sock.close()
            raise
        sock.settimeout(idle)
        return EventStream(sock, buf)


class EventStream:
    """A subscription: iterate for the events; :meth:`close` (or ``with``) ends it, even
    before the first event was read."""

    def __init__(self, sock: socket.socket, buf: bytes) -> None:
        self._sock = sock
        self._buf = buf

    def __iter__(self) -> Iterator[dict[str, Any] | None]:
        try:
            while True:
                while b"\n" in self._buf:
                    line, self._buf = self._buf.split(b"\n", 1)
                    yield json.loads(line)
                try:
                    chunk = self._sock.recv(65536)
                except TimeoutError:
                    yield None
                    continue
                if not chunk:
                    return
                self._buf += chunk
        except OSError as exc:
            raise ControlUnavailable(f"engine event stream: {exc}") from None
        finally:
            self.close()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _answer(line: bytes) -> Any:
    if not line:
        raise ControlUnavailable("the engine closed the connection without an answer")
    doc = json.loads(line)
    if not doc.get("ok"):
        raise ControlError(str(doc.get("error", "refused")))
    return doc.get("result")


__all__ = ["ControlClient", "ControlUnavailable", "EventStream"]
