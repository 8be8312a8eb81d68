"""The satisfaction survey a caller is offered when the agent hangs up first (F3), and the
ring count of China's ring cadence (O5: answer within three rings).

The caller stays on the line after the agent's hang-up and hears "please rate our service,
1 to 5" in the call's language; one key 1-5 is the score. A wrong key or silence gets one
more try (the reason, then the question again); then the box thanks the caller, or just
says goodbye when no score came, and hangs up. Keys pressed while talking to the agent
are thrown away first: they are not an answer to a question not yet asked.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final

from appliance.calls.call import Call, CallEnded

SURVEY_TIMEOUT: Final = 6.0
SURVEY_TRIES: Final = 2
#: China's ring cadence: 1 s of ring, 4 s of silence
RING_CYCLE_SECONDS: Final = 5.0


class SurveyStatus(enum.Enum):
    SCORED = "scored"
    NO_SCORE = "no-score"  # two wrong keys or silences
    HUNG_UP = "hung-up"  # the caller left during the survey


@dataclass(frozen=True, slots=True)
class SurveyResult:
    status: SurveyStatus
    score: int | None = None
    tries: int = 0


def rings(ring_seconds: float) -> int:
    """Rings a caller heard in ``ring_seconds`` of China's cadence: a ring starts at 0 s,
    5 s, 10 s, ... so an answer at 0-4.99 s is the first ring, at 14.99 s the third."""
    if ring_seconds < 0:
        raise ValueError(f"ring_seconds {ring_seconds}: expected 0 or more")
    return math.floor(ring_seconds / RING_CYCLE_SECONDS) + 1


async def ask_rating(call: Call) -> SurveyResult:
    """Ask ``call``'s caller for a 1-5 score; the call is hung up at the end."""
    tries = 0
    score: int | None = None
    try:
        call.flush_keys()
        retry: list[str] = []
        while tries < SURVEY_TRIES:
            tries += 1
            got = await call.collect(1, terminator="", first_timeout=SURVEY_TIMEOUT,
                                     prompt=[*retry, "survey_rate"])
            if got.digits in ("1", "2", "3", "4", "5"):
                score = int(got.digits)
                break
            retry = ["no_input"] if got.timed_out or not got.digits else ["invalid_key"]
        if score is not None:
            await call.play("survey_thanks", interruptible=False)
            result = SurveyResult(SurveyStatus.SCORED, score, tries)
        else:
            await call.play("goodbye", interruptible=False)
            result = SurveyResult(SurveyStatus.NO_SCORE, None, tries)
    except CallEnded:
        # A score keyed before the caller hung up (during the thanks) still counts.
        if score is not None:
            return SurveyResult(SurveyStatus.SCORED, score, tries)
        return SurveyResult(SurveyStatus.HUNG_UP, None, tries)
    await call.hangup()
    return result


__all__ = ["RING_CYCLE_SECONDS", "SURVEY_TIMEOUT", "SURVEY_TRIES", "SurveyResult",
           "SurveyStatus", "ask_rating", "rings"]
