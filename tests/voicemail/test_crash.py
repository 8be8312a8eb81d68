"""SIGKILL of the engine while a caller is leaving a message: after a restart the message
is in its box, playable, with its envelope, and its row says it was recovered."""

from __future__ import annotations

import asyncio
import logging
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.media.prompts import PromptLibrary
from appliance.store.db import Store
from appliance.voicemail import (
    audit_trail,
    box_messages,
    general_box,
    get_message,
    recover_messages,
    recovery_hook,
)
from appliance.voicemail.messages import open_message
from tests.rig import killed_after_report, running_engine
from tests.voicemail.conftest import spoken

RESTART = 1_790_000_000.0  # the wall time of the restart


def restart(root: Path) -> None:
    """Start an engine on the same data with the voicemail hook, and stop it."""

    async def run() -> None:
        store = Store(root / "appliance.db")
        try:
            async with running_engine(lambda call: call.hangup(), prompts=PromptLibrary(),
                                      store=store, recordings=root / "recordings",
                                      after_recover=[recovery_hook(
                                          store, lambda: RESTART,
                                          engine_folder=root / "recordings")]):
                pass
        finally:
            store.close()

    asyncio.run(run())


def test_message_survives_sigkill_and_is_listed_after_restart(tmp_path: Path) -> None:
    line = killed_after_report("tests.voicemail._crash_engine", tmp_path)
    assert line and line[0] == "RECORDING", line
    call_id, frames_at_report = line[1], int(line[2])
    parts = list((tmp_path / "recordings" / "messages").rglob("*.wav.part"))
    assert [p.name for p in parts] == [f"{call_id}.vm1.wav.part"]

    restart(tmp_path)

    assert not list(tmp_path.rglob("*.part"))
    store = Store(tmp_path / "appliance.db")
    try:
        [msg] = box_messages(store, general_box(store))
        trail = audit_trail(store, msg.id)
        indexed = store.query("SELECT * FROM recordings WHERE path = ?", [str(msg.raw_path)])
    finally:
        store.close()
    assert (msg.call_id, msg.caller, msg.policy_number) == (call_id, "13700001111",
                                                            "880009990001")
    assert (msg.recording, msg.end_reason, msg.status) == ("recovered", "engine-crash", "new")
    assert [(e.action, e.at) for e in trail] == [("recovered", RESTART)]
    # The engine indexed the file with its call, as it does every recovered take.
    assert len(indexed) == 1 and indexed[0]["call_id"] == call_id and indexed[0]["recovered"]
    with wave.open(str(msg.raw_path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        raw = w.readframes(w.getnframes())
    # Everything up to the last flush before the report is there (a flush every 50 frames).
    assert msg.seconds == len(raw) / 16000 >= (frames_at_report - 50) * 0.02
    # It is the caller's speech: a stretch from the middle of what they said is in it.
    said = spoken("vm-intro.wav", seed=0).tobytes()
    assert said[16000:19200] in raw
    # And the played copy was made from it: trimmed, not empty.
    assert msg.play_path is not None and msg.playable == msg.play_path
    with wave.open(str(msg.play_path)) as w:
        played = w.readframes(w.getnframes())
    assert played in raw and len(played) < len(raw)
    assert msg.empty is False and msg.speech_seconds is not None and msg.speech_seconds > 1.0


def opened(store: Store, directory: Path) -> tuple[int, Path]:
    """A message row as leave_message writes it before the tone (no audio yet)."""
    return open_message(store, general_box(store), call_id="c1", caller="13800000000",
                        received_at=1_780_000_000.0, lang="zh", directory=directory).result()


def test_a_message_whose_audio_never_reached_the_disk_is_marked_lost(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    try:
        box = general_box(store)
        message_id, path = opened(store, tmp_path / "messages")
        assert not path.exists()
        assert recover_messages(store, 1_780_000_100.0) == []
        lost = get_message(store, message_id)
        assert (lost.recording, lost.end_reason) == ("lost", "engine-crash")
        assert box_messages(store, box) == []
        assert [e.action for e in audit_trail(store, message_id)] == ["lost"]
        # A second start does not touch it again.
        assert recover_messages(store, 1_780_000_200.0) == []
        assert len(audit_trail(store, message_id)) == 1
    finally:
        store.close()


def test_a_message_repaired_by_the_hook_itself_outside_the_recordings_folder(
        tmp_path: Path) -> None:
    """Messages kept outside the engine's recordings folder: the hook repairs the .part."""
    store = Store(tmp_path / "appliance.db")
    try:
        message_id, path = opened(store, tmp_path / "elsewhere")
        path.parent.mkdir(parents=True)
        said = spoken("agent-pass.wav")
        # What a killed recorder leaves: a header that says 0 bytes, then the audio.
        with wave.open(str(path) + ".part", "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframesraw(b"")
        with open(str(path) + ".part", "ab") as f:
            f.write(said.tobytes())
        assert recover_messages(store, 1_780_000_100.0) == [message_id]
        msg = get_message(store, message_id)
        assert msg.recording == "recovered" and msg.raw_path == path
        assert msg.seconds == len(said) // 160 * 0.02  # whole frames
        with wave.open(str(path)) as w:
            assert np.array_equal(np.frombuffer(w.readframes(w.getnframes()), "<i2"), said)
    finally:
        store.close()


def test_a_failing_start_up_hook_is_logged_and_the_engine_still_starts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[list[Path]] = []

    def broken(_: list[Path]) -> None:
        raise RuntimeError("disk on fire")

    async def run() -> bool:
        async with running_engine(lambda call: call.hangup(), prompts=PromptLibrary(),
                                  store=None, recordings=tmp_path / "recordings",
                                  after_recover=[broken, seen.append]) as (engine, _):
            return engine.started.is_set()

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(run())
    assert seen == [[]]  # the next hook ran, told that nothing needed recovering
    assert "start-up recovery hook" in caplog.text and "disk on fire" in caplog.text


def test_a_message_the_engine_could_not_index_waits_for_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The start after the crash could not index the take (a store write failed) and left
    # its .part; the voicemail hook then renamed it into place itself, unindexed for good.
    from appliance.store import cdr

    line = killed_after_report("tests.voicemail._crash_engine", tmp_path)
    assert line and line[0] == "RECORDING", line

    def fails(*args: Any, **kw: Any) -> None:
        raise OSError("disk I/O error")

    monkeypatch.setattr(cdr, "index_recording", fails)
    restart(tmp_path)
    # Both takes the crash cut (the call's and the message) wait, and the message too.
    assert sorted(p.name for p in (tmp_path / "recordings").rglob("*.wav*")) == [
        f"{line[1]}.vm1.wav.part", f"{line[1]}.wav.part"]
    monkeypatch.undo()
    restart(tmp_path)
    store = Store(tmp_path / "appliance.db")
    try:
        indexed = store.query("SELECT path, recovered FROM recordings ORDER BY path")
        [msg] = box_messages(store, general_box(store))
    finally:
        store.close()
    assert sorted((Path(r["path"]).name, r["recovered"]) for r in indexed) == [
        (f"{line[1]}.vm1.wav", 1), (f"{line[1]}.wav", 1)]
    assert (msg.recording, msg.raw_path.name) == ("recovered", f"{line[1]}.vm1.wav")
