"""Recording a prompt over the phone, end to end: the real engine on the manual clock routes
the recording number to the recording line and every other number to the default IVR; a
CallerBot keys its staff number, PIN, the prompt's number and language as real DTMF tones,
plays a 1 kHz tone as the new recording and saves it; the file on disk, the audit log, and
what the next caller of the IVR hears (without any restart) are checked."""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from appliance.insurance.demo_data import load_demo_data
from appliance.media.prompts import DEFAULT_PROMPTS_DIR, Prompt, PromptLibrary, concat
from appliance.media.tones import beep
from appliance.promptrec import DEFAULT_NUMBER, pins, prompt_numbers
from appliance.promptrec.phone import PromptRecording
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from tests.promptrec.helpers import (
    add_admin,
    default_ivr,
    has_tone,
    peak_hz,
    prompts_copy,
    run_apart,
    tone,
)
from tests.rig import InlineExecutor, running_engine

T = TypeVar("T")
PIN = "4321"
BEEP = concat([Prompt.from_samples("beep", beep())])


class Box:
    """The engine's world for one test: its own prompts folder, store and data folder."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.root = prompts_copy(tmp_path)
        self.prompts = PromptLibrary(self.root)
        self.store = Store(tmp_path / "appliance.db")
        load_demo_data(self.store, policies=20, pin_iterations=1000)
        self.staff = add_admin(self.store, PIN)
        self.numbers = prompt_numbers(self.store, self.root)
        # What the prompts sounded like before any test changed them.
        self.original = {name: concat([self.prompts.get(name, "zh")])
                         for name in ("welcome", "rec_current", "rec_after_beep",
                                      "rec_your_take", "rec_save_menu", "rec_saved",
                                      "rec_discarded", "rec_pin_wrong", "rec_locked",
                                      "rec_no_such_prompt",
                                      "rec_enter_number", "goodbye")}

    def said(self, name: str) -> bytes:
        return self.original[name]

    def run(self, scenario: Callable[[SimExchange], Awaitable[T]]) -> T:
        recording = PromptRecording(self.store, self.tmp, executor=InlineExecutor())
        ivr = default_ivr(self.store, self.tmp)

        async def main() -> T:
            async with running_engine(recording.route([DEFAULT_NUMBER], ivr),
                                      prompts=self.prompts, store=self.store,
                                      recordings=self.tmp / "recordings", trunks=4) as (_, ex):
                return await asyncio.wait_for(scenario(ex), timeout=120)

        return run_apart(main)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    b = Box(tmp_path)
    yield b
    b.store.close()


def heard_in_order(heard: bytes, *pieces: bytes) -> bool:
    at = 0
    for piece in pieces:
        found = heard.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


async def press_then_hear(bot: CallerBot, keys: str, pattern: bytes,
                          timeout: float = 60) -> bool:
    heard = asyncio.ensure_future(bot.wait_for(pattern, timeout=timeout))
    await asyncio.sleep(0)  # listening before the first key: nothing is missed
    await bot.press(keys)
    return await heard


async def record_take(box: Box, bot: CallerBot, prompt: str, lang_key: str = "1",
                      pin: str = PIN, wrong_first: str = "") -> None:
    """Log in, choose ``prompt`` and its language (after keying ``wrong_first``, which is
    no prompt's number), and record the tone after the beep; the bot is left hearing the
    save menu."""
    await bot.dial(DEFAULT_NUMBER)
    await bot.listen(0.5)
    await bot.press(f"{box.staff}#")
    await bot.listen(0.3)
    await bot.press(f"{pin}#")
    await bot.listen(0.3)
    if wrong_first:
        assert await press_then_hear(bot, wrong_first, box.said("rec_no_such_prompt"))
    await bot.press(f"{box.numbers[prompt]}#")
    await bot.listen(0.3)
    assert await press_then_hear(bot, lang_key, BEEP)
    await bot.send(tone())
    assert await press_then_hear(bot, "#", box.said("rec_save_menu")[:3200])


def history(box: Box) -> list[Path]:
    return sorted((box.tmp / "prompt_history").rglob("*.wav"))


def test_a_prompt_recorded_by_phone_is_saved_and_the_next_caller_hears_it(box: Box) -> None:
    old_file = (box.root / "zh" / "welcome.wav").read_bytes()
    old = box.said("welcome")

    async def scenario(ex: SimExchange) -> tuple[bytes, bytes, bytes]:
        admin = CallerBot(ex, "13911112222")
        await record_take(box, admin, "welcome")
        # A caller already hearing the old greeting when the new one is saved...
        early = CallerBot(ex, "13800000001")
        await early.dial("95500")
        await early.listen(0.5)
        assert old[:1600] in early.heard
        assert await press_then_hear(admin, "1", box.said("rec_saved"), timeout=30)
        await early.listen(4.5)
        await early.hangup()
        # ...and the next caller, after the save.
        late = CallerBot(ex, "13800000002")
        await late.dial("95500")
        await late.listen(3.0)
        await late.hangup()
        await admin.hangup()
        return bytes(admin.heard), bytes(early.heard), bytes(late.heard)

    heard, early, late = box.run(scenario)
    # The admin heard the prompt in use, recorded after the beep, heard the take, saved.
    assert heard_in_order(heard, box.said("rec_current"), old, box.said("rec_after_beep"),
                          BEEP, box.said("rec_your_take"), box.said("rec_save_menu")[:3200],
                          box.said("rec_saved"))
    # What was played back after "your recording is" was the tone.
    assert has_tone(heard[heard.find(box.said("rec_your_take")):])
    # On disk: an 8 kHz 16-bit mono WAV holding the tone, about as long as it was played.
    path = box.root / "zh" / "welcome.wav"
    assert not path.is_symlink()
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        pcm = w.readframes(w.getnframes())
    samples = np.frombuffer(pcm, dtype="<i2")
    assert 1.4 <= len(samples) / 8000 <= 2.0
    assert has_tone(pcm) and peak_hz(samples) == pytest.approx(1000, abs=10)
    # The old recording is kept under the data folder; the repository's file is untouched.
    (kept,) = history(box)
    assert kept.read_bytes() == old_file
    assert (DEFAULT_PROMPTS_DIR / "zh" / "welcome.wav").read_bytes() == old_file
    # The caller who was mid-greeting heard the old one to its end; the next one the new.
    assert old in early and not has_tone(early)
    assert pcm in late and has_tone(late)
    # The take itself is not left lying about, nor listed among the call recordings.
    assert not list((box.tmp / "prompt_takes").glob("*"))
    assert box.store.query("SELECT path FROM recordings WHERE path LIKE '%prompt_takes%'"
                           ) == []
    (row,) = box.store.query("SELECT * FROM audit_log WHERE action = 'prompt.replace'")
    detail = json.loads(row["detail"])
    assert (row["username"], row["role"], row["target"]) == ("boss", "admin", "zh/welcome")
    assert row["address"] == "phone:13911112222" and detail["via"] == "phone"
    assert detail["kept"] == str(kept)


def test_record_again_then_discard_leaves_the_old_recording(box: Box) -> None:
    before = (box.root / "en" / "goodbye.wav").read_bytes()

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13911112222")
        await record_take(box, bot, "goodbye", lang_key="3", wrong_first="*12#")
        # 2: record again, after another beep.
        assert await press_then_hear(bot, "2", BEEP)
        await bot.send(tone(1.0, 600.0))
        assert await press_then_hear(bot, "#", box.said("rec_save_menu")[:3200])
        assert await press_then_hear(bot, "3", box.said("rec_discarded"), timeout=30)
        await bot.hangup()
        return bytes(bot.heard)

    box.run(scenario)
    assert (box.root / "en" / "goodbye.wav").read_bytes() == before
    assert (box.root / "en" / "goodbye.wav").is_symlink()
    assert history(box) == []
    assert box.store.query("SELECT * FROM audit_log WHERE action = 'prompt.replace'") == []
    assert not list((box.tmp / "prompt_takes").glob("*"))


async def wrong_pins(box: Box, ex: SimExchange, tries: int, pin: str = "9999") -> CallerBot:
    bot = CallerBot(ex, "13911112222")
    await bot.dial(DEFAULT_NUMBER)
    await bot.listen(0.5)
    for _ in range(tries):
        await bot.press(f"{box.staff}#")
        await bot.listen(0.3)
        await bot.press(f"{pin}#")
        await bot.listen(0.3)
    return bot


def test_three_wrong_pins_hang_up_and_five_in_a_row_lock_the_pin(box: Box) -> None:
    def failures() -> tuple[int, int]:
        row = box.store.query("SELECT failed_pins, locked FROM staff_phone_pins "
                              "WHERE user_id = ?", [box.staff])[0]
        return row["failed_pins"], row["locked"]

    async def scenario(ex: SimExchange) -> list[bytes]:
        first = await wrong_pins(box, ex, 3)
        assert await first.wait_hangup(30) == "normal"
        assert failures() == (3, 0)
        second = await wrong_pins(box, ex, 2)  # the fifth wrong PIN in a row locks it
        assert await second.wait_hangup(30) == "normal"
        assert failures() == (5, 1)
        third = await wrong_pins(box, ex, 1, pin=PIN)  # now even the right PIN is refused
        assert await third.wait_hangup(30) == "normal"
        return [bytes(first.heard), bytes(second.heard), bytes(third.heard)]

    first, second, third = box.run(scenario)
    wrong = box.said("rec_pin_wrong")
    assert heard_in_order(first, wrong, wrong, wrong, box.said("goodbye"))
    assert box.said("rec_enter_number") not in first
    assert heard_in_order(second, wrong, box.said("rec_locked"), box.said("goodbye"))
    assert box.said("rec_locked") in third and box.said("rec_enter_number") not in third
    assert pins.pin_state(box.store, box.staff) == "locked"


def test_only_an_active_admin_pin_opens_the_line(box: Box) -> None:
    agent = add_admin(box.store, "5555", username="seat1", role="agent")
    gone = add_admin(box.store, "6666", username="left", active=False)
    assert pins.check_pin(box.store, str(agent), "5555")[0] is pins.PinCheck.WRONG
    assert pins.check_pin(box.store, str(gone), "6666")[0] is pins.PinCheck.WRONG
    assert pins.check_pin(box.store, "99999", PIN)[0] is pins.PinCheck.WRONG
    assert pins.check_pin(box.store, "1 OR 1", PIN)[0] is pins.PinCheck.WRONG
    result, staff = pins.check_pin(box.store, str(box.staff), PIN)
    assert result is pins.PinCheck.OK and staff is not None and staff.username == "boss"
    # The PIN is kept only as a hash.
    (row,) = box.store.query("SELECT pin_hash FROM staff_phone_pins WHERE user_id = ?",
                             [box.staff])
    assert PIN not in row["pin_hash"] and row["pin_hash"].startswith("pbkdf2_sha256$")
    with pytest.raises(pins.PinError, match="digits only"):
        box.store.write(lambda db: pins.set_pin(db, box.staff, "12a4", 0.0))
    with pytest.raises(pins.PinError, match="4 to 8 digits"):
        box.store.write(lambda db: pins.set_pin(db, box.staff, "123", 0.0))


def test_prompt_numbers_never_change_when_prompts_are_added(box: Box) -> None:
    first = dict(box.numbers)
    assert sorted(first.values()) == list(range(1, len(first) + 1))
    assert first["welcome"] == 1
    manifest = json.loads((box.root / "manifest.json").read_text("utf-8"))
    (box.root / "manifest.json").unlink()
    manifest["zh"]["prompts"] = {"a_new_one": "新的", **manifest["zh"]["prompts"]}
    (box.root / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
    again = prompt_numbers(box.store, box.root)
    assert {k: again[k] for k in first} == first
    assert again["a_new_one"] == len(first) + 1
