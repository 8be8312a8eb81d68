"""Recording a prompt over the phone: an admin calls the recording number, keys their
staff number and phone PIN, the prompt's number (the web prompts page lists them) and its
language (1 普通话, 2 粤语, 3 English), hears the recording in use, records after the beep
(ending on ``#``, three seconds of silence after speech, or at the prompts' maximum
length), hears the take back, and keys 1 to save it, 2 to record again, 3 to discard it.

A saved take replaces the prompt exactly as a web upload does
(:func:`~appliance.promptrec.files.replace_prompt`: the old file kept under the data
folder, the new one renamed into place) with an audit-log row naming the account, the
prompt and the caller's number; the engine's prompt library is told at once, so the next
call hears it. Three wrong staff number / PIN tries end the call; five wrong PINs in a row
lock the PIN (:mod:`appliance.promptrec.pins`). The prompts of this flow are in the box's
default language, like the conference number's.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
import wave
from collections.abc import Callable, Collection
from concurrent.futures import Executor
from pathlib import Path
from typing import Final, TypeVar

import numpy as np
from sqlite_utils import Database

from appliance.calls.call import Call, CallEnded, FlowFn, RecordEnd
from appliance.media.frame import FRAME_BYTES, SAMPLE_RATE
from appliance.media.prompts import Prompt
from appliance.promptrec import files, pins
from appliance.store.db import Store

log = logging.getLogger("appliance.promptrec")
T = TypeVar("T")

DEFAULT_NUMBER: Final = pins.DEFAULT_NUMBER
TRIES: Final = 3
ENTRY_TIMEOUT: Final = 8.0
SILENCE_SECONDS: Final = 3.0
STOP_KEY: Final = "#"
#: a take ended by ``#`` holds the start of that key's tone (the detector needs 25-40 ms
#: of it, then the tick ends the recording): cut, as voicemail cuts it
KEY_TONE_FRAMES: Final = 5
#: a take shorter than this after the cut is taken for a slip, not a prompt
MIN_FRAMES: Final = 10
LANGUAGE_KEYS: Final = {"1": "zh", "2": "yue", "3": "en"}


def _wav_bytes(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    return out.getvalue()


def _take_pcm(path: Path, end: RecordEnd) -> bytes:
    """The take's samples, without the stop key's tone at its end."""
    with wave.open(str(path), "rb") as w:
        pcm = w.readframes(w.getnframes())
    frames = len(pcm) // FRAME_BYTES
    if end is RecordEnd.KEY:
        frames = max(0, frames - KEY_TONE_FRAMES)
    return pcm[:frames * FRAME_BYTES]


class PromptRecording:
    """The recording line of one box; :meth:`flow` is a whole call to it."""

    def __init__(self, store: Store, data_dir: Path, *, executor: Executor | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.executor = executor
        self.wall = wall

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # ------------------------------------------------------------------ the call
    def flow(self) -> FlowFn:
        async def recording_flow(call: Call) -> None:
            await call.answer()
            with contextlib.suppress(CallEnded):
                await self.session(call)
                await call.play("goodbye", interruptible=False)
                await call.hangup()

        return recording_flow

    def route(self, numbers: Collection[str], default: FlowFn) -> FlowFn:
        """The engine's flow: calls to one of ``numbers`` reach the recording line; all
        others go to ``default``."""
        direct = self.flow()
        wanted = frozenset(numbers)

        async def by_number(call: Call) -> None:
            await (direct if call.callee in wanted else default)(call)

        return by_number

    async def session(self, call: Call) -> None:
        """Log in, then record prompts one after another until the caller stops keying."""
        staff = await self._log_in(call)
        if staff is None:
            return
        while True:
            name = await self._choose_prompt(call)
            if name is None:
                return
            lang = await self._choose_language(call, name)
            if lang is not None:
                await self._record(call, staff, name, lang)

    async def _entry(self, call: Call, max_digits: int, prompt: str, *,
                     secret: bool = False) -> str:
        # Keys typed ahead (during "wrong PIN", say) count for this entry, as in the IVR.
        got = await call.collect(max_digits, first_timeout=ENTRY_TIMEOUT, inter_timeout=5.0,
                                 prompt=[prompt], secret=secret)
        return got.digits.strip(STOP_KEY)

    async def _log_in(self, call: Call) -> pins.Staff | None:
        for attempt in range(TRIES):
            staff_no = await self._entry(call, 9, "rec_welcome" if attempt == 0
                                         else "rec_enter_staff")
            pin = await self._entry(call, pins.PIN_DIGITS[1], "rec_enter_pin", secret=True)
            if staff_no and pin:
                result, staff = await self._run(pins.check_pin, self.store, staff_no, pin)
            else:
                result, staff = pins.PinCheck.WRONG, None
            if result is pins.PinCheck.OK:
                return staff
            if result is pins.PinCheck.LOCKED:
                await call.play("rec_locked", interruptible=False)
                return None
            await call.play("rec_pin_wrong", interruptible=False)
        return None

    async def _choose_prompt(self, call: Call) -> str | None:
        root = call.engine.prompts.root
        silent = 0
        while silent < 2:
            keyed = await self._entry(call, 4, "rec_enter_number")
            if not keyed:
                silent += 1
                await call.play("no_input", interruptible=False)
                continue
            silent = 0
            name = (await self._run(files.prompt_by_number, self.store, root, int(keyed))
                    if keyed.isdigit() else None)  # '*' is no number
            if name is not None:
                return name
            await call.play("rec_no_such_prompt", interruptible=False)
        return None

    async def _choose_language(self, call: Call, name: str) -> str | None:
        root = call.engine.prompts.root
        for _ in range(TRIES):
            key = await self._entry(call, 1, "lang_menu")
            lang = LANGUAGE_KEYS.get(key)
            if lang is None:
                await call.play("invalid_key" if key else "no_input", interruptible=False)
            elif not (root / lang / f"{name}.wav").is_file():
                await call.play("rec_no_such_lang", interruptible=False)
                return None
            else:
                return lang
        return None

    async def _record(self, call: Call, staff: pins.Staff, name: str, lang: str) -> None:
        prompts = call.engine.prompts
        await call.play("rec_current", prompts.get(name, lang))
        takes = self.data_dir / "prompt_takes"
        empty = 0
        for n in range(1, 1000):
            await call.play("rec_after_beep")
            call.flush_keys()
            await call.beep()
            path = takes / f"{call.id}-{n}.wav"
            try:
                taken = await call.record_message(path, max_seconds=files.MAX_PROMPT_SECONDS,
                                                  silence_seconds=SILENCE_SECONDS,
                                                  stop_keys=STOP_KEY, index=False)
                if taken.path is None:
                    raise CallEnded(call.end_cause or "recording-failed")
                pcm = await self._run(_take_pcm, taken.path, taken.end)
            finally:
                path.unlink(missing_ok=True)  # saved as the prompt, or not wanted
            if call.ended:
                raise CallEnded(call.end_cause)
            if len(pcm) < MIN_FRAMES * FRAME_BYTES:
                await call.play("rec_empty", interruptible=False)
                empty += 1
                if empty >= TRIES:  # nobody is speaking: the line may be dead
                    return
                continue
            choice = await self._review(call, Prompt.from_samples(
                f"take-{name}", np.frombuffer(pcm, dtype="<i2"), lang))
            if choice == "save":
                await self._save(call, staff, name, lang, pcm)
                await call.play("rec_saved", interruptible=False)
                return
            if choice == "discard":
                await call.play("rec_discarded", interruptible=False)
                return

    async def _review(self, call: Call, take: Prompt) -> str:
        """Play the take back; ``save``, ``again`` or ``discard`` (silence: discard)."""
        await call.play("rec_your_take", take)
        for _ in range(TRIES):
            key = await self._entry(call, 1, "rec_save_menu")
            if key in ("1", "2", "3"):
                return {"1": "save", "2": "again", "3": "discard"}[key]
            await call.play("invalid_key" if key else "no_input", interruptible=False)
        return "discard"

    async def _save(self, call: Call, staff: pins.Staff, name: str, lang: str,
                    pcm: bytes) -> None:
        prompts = call.engine.prompts
        done = await self._run(files.replace_prompt, prompts.root, self.data_dir, lang, name,
                               _wav_bytes(pcm))
        prompts.forget(name, lang)  # the next call hears it at once
        caller = call.caller or "-"
        at = self.wall()

        def record(db: Database) -> None:
            files.audit(db, at=at, username=staff.username, role=staff.role,
                        address=f"phone:{caller}", action="prompt.replace",
                        target=f"{lang}/{name}", old_sha256=done.old_sha256,
                        new_sha256=done.new_sha256, kept=str(done.kept), via="phone",
                        call=call.id, seconds=len(pcm) / 2 / SAMPLE_RATE)

        await self._run(self.store.write, record)
        log.info("prompt %s/%s replaced by phone by %s (call %s)", lang, name,
                 staff.username, call.id)


__all__ = ["DEFAULT_NUMBER", "LANGUAGE_KEYS", "PromptRecording"]
