"""Leaving a message on a call: each way it ends, its length, the trimmed copy, the empty
flag, the envelope, and the greetings a box plays."""

from __future__ import annotations

import contextlib
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.calls.call import Call, FlowFn
from appliance.media.prompts import concat
from appliance.media.vad import frame_levels_dbfs
from appliance.media.wavio import WavFormatError, read_slin, write_slin
from appliance.store.db import Store
from appliance.voicemail import (
    Box,
    Message,
    audit_trail,
    box_messages,
    general_box,
    leave_message,
    notifications,
    queue_box,
    salesperson_box,
    salesperson_inbox,
    set_greeting,
)
from drivers.base import LineError
from drivers.sim import CallerBot
from tests.calls.conftest import Rig
from tests.voicemail.conftest import BEEP, INLINE, line_noise, spoken

FRAME = 320
IVR_PATH = [{"node": "lang", "key": "1"}, {"node": "main", "key": "0"}, {"node": "voicemail"}]


def vm_flow(store: Store, box: Box, taken: list[Message], lang: str = "zh",
            **options: Any) -> FlowFn:
    async def flow(call: Call) -> None:
        await call.answer()
        taken.append(await leave_message(call, box, lang, store, ivr_path=IVR_PATH,
                                          executor=INLINE, **options))
        await call.play("message_saved", interruptible=False)
        await call.hangup()

    return flow


async def at_the_tone(rig: Rig, number: str) -> CallerBot:
    """A caller who dials in and waits through the greeting until the tone."""
    bot = CallerBot(rig.exchange, number)
    await bot.dial("95500")
    assert await bot.wait_for(BEEP, timeout=30)
    return bot


def wav_bytes(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        return w.readframes(w.getnframes())


def whole_frames(samples: np.ndarray) -> bytes:
    pcm = samples.tobytes()
    return pcm[: len(pcm) - len(pcm) % FRAME]


def test_hash_ends_the_message_with_its_envelope_and_a_trimmed_copy(
        run_vm: Any, store: Store) -> None:
    box = general_box(store)
    taken: list[Message] = []
    said = spoken("vm-intro.wav", before=1.0, after=1.5)  # 1 s, 5.65 s of words, 1.5 s

    async def scenario(rig: Rig) -> float:
        bot = await at_the_tone(rig, "13912345678")
        start = rig.engine.clock.wall()
        await bot.send(said)
        await bot.press("#")
        await bot.wait_hangup(20)
        return start

    flow = vm_flow(store, box, taken, policy_number="880001234567")
    start = run_vm(flow, scenario)
    [msg] = taken
    assert msg.end_reason == "key" and msg.recording == "saved" and msg.status == "new"
    # Envelope.
    assert (msg.caller, msg.box_id, msg.lang) == ("13912345678", box.id, "zh")
    assert msg.ivr_path == IVR_PATH and msg.policy_number == "880001234567"
    answered = store.query("SELECT answered_at FROM calls WHERE call_id = ?", [msg.call_id])
    assert answered[0]["answered_at"] <= msg.received_at <= start  # after the greeting
    # Length: everything said plus the key's tone (the key is heard after 2-3 of its frames).
    assert len(said) / 8000 <= msg.seconds <= len(said) / 8000 + 0.2
    raw = wav_bytes(msg.raw_path)
    assert len(raw) / 16000 == msg.seconds
    assert whole_frames(said) in raw  # the raw copy is what the line carried, unchanged
    # The played copy is cut from the raw one around the words: 1 s of noise before them
    # and 1.5 s after them (and the key) are gone, the words are all there.
    play = wav_bytes(msg.playable)
    assert msg.playable == msg.play_path != msg.raw_path
    assert play in raw
    offset = raw.index(play) / 16000
    words = read_slin(Path("/usr/share/asterisk/sounds/en/vm-intro.wav"))
    assert 0.6 <= offset <= 1.0
    assert offset + len(play) / 16000 >= 1.0 + len(words) / 8000 - 0.05
    assert len(play) / 16000 <= len(words) / 8000 + 0.9
    assert 3.0 <= msg.speech_seconds <= len(words) / 8000 and msg.empty is False
    # Listed in its box, and the trail says how it came.
    assert [m.id for m in box_messages(store, box)] == [msg.id]
    assert [(e.actor, e.action, e.detail["end"]) for e in audit_trail(store, msg.id)] == [
        ("system", "saved", "key")]


def test_hang_up_ends_the_message_and_keeps_it(run_vm: Any, store: Store) -> None:
    box = queue_box(store, "claims")
    taken: list[Message] = []
    said = spoken("agent-pass.wav")

    async def scenario(rig: Rig) -> None:
        bot = await at_the_tone(rig, "13800000001")
        await bot.send(said)
        await bot.hangup()

    run_vm(vm_flow(store, box, taken, lang="en"), scenario)
    [msg] = taken
    assert msg.end_reason == "hangup" and msg.empty is False and msg.policy_number is None
    assert whole_frames(said) in wav_bytes(msg.raw_path)
    assert abs(msg.seconds - len(said) / 8000) <= 0.06
    assert [m.id for m in box_messages(store, box)] == [msg.id]


def test_three_seconds_of_silence_after_the_words_end_the_message(
        run_vm: Any, store: Store) -> None:
    box = general_box(store)
    taken: list[Message] = []
    said = spoken("vm-theperson.wav", before=0.5, after=0.0)
    words = read_slin(Path("/usr/share/asterisk/sounds/en/vm-theperson.wav"))

    async def scenario(rig: Rig) -> str | None:
        bot = await at_the_tone(rig, "13800000002")
        await bot.send(said)
        with contextlib.suppress(LineError):  # the box hangs up while this plays
            await bot.send(line_noise(10.0, seed=7))  # the caller just stays on the line
        return await bot.wait_hangup(20)

    assert run_vm(vm_flow(store, box, taken), scenario) is not None
    [msg] = taken
    assert msg.end_reason == "silence"
    # The words' last loud frame (above -45 dBFS; the file has a quiet tail) is 0.5 s +
    # that far into the message; 3 s later it ends, give or take the detector's judgement
    # of a fading syllable.
    loud = np.flatnonzero(frame_levels_dbfs(words[: len(words) // 160 * 160].reshape(-1, 160))
                          > -45.0)
    after_words = msg.seconds - (0.5 + (loud[-1] + 1) * 0.02)
    assert 2.9 <= after_words <= 3.3, after_words


def test_a_caller_who_never_speaks_is_given_longer_then_an_empty_message_is_kept(
        run_vm: Any, store: Store) -> None:
    box = general_box(store)
    taken: list[Message] = []

    async def scenario(rig: Rig) -> None:
        bot = await at_the_tone(rig, "13800000003")
        with contextlib.suppress(LineError):  # the box hangs up while this plays
            await bot.send(line_noise(15.0, seed=3))
        await bot.wait_hangup(20)

    run_vm(vm_flow(store, box, taken), scenario)
    [msg] = taken
    assert msg.end_reason == "silence" and msg.speech_seconds == 0 and msg.empty is True
    # Three times the wait after speech (3 s less the VAD's 0.8 s hangover, which only
    # follows speech): time to collect their thoughts, not a minute of line noise.
    assert msg.seconds == pytest.approx(3 * (3.0 - 0.8), abs=0.03)
    # Nothing to trim to: the played copy is the whole recording.
    assert wav_bytes(msg.playable) == wav_bytes(msg.raw_path)
    assert [m.id for m in box_messages(store, box)] == [msg.id]


def test_under_one_second_of_speech_is_kept_but_flagged_empty(run_vm: Any, store: Store) -> None:
    box = general_box(store)
    taken: list[Message] = []

    async def scenario(rig: Rig) -> None:
        bot = await at_the_tone(rig, "13800000004")
        await bot.send(spoken("auth-thankyou.wav"))  # "thank you": under a second of words
        await bot.press("#")
        await bot.wait_hangup(20)

    run_vm(vm_flow(store, box, taken), scenario)
    [msg] = taken
    assert msg.end_reason == "key" and msg.empty is True
    assert 0.3 <= msg.speech_seconds < 1.0
    assert [m.id for m in box_messages(store, box)] == [msg.id]


def test_the_maximum_length_ends_the_message(run_vm: Any, store: Store) -> None:
    box = general_box(store)
    taken: list[Message] = []
    said = np.concatenate([spoken("vm-intro.wav", seed=s) for s in (1, 2)])

    async def scenario(rig: Rig) -> None:
        bot = await at_the_tone(rig, "13800000005")
        with contextlib.suppress(LineError):  # the box hangs up while this plays
            await bot.send(said)
        await bot.wait_hangup(20)

    run_vm(vm_flow(store, box, taken, max_seconds=4.0), scenario)
    [msg] = taken
    assert msg.end_reason == "max-length" and msg.seconds == 4.0
    # 4 s of what the line carried from the tone: a tick or two of quiet before the caller
    # starts, then their words.
    raw = wav_bytes(msg.raw_path)
    start = raw.find(said[:800].tobytes())
    assert 0 <= start <= 2 * FRAME and raw[:start] == bytes(start)
    assert raw[start:] == said.tobytes()[: len(raw) - start]


def test_hanging_up_on_the_greeting_leaves_no_message(run_vm: Any, store: Store) -> None:
    box = general_box(store)
    taken: list[Message] = []

    async def scenario(rig: Rig) -> None:
        bot = CallerBot(rig.exchange, "13800000006")
        await bot.dial("95500")
        await bot.listen(1.0)
        await bot.hangup()

    run_vm(vm_flow(store, box, taken), scenario)
    assert taken == []
    assert store.query("SELECT * FROM voicemails") == []


def test_default_greetings_by_box_kind_and_language(run_vm: Any, store: Store,
                                                   tmp_path: Path) -> None:
    boxes = [(general_box(store), "zh"), (queue_box(store, "service"), "yue"),
             (salesperson_box(store, "S001"), "en")]
    taken: list[Message] = []
    calls = iter(boxes)

    async def flow(call: Call) -> None:
        box, lang = next(calls)
        await call.answer()
        taken.append(await leave_message(call, box, lang, store, executor=INLINE))
        await call.hangup()

    async def scenario(rig: Rig) -> list[bool]:
        heard = []
        for box, lang in boxes:
            bot = CallerBot(rig.exchange, "13800000007")
            await bot.dial("95500")
            greeting = concat([rig.prompts.get(f"vm_greeting_{box.kind.value}", lang),
                               rig.prompts.get("leave_message", lang)])
            heard.append(await bot.wait_for(greeting, timeout=30)
                         and await bot.wait_for(BEEP, timeout=1))
            await bot.send(spoken("agent-pass.wav"))
            await bot.hangup()
            await rig.engine.settle()
        return heard

    assert run_vm(flow, scenario) == [True, True, True]
    assert [m.lang for m in taken] == ["zh", "yue", "en"]
    # A message in a salesperson's box is theirs at once, with a notification.
    own = taken[2]
    assert own.status == "assigned" and own.assignee == "S001"
    assert [m.id for m in salesperson_inbox(store, "S001", only_new=True)] == [own.id]
    assert [n.voicemail_id for n in notifications(store, salesperson_code="S001")] == [own.id]
    assert [e.action for e in audit_trail(store, own.id)] == ["saved", "assign"]


def test_a_stored_greeting_replaces_the_default(run_vm: Any, store: Store,
                                                tmp_path: Path) -> None:
    box = queue_box(store, "claims")
    own = spoken("vm-theperson.wav", seed=9)
    source = tmp_path / "upload.wav"
    write_slin(source, own)
    wide = tmp_path / "wide.wav"
    with wave.open(str(wide), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(own.tobytes() * 2)
    with pytest.raises(WavFormatError, match="16000 Hz"):
        set_greeting(store, box, "zh", wide, tmp_path / "greetings", actor="admin", now=1.0)
    assert store.query("SELECT * FROM voicemail_greetings") == []
    set_greeting(store, box, "zh", source, tmp_path / "greetings", actor="admin", now=2.0)
    taken: list[Message] = []

    async def scenario(rig: Rig) -> tuple[bool, bytes]:
        bot = CallerBot(rig.exchange, "13800000008")
        await bot.dial("95500")
        got = await bot.wait_for(whole_frames(own), timeout=30)
        await bot.hangup()
        return got, bytes(bot.heard)

    got, heard = run_vm(vm_flow(store, box, taken), scenario)
    assert got
    default = concat([_zh("vm_greeting_queue")])
    assert default[:FRAME * 20] not in heard
    greeting_audit = store.query("SELECT actor, action FROM voicemail_audit WHERE box_id = ?",
                                 [box.id])
    assert greeting_audit == [{"actor": "admin", "action": "greeting-set"}]


def _zh(name: str) -> Any:
    from appliance.media.prompts import PromptLibrary

    return PromptLibrary().get(name, "zh")
