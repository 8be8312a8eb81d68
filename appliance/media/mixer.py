"""Mixing for bridges of 2 to N parties: each party hears everyone but itself.

One numpy pass per bridge per tick: sum all parties' frames in int32, subtract each
party's own frame, and saturate back to int16 (a loud party clips instead of wrapping
around into noise). Parties that are muted for speaking (listen-in) contribute nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from appliance.media.frame import FRAME_BYTES, SAMPLES_PER_FRAME

_I16_MIN, _I16_MAX = -32768, 32767


def mix_minus(frames: Sequence[bytes], talking: Sequence[bool] | None = None) -> list[bytes]:
    """For N parties' inbound frames, the N outbound frames (each without its own voice)."""
    n = len(frames)
    if n == 0:
        return []
    for i, f in enumerate(frames):
        if len(f) != FRAME_BYTES:
            raise ValueError(f"party {i}: a frame is {FRAME_BYTES} bytes, got {len(f)}")
    block: npt.NDArray[np.int32] = (
        np.frombuffer(b"".join(frames), dtype="<i2").reshape(n, SAMPLES_PER_FRAME).astype(np.int32)
    )
    if talking is not None:
        block *= np.asarray(talking, dtype=np.int32)[:, None]
    total = block.sum(axis=0)
    out = np.clip(total[None, :] - block, _I16_MIN, _I16_MAX).astype("<i2")
    return [row.tobytes() for row in out]


def mix_heard(frames: Sequence[bytes], hears: npt.NDArray[np.int32]) -> list[bytes]:
    """Each party's outbound frame when not everyone hears everyone: ``hears[i, j]`` is 1
    when party ``i`` hears party ``j`` (0 on the diagonal). One matrix product per tick, for
    bridges with a private rule such as a supervisor who whispers to the agent only."""
    n = len(frames)
    if n == 0:
        return []
    if hears.shape != (n, n):
        raise ValueError(f"hears: expected a {n}x{n} matrix, got {hears.shape}")
    block = np.frombuffer(b"".join(frames), dtype="<i2").reshape(n, SAMPLES_PER_FRAME)
    out = np.clip(hears @ block.astype(np.int32), _I16_MIN, _I16_MAX).astype("<i2")
    return [row.tobytes() for row in out]


def mix(frames: Sequence[bytes]) -> bytes:
    """All frames summed with saturation (e.g. a recording of a whole conference)."""
    if not frames:
        return bytes(FRAME_BYTES)
    block = np.frombuffer(b"".join(frames), dtype="<i2").reshape(len(frames), -1)
    return np.clip(block.astype(np.int32).sum(axis=0), _I16_MIN, _I16_MAX).astype("<i2").tobytes()
