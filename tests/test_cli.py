"""The ``appliance`` command as other tools use it: answers on the last line of stdout.

The audio files here are made outside the project, with sox, so the detectors are checked
against signals they did not generate themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.media.prompts import PromptLibrary
from tests.drivers._fake_ami import FakeAmi, block, var_set

ROOT = Path(__file__).resolve().parents[1]
SOUNDS = Path("/usr/share/asterisk/sounds/en")
DTMF = {"1": (697, 1209), "5": (770, 1336), "9": (852, 1477), "#": (941, 1477), "0": (941, 1336)}

pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is installed by make")


def appliance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def last_line(out: str) -> str:
    lines = out.splitlines()
    return lines[-1] if lines else ""


def sox(*args: str | Path) -> None:
    subprocess.run(["sox", *map(str, args)], check=True, capture_output=True)


def dtmf_file(tmp: Path, digits: str) -> Path:
    parts = []
    for i, d in enumerate(digits):
        lo, hi = DTMF[d]
        part = tmp / f"d{i}.wav"
        sox("-n", "-r", "8000", "-b", "16", "-c", "1", part, "synth", "0.07", "sine", lo,
            "synth", "0.07", "sine", "mix", hi, "gain", "-n", "-10", "pad", "0", "0.06")
        parts.append(part)
    out = tmp / "keys.wav"
    sox(*parts, out)
    return out


def test_detect_dtmf_prints_the_digits_of_a_sox_file(tmp_path: Path) -> None:
    res = appliance("detect", "dtmf", str(dtmf_file(tmp_path, "1590#")))
    assert res.returncode == 0, res.stderr
    assert last_line(res.stdout) == "1590#"


def test_detect_dtmf_prints_an_empty_line_for_speech(tmp_path: Path) -> None:
    res = appliance("detect", "dtmf", str(SOUNDS / "vm-intro.wav"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.endswith("\n") and last_line(res.stdout) == ""


def test_detect_dtmf_reads_a_wav_on_stdin_whatever_its_header(tmp_path: Path) -> None:
    # sox's keys, rewritten with the extensible header and the sizes a streaming writer
    # leaves (0), then piped in: the file is read once, from the start.
    with wave.open(str(dtmf_file(tmp_path, "590"))) as w:
        pcm = w.readframes(w.getnframes())
    guid = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 8000, 16000, 2, 16, 22, 16, 4) + guid
    piped = (b"RIFF" + bytes(4) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
             + b"data" + bytes(4) + pcm)
    res = subprocess.run([sys.executable, "-m", "appliance.cli", "detect", "dtmf", "/dev/stdin"],
                         cwd=ROOT, input=piped, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert last_line(res.stdout.decode()) == "590"


def test_detect_refuses_a_file_of_the_wrong_format(tmp_path: Path) -> None:
    wrong = tmp_path / "cd.wav"
    sox("-n", "-r", "44100", "-b", "16", "-c", "2", wrong, "synth", "0.2", "sine", "440")
    res = appliance("detect", "dtmf", str(wrong))
    assert res.returncode != 0
    assert "44100 Hz" in res.stderr and "expected 8000 Hz" in res.stderr


@pytest.mark.parametrize("kind", ["dtmf", "progress"])
def test_detect_refuses_a_file_cut_short(tmp_path: Path, kind: str) -> None:
    # A copy that stopped half-way: the keys (or the tone) at the end are missing, and an
    # answer from the first half would be wrong without a word.
    whole = dtmf_file(tmp_path, "159#")
    cut = tmp_path / "cut.wav"
    raw = whole.read_bytes()
    cut.write_bytes(raw[: len(raw) // 2])
    res = appliance("detect", kind, str(cut))
    assert res.returncode == 1
    assert "the file is cut short" in res.stderr and str(cut) in res.stderr


@pytest.mark.parametrize(("kind", "answer"), [("dtmf", ""), ("progress", "silence")])
def test_detect_takes_a_wav_that_declares_no_audio(tmp_path: Path, kind: str,
                                                   answer: str) -> None:
    # What the recorder leaves for a call recorded for no frame at all: valid, and empty.
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
    res = appliance("detect", kind, str(empty))
    assert res.returncode == 0, res.stderr
    assert res.stdout.endswith("\n") and last_line(res.stdout) == answer


@pytest.mark.parametrize("kind", ["dtmf", "progress"])
def test_detect_names_a_file_it_cannot_read(kind: str) -> None:
    # /proc/self/mem opens and then fails every read, as a bad sector does: a traceback.
    res = appliance("detect", kind, "/proc/self/mem")
    assert res.returncode == 1
    assert res.stderr.strip() == "Error: /proc/self/mem: cannot read (Input/output error)"


@pytest.mark.parametrize(
    ("name", "on", "off", "repeat", "expected"),
    [
        ("busy", 0.35, 0.35, 8, "busy"),
        ("congestion", 0.7, 0.7, 5, "congestion"),
        ("ringback", 1.0, 4.0, 3, "ringback"),
    ],
)
def test_detect_progress_on_sox_made_china_tones(
    tmp_path: Path, name: str, on: float, off: float, repeat: int, expected: str
) -> None:
    wav = tmp_path / f"{name}.wav"
    sox("-n", "-r", "8000", "-b", "16", "-c", "1", wav, "synth", str(on), "sine", "450",
        "gain", "-n", "-15", "pad", "0", str(off), "repeat", str(repeat - 1))
    res = appliance("detect", "progress", str(wav))
    assert res.returncode == 0, res.stderr
    assert last_line(res.stdout) == expected


def test_detect_progress_voice_and_silence(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.wav"
    sox("-n", "-r", "8000", "-b", "16", "-c", "1", quiet, "trim", "0", "12")
    answered = tmp_path / "answered.wav"
    sox(quiet, SOUNDS / "hello-world.wav", answered, "trim", "10")  # 2 s quiet, then "hello"
    assert last_line(appliance("detect", "progress", str(quiet)).stdout) == "silence"
    assert last_line(appliance("detect", "progress", str(answered)).stdout) == "voice"


def test_bench_engine_prints_its_figures_as_json() -> None:
    res = appliance("bench", "engine", "--channels", "12", "--seconds", "2", "--warmup", "1")
    assert res.returncode == 0, res.stderr
    figures = json.loads(last_line(res.stdout))
    for key in ("channels", "p50_lateness_ms", "p99_lateness_ms", "max_lateness_ms",
                "cpu_us_per_channel_frame", "rss_kib_per_channel", "key_to_prompt_p50_ms",
                "key_to_prompt_p99_ms", "late_inbound_pct"):
        assert key in figures, key
    assert figures["channels"] == figures["active_calls"] == 12
    assert figures["keys_measured"] > 0


@pytest.mark.parametrize(("bench", "args", "named"), [
    ("engine", ["--channels", "0"], "'--channels': 0 is not in the range x>=1"),
    ("transport", ["--seconds", "0.5"], "'--seconds': 0.5 is not in the range x>=1.0"),
    ("ivr", ["--load-core", "0"], "core 0 is the engine's (--engine-core)"),
    ("engine", ["--engine-core", "1"], "core 1 is the engine's (--engine-core)"),
    ("engine", ["--lead-ms", "25"], "'--lead-ms': 25.0 is not in the range"),
    # An empty book or call list used to end in IndexError / ZeroDivisionError.
    ("lookup", ["--policies", "0"], "'--policies': 0 is not in the range x>=1"),
    ("web", ["--calls", "10"], "'--calls': 10 is not in the range x>=100"),
    ("fax", ["--snr-db", "-5"], "'--snr-db': -5.0 is not in the range 0.0<=x<=60.0"),
])
def test_bench_refuses_figures_that_would_measure_nothing(bench: str, args: list[str],
                                                          named: str) -> None:
    res = appliance("bench", bench, *args)
    assert res.returncode == 2
    assert named in res.stderr
    assert res.stdout == ""  # no load started, no JSON


@pytest.mark.parametrize(("command", "args", "named"), [
    # 70000 used to wrap around to port 4464 and listen there.
    ("run", ["--port", "70000"], "'--port': 70000 is not in the range 0<=x<=65535"),
    ("run", ["--web-port", "65536"], "'--web-port': 65536 is not in the range"),
    # 0 used to start a new caller on every pass of the event loop.
    ("run", ["--every", "0"], "'--every': 0.0 is not in the range x>=0.1"),
    ("run", ["--concurrent", "-1"], "'--concurrent': -1 is not in the range x>=0"),
    ("engine", ["--control-port", "-1"], "'--control-port': -1 is not in the range"),
])
def test_run_and_engine_refuse_ports_and_rates_out_of_range(tmp_path: Path, command: str,
                                                           args: list[str], named: str) -> None:
    data = tmp_path / "box"
    res = appliance(command, "--data", str(data), *args)
    assert res.returncode == 2
    assert named in res.stderr
    assert not data.exists()  # refused before anything was set up


@pytest.mark.parametrize("command", ["run", "engine"])
def test_a_damaged_database_is_a_one_line_error_naming_the_file(tmp_path: Path,
                                                               command: str) -> None:
    data = tmp_path / "box"
    data.mkdir()
    junk = bytes(range(256)) * 20
    (data / "appliance.db").write_bytes(junk)
    ports = {"run": ["--port", "0", "--web-port", "0"], "engine": ["--sim", "--audiosocket", ""]}
    res = appliance(command, "--data", str(data), "--control-port", "0", *ports[command])
    assert res.returncode == 1
    assert (f"Error: could not open the database: {data / 'appliance.db'}: "
            "file is not a database") in res.stderr
    assert "Traceback" not in res.stderr
    assert (data / "appliance.db").read_bytes() == junk  # left as it was


def test_an_ipv6_address_is_written_in_brackets() -> None:
    from appliance.cli import _address

    assert _address("[::1]:9092", "--audiosocket") == ("::1", 9092)
    assert _address("::1:9092", "--audiosocket") == ("::1", 9092)
    assert _address("127.0.0.1:9092", "--audiosocket") == ("127.0.0.1", 9092)


@pytest.mark.parametrize(("args", "named"), [
    (["--audiosocket", "foo"], "Invalid value for --audiosocket: expected HOST:PORT, got 'foo'"),
    (["--audiosocket", "[]:9092"], "expected HOST:PORT, got '[]:9092'"),
    (["--audiosocket", ""], "no driver configured: give --audiosocket or --sim"),
])
def test_engine_options_are_checked_before_the_data_folder_is_made(
        tmp_path: Path, args: list[str], named: str) -> None:
    data = tmp_path / "box"
    res = appliance("engine", "--data", str(data), *args)
    assert res.returncode == 2
    assert named in res.stderr
    assert not data.exists()  # no folder, no lock, no database left behind


def test_engine_says_which_options_name_a_host_that_does_not_resolve(tmp_path: Path) -> None:
    res = appliance("engine", "--data", str(tmp_path / "box"), "--audiosocket",
                    "no-such-host.invalid:9092", "--control-port", "0")
    assert res.returncode == 1
    assert "is the host of --audiosocket or --ami a name this box resolves?" in res.stderr
    assert "Traceback" not in res.stderr


def test_run_refuses_a_web_port_in_use_instead_of_running_without_its_admin(
        tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = appliance("run", "--data", str(tmp_path / "box"), "--port", "0",
                        "--web-port", str(port), "--control-port", "0")
    assert res.returncode == 1
    assert (f"Error: could not start: [Errno 98] web admin on 127.0.0.1:{port}: Address "
            "already in use (another appliance running? try --port, --web-port, "
            "--control-port)") in res.stderr
    assert "engine up" not in res.stdout


def test_a_data_folder_that_is_a_file_is_named_without_a_port_hint(tmp_path: Path) -> None:
    data = tmp_path / "box"
    data.write_text("not a folder")
    res = appliance("run", "--data", str(data), "--port", "0", "--web-port", "0",
                    "--control-port", "0")
    assert res.returncode == 1
    assert str(data) in res.stderr and "File exists" in res.stderr
    assert "--port" not in res.stderr  # it blamed the AudioSocket port
    assert "Traceback" not in res.stderr


def test_a_second_engine_on_the_same_data_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "box"
    args = [sys.executable, "-m", "appliance.cli", "engine", "--data", str(data), "--sim",
            "--audiosocket", "", "--control-port", "0"]
    first = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             text=True)
    try:
        lock = data / "engine.lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        res = appliance("engine", "--data", str(data), "--sim", "--audiosocket", "",
                        "--control-port", "0")
        assert res.returncode == 1
        assert (f"Error: {data}: another engine (process {first.pid}) is using this data "
                "folder") in res.stderr
        assert first.poll() is None  # the first engine and its calls are untouched
        # A killed holder leaves no stale lock: the kernel drops it with the process.
        first.kill()
        first.wait(timeout=30)
        again = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, text=True)
        try:
            while lock.read_text().strip() != str(again.pid):
                assert again.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        finally:
            again.kill()
            again.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_bench_transport_streams_every_frame_and_prints_its_floor() -> None:
    res = appliance("bench", "transport", "--channels", "8", "--seconds", "2", "--warmup", "1")
    assert res.returncode == 0, res.stderr
    figures = json.loads(last_line(res.stdout))
    assert figures["channels"] == figures["active_calls"] == 8
    # Every call's 50 frames a second went through the driver (a dropped or stuck
    # connection would show as fewer); the CPU split adds up.
    assert 45 <= figures["frames_in_per_channel_second"] <= 55
    assert figures["cpu_us_per_channel_frame"] == pytest.approx(
        figures["cpu_user_us_per_channel_frame"] + figures["cpu_sys_us_per_channel_frame"],
        abs=0.02)


def test_bench_ivr_walks_the_default_menus_and_times_each_key() -> None:
    res = appliance("bench", "ivr", "--channels", "6", "--seconds", "4", "--warmup", "5",
                    "--lang", "yue")
    assert res.returncode == 0, res.stderr
    figures = json.loads(last_line(res.stdout))
    assert figures["flow"] == "default (yue)" and figures["active_calls"] == 6
    # Every key brought the prompt the menu leads to (a key the IVR misread would put the
    # call on another prompt, and the next key would find this one still unanswered).
    assert figures["keys_measured"] >= 6 and figures["keys_missed"] == 0
    assert figures["key_to_prompt_p50_ms"] is not None


def test_run_starts_the_appliance_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    import urllib.request

    web_port = free_port()
    proc = start_run(tmp_path / "var", web_port, every=1)
    try:
        assert proc.stdout is not None
        seen = []
        answered = web_up = sms_out = sms_in = False
        for line in proc.stdout:
            seen.append(line)
            answered = answered or "answered" in line  # a caller got through to the IVR
            web_up = web_up or "web admin first login" in line
            # The simulated GSM modem: the demo's reminder went out, a question came in.
            sms_out = sms_out or ("SMS 1 to" in line and ": sent" in line)
            sms_in = sms_in or ("SMS from +86" in line and "保单" in line)
            if answered and web_up and sms_out and sms_in:
                break
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/login", timeout=10) as r:
            assert r.status == 200 and "登录" in r.read().decode()
        # The engine's control API, where the web finds it: three demo agents and a seat
        # left for the seat console.
        from appliance.control import ControlClient

        views = ControlClient.for_data(tmp_path / "var").request("seats")
        assert [(v["id"], v["state"]) for v in views] == [
            ("s1", "ready"), ("s2", "ready"), ("s3", "ready"), ("s4", "logged-out")]
        # The reminders' "run now": a pass starts, or one runs already, or the calling
        # window is closed at the hour the test runs.
        run = ControlClient.for_data(tmp_path / "var").request("reminders-run")
        assert run["started"] or run["why"] in ("running", "window", "holiday"), run
        out = interrupt(proc)
    finally:
        reap(proc)
    text = "".join(seen) + out
    assert proc.returncode == 0, text
    assert "loaded the demo book" in text and "engine up" in text
    assert "premium reminders on" in text and "5 demo holders due today" in text
    assert "stopped cleanly" in text and "end shutdown" in text
    assert f"web admin at http://127.0.0.1:{web_port}/" in text
    assert "web admin stopped" in text


def test_run_stops_cleanly_when_its_terminal_closes_and_its_web_never_outlives_it(
        tmp_path: Path) -> None:
    web_port = free_port()
    args = [sys.executable, "-m", "appliance.cli", "run", "--data", str(tmp_path / "var"),
            "--port", "0", "--every", "5", "--web-port", str(web_port), "--control-port", "0"]

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if f"web admin at http://127.0.0.1:{web_port}/" in line:
                return proc
        raise AssertionError(f"appliance run ended: {proc.wait()}")

    # The terminal closes (SIGHUP): it killed the run at once, leaving the web admin.
    proc = start()
    try:
        proc.send_signal(signal.SIGHUP)
        out, _ = proc.communicate(timeout=60)
    finally:
        reap(proc)
    assert proc.returncode == 0 and "stopped cleanly" in out and "web admin stopped" in out
    with sqlite3.connect(tmp_path / "var" / "appliance.db") as db:
        # The simulated modem's /dev/pts number is someone else's terminal from now on.
        assert db.execute("SELECT enabled FROM sms_modem").fetchall() == [(0,)]
    # Killed outright: the web admin goes with it instead of holding its port.
    proc = start()
    try:
        proc.kill()
        proc.communicate(timeout=30)
        deadline = time.monotonic() + 30
        while web_listening(web_port):
            assert time.monotonic() < deadline, "the web admin outlived appliance run"
            time.sleep(0.2)
    finally:
        reap(proc)


def test_run_starts_its_web_admin_again_when_it_dies_mid_run(tmp_path: Path) -> None:
    import urllib.request

    web_port = free_port()
    proc = start_run(tmp_path / "var", web_port, every=5)
    admin = f"web admin at http://127.0.0.1:{web_port}/"
    # Killed if the admin never comes back, so the reading below ends instead of hanging.
    watchdog = threading.Timer(90, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        seen = [line for line in itertools.takewhile(lambda x: admin not in x, proc.stdout)]
        (web_pid,) = children(proc.pid)
        os.kill(web_pid, signal.SIGKILL)  # a crash, the OOM killer
        for line in proc.stdout:
            seen.append(line)
            if admin in line:
                break
        assert "web admin was killed by signal 9" in "".join(seen), "".join(seen)
        (again,) = children(proc.pid)
        assert again != web_pid
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/login", timeout=10) as r:
            assert r.status == 200 and "登录" in r.read().decode()
        out = interrupt(proc)
    finally:
        watchdog.cancel()
        reap(proc)
    assert proc.returncode == 0 and "stopped cleanly" in out and "web admin stopped" in out
    assert not web_listening(web_port)


def children(pid: int) -> list[int]:
    """The processes ``pid`` started that are still running (the web admin)."""
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(p) for p in found]


def start_run(data: Path, web_port: int, every: int) -> subprocess.Popen[str]:
    """``appliance run`` on ``data`` with its web admin on ``web_port``, a simulated call
    every ``every`` seconds; its stdout is a pipe to read."""
    return subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "run", "--data", str(data), "--port", "0",
         "--every", str(every), "--web-port", str(web_port), "--control-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )


def web_listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def interrupt(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Ctrl-C to an ``appliance`` process, as a person stops it; what it printed after."""
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=timeout)
    return out


def reap(proc: subprocess.Popen[str]) -> None:
    """After a test, failed or not: no ``appliance`` process left running."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def start_engine(data: Path, *args: str, until: str) -> tuple[subprocess.Popen[str], list[str]]:
    """``appliance engine --data DATA ARGS`` and the lines it printed up to ``until``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "engine", "--data", str(data), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if until in line:
            break
    return proc, seen


@contextlib.contextmanager
def fake_ami_thread() -> Iterator[tuple[FakeAmi, asyncio.AbstractEventLoop]]:
    """A fake AMI served from its own thread's loop (the engine under test is a process)."""
    loop = asyncio.new_event_loop()
    ami = FakeAmi()
    serving = threading.Thread(target=loop.run_forever, daemon=True)
    serving.start()
    asyncio.run_coroutine_threadsafe(ami.start(), loop).result(5)
    try:
        yield ami, loop
    finally:
        asyncio.run_coroutine_threadsafe(ami.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        serving.join(5)
        loop.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def engine_with_ami(data: Path, ami: FakeAmi, secret: Path) -> tuple[subprocess.Popen[str],
                                                                        list[str], int]:
    """``appliance engine`` on AudioSocket (a free port, returned) with ``ami`` as its AMI."""
    secret.write_text("s3cret-pass\n")
    port = free_port()
    proc, seen = start_engine(data, "--audiosocket", f"127.0.0.1:{port}",
                              "--ami", f"127.0.0.1:{ami.port}", "--ami-secret-file",
                              str(secret), until="AMI client for")
    return proc, seen, port


def audiosocket_second(port: int, call_id: uuid.UUID) -> bytes:
    """Asterisk's side of a call to the engine on ``port``: the UUID, then a second of
    silence; what the engine sent back over that second."""
    from drivers.asterisk import protocol

    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(protocol.uuid_msg(call_id))
        for _ in range(50):
            conn.sendall(protocol.audio(bytes(320)))
        got = b""
        while len(got) < 50 * 323:
            chunk = conn.recv(65536)
            assert chunk, "the engine closed the call"
            got += chunk
    return got


def wait_until(condition: Callable[[], object], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_engine_serves_the_control_api_for_the_seats_and_queues_saved(tmp_path: Path) -> None:

    from appliance.acd import QueueConfig, SeatConfig, records
    from appliance.control import ControlClient
    from appliance.store.db import Store

    (tmp_path / "var").mkdir()
    with Store(tmp_path / "var" / "appliance.db") as store:
        records.save_seat(store, SeatConfig("s1", "8001", name="坐席一"), 0.0)
        records.save_queue(store, QueueConfig("service"), 0.0).result()
    proc, seen = start_engine(tmp_path / "var", "--sim", "--audiosocket", "",
                              "--control-port", "0", until="control API on")
    try:
        client = ControlClient.for_data(tmp_path / "var")
        assert f"control API on 127.0.0.1:{client.port}" in seen[-1]
        view = client.request("login", seat="s1", agent="A001")
        assert view["state"] == "ready"
        out = interrupt(proc, timeout=30)
    finally:
        reap(proc)
    assert proc.returncode == 0, "".join(seen) + out


def test_engine_runs_the_published_ivr_and_answers_audiosocket(tmp_path: Path) -> None:
    import uuid

    from drivers.asterisk import protocol

    port = free_port()  # for the AudioSocket listener
    proc, seen = start_engine(tmp_path / "var", "--audiosocket", f"127.0.0.1:{port}",
                              until="AudioSocket server listening")
    try:
        assert any("IVR flow 'default' version 1 is live" in line for line in seen), seen
        # Asterisk's side: the UUID, then a second of silence; the IVR's greeting comes back.
        got = audiosocket_second(port, uuid.uuid4())
        welcome = PromptLibrary().get("welcome", "zh").frames[0]
        assert protocol.audio(welcome) in got  # the default flow's greeting, in Mandarin
        out = interrupt(proc)
    finally:
        reap(proc)
    assert proc.returncode == 0, out


def test_bench_web_prints_page_times_and_the_import_as_json() -> None:
    res = appliance("bench", "web", "--policies", "500", "--calls", "2000", "--rounds", "5",
                    "--import-rows", "300")
    assert res.returncode == 0, res.stderr
    figures = json.loads(last_line(res.stdout))
    assert figures["policies"] == 500 and figures["calls"] == 2000
    assert figures["import_rows"] == 300 and figures["policies_after_import"] == 1100
    assert figures["search_p95_ms"] > 0 and figures["list_p95_ms"] > 0
    assert figures["import_seconds"] > 0 and figures["import_xlsx_seconds"] > 0


def test_engine_names_audiosocket_calls_by_the_ami_and_follows_the_ports_route(
        tmp_path: Path) -> None:
    """A call on port 3, which the admin routes to 95598 (the prompt-recording line): the
    AMI event names its channel, so the caller hears that line, not the IVR's welcome."""
    import uuid

    from appliance.box.ports import Port
    from appliance.box.settings import save_port
    from appliance.store.db import Store
    from drivers.asterisk import protocol

    data = tmp_path / "var"
    data.mkdir()
    with Store(data / "appliance.db") as store:
        save_port(store, Port(3, "fxo", "fxs_ks", "none", "number", "95598"),
                  old_channel=None, by="test")
    with fake_ami_thread() as (ami, loop):
        proc, seen, port = engine_with_ami(data, ami, tmp_path / "ami.secret")
        try:
            wait_until(lambda: ami.logins == 1)
            call_id = uuid.uuid4()
            loop.call_soon_threadsafe(ami.send, var_set(str(call_id), 3))
            got = audiosocket_second(port, call_id)
            prompts = PromptLibrary()
            assert protocol.audio(prompts.get("rec_welcome", "zh").frames[0]) in got
            assert protocol.audio(prompts.get("welcome", "zh").frames[0]) not in got
            out = interrupt(proc)
        finally:
            reap(proc)
    assert proc.returncode == 0, out
    assert "(port 3) from 13800138000" in "".join(seen) + out


def test_engine_refuses_an_ami_without_its_secret(tmp_path: Path) -> None:
    res = appliance("engine", "--data", str(tmp_path), "--ami", "127.0.0.1:5038")
    assert res.returncode == 2 and "--ami needs --ami-secret-file" in res.stderr
    res = appliance("engine", "--data", str(tmp_path), "--ami", "127.0.0.1:5038",
                    "--ami-secret-file", str(tmp_path / "nope"))
    assert res.returncode == 2 and "cannot read" in res.stderr and "nope" in res.stderr
    res = appliance("engine", "--data", str(tmp_path), "--ami", "asterisk",
                    "--ami-secret-file", str(tmp_path / "nope"))
    assert res.returncode == 2 and "expected HOST:PORT, got 'asterisk'" in res.stderr


@pytest.mark.parametrize(("content", "said"), [
    ("s3cret-pass\r\n".encode("utf-16"), "is not UTF-8 text"),
    (b"[appliance]\nsecret = s3cret-pass\n", "holds more than the secret on one line"),
], ids=["utf-16", "two-lines"])
def test_engine_refuses_an_ami_secret_file_it_could_never_log_in_with(
        tmp_path: Path, content: bytes, said: str) -> None:
    # UTF-16 was a traceback; two lines started an engine that retried its login for
    # ever, printing the secret in clear at each try.
    secret = tmp_path / "secret"
    secret.write_bytes(content)
    res = appliance("engine", "--data", str(tmp_path / "box"), "--ami", "127.0.0.1:5038",
                    "--ami-secret-file", str(secret))
    assert res.returncode == 2 and said in res.stderr, res.stderr
    assert "s3cret" not in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "box").exists()


def test_a_bom_is_no_part_of_the_ami_secret(tmp_path: Path) -> None:
    from appliance.cli import _ami_options

    secret = tmp_path / "secret"
    secret.write_bytes(b"\xef\xbb\xbfs3cret-pass\r\n")  # Notepad's UTF-8
    account = _ami_options("127.0.0.1:5038", "appliance", secret, "127.0.0.1:9092")
    assert account == ("127.0.0.1", 5038, "appliance", "s3cret-pass")


def test_engine_with_the_ami_places_premium_reminders_on_asterisks_trunks(
        tmp_path: Path) -> None:
    """A policy due today: the engine's reminder pass dials its holder through the AMI
    (an Originate on the outbound trunk group), and Asterisk's busy comes back as the
    attempt's outcome."""
    import datetime as dt

    from appliance.store.db import Store
    from tests.reminders.helpers import add_policy, set_settings

    data = tmp_path / "var"
    data.mkdir()
    with Store(data / "appliance.db") as store:
        add_policy(store, "P-AMI-1", "13912345678", dt.date.today())
        set_settings(store, window_start="00:00", window_end="23:59")

    with fake_ami_thread() as (ami, loop):
        def originated() -> bytes:
            return next((b for b in list(ami.received)
                         if b.startswith(b"Action: Originate")), b"")

        proc, seen, _ = engine_with_ami(data, ami, tmp_path / "ami.secret")
        try:
            wait_until(originated)
            sent = originated()
            assert b"Channel: DAHDI/g1/13912345678\r\n" in sent, "".join(seen)
            action_id = sent.split(b"ActionID: ")[1].split(b"\r\n")[0].decode()
            loop.call_soon_threadsafe(ami.send, block(
                "Event: OriginateResponse", f"ActionID: {action_id}", "Response: Failure",
                "Channel: DAHDI/g1/13912345678", "Reason: 5", "Uniqueid: <null>"))
            with Store(data / "appliance.db") as store:
                def outcome() -> object:
                    rows = store.query("SELECT outcome FROM reminder_attempts")
                    return rows and rows[0]["outcome"]

                wait_until(outcome)
                assert store.query("SELECT outcome FROM reminder_attempts") == [
                    {"outcome": "busy"}]
            out = interrupt(proc)
        finally:
            reap(proc)
    assert proc.returncode == 0, out


def test_the_engine_sends_queued_sms_and_stores_received_ones_through_the_modem(
        tmp_path: Path) -> None:
    """``appliance engine`` runs the SMS service: the modem saved on the lines page (here
    the simulated one, a pseudo-terminal of this process) sends a queued message and its
    reply becomes a row."""
    import time

    from appliance.box.settings import ModemSettings, save_modem
    from appliance.sms import messages
    from appliance.store.db import Store
    from drivers.gsm.simulated import SimulatedModem

    (tmp_path / "var").mkdir()
    modem = SimulatedModem()
    with Store(tmp_path / "var" / "appliance.db") as store:
        save_modem(store, ModemSettings(modem.path, 115200, "", True), by="admin")
        store.write(lambda db: messages.queue(db, "13800138000", "引擎发出的短信", by="admin",
                                              now=time.time()))
    modem.deliver("+8613800138000", "回复：收到")
    proc, seen = start_engine(tmp_path / "var", "--sim", "--audiosocket", "",
                              until="is live")
    try:
        with Store(tmp_path / "var" / "appliance.db") as store:
            deadline = time.monotonic() + 20
            rows: list[dict[str, object]] = []
            while time.monotonic() < deadline:
                rows = store.query("SELECT direction, text, status FROM sms_messages"
                                   " ORDER BY id")
                if len(rows) == 2 and rows[0]["status"] == "sent":
                    break
                time.sleep(0.2)
        assert rows == [{"direction": "out", "text": "引擎发出的短信", "status": "sent"},
                        {"direction": "in", "text": "回复：收到", "status": "received"}]
        assert [s["text"] for s in modem.sent] == ["引擎发出的短信"] and modem.sim == {}
        out = interrupt(proc)
    finally:
        reap(proc)
        modem.close()
    assert proc.returncode == 0, "".join(seen) + out


@pytest.mark.parametrize("args", [
    ("run", "--data", ""), ("engine", "--data", " "),
    ("run", "--web-port", "23593", "--control-port", "23593"),
    ("run", "--port", "23592", "--web-port", "23592"),
    ("bench", "engine", "--channels", "2", "--seconds", "nan"),
    ("bench", "transport", "--channels", "2", "--lead-ms", "inf"),
    ("run", "--every", "nan"), ("bench", "fax", "--seed", "-1"),
], ids=["run-empty-data", "engine-blank-data", "web-and-control-port", "audiosocket-and-web",
        "nan-seconds", "inf-lead", "nan-every", "negative-seed"])
def test_bad_options_are_refused_before_anything_starts(tmp_path: Path,
                                                        args: tuple[str, ...]) -> None:
    # An empty --data (an unset variable in a unit file) put the database in the folder the
    # command started in; two services on one port left the box without its web admin
    # half a minute later; nan ran a bench forever or printed a NaN that is not JSON.
    res = subprocess.run([sys.executable, "-m", "appliance.cli", *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written where it was started


def test_run_stopped_in_the_last_moment_of_its_start_stops_cleanly(tmp_path: Path) -> None:
    # SIGTERM (systemctl stop, a quick Ctrl-C) while the engine was starting its drivers:
    # the demo went on with the store closed, a traceback and exit status 1.
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "run", "--data", str(tmp_path / "box"),
         "--port", "0", "--web-port", "0", "--control-port", "0", "--concurrent", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "control API on" in line:
                proc.send_signal(signal.SIGTERM)
                break
        seen.extend(proc.stdout)
        assert proc.wait(timeout=60) == 0, "".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    out = "".join(seen)
    assert "Traceback" not in out and "Error" not in out
    assert "stopped before the start-up finished" in out or "stopped cleanly" in out


def test_run_goes_on_when_nobody_reads_its_console_any_more(tmp_path: Path) -> None:
    # `appliance run | head`: once the pipe closed, every call event raised out of the
    # console printer before reaching the web's live pages, and the web admin died on its
    # own print at each restart.
    web_port = free_port()
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance.cli", "run", "--data", str(tmp_path / "box"),
             "--port", "0", "--web-port", str(web_port), "--control-port", "0",
             "--every", "0.5", "--concurrent", "2"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "engine up" in line:
                    break
            proc.stdout.close()  # the reader goes away
            time.sleep(6)  # calls come and go, the web admin (re)starts
            with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/login",
                                        timeout=10) as page:
                assert page.status == 200
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = errors.read_text()
    assert "Traceback" not in text and "event listener failed" not in text
    assert "the console cannot be written any more" in text


@pytest.mark.parametrize("args", [("detect", "dtmf"), ("say", "--lang", "zh", "--kind", "number",
                                                       "12")], ids=["detect", "say"])
def test_an_answer_that_cannot_be_written_is_one_line_of_error(tmp_path: Path,
                                                             args: tuple[str, ...]) -> None:
    # stdout on a full disk: a 25-line traceback.
    if args[0] == "detect":
        args = (*args, str(dtmf_file(tmp_path, "5")))
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "appliance.cli", *args], cwd=ROOT,
                             stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip() == "Error: cannot write the answer: No space left on device"
