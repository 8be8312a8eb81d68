"""A salesperson hears their messages by phone (behind the PIN menu of the IVR).

The count of new messages comes first, then each message oldest first: its envelope (when
it came, spoken as date and time in the caller's language; the caller's number; the policy
number if one was keyed) and the message itself, trimmed. A key skips to the next message.
A message counts as heard once it has played to its end or been skipped; if the
salesperson hangs up in the middle, it stays new for the next time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import Executor
from functools import partial

from appliance.calls.call import Call
from appliance.ivr.speech import say
from appliance.media.prompts import Prompt
from appliance.media.wavio import read_slin
from appliance.store.db import Store
from appliance.voicemail.boxes import check_language
from appliance.voicemail.messages import Message
from appliance.voicemail.triage import mark_heard, salesperson_inbox


def envelope_segments(message: Message, lang: str) -> list[str]:
    """Prompt names that speak a message's envelope: received date and time, caller, policy."""
    when = dt.datetime.fromtimestamp(message.received_at)
    segments = ["vm_received_at", *say(lang, "date", when.strftime("%Y-%m-%d")),
                *say(lang, "time", when.strftime("%H:%M"))]
    if message.caller.isdigit():
        segments += ["vm_from", *say(lang, "digits", message.caller)]
    if message.policy_number and message.policy_number.isdigit():
        segments += ["vm_policy", *say(lang, "digits", message.policy_number)]
    return segments


def _in(call: Call, lang: str, *names: str) -> list[Prompt]:
    # By name in the salesperson's language, which need not be the call's current one.
    return [call.engine.prompts.get(name, lang) for name in names]


def _load(message: Message) -> Prompt:
    return Prompt.from_samples(f"voicemail-{message.id}", read_slin(message.playable))


async def salesperson_messages(call: Call, salesperson_code: str, lang: str, store: Store, *,
                               executor: Executor | None = None) -> int:
    """Play the salesperson's new messages; returns how many were heard to the end or
    skipped (and so marked heard). The store work runs on ``executor`` (default: the
    loop's thread pool)."""
    check_language(lang)
    loop = asyncio.get_running_loop()
    new = await loop.run_in_executor(
        executor, partial(salesperson_inbox, store, salesperson_code, only_new=True))
    if not new:
        await call.play(*_in(call, lang, "vm_no_new_messages"))
        return 0
    await call.play(*_in(call, lang, "vm_you_have", *say(lang, "number", str(len(new))),
                         "vm_new_messages"))
    heard = 0
    for message in new:
        audio = await loop.run_in_executor(executor, _load, message)
        call.flush_keys()
        await call.play(*_in(call, lang, "vm_next_message", *envelope_segments(message, lang)),
                        audio)
        call.flush_keys()
        await loop.run_in_executor(executor, partial(
            mark_heard, store, message.id, actor=salesperson_code,
            now=call.engine.clock.wall()))
        heard += 1
    await call.play(*_in(call, lang, "vm_no_more_messages"))
    return heard
