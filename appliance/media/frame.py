"""The unit of audio every line hands the engine: 20 ms of 8 kHz signed 16-bit mono.

The hot path moves frames as raw 320-byte ``bytes`` and batches of them as ``(N, 160)``
int16 arrays; :class:`Frame` is the typed form for APIs and tests, carrying its position in
the stream as a sample timestamp (as aiortc's frames do) so nothing needs a wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
FRAME_MS = 20
SAMPLES_PER_FRAME = SAMPLE_RATE * FRAME_MS // 1000  # 160
FRAME_BYTES = SAMPLES_PER_FRAME * 2  # 320
SILENCE = bytes(FRAME_BYTES)

Samples = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class Frame:
    """160 int16 samples and the index of the first one in its stream."""

    samples: Samples
    timestamp: int = 0

    def __post_init__(self) -> None:
        if self.samples.dtype != np.int16 or self.samples.shape != (SAMPLES_PER_FRAME,):
            raise ValueError(
                f"a frame is {SAMPLES_PER_FRAME} int16 samples, got "
                f"{self.samples.dtype} of shape {self.samples.shape}"
            )

    @classmethod
    def from_bytes(cls, data: bytes, timestamp: int = 0) -> Frame:
        """Frame from 320 bytes of little-endian slin."""
        if len(data) != FRAME_BYTES:
            raise ValueError(f"a frame is {FRAME_BYTES} bytes of slin, got {len(data)}")
        return cls(np.frombuffer(data, dtype="<i2").astype(np.int16), timestamp)

    @classmethod
    def silence(cls, timestamp: int = 0) -> Frame:
        return cls(np.zeros(SAMPLES_PER_FRAME, dtype=np.int16), timestamp)

    def to_bytes(self) -> bytes:
        return self.samples.astype("<i2", copy=False).tobytes()

    @property
    def end(self) -> int:
        """Timestamp of the sample after this frame."""
        return self.timestamp + SAMPLES_PER_FRAME


def frames_from_pcm(pcm: bytes, start: int = 0) -> list[Frame]:
    """Cut slin bytes into frames, zero-padding the last one."""
    if len(pcm) % 2:
        raise ValueError("slin audio must have an even number of bytes")
    rem = len(pcm) % FRAME_BYTES
    if rem:
        pcm = pcm + bytes(FRAME_BYTES - rem)
    return [
        Frame.from_bytes(pcm[i : i + FRAME_BYTES], start + i // 2)
        for i in range(0, len(pcm), FRAME_BYTES)
    ]


def chunk_pcm(pcm: bytes) -> list[bytes]:
    """Cut slin bytes into 320-byte frames, zero-padding the last one (hot-path form)."""
    rem = len(pcm) % FRAME_BYTES
    if rem:
        pcm = pcm + bytes(FRAME_BYTES - rem)
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
