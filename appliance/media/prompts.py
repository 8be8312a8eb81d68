"""Prompts: WAV files loaded once, cut into frames, and shared by every call.

A :class:`PromptLibrary` maps ``(language, name)`` to a :class:`Prompt` whose audio is held
as a tuple of 320-byte frames, so playing it costs one list index per frame and hundreds of
calls playing the same greeting share one copy. A :class:`PromptPlayer` is the per-call
cursor over a playlist of prompts; the engine asks it for one frame per tick.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.media.frame import FRAME_BYTES, SAMPLE_RATE, Samples, chunk_pcm
from appliance.media.wavio import read_slin

DEFAULT_PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"


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


class PromptLibrary:
    """Prompts by language and name, loaded on first use and kept for the process's life."""

    def __init__(self, root: Path = DEFAULT_PROMPTS_DIR, default_language: str = "zh") -> None:
        self.root = Path(root)
        self.default_language = default_language
        self._cache: dict[tuple[str, str], Prompt] = {}
        self._lock = threading.Lock()

    def get(self, name: str, language: str | None = None) -> Prompt:
        lang = language or self.default_language
        key = (lang, name)
        prompt = self._cache.get(key)
        if prompt is None:
            with self._lock:
                prompt = self._cache.get(key)
                if prompt is None:
                    prompt = self._load(lang, name)
                    self._cache[key] = prompt
        return prompt

    def add(self, prompt: Prompt) -> None:
        """Register an in-memory prompt (generated tones, test audio)."""
        self._cache[(prompt.language or self.default_language, prompt.name)] = prompt

    def _load(self, language: str, name: str) -> Prompt:
        path = self.root / language / f"{name}.wav"
        if not path.is_file():
            raise PromptNotFound(f"no prompt {name!r} in language {language!r} (looked for {path})")
        return Prompt.from_samples(name, read_slin(path), language)

    def preload(self, language: str | None = None) -> int:
        """Load every prompt of a language now (so the first caller waits for no disk)."""
        lang = language or self.default_language
        count = 0
        for wav in sorted((self.root / lang).glob("*.wav")):
            self.get(wav.stem, lang)
            count += 1
        return count


class PromptPlayer:
    """Plays a playlist frame by frame; ``next_frame`` returns None once it is over."""

    __slots__ = ("_frames", "_index", "_item", "_playlist", "interruptible")

    def __init__(self, playlist: Sequence[Prompt], interruptible: bool = True) -> None:
        self._playlist = tuple(p for p in playlist if p.frames)
        self._item = 0
        self._index = 0
        self._frames: tuple[bytes, ...] = self._playlist[0].frames if self._playlist else ()
        self.interruptible = interruptible

    def next_frame(self) -> bytes | None:
        frames = self._frames
        i = self._index
        if i < len(frames):
            self._index = i + 1
            return frames[i]
        self._item += 1
        if self._item >= len(self._playlist):
            self._frames = ()
            return None
        self._frames = self._playlist[self._item].frames
        self._index = 1
        return self._frames[0]

    @property
    def done(self) -> bool:
        return self._item >= len(self._playlist)


def concat(prompts: Iterable[Prompt]) -> bytes:
    """All frames of the prompts as one slin byte string (tests and file export)."""
    return b"".join(f for p in prompts for f in p.frames)
