"""Digit collection for menus and number entry, counted in frames, not wall-clock time.

A :class:`DigitCollector` is a pure state machine: the engine feeds it keys and the tick
number, and it says when the entry is complete and why (enough digits, the terminator key,
or a first-digit / inter-digit timeout). Because time is the tick count, a test on the
manual clock and a call on a real line behave identically.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from appliance.media.frame import FRAME_MS


class CollectEnd(enum.Enum):
    MAX_DIGITS = "max-digits"
    TERMINATOR = "terminator"
    TIMEOUT = "timeout"  # no key at all before the first-digit timeout
    INTER_DIGIT_TIMEOUT = "inter-digit-timeout"


@dataclass(frozen=True, slots=True)
class Collected:
    digits: str
    end: CollectEnd

    @property
    def timed_out(self) -> bool:
        return self.end is CollectEnd.TIMEOUT


def seconds_to_ticks(seconds: float) -> int:
    return max(1, round(seconds * 1000 / FRAME_MS))


class DigitCollector:
    """Collects up to ``max_digits`` keys; the terminator is not part of the result."""

    def __init__(
        self,
        start_tick: int,
        max_digits: int = 1,
        terminator: str = "#",
        first_timeout: float = 5.0,
        inter_timeout: float = 3.0,
    ) -> None:
        if max_digits < 1:
            raise ValueError(f"max_digits must be at least 1, got {max_digits}")
        self.max_digits = max_digits
        self.terminator = terminator
        self._first = seconds_to_ticks(first_timeout)
        self._inter = seconds_to_ticks(inter_timeout)
        self._deadline = start_tick + self._first
        self.digits = ""
        self.result: Collected | None = None

    def key(self, digit: str, tick: int) -> Collected | None:
        if self.result is not None:
            return self.result
        if self.terminator and digit in self.terminator:
            self.result = Collected(self.digits, CollectEnd.TERMINATOR)
            return self.result
        self.digits += digit
        if len(self.digits) >= self.max_digits:
            self.result = Collected(self.digits, CollectEnd.MAX_DIGITS)
        else:
            self._deadline = tick + self._inter
        return self.result

    def tick(self, tick: int) -> Collected | None:
        if self.result is None and tick >= self._deadline:
            end = CollectEnd.INTER_DIGIT_TIMEOUT if self.digits else CollectEnd.TIMEOUT
            self.result = Collected(self.digits, end)
        return self.result

    @property
    def deadline(self) -> int:
        return self._deadline
