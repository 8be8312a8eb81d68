"""Taking a message on a call: greeting, tone, recording, and the finished message row.

:func:`leave_message` is what the IVR calls for every box. The recording itself is the
engine's crash-safe ``Call.record_message`` (it ends on ``#``, on hang-up, when the caller's
speech has ended by VAD and energy gate, or at the maximum length); this module puts the
envelope around it. The row is committed before the tone, so a crash at any point after
the tone leaves a row that start-up recovery completes. Measuring and trimming run on a
worker thread, never on the loop that paces every call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from appliance.calls.call import Call, CallEnded
from appliance.media.frame import FRAME_MS
from appliance.store.db import Store
from appliance.voicemail.boxes import Box, check_language, greeting
from appliance.voicemail.messages import Message, drop_unrecorded, finish_message, open_message

MAX_SECONDS = 180.0
SILENCE_SECONDS = 3.0
#: the key that ends a message
FINISH_KEY = "#"


def _after_speech_end(call: Call, silence_seconds: float) -> float:
    """``record_message`` counts silence from the VAD's end-of-speech event, which itself
    comes ``end_ms`` after the last speech frame; take that off, so the message ends
    ``silence_seconds`` after the caller's last word, as the box promises."""
    hangover = call.vad.end_frames * FRAME_MS / 1000 if call.vad is not None else 0.0
    return max(FRAME_MS / 1000, silence_seconds - hangover)


async def leave_message(
    call: Call,
    box: Box,
    lang: str,
    store: Store,
    *,
    ivr_path: Sequence[Any] = (),
    policy_number: str | None = None,
    messages_dir: Path | None = None,
    max_seconds: float = MAX_SECONDS,
    silence_seconds: float = SILENCE_SECONDS,
    play_greeting: bool = True,
    executor: Executor | None = None,
) -> Message:
    """Greet the caller (a key skips the greeting), sound the tone and record a message into
    ``box``; returns the finished message.

    ``ivr_path`` and ``policy_number`` (if the caller keyed one) go into the envelope with
    the caller's number, the time, the box and ``lang``. Messages go under
    ``messages_dir`` (default: ``messages`` in the engine's recordings folder, where its
    start-up recovery finds a message a crash cut short). The message ends on ``#``, on
    hang-up, ``silence_seconds`` after the caller's last word, or at ``max_seconds``; a
    caller who never says anything is given three times ``silence_seconds`` less the VAD's
    end-of-speech hangover (6.6 s by default). Raises CallEnded if the caller hangs up
    before the tone ends: then there is no message. The store work runs on ``executor``
    (default: the loop's thread pool).
    """
    check_language(lang)
    if max_seconds <= 0 or silence_seconds <= 0:
        raise ValueError(f"max_seconds ({max_seconds}) and silence_seconds ({silence_seconds})"
                         " must be > 0")
    directory = messages_dir
    if directory is None:
        if call.engine.recordings is None:
            raise ValueError("the engine keeps no recordings: give messages_dir")
        directory = call.engine.recordings / "messages"
    loop = asyncio.get_running_loop()
    if play_greeting:
        prompts = await loop.run_in_executor(executor, greeting, store, box, lang,
                                             call.engine.prompts)
        await call.play(*prompts)
        call.flush_keys()  # the key that skipped the greeting is not a message key
    opened = open_message(
        store, box, call_id=call.id, caller=call.caller, received_at=call.engine.clock.wall(),
        lang=lang, directory=directory, ivr_path=ivr_path, policy_number=policy_number,
    )
    # The row is committed before the tone: the caller speaks after it, and every frame
    # from then on goes to a file that a row already describes.
    message_id, path = await loop.run_in_executor(executor, opened.result)
    try:
        if call.ended:
            raise CallEnded(call.end_cause)
        await call.beep()
    except CallEnded:
        drop_unrecorded(store, message_id)
        raise
    taken = await call.record_message(path, max_seconds=max_seconds,
                                      silence_seconds=_after_speech_end(call, silence_seconds),
                                      stop_keys=FINISH_KEY)
    if taken.path is None:
        # The file could not be closed (disk error): its .part stays for start-up recovery,
        # and so does the row.
        raise OSError(f"voicemail {message_id}: recording {path} could not be closed")
    return await loop.run_in_executor(executor, finish_message, store, message_id, taken.path,
                                      taken.end.value, call.engine.clock.wall())
