"""Prompts: WAV files loaded once, cut into frames, and shared by every call.

A :class:`PromptLibrary` maps ``(language, name)`` to a :class:`Prompt` whose audio is held
as a tuple of 320-byte frames, so playing it costs one list index per frame and hundreds of
calls playing the same greeting share one copy. A :class:`PromptPlayer` is the per-call
cursor over a playlist of prompts; the engine asks it for one frame per tick.

A prompt file replaced while the engine runs (from the web admin, another process, or by
phone) is heard from the next ``get``: at most once a second per prompt, ``get`` compares
the file's inode, mtime and size with those it loaded, and loads the new file when they
differ (a replacement is renamed into place, so it is always a new inode). The cost stays
at ``get``, once per prompt played, never per frame; a call already playing the old
recording keeps its frames and finishes it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.media.frame import FRAME_BYTES, SAMPLE_RATE, Samples, chunk_pcm
from appliance.media.wavio import read_slin

DEFAULT_PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
#: how often (seconds) a cached prompt's file is looked at again for a replacement
CHECK_EVERY = 1.0

log = logging.getLogger(__name__)

#: what tells one version of a prompt file from the next: inode, mtime (ns), size
Stamp = tuple[int, int, int]


class PromptNotFound(LookupError):
    """No prompt of that name in that language (the message names both and the folder)."""


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    language: str
    frames: tuple[bytes, ...]

    @classmethod
    def from_samples(cls, name: str, samples: Samples, language: str = "") -> Prompt:
        pcm = np.asarray(samples, dtype="<i2").tobytes()
        return cls(name, language, tuple(chunk_pcm(pcm)))

    @property
    def seconds(self) -> float:
        return len(self.frames) * FRAME_BYTES / 2 / SAMPLE_RATE


class _Cached:
    """A prompt in the library's cache; ``path`` is None for one added in memory, ``stamp``
    None while its file is missing."""

    __slots__ = ("checked_at", "path", "prompt", "stamp")

    def __init__(self, prompt: Prompt, path: Path | None, stamp: Stamp | None,
                 checked_at: float) -> None:
        self.prompt = prompt
        self.path = path
        self.stamp = stamp
        self.checked_at = checked_at


def _stamp(path: Path) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class PromptLibrary:
    """Prompts by language and name, loaded on first use; a file replaced on disk is
    loaded again (see the module's note). ``now`` is the clock for the once-a-second
    check (monotonic seconds; tests pass their own)."""

    def __init__(self, root: Path = DEFAULT_PROMPTS_DIR, default_language: str = "zh", *,
                 check_every: float = CHECK_EVERY,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.root = Path(root)
        self.default_language = default_language
        self.check_every = check_every
        self._now = now
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._lock = threading.Lock()

    def get(self, name: str, language: str | None = None) -> Prompt:
        lang = language or self.default_language
        key = (lang, name)
        cached = self._cache.get(key)
        if cached is not None:
            if cached.path is None:
                return cached.prompt
            now = self._now()
            if now - cached.checked_at < self.check_every:
                return cached.prompt
            cached.checked_at = now
            if _stamp(cached.path) == cached.stamp:
                return cached.prompt
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or cached.path is not None:
                cached = self._refresh(lang, name, cached)
        return cached.prompt

    def _refresh(self, lang: str, name: str, cached: _Cached | None) -> _Cached:
        """Load the prompt's file (again). A file that went missing or cannot be read
        after it was loaded once leaves the recording already loaded in use."""
        path = self._file(lang, name)
        stamp = _stamp(path)
        if cached is not None and stamp == cached.stamp:
            return cached
        try:
            prompt = self._load(lang, name)
        except (PromptNotFound, OSError, ValueError):  # WavFormatError is a ValueError
            if cached is None:
                raise
            log.warning("prompt %s/%s changed on disk but cannot be loaded; keeping the "
                        "recording loaded before", lang, name, exc_info=True)
            cached.stamp = stamp
            return cached
        fresh = _Cached(prompt, path, stamp, self._now())
        self._cache[(lang, name)] = fresh
        return fresh

    def forget(self, name: str, language: str | None = None) -> None:
        """Load the prompt from its file at the next ``get`` (a recording just replaced
        in this process is heard by the next call at once, not a second later)."""
        self._cache.pop((language or self.default_language, name), None)

    def add(self, prompt: Prompt) -> None:
        """Register an in-memory prompt (generated tones, test audio)."""
        key = (prompt.language or self.default_language, prompt.name)
        self._cache[key] = _Cached(prompt, None, None, 0.0)

    def _file(self, language: str, name: str) -> Path:
        return self.root / language / f"{name}.wav"

    def _load(self, language: str, name: str) -> Prompt:
        path = self._file(language, name)
        if not path.is_file():
            raise PromptNotFound(f"no prompt {name!r} in language {language!r} (looked for {path})")
        return Prompt.from_samples(name, read_slin(path, whole=True), language)

    def preload(self, language: str | None = None) -> int:
        """Load every prompt of a language now (so the first caller waits for no disk)."""
        lang = language or self.default_language
        count = 0
        for wav in sorted((self.root / lang).glob("*.wav")):
            try:
                self.get(wav.stem, lang)
            except (OSError, ValueError) as exc:  # WavFormatError is a ValueError
                # One bad file (a 16 kHz recording dropped in by hand) must not keep the
                # box from starting, nor the prompts after it from loading.
                log.error("prompt %s/%s cannot be loaded, skipped: %s", lang, wav.stem, exc)
                continue
            count += 1
        return count


class PromptPlayer:
    """Plays a playlist frame by frame; ``next_frame`` returns None once it is over, and
    ``last`` is True from its final frame on."""

    __slots__ = ("_frames", "_index", "_item", "_playlist", "interruptible", "last")

    def __init__(self, playlist: Sequence[Prompt], interruptible: bool = True) -> None:
        self._playlist = tuple(p for p in playlist if p.frames)
        self._item = 0
        self._index = 0
        self._frames: tuple[bytes, ...] = self._playlist[0].frames if self._playlist else ()
        self.interruptible = interruptible
        self.last = not self._playlist

    def next_frame(self) -> bytes | None:
        frames = self._frames
        i = self._index
        if i >= len(frames):
            self._item += 1
            if self._item >= len(self._playlist):
                self._frames = ()
                return None
            frames = self._frames = self._playlist[self._item].frames
            i = 0
        self._index = i + 1
        if i + 1 == len(frames) and self._item + 1 == len(self._playlist):
            self.last = True
        return frames[i]

    @property
    def done(self) -> bool:
        return self._item >= len(self._playlist)


def concat(prompts: Iterable[Prompt]) -> bytes:
    """All frames of the prompts as one slin byte string (tests and file export)."""
    return b"".join(f for p in prompts for f in p.frames)
