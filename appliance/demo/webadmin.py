"""The web admin beside ``make run``'s engine: a process of its own, started, watched and
stopped by the runner.

The admin is the office's only window on the box, so a crash of it (a bug on one page, the
kernel's OOM killer, someone's ``kill``) must not leave the run going on with no admin until
the next restart. :class:`WebAdmin` starts ``python -m web`` in its own session (Ctrl-C in
the terminal reaches only the runner, which then stops the web with SIGTERM; if the runner
dies first the kernel stops the web too: ``--parent``), and :meth:`WebAdmin.watch` starts it
again when it exits on its own, waiting longer after each quick failure. One that keeps
failing at once (its port taken by another program, a broken database) is given up after
:data:`GIVE_UP_AFTER` tries in a row, with its exit status said, and the calls go on.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: Quick failures in a row after which the runner stops restarting the admin.
GIVE_UP_AFTER = 5
#: An admin that ran this long before exiting was working: its restart counts from scratch.
STEADY_SECONDS = 30.0
FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0


def web_command(data: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "web", "--data", str(data), "--port", str(port),
            "--parent", str(os.getpid())]


class WebAdmin:
    """The admin's process: ``start``, then ``await watch(...)`` until the run ends, then
    ``stop``. ``say`` gets one line for each exit and restart."""

    def __init__(self, command: Sequence[str], say: Callable[[str], None], *,
                 poll_seconds: float = 0.5, first_delay: float = FIRST_DELAY_SECONDS) -> None:
        self.command = list(command)
        self.say = say
        self.poll_seconds = poll_seconds
        self.first_delay = first_delay
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.gave_up = False
        self._started_at = 0.0
        self._stopping = False

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, start_new_session=True)
        self._started_at = time.monotonic()

    async def watch(self, running: Callable[[], bool] = lambda: True) -> None:
        """Start the admin again whenever it exits while the run goes on (``running``);
        returns when it has been given up, or exits as the run stops (the run cancels it
        otherwise)."""
        quick_failures = 0
        delay = self.first_delay
        while not self._stopping:
            process = self.process
            if process is None:
                return
            code = process.poll()
            if code is None:
                await asyncio.sleep(self.poll_seconds)
                continue
            if not running():
                # Stopped with the run (a SIGTERM to the whole process group, as systemd
                # sends): not a crash to recover from.
                return
            ran = time.monotonic() - self._started_at
            if ran >= STEADY_SECONDS:
                quick_failures, delay = 0, self.first_delay
            quick_failures += 1
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            if quick_failures >= GIVE_UP_AFTER:
                self.say(f"web admin {how} after {ran:.1f} s, {quick_failures} times in a row "
                         "at start: not restarting it again (its own error is above); the "
                         "calls go on")
                self.gave_up = True
                self.process = None
                return
            self.say(f"web admin {how} after {ran:.1f} s; starting it again in {delay:.0f} s")
            await asyncio.sleep(delay)
            if self._stopping:
                return
            delay = min(2 * delay, MAX_DELAY_SECONDS)
            self.start()
            self.restarts += 1

    def stop(self) -> None:
        """Stop the admin (SIGTERM, then SIGKILL after 10 s); no restart after this."""
        self._stopping = True
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
