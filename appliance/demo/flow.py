"""The foundation's small built-in flow: greet, read back the keys pressed, take a message.

It exercises every part of the media path a real flow uses (prompt playback interrupted by
keys, digit collection with timeouts, spoken digits, a crash-safe message recording ended by
``#`` or by the caller's silence) and is what ``make run`` routes simulated callers into
until the insurance IVR replaces it.
"""

from __future__ import annotations

from pathlib import Path

from appliance.calls.call import Call, FlowFn

DIGIT_PROMPTS = {
    **{d: f"digit_{d}" for d in "0123456789ABCD"},
    "*": "digit_star",
    "#": "digit_hash",
}


def digit_prompts(digits: str) -> list[str]:
    return [DIGIT_PROMPTS[d] for d in digits if d in DIGIT_PROMPTS]


def make_demo_flow(messages_dir: Path | None) -> FlowFn:
    """The demo flow; messages go to ``messages_dir`` (not recorded when None)."""

    async def demo_flow(call: Call) -> None:
        await call.answer()
        await call.play("welcome")
        got = await call.collect(16, terminator="#", first_timeout=8.0, inter_timeout=4.0,
                                 prompt=["enter_digits"])
        if got.digits:
            await call.play("you_entered", *digit_prompts(got.digits))
        else:
            await call.play("no_input")
        if messages_dir is not None:
            await call.play("leave_message", interruptible=False)
            await call.beep()
            message = await call.record_message(messages_dir / f"{call.id}.msg.wav",
                                                max_seconds=30.0, silence_seconds=3.0)
            if message.path is not None:
                await call.play("message_saved")
        await call.play("goodbye", interruptible=False)
        await call.hangup()

    return demo_flow
