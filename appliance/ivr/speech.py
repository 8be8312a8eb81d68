"""Spoken values: numbers, money, dates, times, percentages and digit strings as segments.

The box has no speech synthesiser; the IVR speaks a value by playing short recorded
segments one after another, ``prompts/<lang>/<segment>.wav``. This module is the grammar
that turns a value into that list of segment names for Mandarin (``zh``), Cantonese
(``yue``) and English (``en``). Segment names are shared wherever the concept exists in a
language (``n_7`` is 七 / 七 / seven, ``u_yuan`` is 元 / 元 / yuan); a few belong to one
language (``n_yao`` 幺, ``n_liang`` 两/兩, ``m_11`` November, ``d_26``-style ordinals).
The grammar is pure: values in, names out. The one file read is the prompt manifest, once,
when :func:`segment_text` first needs a segment's text. Where usage varies, the reading
chosen and the reason are written on :class:`Chinese` and :class:`English`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Final, Protocol

LANGUAGES: Final = ("zh", "yue", "en")
KINDS: Final = ("number", "money", "date", "time", "percent", "digits")
MAX_NUMBER: Final = 10**12
MAX_DIGITS: Final = 64  # a digit string longer than any policy, ID card or phone number
MAX_DECIMALS: Final = 6  # percentages: rates are quoted to a few places, never more
MANIFEST: Final = Path(__file__).resolve().parents[2] / "prompts" / "manifest.json"

# Segment names shared by the languages that have the concept.
ZERO: Final = "n_0"
TEN: Final = "n_10"
HUNDRED: Final = "n_100"
THOUSAND: Final = "n_1000"
YUAN: Final = "u_yuan"
FEN: Final = "u_fen"
POINT: Final = "w_point"
PERCENT: Final = "w_percent"
# Chinese only.
WAN: Final = "n_wan"
YI: Final = "n_yi"
LIANG: Final = "n_liang"
YAO: Final = "n_yao"
JIAO: Final = "u_jiao"
YEAR: Final = "d_year"
MONTH: Final = "d_month"
DAY: Final = "d_day"
HOUR: Final = "t_hour"
MINUTE: Final = "t_minute"
ON_THE_HOUR: Final = "t_zheng"
# English only.
AND: Final = "w_and"
OH: Final = "w_oh"
THE: Final = "w_the"
OF: Final = "w_of"
AM: Final = "w_am"
PM: Final = "w_pm"
MILLION: Final = "n_million"
BILLION: Final = "n_billion"
TRILLION: Final = "n_trillion"


def n(value: int) -> str:
    """The segment of a cardinal word: ``n(7)`` is ``n_7``."""
    return f"n_{value}"


class Grammar(Protocol):
    """One language's readings; inputs are already checked by the ``speak_*`` functions."""

    segments: frozenset[str]  # every segment the readings can use: each needs a recording

    def number(self, value: int) -> list[str]: ...
    def money(self, fen: int) -> list[str]: ...
    def date(self, day: dt.date) -> list[str]: ...
    def time(self, moment: dt.time) -> list[str]: ...
    def percent(self, whole: int, decimals: str) -> list[str]: ...
    def digits(self, digits: str) -> list[str]: ...


class Chinese:
    """Mandarin and Cantonese: one grammar, two sets of recordings.

    Both group by 万/萬 (10^4) and 亿/億 (10^8); 10^12 is 一万亿. A run of zeros inside a
    number is one 零 (一千零五十, 一万零一, 一亿零一万, 十亿零一); trailing zeros are
    silent. A number that starts with 1x reads 十x (十五, 十万), elsewhere 一十
    (一百一十五, 一亿零一十万). Two is 两/兩 before 千 (两千, 一万两千, 两千万), before
    万/亿 when the group is just 2 (两万, 两亿, 一亿零两万) and before 百 when it opens the
    number (两百二十二, 两百万), as amounts are said aloud; it is 二 before 百 inside a
    number (一千二百, the formal reading) and in the tens and units (二十二, 十二万). 两
    also for a count of exactly 2 before a measure: 两元, 两角, 两分, 两点 (o'clock).
    Months and days keep 二 (二月, 二日).

    Money is 元角分 in both languages (Cantonese 蚊/毫/仙 is colloquial; a company line
    uses the formal words), with 零 for a missing 角 before 分 (三元零五分), nothing said
    for zero 分, and no 整. Dates read the year digit by digit, then 年, 月, 日 (日 also for
    Cantonese, the formal form of 號). Times are 24-hour: 十四点三十分, 两点零五分, 九点整
    (Cantonese 正). Percentages are 百分之三点五; the decimals are read digit by digit.
    Digit strings are read digit by digit; Mandarin reads 1 as 幺 there (the phone
    convention, so 1 and 7 are not confused), Cantonese reads 一.
    """

    def __init__(self, one_in_digit_strings: str) -> None:
        self.one_in_digit_strings = one_in_digit_strings
        self.segments = frozenset(
            [n(d) for d in range(10)]
            + [TEN, HUNDRED, THOUSAND, WAN, YI, LIANG, one_in_digit_strings, YUAN, JIAO, FEN,
               POINT, PERCENT, YEAR, MONTH, DAY, HOUR, MINUTE, ON_THE_HOUR]
        )

    def number(self, value: int) -> list[str]:
        return [ZERO] if value == 0 else self._positive(value, leading=True)

    def _positive(self, value: int, leading: bool) -> list[str]:
        for size, unit in ((10**8, YI), (10**4, WAN)):
            if value >= size:
                high, low = divmod(value, size)
                out = [LIANG] if high == 2 else self._positive(high, leading)
                out.append(unit)
                if low:
                    # The lower part has no digit in its top place: 一万零五百, 一亿零一万.
                    if low < size // 10:
                        out.append(ZERO)
                    out += self._positive(low, leading=False)
                return out
        return self._group(value, leading)

    def _group(self, value: int, leading: bool) -> list[str]:
        """1 … 9999, the four places 千 百 十 and units."""
        out: list[str] = []
        started = zero_pending = False
        for place, unit in ((1000, THOUSAND), (100, HUNDRED), (10, TEN), (1, "")):
            digit = value // place % 10
            if digit == 0:
                zero_pending = started  # one 零 for a run of zeros, none if nothing follows
                continue
            if zero_pending:
                out.append(ZERO)
                zero_pending = False
            if unit == TEN and digit == 1 and leading and not started:
                out.append(TEN)  # 十五, not 一十五, but only at the very start
            else:
                # 两千 always; 两百 only to open a number (两百, 两百万), 一千二百 inside one.
                two = unit == THOUSAND or (unit == HUNDRED and leading and not started)
                out.append(LIANG if digit == 2 and two else n(digit))
                if unit:
                    out.append(unit)
            started = True
        return out

    def _count(self, value: int) -> list[str]:
        """A number before a measure word: a bare 2 is 两 (两元, 两点)."""
        return [LIANG] if value == 2 else self.number(value)

    def money(self, fen: int) -> list[str]:
        yuan, cents = divmod(fen, 100)
        jiao, fen_digit = divmod(cents, 10)
        out: list[str] = []
        if yuan:
            out += [*self._count(yuan), YUAN]
        if jiao:
            out += [*self._count(jiao), JIAO]
        if fen_digit:
            if yuan and not jiao:
                out.append(ZERO)  # 三元零五分: the missing 角 is said
            out += [*self._count(fen_digit), FEN]
        return out or [ZERO, YUAN]

    def date(self, day: dt.date) -> list[str]:
        year = [n(int(c)) for c in str(day.year)]  # 二零二六: 一 here, never 幺
        return [*year, YEAR, *self.number(day.month), MONTH, *self.number(day.day), DAY]

    def time(self, moment: dt.time) -> list[str]:
        out = [*self._count(moment.hour), HOUR]
        minute = moment.minute
        if minute == 0:
            return [*out, ON_THE_HOUR]
        if minute < 10:
            out.append(ZERO)  # 两点零五分
        return [*out, *self.number(minute), MINUTE]

    def percent(self, whole: int, decimals: str) -> list[str]:
        out = [PERCENT, *self.number(whole)]
        if decimals:
            out += [POINT, *(n(int(c)) for c in decimals)]
        return out

    def digits(self, digits: str) -> list[str]:
        return [self.one_in_digit_strings if c == "1" else n(int(c)) for c in digits]


_ONES: Final = ("", "first", "second", "third", "fourth", "fifth", "sixth", "seventh",
                "eighth", "ninth")


class English:
    """English, British style as taught in China.

    Numbers use the short scale (thousand, million, billion, trillion) and "and" after
    hundred and before a last group under 100: one hundred and five, one thousand and five,
    two million one hundred. Compounds are two segments (twenty six) so 1–19 and the tens
    cover everything. Money is "N yuan and M fen" with 角 folded into fen (56 fen, as one
    says cents); zero is "zero yuan". Dates are "the twenty sixth of November twenty twenty
    six"; years in pairs (nineteen oh five, nineteen hundred) except x00y (two thousand and
    five). Times are on the 12-hour clock: nine a.m., two oh five p.m., twelve p.m. at noon.
    Percentages: three point five percent. Digit strings use "zero", never "oh".
    """

    def __init__(self) -> None:
        self.segments = frozenset(
            [n(v) for v in range(20)] + [n(v) for v in range(20, 100, 10)]
            + [HUNDRED, THOUSAND, MILLION, BILLION, TRILLION, AND, POINT, PERCENT, OH, THE,
               OF, AM, PM, YUAN, FEN]
            + [f"d_{v}" for v in range(1, 21)] + ["d_30"] + [f"m_{v}" for v in range(1, 13)]
        )

    def number(self, value: int) -> list[str]:
        if value == 0:
            return [ZERO]
        out: list[str] = []
        rest = value
        for size, word in ((10**12, TRILLION), (10**9, BILLION), (10**6, MILLION),
                           (10**3, THOUSAND)):
            if rest >= size:
                high, rest = divmod(rest, size)
                out += [*self._below_1000(high), word]
        if rest:
            if out and rest < 100:
                out.append(AND)  # one thousand and five
            out += self._below_1000(rest)
        return out

    def _below_1000(self, value: int) -> list[str]:
        hundreds, rest = divmod(value, 100)
        out = [n(hundreds), HUNDRED] if hundreds else []
        if rest:
            if hundreds:
                out.append(AND)  # one hundred and five
            out += self._below_100(rest)
        return out

    def _below_100(self, value: int) -> list[str]:
        if value < 20:
            return [n(value)]
        tens, ones = divmod(value, 10)
        return [n(tens * 10)] + ([n(ones)] if ones else [])

    def _ordinal(self, value: int) -> list[str]:
        """1 … 31: d_1 … d_20 and d_30 are recorded, the rest are twenty + d_6 and so on."""
        if value <= 20 or value == 30:
            return [f"d_{value}"]
        tens, ones = divmod(value, 10)
        return [n(tens * 10), f"d_{ones}"]

    def _year(self, year: int) -> list[str]:
        if year < 1000 or year % 1000 < 10:
            return self.number(year)  # 999, two thousand, two thousand and five
        high, low = divmod(year, 100)
        if low == 0:
            return [*self._below_100(high), HUNDRED]  # nineteen hundred
        if low < 10:
            return [*self._below_100(high), OH, n(low)]  # nineteen oh five
        return [*self._below_100(high), *self._below_100(low)]  # twenty twenty six

    def money(self, fen: int) -> list[str]:
        yuan, cents = divmod(fen, 100)
        out = [*self.number(yuan), YUAN] if yuan or not cents else []
        if cents:
            if out:
                out.append(AND)
            out += [*self.number(cents), FEN]
        return out

    def date(self, day: dt.date) -> list[str]:
        return [THE, *self._ordinal(day.day), OF, f"m_{day.month}", *self._year(day.year)]

    def time(self, moment: dt.time) -> list[str]:
        out = [n(moment.hour % 12 or 12)]
        if moment.minute:
            out += [OH, n(moment.minute)] if moment.minute < 10 else self._below_100(moment.minute)
        return [*out, PM if moment.hour >= 12 else AM]

    def percent(self, whole: int, decimals: str) -> list[str]:
        out = self.number(whole)
        if decimals:
            out += [POINT, *(n(int(c)) for c in decimals)]
        return [*out, PERCENT]

    def digits(self, digits: str) -> list[str]:
        return [n(int(c)) for c in digits]


GRAMMARS: Final[dict[str, Grammar]] = {
    "zh": Chinese(one_in_digit_strings=YAO),
    "yue": Chinese(one_in_digit_strings=n(1)),
    "en": English(),
}


def grammar(lang: str) -> Grammar:
    try:
        return GRAMMARS[lang]
    except KeyError:
        raise ValueError(f"unknown language {lang!r}: expected one of {', '.join(LANGUAGES)}"
                         ) from None


_DIGITS: Final = re.compile(f"[0-9]{{1,{MAX_DIGITS}}}")
_INTEGER: Final = re.compile(r"[0-9]+")
_MONEY: Final = re.compile(r"([0-9]+)(?:\.([0-9]{1,2}))?")
_PERCENT: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME: Final = re.compile(r"([0-9]{1,2}):([0-9]{2})")


# Typed entry points: check the value, then read it.

def _check_range(value: int, what: str, limit: int = MAX_NUMBER, unit: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} {value}{unit} is negative: only values ≥ 0 can be spoken")
    if value > limit:
        raise ValueError(f"{what} {value}{unit} is more than {limit}{unit}, the largest that "
                         "can be spoken")


def speak_number(lang: str, value: int) -> list[str]:
    """An integer 0 … 10^12."""
    g = grammar(lang)
    _check_range(value, "number")
    return g.number(value)


def speak_money(lang: str, fen: int) -> list[str]:
    """An amount in fen (分, 1/100 yuan), up to 10^12 yuan."""
    g = grammar(lang)
    _check_range(fen, "amount", MAX_NUMBER * 100, " fen")  # 10^12 yuan
    return g.money(fen)


def speak_date(lang: str, day: dt.date) -> list[str]:
    return grammar(lang).date(day)


def speak_time(lang: str, moment: dt.time) -> list[str]:
    """Hours and minutes; seconds are not spoken."""
    return grammar(lang).time(moment)


def speak_percent(lang: str, value: Decimal) -> list[str]:
    """A percentage: ``Decimal("3.5")`` is 3.5 %; trailing zeros after the point are dropped."""
    g = grammar(lang)
    if not value.is_finite() or value < 0:
        raise ValueError(f"percentage {value} must be a finite number ≥ 0")
    whole_text, _, decimals = format(value, "f").partition(".")
    decimals = decimals.rstrip("0")
    whole = int(whole_text)
    _check_range(whole, "percentage")
    if len(decimals) > MAX_DECIMALS:
        raise ValueError(f"percentage {value} has more than {MAX_DECIMALS} decimal places")
    return g.percent(whole, decimals)


def speak_digits(lang: str, digits: str) -> list[str]:
    """A digit string (policy, claim, phone number), read one digit at a time."""
    g = grammar(lang)
    if not _DIGITS.fullmatch(digits):
        raise ValueError(f"digit string {digits!r} must be 1 … {MAX_DIGITS} digits 0-9")
    return g.digits(digits)


# Text entry point, for the CLI and for flows whose values come as text.

def _negative(text: str, what: str) -> ValueError | None:
    if text.startswith("-") and text[1:].replace(".", "", 1).isdigit():
        return ValueError(f"{what} {text!r} is negative: only values ≥ 0 can be spoken")
    return None


def parse_number(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise _negative(text, "number") or ValueError(
            f"number {text!r} is not a whole number: expected digits 0-9, e.g. 10001")
    return int(text)


def parse_money(text: str) -> int:
    """Yuan with up to two decimals, ``"1234.56"``, to fen: 123456."""
    match = _MONEY.fullmatch(text)
    if not match:
        raise _negative(text, "amount") or ValueError(
            f"amount {text!r} is not yuan with at most two decimals, e.g. 1234.56")
    yuan, cents = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(yuan) * 100 + int(cents)


def parse_percent(text: str) -> Decimal:
    """``"3.5"`` or ``"3.5%"``."""
    bare = text.removesuffix("%").strip()
    if not _PERCENT.fullmatch(bare):
        raise _negative(bare, "percentage") or ValueError(
            f"percentage {text!r} is not a number ≥ 0 with an optional %, e.g. 3.5%")
    return Decimal(bare)


def parse_date(text: str) -> dt.date:
    match = _DATE.fullmatch(text)
    if not match:
        raise ValueError(f"date {text!r} is not YYYY-MM-DD, e.g. 2026-11-26")
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError as exc:
        raise ValueError(f"date {text!r} does not exist ({exc})") from None


def parse_time(text: str) -> dt.time:
    match = _TIME.fullmatch(text)
    if not match:
        raise ValueError(f"time {text!r} is not HH:MM, e.g. 14:30")
    hour, minute = (int(part) for part in match.groups())
    if hour > 23 or minute > 59:
        raise ValueError(f"time {text!r} does not exist: hours are 0-23, minutes 0-59")
    return dt.time(hour, minute)


def parse_digits(text: str) -> str:
    """Spaces and hyphens group a written number (1234-5678) and are not spoken."""
    return re.sub(r"[\s-]", "", text)


def say(lang: str, kind: str, value: str) -> list[str]:
    """The segments for ``value`` given as text; ValueError names what was wrong."""
    grammar(lang)  # an unknown language is reported before a bad value
    text = value.strip()
    if kind == "number":
        return speak_number(lang, parse_number(text))
    if kind == "money":
        return speak_money(lang, parse_money(text))
    if kind == "date":
        return speak_date(lang, parse_date(text))
    if kind == "time":
        return speak_time(lang, parse_time(text))
    if kind == "percent":
        return speak_percent(lang, parse_percent(text))
    if kind == "digits":
        return speak_digits(lang, parse_digits(text))
    raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")


# Segment texts, from the manifest the WAVs are generated from.

@cache
def _manifest_texts() -> dict[str, dict[str, str]]:
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    # A prompt said in another voice than its set's is {"text", "voice"}.
    return {lang: {name: spec["text"] if isinstance(spec, dict) else spec
                   for name, spec in entry["prompts"].items()}
            for lang, entry in data.items()}


def segment_text(lang: str, segment: str) -> str:
    """What the recording of ``segment`` says in ``lang`` (its text in the manifest)."""
    grammar(lang)
    try:
        return _manifest_texts()[lang][segment]
    except KeyError:
        raise ValueError(f"no segment {segment!r} for language {lang!r} in {MANIFEST}"
                         ) from None


def spoken_text(lang: str, segments: Iterable[str]) -> str:
    """The segments' texts as one string: run together in Chinese, spaced in English."""
    return (" " if lang == "en" else "").join(segment_text(lang, s) for s in segments)
