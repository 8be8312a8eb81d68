"""SIGKILL of the engine mid-recording: after a restart the recording is playable, holds
the audio up to the last flush, and is indexed with its call."""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from appliance.calls.clock import ManualClock
from appliance.calls.engine import Engine
from appliance.media.prompts import PromptLibrary, concat
from appliance.store.db import Store
from drivers.sim import SimExchange
from tests.rig import killed_after_report


def test_recording_survives_sigkill_and_is_indexed_at_restart(tmp_path: Path) -> None:
    line = killed_after_report("tests.calls._crash_engine", tmp_path)
    assert line and line[0] == "RECORDING", line
    line_id, frames_at_report = line[1], int(line[2])
    parts = list(tmp_path.rglob("*.wav.part"))
    assert len(parts) == 1, "the killed engine leaves its recording unfinished"

    async def restart() -> None:
        store = Store(tmp_path / "appliance.db")
        engine = Engine(clock=ManualClock(wall_start=time.time()), drivers=[SimExchange()],
                        flow=lambda call: call.hangup(), store=store,
                        recordings=tmp_path / "recordings")
        task = asyncio.create_task(engine.run())
        await engine.started.wait()
        engine.stop()
        await task
        store.close()

    restarted_at = time.time()
    asyncio.run(restart())
    assert not list(tmp_path.rglob("*.wav.part"))
    store = Store(tmp_path / "appliance.db")
    try:
        call = store.query("SELECT * FROM calls WHERE line = ?", [line_id])[0]
        indexed = store.query("SELECT * FROM recordings WHERE call_id = ?", [call["call_id"]])
    finally:
        store.close()
    assert call["end_cause"] == "engine-crash" and call["ended_at"] is not None
    # It lasted as long as its recording, not until the restart (an outage in a report's
    # talk time): the engine writes every 10 s that it runs, and a recording found says more.
    assert call["ended_at"] - call["answered_at"] == pytest.approx(indexed[0]["seconds"])
    assert call["ended_at"] < restarted_at
    path = Path(call["recording"])
    assert path.name == f"{call['call_id']}.wav" and path.is_file()
    assert len(indexed) == 1 and indexed[0]["recovered"] == 1
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        frames = w.getnframes() // 160
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert indexed[0]["frames"] == frames
    # Everything up to the last flush before the report is there: flushes come every 50
    # frames (1 s), so at most the last 50 frames written may be missing.
    assert frames >= frames_at_report - 50
    # And it is the real audio: the box's side is the greeting, sample for sample; the
    # caller's side is the caller's speech, frame-aligned.
    welcome = np.frombuffer(concat([PromptLibrary().get("welcome")]), "<i2")
    n = min(len(welcome), len(data))
    assert np.array_equal(data[:n, 1], welcome[:n])
    said = concat([PromptLibrary().get("welcome", "en")])
    left = data[:, 0].astype("<i2").tobytes()
    assert said[3200:6400] in left
