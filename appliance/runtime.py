"""Running the engine as a process: data folders, the event loop, signals, and a clean stop.

``appliance engine`` and ``appliance run`` both come through here. The event loop is
uvloop when it is installed (it carried the benchmark's load with less CPU than the stock
loop); SIGINT and SIGTERM stop the engine, which ends every call through its one clean-up
path before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("appliance")


@dataclass(frozen=True)
class DataDirs:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "appliance.db"

    @property
    def recordings(self) -> Path:
        return self.root / "recordings"

    @property
    def messages(self) -> Path:
        # Under recordings/, so the engine's start-up recovery finds a message a crash cut.
        return self.recordings / "messages"

    def create(self) -> DataDirs:
        for folder in (self.root, self.recordings, self.messages):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def lock_file(self) -> Path:
        return self.root / "engine.lock"

    def claim(self) -> DataDirs:
        """Take the folder for this process's engine, until the process exits.

        A second engine on the same folder would close the first one's live calls as
        crashed and repair the recordings it is still writing; it is refused instead, by a
        lock the kernel drops when the holder dies (kill -9 included), so no stale lock is
        ever left. The web admin shares the folder and takes no lock."""
        key = self.root.resolve()
        if key in _CLAIMS:
            return self  # this process has it already (an engine started again in-process)
        fd = self._lock(f"{os.getpid()}\n", "; stop it first, or give this one another --data")
        _CLAIMS[key] = fd  # held open (and so locked) for the life of the process
        return self

    def _lock(self, holder: str | None, hint: str = "") -> int:
        """The folder's lock, taken without waiting: the open file that holds it, its
        content now ``holder`` (who holds it, for whoever is refused meanwhile) unless
        None. DataFolderInUse, naming the holder the file names, if it is taken."""
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            # An engine writes its pid; a restore says so.
            who = f"another engine (process {text})" if text.isdigit() or text == "?" \
                else text
            raise DataFolderInUse(f"{self.root}: {who} is using this data folder{hint}"
                                  ) from None
        if holder is not None:
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
        return fd

    @contextlib.contextmanager
    def held(self, mark: bool = True) -> Iterator[None]:
        """Keep any engine off the folder while the block runs (a restore replacing the
        database and the recordings under it); DataFolderInUse if an engine has it, in this
        process or another: its calls in progress would write into the replaced folders.
        With ``mark`` the lock file says a restore holds it."""
        if self.root.resolve() in _CLAIMS:
            raise DataFolderInUse(f"{self.root}: the engine of this process is using this "
                                  "data folder")
        fd = self._lock(f"a restore (process {os.getpid()})\n" if mark else None)
        try:
            yield
        finally:
            os.close(fd)  # and with it the lock

    def in_use(self) -> bool:
        """Whether an engine holds the folder now (:meth:`held` would refuse); False when
        that cannot be told (a lock file this user may not open)."""
        try:
            with self.held(mark=False):
                return False
        except DataFolderInUse:
            return True
        except OSError:
            return False


class DataFolderInUse(RuntimeError):
    """Another engine holds the data folder (:meth:`DataDirs.claim`)."""


_CLAIMS: dict[Path, int] = {}


def run_loop(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` on uvloop if available, else asyncio's default loop."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a declared dependency
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


def install_stop_signals(stop: Callable[[], None]) -> None:
    """SIGINT, SIGTERM and SIGHUP (the terminal closed, the SSH session dropped) call
    ``stop`` once; a second signal is left to the default handler."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def handler(signum: int) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        for sig in signals:
            loop.remove_signal_handler(sig)
        stop()

    for sig in signals:
        loop.add_signal_handler(sig, handler, sig)


async def gather_quietly(*aws: Awaitable[Any]) -> None:
    await asyncio.gather(*aws, return_exceptions=True)
