"""Virtual sound devices for the headset driver's tests: real PortAudio streams, no card.

Two kinds, both as ``tooling.md`` describes them:
- ``file_device``: an ALSA configuration whose default device writes what is played to a
  file and reads what is captured from another (byte-exact, no real-time pacing);
- ``pulse``: a PulseAudio server of the test's own (temporary HOME and XDG dirs, run in
  the foreground and stopped by PID) with two null sinks, 8 kHz (the default device, its
  monitor the default source) and 48 kHz (ALSA devices ``seat48`` / ``seat48mon``), so
  what the driver plays comes back to it in real time. A server that does not start
  fails the test with its log; nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_ALSA_PULSE = """\
pcm.!default { type pulse }
ctl.!default { type pulse }
pcm.seat48 { type pulse device "seat48" }
pcm.seat48mon { type pulse device "seat48.monitor" }
pcm.speaker { type asym playback.pcm { type pulse device "seat48" } }
"""

_DEFAULT_PA = """\
load-module module-native-protocol-unix auth-anonymous=1 socket={socket}
load-module module-null-sink sink_name=seat rate=8000 channels=1 format=s16le
load-module module-null-sink sink_name=seat48 rate=48000 channels=1 format=s16le
set-default-sink seat
set-default-source seat.monitor
"""

START_TIMEOUT_S = 10.0


@dataclass
class FileDevice:
    """The default ALSA device, backed by ``infile`` (captured) and ``outfile`` (played)."""

    infile: Path
    outfile: Path


def write_file_device_config(tmp: Path, infile: Path) -> FileDevice:
    outfile = tmp / "played.raw"
    conf = tmp / "asound.conf"
    # Two file PCMs behind one device: the file plugin also saves what it captures to its
    # `file`, so a shared one would mix the microphone into the played bytes.
    conf.write_text(
        "pcm.!default {\n"
        "  type asym\n"
        "  playback.pcm {\n"
        "    type plug\n"
        f'    slave.pcm {{ type file slave.pcm {{ type null }} file "{outfile}" format "raw" }}\n'
        "  }\n"
        "  capture.pcm {\n"
        "    type plug\n"
        "    slave.pcm { type file slave.pcm { type null } file \"/dev/null\"\n"
        f'                infile "{infile}" format "raw" }}\n'
        "  }\n"
        "}\n"
    )
    return FileDevice(infile, outfile)


@dataclass
class PulseServer:
    """A private PulseAudio server and the ``parec`` listeners that keep it low-latency."""

    root: Path
    env: dict[str, str]
    socket: Path
    proc: subprocess.Popen[bytes] | None = None
    listeners: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def log(self) -> str:
        path = self.root / "pulseaudio.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        if self.socket.exists():
            self.socket.unlink()
        with open(self.root / "pulseaudio.log", "ab") as log:
            # Foreground (stopped by PID), output to a file: a daemon that inherits the
            # caller's pipes can hang it.
            self.proc = subprocess.Popen(
                ["pulseaudio", "--daemonize=no", "--system=false", "--exit-idle-time=-1",
                 "-n", "--disable-shm=yes", "--log-target=stderr",
                 "-F", str(self.root / "default.pa")],
                env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"pulseaudio exited with {self.proc.returncode}:\n{self.log}")
            ok = self.socket.exists() and subprocess.run(
                ["pactl", "info"], env=self.env, capture_output=True, timeout=5
            ).returncode == 0
            if ok:
                break
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"pulseaudio did not start in {START_TIMEOUT_S} s:\n{self.log}")
            time.sleep(0.05)
        # The null sink renders in 2 s blocks until a low-latency client is attached.
        for monitor, rate in (("seat.monitor", 8000), ("seat48.monitor", 48000)):
            self.listeners.append(subprocess.Popen(
                ["parec", "--latency-msec=10", f"--device={monitor}", f"--rate={rate}",
                 "--channels=1", "--format=s16le", str(self.root / f"{monitor}.raw")],
                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            ))
        # ... and a sink already asleep for its first 2 s block only notices after a
        # suspend and resume.
        for sink in ("seat", "seat48"):
            for suspend in ("1", "0"):
                subprocess.run(["pactl", "suspend-sink", sink, suspend], env=self.env,
                               check=True, capture_output=True, timeout=5)
        while not all(self.captured(m) for m in ("seat.monitor", "seat48.monitor")):
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the null sinks' monitors gave no audio in {START_TIMEOUT_S} s")
            time.sleep(0.02)

    def kill(self) -> None:
        """The device goes away: the server dies at once, as a pulled USB plug would."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._stop_listeners()

    def pause(self, seconds: float) -> None:
        """The server stops taking audio for a while (SIGSTOP, then SIGCONT)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._stop_listeners()

    def _stop_listeners(self) -> None:
        for proc in self.listeners:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=5)
        self.listeners.clear()

    def captured(self, monitor: str) -> bytes:
        """What the ``parec`` on ``monitor`` has recorded so far."""
        path = self.root / f"{monitor}.raw"
        return path.read_bytes() if path.exists() else b""


@pytest.fixture
def file_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FileDevice:
    """The default ALSA device reads ``infile`` (written by the test) and writes ``outfile``."""
    infile = tmp_path / "captured.raw"
    infile.write_bytes(b"")
    device = write_file_device_config(tmp_path, infile)
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(tmp_path / "asound.conf"))
    return device


@pytest.fixture
def pulse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PulseServer]:
    for tool in ("pulseaudio", "pactl", "parec"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run `make install` (Makefile DEBS)")
    root = tmp_path / "pulse"
    dirs = {name: root / name for name in ("home", "runtime", "config")}
    for path in dirs.values():
        path.mkdir(parents=True)
    dirs["runtime"].chmod(0o700)
    socket = root / "native"
    (root / "default.pa").write_text(_DEFAULT_PA.format(socket=socket))
    (root / "asound.conf").write_text(_ALSA_PULSE)
    (root / "client.conf").write_text("autospawn = no\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(dirs["home"]),
        "XDG_RUNTIME_DIR": str(dirs["runtime"]),
        "XDG_CONFIG_HOME": str(dirs["config"]),
        "PULSE_SERVER": f"unix:{socket}",
        "PULSE_CLIENTCONFIG": str(root / "client.conf"),
    }
    # This process is a client too (PortAudio -> ALSA -> the pulse plugin): same server,
    # and no autospawn of a stray daemon when the test kills this one.
    for name, value in env.items():
        if name != "PATH":
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(root / "asound.conf"))
    server = PulseServer(root, env, socket)
    server.start()
    try:
        yield server
    finally:
        server.stop()
