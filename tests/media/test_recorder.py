"""Recorder and recover(): exact frames in, playable WAV out, even after kill -9."""

from __future__ import annotations

import logging
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from appliance.media import recorder
from appliance.media.frame import FRAME_BYTES, SAMPLE_RATE, SAMPLES_PER_FRAME
from appliance.media.recorder import Recorder, recover, wav_frames
from appliance.media.wavio import read_slin
from tests.rig import DiskFills


def pattern(i: int, channels: int = 1) -> bytes:
    """Frame ``i`` of a sample counter: every byte of a recording is predictable."""
    n = SAMPLES_PER_FRAME * channels
    return np.arange(i * n, i * n + n, dtype=np.uint32).astype("<u2").tobytes()


def expected_pcm(frames: int, channels: int = 1) -> bytes:
    return b"".join(pattern(i, channels) for i in range(frames))


def wav_contents(path: Path) -> tuple[int, int, bytes]:
    """(channels, frames in the header, data) after checking the format and header sizes."""
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getsampwidth()) == (SAMPLE_RATE, 2)
        nch, nframes = w.getnchannels(), w.getnframes()
        data = w.readframes(nframes)
    raw = path.read_bytes()
    riff_size, data_size = struct.unpack("<L", raw[4:8])[0], struct.unpack("<L", raw[40:44])[0]
    assert riff_size == len(raw) - 8
    assert data_size == len(raw) - 44 == nframes * 2 * nch == len(data)
    return nch, nframes, data


@pytest.mark.parametrize("channels", [1, 2])
def test_write_close_gives_exact_wav(tmp_path: Path, channels: int) -> None:
    final = tmp_path / "call.wav"
    rec = Recorder(final, channels=channels)
    for i in range(7):
        rec.write(pattern(i, channels))
    assert rec.frames_written == 7
    assert rec.part_path == tmp_path / "call.wav.part"
    assert not final.exists()
    assert rec.close() == final == rec.path
    assert not rec.part_path.exists()
    nch, nframes, data = wav_contents(final)
    assert nch == channels
    assert nframes == 7 * SAMPLES_PER_FRAME
    assert data == expected_pcm(7, channels)


def test_mono_file_reads_back_through_wavio(tmp_path: Path) -> None:
    with Recorder(tmp_path / "a.wav") as rec:
        for i in range(3):
            rec.write(pattern(i))
    samples = read_slin(tmp_path / "a.wav")
    assert samples.tobytes() == expected_pcm(3)


def test_many_frames(tmp_path: Path) -> None:
    final = tmp_path / "long.wav"
    rec = Recorder(final, flush_frames=50)
    n = 3000  # one minute
    for i in range(n):
        rec.write(pattern(i))
        if i == n // 2:
            assert not final.exists()
    rec.close()
    _, nframes, data = wav_contents(final)
    assert nframes == n * SAMPLES_PER_FRAME
    assert data == expected_pcm(n)


def test_nothing_at_final_path_before_close(tmp_path: Path) -> None:
    final = tmp_path / "x.wav"
    rec = Recorder(final, flush_frames=2)
    for i in range(10):
        rec.write(pattern(i))
    rec.flush()
    assert not final.exists()
    assert rec.part_path.stat().st_size == 44 + 10 * FRAME_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.wav.part"]
    rec.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.wav"]


def test_flushes_every_flush_frames_with_offset(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "s.wav", flush_frames=50, flush_offset=10)
    size = rec.part_path.stat
    assert size().st_size == 44  # header written at once: an early crash still recovers
    for i in range(39):
        rec.write(pattern(i))
    assert size().st_size == 44
    rec.write(pattern(39))  # (40 + 10) % 50 == 0
    assert size().st_size == 44 + 40 * FRAME_BYTES
    for i in range(40, 89):
        rec.write(pattern(i))
    assert size().st_size == 44 + 40 * FRAME_BYTES
    rec.write(pattern(89))  # (90 + 10) % 50 == 0
    assert size().st_size == 44 + 90 * FRAME_BYTES
    rec.abort()


def test_close_is_idempotent(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "i.wav")
    rec.write(pattern(0))
    first = rec.close()
    before = first.read_bytes()
    assert rec.close() == first
    rec.flush()
    rec.abort()  # a finished recording is never removed by abort
    assert first.read_bytes() == before
    assert rec.frames_written == 1
    with pytest.raises(ValueError, match="closed"):
        rec.write(pattern(1))


def test_abort_removes_the_part(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "gone.wav", flush_frames=1)
    for i in range(5):
        rec.write(pattern(i))
    rec.abort()
    rec.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="closed"):
        rec.write(pattern(5))


def test_disk_error_stops_the_recording_not_the_caller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recorder(tmp_path / "full.wav", flush_frames=5)
    for i in range(5):
        rec.write(pattern(i))

    monkeypatch.setattr(rec, "_file", DiskFills(rec._file, room=0))
    with caplog.at_level(logging.ERROR, logger="appliance.media.recorder"):
        for i in range(5, 12):
            rec.write(pattern(i))  # the flush at frame 10 fails; write() does not raise
    assert isinstance(rec.error, OSError)
    assert "full.wav.part" in caplog.text and "No space left" in caplog.text
    monkeypatch.undo()
    assert rec.frames_written == 12
    final = rec.close()
    # What reached the disk before the failure is a playable file; nothing after it.
    assert wav_contents(final)[2] == expected_pcm(5)
    assert wav_frames(final) == 5


def test_a_disk_that_fills_inside_a_write_leaves_exactly_what_it_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A buffered writer took the bytes the disk then refused, the header patch at close
    # failed on them, and the .part said 0 frames until the next start's recovery.
    rec = Recorder(tmp_path / "short.wav", flush_frames=5)
    for i in range(5):
        rec.write(pattern(i))
    monkeypatch.setattr(rec, "_file", DiskFills(rec._file, room=3 * 320 + 101))
    for i in range(5, 15):
        rec.write(pattern(i))
    assert isinstance(rec.error, OSError)
    final = rec.close()  # finished with what the disk holds, not left a .part
    assert not rec.part_path.exists()
    pcm = wav_contents(final)[2]
    assert pcm == expected_pcm(15)[: 8 * 320 + 100]  # a half sample is cut off
    assert wav_frames(final) == 8


@pytest.mark.parametrize("channels", [1, 2])
def test_a_recording_stops_where_a_wav_header_can_no_longer_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
    channels: int
) -> None:
    # The real limit is 4 GiB (37 hours of a stereo call); past it close() died on the
    # header's 32-bit size and the whole recording was lost. Shrunk here to 7.5 frames.
    monkeypatch.setattr(recorder, "MAX_DATA_BYTES", 7 * FRAME_BYTES * channels + 161)
    rec = Recorder(tmp_path / "long.wav", channels=channels, flush_frames=3)
    with caplog.at_level(logging.ERROR, logger="appliance.media.recorder"):
        for i in range(12):
            rec.write(pattern(i, channels))
    assert isinstance(rec.error, OSError) and "4 GiB" in str(rec.error)
    assert "long.wav.part: recording stopped: the 4 GiB a WAV file can hold is full" \
        in caplog.text
    final = rec.close()
    data = wav_contents(final)[2]
    assert data == expected_pcm(12, channels)[: len(data)]
    assert len(data) == 7 * FRAME_BYTES * channels + 160 - 160 % (2 * channels)


def test_a_folder_that_cannot_be_synced_after_the_rename_keeps_the_recording(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file was finished and in place, but close() raised: the call's row named no
    # recording and no later start looked for it.
    def fails(directory: Path) -> None:
        raise OSError(5, "Input/output error")

    rec = Recorder(tmp_path / "synced.wav", flush_frames=5)
    for i in range(7):
        rec.write(pattern(i))
    monkeypatch.setattr(recorder, "_fsync_dir", fails)
    with caplog.at_level(logging.WARNING, logger="appliance.media.recorder"):
        assert rec.close() == tmp_path / "synced.wav"
    assert "its folder could not be synced" in caplog.text
    assert wav_contents(tmp_path / "synced.wav")[2] == expected_pcm(7)
    assert not rec.part_path.exists()


def test_refuses_to_replace_a_finished_recording(tmp_path: Path) -> None:
    (tmp_path / "dup.wav").write_bytes(b"keep")
    with pytest.raises(FileExistsError, match=r"dup\.wav"):
        Recorder(tmp_path / "dup.wav")
    assert (tmp_path / "dup.wav").read_bytes() == b"keep"
    assert not (tmp_path / "dup.wav.part").exists()


def crashed_part(directory: Path, name: str, frames: int, channels: int = 1) -> Path:
    """A .part as a crash leaves it: flushed frames under a header that says 0 bytes."""
    scratch = directory / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    rec = Recorder(scratch / name, channels=channels, flush_frames=10_000)
    for i in range(frames):
        rec.write(pattern(i, channels))
    rec.flush()
    snapshot = rec.part_path.read_bytes()  # what the OS holds at the moment of the crash
    rec.abort()
    part = directory / (name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(snapshot)
    return part


def test_recover_repairs_a_header_never_patched(tmp_path: Path) -> None:
    part = crashed_part(tmp_path / "2026" / "05", "c1.wav", 12)
    assert struct.unpack("<L", part.read_bytes()[40:44])[0] == 0
    with part.open("ab") as f:
        f.write(b"\x07")  # half a sample, as a kill in the middle of a write leaves
    assert recover(tmp_path) == [tmp_path / "2026" / "05" / "c1.wav"]
    assert not part.exists()
    _, nframes, data = wav_contents(tmp_path / "2026" / "05" / "c1.wav")
    assert nframes == 12 * SAMPLES_PER_FRAME
    assert data == expected_pcm(12)
    assert recover(tmp_path) == []


def test_recover_stereo_drops_partial_sample_frame(tmp_path: Path) -> None:
    part = crashed_part(tmp_path, "st.wav", 4, channels=2)
    with part.open("ab") as f:
        f.write(b"\x01\x02\x03")  # 3 of the 4 bytes of a stereo sample frame
    [final] = recover(tmp_path)
    nch, nframes, data = wav_contents(final)
    assert (nch, nframes) == (2, 4 * SAMPLES_PER_FRAME)
    assert data == expected_pcm(4, 2)
    assert wav_frames(final) == 4  # 20 ms frames, what index_recording wants


def test_recover_header_only_part_is_an_empty_wav(tmp_path: Path) -> None:
    part = crashed_part(tmp_path, "empty.wav", 0)
    assert part.stat().st_size == 44
    [final] = recover(tmp_path)
    assert wav_contents(final)[1] == 0


def test_recover_moves_a_headerless_part_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "short.wav.part").write_bytes(b"RIFF\x00")
    (tmp_path / "junk.wav.part").write_bytes(b"not a wav file at all" * 4)
    with caplog.at_level(logging.WARNING, logger="appliance.media.recorder"):
        assert recover(tmp_path) == []
    assert (tmp_path / "short.wav.broken").read_bytes() == b"RIFF\x00"
    assert (tmp_path / "junk.wav.broken").exists()
    assert not list(tmp_path.glob("*.part"))
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "short.wav.part" in messages and "too short" in messages
    assert "junk.wav.part" in messages


def test_recover_leaves_a_part_it_cannot_touch_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read-only folder or a bad sector must not keep the box from starting.
    crashed_part(tmp_path, "a.wav", 2)
    crashed_part(tmp_path, "b.wav", 3)
    real_replace = os.replace

    def refuse_a(src: str | Path, dst: str | Path) -> None:
        if Path(src).name == "a.wav.part":
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse_a)
    with caplog.at_level(logging.ERROR, logger="appliance.media.recorder"):
        assert recover(tmp_path) == [tmp_path / "b.wav"]
    assert (tmp_path / "a.wav.part").exists()  # kept for the next start
    assert "a.wav.part: could not recover" in caplog.text and "Permission denied" in caplog.text


@pytest.mark.parametrize("room", [0, 10])  # nothing, or part of the header, written
def test_a_recording_that_cannot_start_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    real_open = open

    def on_a_full_disk(path: Path, mode: str, buffering: int = -1) -> DiskFills:
        return DiskFills(real_open(path, mode, buffering), room=room)

    monkeypatch.setattr("appliance.media.recorder.open", on_a_full_disk, raising=False)
    with pytest.raises(OSError, match=r"No space left|header was not written whole"):
        Recorder(tmp_path / "full.wav")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("offset", "value", "why"), [
    (22, 0, "0 channel"), (22, 3, "3 channel"), (24, 0, "at 0 Hz"), (24, 16000, "16000 Hz")])
def test_recover_moves_aside_a_part_whose_format_the_recorder_never_writes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, offset: int, value: int, why: str
) -> None:
    # Renamed into place, such a file broke the engine's start (no channels: wave.Error
    # out of the indexing) or every later backup's check (3 channels, 0 Hz).
    part = crashed_part(tmp_path, "odd.wav", 5)
    data = bytearray(part.read_bytes())
    data[offset:offset + (2 if offset == 22 else 4)] = value.to_bytes(
        2 if offset == 22 else 4, "little")
    part.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="appliance.media.recorder"):
        assert recover(tmp_path) == []
    assert why in caplog.text
    assert (tmp_path / "odd.wav.broken").read_bytes() == bytes(data)  # the audio is kept


def test_recover_moves_aside_a_part_too_long_for_a_wav(tmp_path: Path) -> None:
    part = crashed_part(tmp_path, "long.wav", 1)
    with open(part, "r+b") as f:
        f.truncate(2**32 + 1000)  # sparse: struct.pack of its size raised, at every start
    assert recover(tmp_path) == []
    assert (tmp_path / "long.wav.broken").stat().st_size == 2**32 + 1000


def test_recover_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "same.wav").write_bytes(b"finished")
    crashed_part(tmp_path, "same.wav", 2)
    (tmp_path / "bad.wav.broken").write_bytes(b"old")
    (tmp_path / "bad.wav.part").write_bytes(b"")
    assert recover(tmp_path) == [tmp_path / "same.1.wav"]
    assert (tmp_path / "same.wav").read_bytes() == b"finished"
    assert wav_contents(tmp_path / "same.1.wav")[2] == expected_pcm(2)
    assert (tmp_path / "bad.wav.broken").read_bytes() == b"old"
    assert (tmp_path / "bad.1.wav.broken").read_bytes() == b""


# The child records the counter pattern as fast as a busy engine would, roughly a few frames
# per millisecond, and prints the frame count after every flush.
CHILD = """
import sys, time
from pathlib import Path
import numpy as np
from appliance.media.recorder import Recorder

def pattern(i):
    return np.arange(i * 160, i * 160 + 160, dtype=np.uint32).astype("<u2").tobytes()

flush_frames = int(sys.argv[2])
rec = Recorder(Path(sys.argv[1]), flush_frames=flush_frames)
i = 0
while True:
    rec.write(pattern(i))
    i += 1
    if i % flush_frames == 0:
        print(i, flush=True)
    if i % 4 == 0:
        time.sleep(0.002)
"""


@pytest.mark.parametrize("delay", [0.0, 0.013, 0.037])
def test_kill_9_mid_recording_loses_nothing_flushed(tmp_path: Path, delay: float) -> None:
    final = tmp_path / "crash.wav"
    flush_frames = 5
    root = Path(__file__).resolve().parents[2]
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(final), str(flush_frames)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        watchdog = threading.Timer(60, proc.kill)  # a hung child fails the test, not the run
        watchdog.start()
        try:
            reported: list[int] = []
            while len(reported) < 3:
                line = proc.stdout.readline()
                assert line, f"child died: {proc.stderr.read()}"
                reported.append(int(line))
            time.sleep(delay)  # kill at an arbitrary point between flushes
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
            reported += [int(x) for x in proc.stdout.read().split()]
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
    last_flush = reported[-1]
    assert last_flush >= 3 * flush_frames

    assert not final.exists()
    part = tmp_path / "crash.wav.part"
    assert struct.unpack("<L", part.read_bytes()[40:44])[0] == 0  # header never patched

    assert recover(tmp_path) == [final]
    data = wav_contents(final)[2]
    # Every frame up to the last reported flush; at most the one flush it had no time to
    # report; byte-exact with what was sent.
    assert last_flush * FRAME_BYTES <= len(data) <= (last_flush + flush_frames) * FRAME_BYTES
    assert data == expected_pcm(len(data) // FRAME_BYTES + 1)[: len(data)]
    assert read_slin(final).tobytes() == data
