"""Recording a call to WAV so that a crash loses at most the last second.

A :class:`Recorder` writes to ``<name>.wav.part`` beside the final file: the engine hands it
one 20 ms frame at a time, it collects them in memory and passes them to the OS every
``flush_frames`` frames (no fsync, which would stall the engine's loop); :meth:`Recorder.close`
patches the WAV header, fsyncs and renames the file into place, so a ``.wav`` on disk is
always complete. When the process dies mid-call the ``.part`` holds every flushed frame
under a header that still says "0 bytes"; :func:`recover`, run when the engine starts, sets
the sizes from the file length and renames it into place, so nothing recorded is lost and
every file the engine indexes opens as an ordinary WAV.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
import wave
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import numpy as np

from appliance.media.frame import FRAME_BYTES, SAMPLE_RATE, SAMPLES_PER_FRAME

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
BROKEN_SUFFIX = ".broken"

# The canonical header the wave module writes: RIFF, fmt (16 bytes of PCM), data.
_HEADER_BYTES = 44
#: The most audio a WAV header can declare (its RIFF size is 32 bits): 4 GiB, 37 hours of
#: a stereo call. A recording stops there instead of losing its header.
MAX_DATA_BYTES = 0xFFFFFFFF - (_HEADER_BYTES - 8)


class Recorder:
    """One recording in progress: cheap ``write`` per frame, durable ``close``.

    ``write`` only appends to a buffer; every ``flush_frames`` frames it hands the buffer to
    the OS. Set ``flush_offset`` differently for each call so that, with hundreds of calls
    recording, their flushes land on different 20 ms ticks instead of all on the same one.
    ``close`` does an fsync and must run off the event loop (``loop.run_in_executor``).
    """

    def __init__(
        self,
        final_path: Path,
        channels: int = 1,
        flush_frames: int = 50,
        flush_offset: int = 0,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError(f"a recording has 1 or 2 channels, got {channels}")
        if flush_frames < 1:
            raise ValueError(f"flush_frames must be at least 1, got {flush_frames}")
        self.path = Path(final_path)
        self.part_path = self.path.with_name(self.path.name + PART_SUFFIX)
        self.channels = channels
        self.flush_frames = flush_frames
        self._frame_bytes = FRAME_BYTES * channels
        self._max_data = MAX_DATA_BYTES - MAX_DATA_BYTES % (2 * channels)
        # Flush when (frames + flush_offset) % flush_frames == 0: count down to the first
        # such frame, then every flush_frames, so write() tests one integer.
        self._countdown = flush_frames - flush_offset % flush_frames
        self._buf = bytearray()
        # Stereo frames given as two mono frames are kept apart until the flush and
        # interleaved then, in one numpy pass over a second of audio instead of per frame.
        # The two buffers are allocated once at their full size and filled by slice: a
        # growing bytearray reallocates and copies itself dozens of times a second, which
        # cost more than everything else the recorder does.
        self._left = bytearray(flush_frames * FRAME_BYTES)
        self._right = bytearray(flush_frames * FRAME_BYTES)
        self._pos = 0
        self._flushed_bytes = 0
        self._dropped_bytes = 0
        self.error: OSError | None = None  # the disk error that stopped this recording
        self._closed = False
        self._failed = False
        if self.path.exists():
            # Never replace a finished recording: a clash of names is a bug upstream.
            raise FileExistsError(f"{self.path}: a recording with this name already exists")
        # "x": a .part left by a crash is recover()'s to repair, never overwritten here.
        # Unbuffered: every write goes to the OS at once and says how much it wrote, so on
        # a full disk the recorder knows to the byte what the file holds (a buffered writer
        # would take bytes it then cannot write, and the header would say 0 frames).
        self._file = open(self.part_path, "xb", buffering=0)  # noqa: SIM115
        try:
            # The header now, so even a call that dies before its first flush leaves a
            # .part that recover() turns into a valid (empty) WAV rather than a broken one.
            header = wav_header(channels, 0)
            if self._file.write(header) != len(header):  # a raw write may be short
                raise OSError(errno.ENOSPC, f"{self.part_path}: the header was not written whole")
        except BaseException:
            try:
                with contextlib.suppress(OSError):
                    self._file.close()
            finally:
                self.part_path.unlink(missing_ok=True)
            raise

    @property
    def frames_written(self) -> int:
        """Frames accepted so far (after a disk ``error`` the file holds fewer: see
        :func:`wav_frames`)."""
        pending = len(self._buf) + 2 * self._pos
        return (self._flushed_bytes + self._dropped_bytes + pending) // self._frame_bytes

    def write(self, data: bytes) -> None:
        """Append one frame of interleaved int16 (320 bytes mono, 640 stereo).

        Called for every call on every 20 ms tick, so it does no checking: the engine
        passes whole frames.
        """
        self._buf += data
        self._countdown -= 1
        if not self._countdown:
            self._countdown = self.flush_frames
            self.flush()

    def write_stereo(self, left: bytes, right: bytes) -> None:
        """Append one stereo frame given as its two 320-byte mono frames (caller, box).

        For a 2-channel recorder fed only this way (do not mix with :meth:`write`).
        """
        p = self._pos
        q = self._pos = p + FRAME_BYTES
        self._left[p:q] = left
        self._right[p:q] = right
        self._countdown -= 1
        if not self._countdown:
            self._countdown = self.flush_frames
            self.flush()

    def _interleave(self) -> None:
        n = self._pos
        if not n:
            return
        both = np.empty(n, dtype="<i2")  # n bytes of each side = n samples of both
        both[0::2] = np.frombuffer(self._left, dtype="<i2", count=n // 2)
        both[1::2] = np.frombuffer(self._right, dtype="<i2", count=n // 2)
        self._buf += both.tobytes()
        self._pos = 0

    def flush(self) -> None:
        """Hand the buffered frames to the OS (a crash of the process then keeps them).

        A disk error does not propagate: raised from ``write`` it would stop the engine's
        tick for every call. It is logged, kept in ``error``, and this recording stops
        there (later audio would land after a partial write, misaligned); what was written
        before stays playable.
        """
        if self._closed:
            return
        self._interleave()
        self._write_buffer()

    def _write_buffer(self) -> None:
        buf = self._buf
        if not buf:
            return
        written = 0
        if self.error is None:
            take = min(len(buf), self._max_data - self._flushed_bytes)
            try:
                chunk = buf if take == len(buf) else buf[:take]
                while written < take:
                    # A raw write may be short (the disk filling up): go on from there.
                    n = self._file.write(chunk)
                    if not n:
                        raise OSError(errno.EIO, "the file took no bytes")
                    written += n
                    chunk = buf[written:take]
            except OSError as exc:
                # Without its traceback: kept in ``error``, it would keep the frames and
                # the buffer they hold alive.
                self.error = exc.with_traceback(None)
                log.error("%s: recording stopped, a write failed: %s", self.part_path, exc)
            else:
                if take < len(buf):
                    self.error = OSError(errno.EFBIG, "the 4 GiB a WAV file can hold is full")
                    log.error("%s: recording stopped: %s", self.part_path, self.error.strerror)
        self._flushed_bytes += written
        self._dropped_bytes += len(buf) - written
        buf.clear()

    def close(self) -> Path:
        """Finish the file: header, fsync, rename into place. Returns the final path.

        Idempotent. A disk error on the last write is logged (``error``) and the file is
        finished with what it holds. If the header, fsync or rename fails, the file handle
        is still closed and the ``.part`` stays where :func:`recover` will find it at the
        next start.
        """
        if self._closed:
            if self._failed:
                raise RuntimeError(
                    f"{self.path}: closing failed earlier; the audio is in {self.part_path}"
                    " for recover()"
                )
            return self.path
        self._interleave()
        self._write_buffer()
        self._closed = True
        self._buf = self._left = self._right = _ClosedBuffer(self.path)
        try:
            try:
                fd = self._file.fileno()
                # Whole sample frames only: a short write may have ended inside one.
                block = 2 * self.channels
                data_len = self._flushed_bytes - self._flushed_bytes % block
                if data_len != self._flushed_bytes:
                    os.ftruncate(fd, _HEADER_BYTES + data_len)
                _patch_sizes(fd, data_len)
                os.fsync(fd)
            finally:
                self._file.close()
            os.replace(self.part_path, self.path)
        except BaseException:
            self._failed = True
            raise
        _sync_rename(self.path)
        return self.path

    def abort(self) -> None:
        """Drop a recording nobody wants: close and remove the ``.part``.

        Does nothing once the recording is closed (a finished file is never removed here).
        """
        if self._closed:
            return
        self._closed = True
        self._buf = self._left = self._right = _ClosedBuffer(self.path)
        try:
            self._file.close()
        finally:
            self.part_path.unlink(missing_ok=True)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        # Even when the call ends with an error, what was recorded is kept.
        self.close()


class _ClosedBuffer(bytearray):
    """Stands in for the buffer once a recording is closed: a late write() fails loudly
    instead of growing memory forever, and the open path pays nothing for the check."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def __iadd__(self, value: object) -> NoReturn:
        raise ValueError(f"{self.path}: write to a recording that is closed")

    def __setitem__(self, key: object, value: object) -> NoReturn:
        raise ValueError(f"{self.path}: write to a recording that is closed")


def recover(directory: Path,
            before_rename: Callable[[Path, Path], object] | None = None) -> list[Path]:
    """Repair and rename every ``*.wav.part`` under ``directory``; return the new paths.

    Runs at engine start, before any Recorder is created. A ``.part`` whose header is
    missing or unreadable is moved aside to ``<name>.wav.broken`` with a warning: audio
    is never deleted here. ``before_rename(part, final)`` runs on each repaired file
    before it takes its final name (the engine indexes it there): should the process die
    in between, the ``.part`` is still there for the next start, and none is renamed
    into place unindexed. If it raises, the file is left as a ``.part``.
    """
    recovered: list[Path] = []
    for part in sorted(Path(directory).rglob("*.wav" + PART_SUFFIX)):
        if not part.is_file():
            continue
        try:
            final = _recover_one(part, before_rename)
        except Exception as exc:
            # A file that cannot be repaired or renamed (read-only folder, bad sector) is
            # left where it is for the next start; the box still starts and takes calls.
            log.error("%s: could not recover this unfinished recording: %s; left as it is",
                      part, exc)
            continue
        if final is not None:
            recovered.append(final)
    return recovered


def _recover_one(part: Path, before_rename: Callable[[Path, Path], object] | None = None
                 ) -> Path | None:
    """Repair and rename one ``.part``: the recording's new path, or None if it was
    moved aside as broken."""
    stem = part.name[: -len(".wav" + PART_SUFFIX)]
    # The repair rewrites the header: the file keeps the time of its last audio, which
    # dates a recording whose call record the crash lost.
    written = os.stat(part)
    try:
        _repair(part)
    except _BrokenPart as exc:
        broken = _unused(part.parent, stem, ".wav" + BROKEN_SUFFIX)
        log.warning("%s: %s; moved aside to %s", part, exc, broken.name)
        os.replace(part, broken)
        _sync_rename(broken)
        return None
    # A finished file of the same name is kept; the recovered audio takes a new name.
    final = _unused(part.parent, stem, ".wav")
    os.utime(part, ns=(written.st_atime_ns, written.st_mtime_ns))
    if before_rename is not None:
        before_rename(part, final)
    os.replace(part, final)
    _sync_rename(final)
    log.info("recovered recording %s", final)
    return final


def wav_frames(path: Path) -> int:
    """Whole 20 ms frames in a finished or recovered recording, mono or stereo."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() // SAMPLES_PER_FRAME


class _BrokenPart(Exception):
    """The .part has no usable WAV header (the message says what is wrong)."""


def wav_header(channels: int, data_len: int) -> bytes:
    """The 44-byte header of an 8 kHz 16-bit PCM WAV holding ``data_len`` bytes of audio."""
    block = 2 * channels
    return struct.pack("<4sL4s4sLHHLLHH4sL", b"RIFF", _HEADER_BYTES - 8 + data_len, b"WAVE",
                       b"fmt ", 16, 1, channels, SAMPLE_RATE, SAMPLE_RATE * block, block, 16,
                       b"data", data_len)


def _patch_sizes(fd: int, data_len: int) -> None:
    """Set the RIFF and data sizes of the open WAV ``fd`` (written in place, no seek)."""
    os.pwrite(fd, struct.pack("<L", _HEADER_BYTES - 8 + data_len), 4)
    os.pwrite(fd, struct.pack("<L", data_len), 40)


def _repair(part: Path) -> None:
    """Set the RIFF and data sizes of ``part`` from its length, dropping a partial sample.

    Only a header the recorder could have written is trusted (8 kHz 16-bit PCM, one or two
    channels): anything else would be renamed into a file that no player, and not the
    engine's own index or the backup's check, can open."""
    with open(part, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        if size < _HEADER_BYTES:
            raise _BrokenPart(f"{size} bytes, too short for a WAV header")
        header = f.read(_HEADER_BYTES)
        (riff, _, wave_id, fmt_id, fmt_len, fmt_tag, channels, rate, byte_rate, block_align,
         bits, data_id) = struct.unpack("<4sL4s4sLHHLLHH4s", header[:40])
        if (riff, wave_id, fmt_id, fmt_len, data_id) != (b"RIFF", b"WAVE", b"fmt ", 16, b"data"):
            raise _BrokenPart("not the RIFF/WAVE header the recorder writes")
        if (fmt_tag, bits, rate) != (1, 16, SAMPLE_RATE) or channels not in (1, 2) or (
                block_align, byte_rate) != (2 * channels, SAMPLE_RATE * 2 * channels):
            raise _BrokenPart(f"format {fmt_tag}, {bits}-bit, {channels} channel(s) at "
                              f"{rate} Hz, block {block_align}: not the recorder's slin")
        data_len = size - _HEADER_BYTES
        # A kill during a write can leave part of a sample frame at the end.
        data_len -= data_len % block_align
        if _HEADER_BYTES - 8 + data_len > 0xFFFFFFFF:
            raise _BrokenPart(f"{size} bytes, more than a WAV's 32-bit sizes can hold")
        if _HEADER_BYTES + data_len != size:
            f.truncate(_HEADER_BYTES + data_len)
        f.flush()
        _patch_sizes(f.fileno(), data_len)
        os.fsync(f.fileno())


def _unused(directory: Path, stem: str, tail: str) -> Path:
    """``<stem><tail>``, or ``<stem>.1<tail>``, ``.2``... if taken: nothing is overwritten."""
    path = directory / f"{stem}{tail}"
    n = 1
    while path.exists():
        path = directory / f"{stem}.{n}{tail}"
        n += 1
    return path


def _sync_rename(path: Path) -> None:
    """Make the rename that put ``path`` in place durable. The file is finished and in
    place already: a failure here is logged, and the recording is not given up for it
    (a raise would leave a finished file that no row names and no recover() finds)."""
    try:
        _fsync_dir(path.parent)
    except OSError as exc:
        log.warning("%s: in place, but its folder could not be synced (%s): a power cut "
                    "now could undo the rename", path, exc)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (the rename lives in the directory entry)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
