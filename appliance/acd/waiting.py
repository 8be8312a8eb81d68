"""What a caller does while in a queue: hear music and announcements, and choose a
callback when the wait has been too long.

These run on the caller's own :class:`~appliance.calls.call.Call` and know nothing of
seats or routing: :func:`hold` is told how to find the caller's place and expected wait
(they change as others are answered), and the callback menu returns the number the caller
chose. The ACD starts :func:`hold` as a task and cancels it (and stops the music) the
moment a seat answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from appliance.acd.hold import announcement, hold_tune
from appliance.acd.model import QueueConfig
from appliance.calls.call import Call, CallEnded
from appliance.ivr.speech import say
from appliance.media.collector import seconds_to_ticks
from appliance.media.prompts import Prompt

log = logging.getLogger("appliance.acd")

CALLBACK_MENU_TIMEOUT: Final = 8.0
CALLBACK_NUMBER_DIGITS: Final = 20


async def hold(call: Call, cfg: QueueConfig, position: Callable[[], int],
               wait_seconds: Callable[[], float], *, ringing: bool = False) -> None:
    """Music on hold with an announcement every ``cfg.announce_every`` seconds, the first
    one at once unless a seat is ``ringing`` already (the caller may be answered within
    seconds, and should not be told to expect minutes)."""
    tune = hold_tune()
    said = 0
    skip = ringing
    try:
        while True:
            if not skip:
                thanks = said % cfg.periodic_every == cfg.periodic_every - 1
                await call.play(*announcement(call.language, position(), wait_seconds(),
                                              thanks=thanks), interruptible=False)
                said += 1
            skip = False
            await call.play(*music(tune, cfg.announce_every), interruptible=False)
    except (CallEnded, asyncio.CancelledError):
        pass
    except Exception:
        # A missing prompt must not end the call: the caller keeps their place in silence.
        log.exception("call %s: hold in queue %s failed", call.id, cfg.name)


def music(tune: Prompt, seconds: float) -> list[Prompt]:
    """The hold tune looped for ``seconds``, the last loop cut short."""
    frames = seconds_to_ticks(seconds)
    whole, rest = divmod(frames, len(tune.frames))
    playlist = [tune] * whole
    if rest:
        playlist.append(Prompt(tune.name, tune.language, tune.frames[:rest]))
    return playlist


async def ask_callback(call: Call) -> str:
    """Offer a callback: 1 to the number calling, 2 to a number keyed in, anything else (or
    nothing) a message. Returns the number, or "" for voicemail."""
    call.flush_keys()  # keys pressed during the music are not an answer
    got = await call.collect(1, terminator="", first_timeout=CALLBACK_MENU_TIMEOUT,
                             prompt=["queue_callback_offer"])
    if got.digits == "1" and call.caller:
        return call.caller
    if got.digits in ("1", "2"):
        # "1" with no caller ID: the number has to be keyed in too.
        typed = await call.collect(CALLBACK_NUMBER_DIGITS, terminator="#",
                                   first_timeout=CALLBACK_MENU_TIMEOUT, inter_timeout=5.0,
                                   prompt=["queue_callback_enter"])
        return typed.digits.strip("*#")
    return ""


async def confirm_callback(call: Call, number: str) -> None:
    """Read the number back, and say the place is kept (the prompt ends with goodbye)."""
    await call.play("queue_callback_number", *say(call.language, "digits", number),
                    "queue_callback_booked", interruptible=False)


__all__ = ["ask_callback", "confirm_callback", "hold", "music"]
