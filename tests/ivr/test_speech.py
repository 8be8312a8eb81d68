"""Spoken values: the grammar of each language, its recordings, and the ``say`` command.

Tables pin the readings a listener would check by ear (零 insertion, 十/一十, 两/二, the
万/亿 boundaries, British "and"). Property tests then cover the whole range: every integer
up to 10^12 speaks with segments that have a recording in that language, and the Chinese
and English readings parse back to the number with small parsers written here, apart from
the grammar they check.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import wave
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from appliance.ivr.speech import (
    GRAMMARS,
    LANGUAGES,
    MAX_NUMBER,
    say,
    segment_text,
    speak_date,
    speak_digits,
    speak_money,
    speak_number,
    speak_percent,
    speak_time,
    spoken_text,
)
from appliance.media.prompts import PromptLibrary

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "prompts"
RECORDED = {lang: {p.stem for p in (PROMPTS / lang).glob("*.wav")} for lang in LANGUAGES}


def text(lang: str, kind: str, value: str) -> str:
    return spoken_text(lang, say(lang, kind, value))


def assert_recorded(lang: str, segments: list[str]) -> None:
    assert segments, "nothing to say"
    assert set(segments) <= GRAMMARS[lang].segments
    missing = set(segments) - RECORDED[lang]
    assert not missing, f"no prompts/{lang}/<name>.wav for {sorted(missing)}"


# Tables ------------------------------------------------------------------------------

MANDARIN = [
    (0, "零"), (1, "一"), (2, "二"), (7, "七"), (10, "十"), (11, "十一"), (12, "十二"),
    (15, "十五"), (20, "二十"), (22, "二十二"), (99, "九十九"), (100, "一百"),
    (101, "一百零一"), (110, "一百一十"), (115, "一百一十五"), (200, "两百"),
    (222, "两百二十二"), (1000, "一千"), (1001, "一千零一"), (1010, "一千零一十"),
    (1050, "一千零五十"), (1100, "一千一百"), (1200, "一千二百"), (2000, "两千"),
    (2002, "两千零二"), (9999, "九千九百九十九"), (10000, "一万"), (10001, "一万零一"),
    (10010, "一万零一十"), (10100, "一万零一百"), (11000, "一万一千"), (12000, "一万两千"),
    (20000, "两万"), (22000, "两万两千"), (100000, "十万"), (100010, "十万零一十"),
    (110000, "十一万"), (120000, "十二万"), (200000, "二十万"), (1000000, "一百万"),
    (2000000, "两百万"), (10000000, "一千万"), (20000000, "两千万"),
    (100000000, "一亿"), (100000001, "一亿零一"), (100010000, "一亿零一万"),
    (100020000, "一亿零两万"), (100100000, "一亿零一十万"), (101000000, "一亿零一百万"),
    (102000000, "一亿零二百万"), (110000000, "一亿一千万"), (200000000, "两亿"),
    (1000000000, "十亿"), (1000000001, "十亿零一"), (1002003004, "十亿零二百万三千零四"),
    (1234567890, "十二亿三千四百五十六万七千八百九十"), (10000000000, "一百亿"),
    (100000000000, "一千亿"),
    (999999999999, "九千九百九十九亿九千九百九十九万九千九百九十九"),
    (MAX_NUMBER, "一万亿"),
]

CANTONESE = [
    (0, "零"), (10, "十"), (15, "十五"), (20, "二十"), (22, "二十二"), (115, "一百一十五"),
    (200, "兩百"), (1050, "一千零五十"), (1200, "一千二百"), (2000, "兩千"),
    (10001, "一萬零一"), (20000, "兩萬"), (100000, "十萬"), (100010000, "一億零一萬"),
    (200000000, "兩億"), (1000000001, "十億零一"), (MAX_NUMBER, "一萬億"),
]

ENGLISH = [
    (0, "zero"), (5, "five"), (13, "thirteen"), (20, "twenty"), (21, "twenty one"),
    (100, "one hundred"), (105, "one hundred and five"), (115, "one hundred and fifteen"),
    (1000, "one thousand"), (1005, "one thousand and five"),
    (1100, "one thousand one hundred"), (1234, "one thousand two hundred and thirty four"),
    (100000, "one hundred thousand"), (1000001, "one million and one"),
    (2000100, "two million one hundred"), (1000000000, "one billion"),
    (MAX_NUMBER, "one trillion"),
    (999999999999, "nine hundred and ninety nine billion nine hundred and ninety nine "
                   "million nine hundred and ninety nine thousand nine hundred and ninety nine"),
]


@pytest.mark.parametrize(("value", "expected"), MANDARIN)
def test_mandarin_numbers(value: int, expected: str) -> None:
    assert text("zh", "number", str(value)) == expected


@pytest.mark.parametrize(("value", "expected"), CANTONESE)
def test_cantonese_numbers(value: int, expected: str) -> None:
    assert text("yue", "number", str(value)) == expected


@pytest.mark.parametrize(("value", "expected"), ENGLISH)
def test_english_numbers(value: int, expected: str) -> None:
    assert text("en", "number", str(value)) == expected


def test_segments_are_names_shared_across_languages() -> None:
    assert say("zh", "number", "10001") == ["n_1", "n_wan", "n_0", "n_1"]
    assert say("yue", "number", "10001") == ["n_1", "n_wan", "n_0", "n_1"]
    assert say("en", "number", "7") == say("zh", "number", "7") == ["n_7"]


@pytest.mark.parametrize(("lang", "value", "expected"), [
    ("zh", "1234.56", "一千二百三十四元五角六分"),
    ("zh", "1234.06", "一千二百三十四元零六分"),
    ("zh", "1234.50", "一千二百三十四元五角"),
    ("zh", "1234.5", "一千二百三十四元五角"),
    ("zh", "1200", "一千二百元"),
    ("zh", "10.00", "十元"),
    ("zh", "2", "两元"),
    ("zh", "2.22", "两元两角两分"),
    ("zh", "0.56", "五角六分"),
    ("zh", "0.06", "六分"),
    ("zh", "0", "零元"),
    ("zh", "100000000.01", "一亿元零一分"),
    ("yue", "1234.56", "一千二百三十四元五角六分"),
    ("yue", "20000.05", "兩萬元零五分"),
    ("yue", "0.5", "五角"),
    ("en", "1234.56", "one thousand two hundred and thirty four yuan and fifty six fen"),
    ("en", "1234", "one thousand two hundred and thirty four yuan"),
    ("en", "0.05", "five fen"),
    ("en", "1.10", "one yuan and ten fen"),
    ("en", "0", "zero yuan"),
])
def test_money(lang: str, value: str, expected: str) -> None:
    assert text(lang, "money", value) == expected


@pytest.mark.parametrize(("lang", "value", "expected"), [
    ("zh", "2026-11-26", "二零二六年十一月二十六日"),
    ("zh", "2010-02-02", "二零一零年二月二日"),
    ("zh", "1999-10-10", "一九九九年十月十日"),
    ("zh", "2000-01-31", "二零零零年一月三十一日"),
    ("yue", "2026-11-26", "二零二六年十一月二十六日"),
    ("en", "2026-11-26", "the twenty sixth of November twenty twenty six"),
    ("en", "2000-01-01", "the first of January two thousand"),
    ("en", "2005-03-22", "the twenty second of March two thousand and five"),
    ("en", "2010-12-30", "the thirtieth of December twenty ten"),
    ("en", "1905-07-31", "the thirty first of July nineteen oh five"),
    ("en", "1900-05-13", "the thirteenth of May nineteen hundred"),
    ("en", "2024-02-29", "the twenty ninth of February twenty twenty four"),
])
def test_dates(lang: str, value: str, expected: str) -> None:
    assert text(lang, "date", value) == expected


@pytest.mark.parametrize(("lang", "value", "expected"), [
    ("zh", "14:30", "十四点三十分"),
    ("zh", "02:05", "两点零五分"),
    ("zh", "9:00", "九点整"),
    ("zh", "0:00", "零点整"),
    ("zh", "12:10", "十二点十分"),
    ("zh", "22:22", "二十二点二十二分"),
    ("yue", "14:00", "十四點正"),
    ("yue", "2:05", "兩點零五分"),
    ("en", "14:30", "two thirty p.m."),
    ("en", "09:00", "nine a.m."),
    ("en", "14:05", "two oh five p.m."),
    ("en", "00:00", "twelve a.m."),
    ("en", "12:15", "twelve fifteen p.m."),
])
def test_times(lang: str, value: str, expected: str) -> None:
    assert text(lang, "time", value) == expected


@pytest.mark.parametrize(("lang", "value", "expected"), [
    ("zh", "3.5", "百分之三点五"),
    ("zh", "3.5%", "百分之三点五"),
    ("zh", "0.25", "百分之零点二五"),
    ("zh", "100", "百分之一百"),
    ("zh", "12.50", "百分之十二点五"),
    ("zh", "2", "百分之二"),
    ("zh", "1.01", "百分之一点零一"),
    ("yue", "3.5", "百分之三點五"),
    ("en", "3.5%", "three point five percent"),
    ("en", "0.5", "zero point five percent"),
    ("en", "105", "one hundred and five percent"),
])
def test_percentages(lang: str, value: str, expected: str) -> None:
    assert text(lang, "percent", value) == expected


@pytest.mark.parametrize(("lang", "value", "expected"), [
    ("zh", "110", "幺幺零"),
    ("zh", "2026 1101-7", "二零二六幺幺零幺七"),
    ("zh", "0123456789", "零幺二三四五六七八九"),
    ("yue", "110", "一一零"),
    ("en", "1091", "one zero nine one"),
])
def test_digit_strings(lang: str, value: str, expected: str) -> None:
    assert text(lang, "digits", value) == expected


@pytest.mark.parametrize(("lang", "kind", "value", "message"), [
    ("zh", "number", "-5", "negative"),
    ("zh", "number", "1000000000001", "largest"),
    ("zh", "number", "12.5", "whole number"),
    ("zh", "number", "", "whole number"),
    ("zh", "number", "一万", "whole number"),
    ("en", "money", "-1.50", "negative"),
    ("en", "money", "1.234", "two decimals"),
    ("en", "money", "1000000000000.01", "largest"),
    ("zh", "date", "2026-02-30", "does not exist"),
    ("zh", "date", "2026/11/26", "YYYY-MM-DD"),
    ("zh", "date", "0000-01-01", "does not exist"),
    ("zh", "time", "24:00", "does not exist"),
    ("zh", "time", "14h30", "HH:MM"),
    ("zh", "percent", "-3", "negative"),
    ("zh", "percent", "abc%", "percentage"),
    ("zh", "percent", "1.0000001", "decimal places"),
    ("zh", "digits", "12a4", "digits 0-9"),
    ("zh", "digits", "", "digits 0-9"),
    ("zh", "digits", "1" * 65, "digits 0-9"),
    ("fr", "number", "1", "unknown language 'fr'"),
    ("zh", "ordinal", "1", "unknown kind 'ordinal'"),
])
def test_bad_values_are_refused_with_the_reason(lang: str, kind: str, value: str,
                                                 message: str) -> None:
    with pytest.raises(ValueError, match=message):
        say(lang, kind, value)


def test_typed_entry_points_check_their_values() -> None:
    assert speak_money("zh", 123456) == say("zh", "money", "1234.56")
    assert speak_date("en", dt.date(2026, 11, 26)) == say("en", "date", "2026-11-26")
    assert speak_time("zh", dt.time(14, 30, 59)) == say("zh", "time", "14:30")
    assert speak_percent("zh", Decimal("3.50")) == say("zh", "percent", "3.5")
    assert speak_digits("zh", "110") == ["n_yao", "n_yao", "n_0"]
    for bad in (-1, MAX_NUMBER + 1, True):
        with pytest.raises(ValueError, match="number"):
            speak_number("zh", bad)
    with pytest.raises(ValueError, match="finite"):
        speak_percent("en", Decimal("NaN"))
    with pytest.raises(ValueError, match="no segment 'n_yao' for language 'en'"):
        segment_text("en", "n_yao")


# Recordings --------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_segment_is_in_the_manifest_and_recorded(lang: str) -> None:
    manifest = json.loads((PROMPTS / "manifest.json").read_text(encoding="utf-8"))
    voices = {"zh": "cmn-latn-pinyin", "yue": "yue", "en": "en"}
    assert manifest[lang]["voice"] == voices[lang]
    segments = GRAMMARS[lang].segments
    assert segments <= manifest[lang]["prompts"].keys()
    assert_recorded(lang, sorted(segments))
    for name in segments:
        with wave.open(str(PROMPTS / lang / f"{name}.wav")) as w:
            assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
            assert 0.1 < w.getnframes() / 8000 < 1.5, f"{lang}/{name}.wav is not a short word"


def test_a_reading_plays_through_the_prompt_library() -> None:
    library = PromptLibrary(PROMPTS)
    playlist = [library.get(name, "zh") for name in say("zh", "money", "1234.56")]
    assert 2.0 < sum(p.seconds for p in playlist) < 6.0


# Properties --------------------------------------------------------------------------

DIGIT_VALUE = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"两": 2, "兩": 2}
SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}


def parse_chinese(reading: str) -> int:
    """A Chinese reading back to its integer, refusing the forms a speaker would not use."""
    assert reading == "零" or ("零零" not in reading and not reading.endswith("零")), reading
    assert not reading.startswith("一十"), reading
    reading = reading.replace("萬", "万").replace("億", "亿")
    total = above_wan = section = 0
    digit: int | None = None
    for i, c in enumerate(reading):
        if c in DIGIT_VALUE:
            digit = DIGIT_VALUE[c]
        elif c in SMALL_UNITS:
            if digit is None:
                assert c == "十" and i == 0, f"{c} without a digit in {reading}"
                digit = 1
            section += digit * SMALL_UNITS[c]
            digit = None
        elif c == "万":
            above_wan += (section + (digit or 0)) * 10**4
            section, digit = 0, None
        elif c == "亿":
            total = (total + above_wan + section + (digit or 0)) * 10**8
            above_wan, section, digit = 0, 0, None
        else:
            raise AssertionError(f"unexpected {c!r} in {reading}")
    return total + above_wan + section + (digit or 0)


ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen")
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ENGLISH_WORDS = {w: i for i, w in enumerate(ONES)} | {w: 10 * i for i, w in enumerate(TENS, 2)}
SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}


def parse_english(reading: str) -> int:
    total = current = 0
    for word in reading.split():
        if word in ENGLISH_WORDS:
            current += ENGLISH_WORDS[word]
        elif word == "hundred":
            current *= 100
        elif word in SCALES:
            total, current = total + current * SCALES[word], 0
        else:
            assert word == "and", f"unexpected {word!r} in {reading}"
    return total + current


numbers = st.integers(0, MAX_NUMBER)


@given(numbers)
@example(0)
@example(MAX_NUMBER)
@example(100010000)
def test_every_number_speaks_with_recorded_segments(value: int) -> None:
    for lang in LANGUAGES:
        assert_recorded(lang, speak_number(lang, value))


@given(numbers)
@example(1000000001)
@example(100000)
@example(220022002)
def test_mandarin_and_cantonese_readings_parse_back(value: int) -> None:
    assert parse_chinese(spoken_text("zh", speak_number("zh", value))) == value
    assert parse_chinese(spoken_text("yue", speak_number("yue", value))) == value


@given(numbers)
@example(1000001)
def test_english_readings_parse_back(value: int) -> None:
    assert parse_english(spoken_text("en", speak_number("en", value))) == value


@given(st.integers(0, MAX_NUMBER * 100))
@example(100)
@example(5)
def test_every_amount_speaks_and_mandarin_parses_back(fen: int) -> None:
    for lang in LANGUAGES:
        assert_recorded(lang, speak_money(lang, fen))
    reading = spoken_text("zh", speak_money("zh", fen))
    amount = 0
    for unit, scale in (("元", 100), ("角", 10), ("分", 1)):
        if unit in reading:
            part, reading = reading.split(unit, 1)
            if unit == "分" and part.startswith("零") and part != "零":
                part = part[1:]  # 三元零五分
            amount += parse_chinese(part) * scale
    assert reading == "" and amount == fen


@given(st.dates(), st.times())
def test_every_date_and_time_speaks(day: dt.date, moment: dt.time) -> None:
    for lang in LANGUAGES:
        assert_recorded(lang, speak_date(lang, day))
        assert_recorded(lang, speak_time(lang, moment))


@given(st.decimals(0, MAX_NUMBER, places=3), st.text("0123456789", min_size=1, max_size=30))
def test_every_percentage_and_digit_string_speaks(value: Decimal, digits: str) -> None:
    for lang in LANGUAGES:
        assert_recorded(lang, speak_percent(lang, value))
        assert_recorded(lang, speak_digits(lang, digits))
    spoken = spoken_text("zh", speak_digits("zh", digits))
    assert spoken.translate(str.maketrans("零幺二三四五六七八九", "0123456789")) == digits


# The command -------------------------------------------------------------------------

def appliance_say(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", "say", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "expected"), [
    (("--lang", "zh", "--kind", "number", "10001"), "一万零一"),
    (("--lang", "yue", "--kind", "money", "1234.56"), "一千二百三十四元五角六分"),
    (("--lang", "en", "--kind", "date", "2026-11-26"),
     "the twenty sixth of November twenty twenty six"),
])
def test_command_prints_the_reading_last(args: tuple[str, ...], expected: str) -> None:
    done = appliance_say(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == expected


def test_command_refuses_a_bad_value() -> None:
    done = appliance_say("--lang", "zh", "--kind", "number", "-5")
    assert done.returncode != 0
    assert "negative" in done.stderr
