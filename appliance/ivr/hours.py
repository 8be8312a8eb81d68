"""The box's business hours: opening ranges per weekday, public holidays and make-up
working days (调休), as the admin saves them and as the IVR's ``hours`` node reads them.

Until the admin has saved hours once, an ``hours`` node keeps the schedule and holidays
written in its flow; from then on every ``hours`` node asks :func:`load_hours` at the
moment the caller reaches it, so an edit takes effect on the next call without restarting
the engine. A holiday closes the whole day; a make-up working day (a Saturday or Sunday
the office works because a holiday moved) opens with the hours of the weekday it stands
for. Ranges are half-open (``08:30-12:00`` is open at 11:59, closed at 12:00), so two
ranges may touch but not overlap. Every parser here raises :class:`HoursError` naming the
field (a weekday, a date, a CSV line) and what was expected; nothing is written unless the
whole input is good.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlite_utils import Database

from appliance.ivr.flow import WEEKDAYS
from appliance.store.db import Store

HOLIDAY: Final = "holiday"
WORKDAY: Final = "workday"  # 调休: a weekend day worked as a weekday
KINDS: Final = (HOLIDAY, WORKDAY)
#: a make-up working day stands for one of these (its hours are that weekday's)
WORKING_WEEKDAYS: Final = WEEKDAYS[:5]
_HHMM: Final = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00")
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_NAME: Final = 40
#: CSV spellings of the kinds, so a sheet typed in Chinese imports as it is
_KIND_WORDS: Final = {"holiday": HOLIDAY, "休": HOLIDAY, "假": HOLIDAY, "节假日": HOLIDAY,
                      "workday": WORKDAY, "班": WORKDAY, "调休": WORKDAY, "补班": WORKDAY}


class HoursError(ValueError):
    """Bad hours or a bad day off: ``field`` names where (a weekday, ``date``, ``line 3``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Range:
    opens: str  # HH:MM
    closes: str  # HH:MM, after opens; 24:00 for midnight

    def __str__(self) -> str:
        return f"{self.opens}-{self.closes}"


@dataclass(frozen=True, slots=True)
class DayOff:
    """A date that does not follow the week: a holiday, or a make-up working day."""

    date: dt.date
    name: str
    kind: str = HOLIDAY
    works_as: str | None = None  # a workday's weekday (mon … fri)


@dataclass(frozen=True, slots=True)
class BusinessHours:
    week: Mapping[str, tuple[Range, ...]]
    days: Mapping[dt.date, DayOff] = field(default_factory=dict)

    def state(self, now: dt.datetime) -> tuple[bool, DayOff | None]:
        """Open at ``now`` (local time)? and the holiday or make-up day that decided it."""
        special = self.days.get(now.date())
        if special is not None and special.kind == HOLIDAY:
            return False, special
        weekday = WEEKDAYS[now.weekday()]
        if special is not None:
            weekday = special.works_as or WORKING_WEEKDAYS[0]
        hhmm = now.strftime("%H:%M")
        return any(r.opens <= hhmm < r.closes for r in self.week.get(weekday, ())), special


def _time(where: str, text: str) -> str:
    text = text.strip()
    if len(text) == 4 and text[1] == ":":  # 8:30 as people type it
        text = "0" + text
    if not _HHMM.fullmatch(text):
        raise HoursError(where, f"{text!r} is not a time HH:MM (00:00 … 24:00)")
    return text


def check_ranges(day: str, ranges: Sequence[Range]) -> tuple[Range, ...]:
    """The day's ranges in order; refused when one ends before it starts or two overlap."""
    if day not in WEEKDAYS:
        raise HoursError(day, f"not a weekday; expected one of {', '.join(WEEKDAYS)}")
    for r in ranges:
        if r.closes <= r.opens:
            raise HoursError(day, f"{r}: closes at {r.closes}, not after it opens at {r.opens}")
    ordered = tuple(sorted(ranges, key=lambda r: r.opens))
    for a, b in itertools.pairwise(ordered):
        if b.opens < a.closes:
            raise HoursError(day, f"{a} and {b} overlap")
    return ordered


def parse_ranges(day: str, text: str) -> tuple[Range, ...]:
    """``"08:30-12:00, 13:30-17:30"`` (commas, semicolons or spaces between ranges; an empty
    text is a closed day)."""
    ranges = []
    for part in re.split(r"[,;，；\s]+", text.strip()):
        if not part:
            continue
        opens, sep, closes = part.replace("–", "-").replace("~", "-").partition("-")
        if not sep:
            raise HoursError(day, f"{part!r} is not a range HH:MM-HH:MM")
        ranges.append(Range(_time(day, opens), _time(day, closes)))
    return check_ranges(day, ranges)


def parse_day_off(date: str, name: str, kind: str, works_as: str = "") -> DayOff:
    date, name, kind, works_as = date.strip(), name.strip(), kind.strip(), works_as.strip()
    if not _DATE.fullmatch(date):
        raise HoursError("date", f"{date!r} is not a date YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise HoursError("date", f"{date} does not exist") from None
    if not name:
        raise HoursError("name", "a holiday needs a name (e.g. 国庆节)")
    if len(name) > MAX_NAME:
        raise HoursError("name", f"at most {MAX_NAME} characters, got {len(name)}")
    kind = _KIND_WORDS.get(kind.lower(), kind)
    if kind not in KINDS:
        raise HoursError("kind", f"{kind!r}: expected holiday or workday")
    if kind == HOLIDAY:
        if works_as:
            raise HoursError("works_as", "only a make-up working day works as a weekday")
        return DayOff(day, name, HOLIDAY)
    works_as = works_as.lower() or WORKING_WEEKDAYS[0]
    if works_as not in WORKING_WEEKDAYS:
        raise HoursError("works_as", f"{works_as!r}: expected one of "
                         f"{', '.join(WORKING_WEEKDAYS)}")
    return DayOff(day, name, WORKDAY, works_as)


def parse_holiday_csv(text: str) -> list[DayOff]:
    """A year's holidays from CSV: ``date,name,kind[,works_as]`` with an optional header.
    All lines or none: the first bad line (numbered from 1) or a date twice is refused."""
    days: dict[dt.date, int] = {}
    out: list[DayOff] = []
    for number, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1):
        if not row or not any(c.strip() for c in row):
            continue
        if number == 1 and row[0].strip().lower() in ("date", "日期"):
            continue
        if len(row) < 3 or len(row) > 4:
            raise HoursError(f"line {number}", f"expected date,name,kind[,works_as], got "
                             f"{len(row)} columns")
        try:
            day = parse_day_off(*row)
        except HoursError as exc:
            raise HoursError(f"line {number}", str(exc)) from None
        if day.date in days:
            raise HoursError(f"line {number}", f"{day.date} is already on line "
                             f"{days[day.date]}")
        days[day.date] = number
        out.append(day)
    if not out:
        raise HoursError("file", "no holidays in it")
    return out


# -- the store ------------------------------------------------------------------------

def load_hours(store: Store) -> BusinessHours | None:
    """The saved hours, or None if the admin never saved any (the flow's own apply)."""
    def read(db: Database) -> BusinessHours | None:
        if not list(db.query("SELECT 1 FROM box_settings WHERE key = 'hours'")):
            return None
        week: dict[str, list[Range]] = {}
        for r in db.query("SELECT * FROM business_hours ORDER BY weekday, opens"):
            week.setdefault(r["weekday"], []).append(Range(r["opens"], r["closes"]))
        days = {d.date: d for d in _days(db)}
        return BusinessHours({k: tuple(v) for k, v in week.items()}, days)

    return store.read(read)


def _days(db: Database) -> list[DayOff]:
    return [DayOff(dt.date.fromisoformat(r["date"]), r["name"], r["kind"], r["works_as"])
            for r in db.query("SELECT * FROM holidays ORDER BY date")]


def list_days(store: Store) -> list[DayOff]:
    return store.read(_days)


def _mark_saved(db: Database) -> None:
    db.execute("INSERT INTO box_settings (key, value, updated_at) VALUES ('hours', '1', ?) "
               "ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at",
               [time.time()])


def save_week(db: Database, week: Mapping[str, Sequence[Range]]) -> None:
    """Inside a write: replace the weekly hours (checked again here)."""
    checked = {day: check_ranges(day, week.get(day, ())) for day in WEEKDAYS}
    db.execute("DELETE FROM business_hours")
    for day, ranges in checked.items():
        for r in ranges:
            db.execute("INSERT INTO business_hours (weekday, opens, closes) VALUES (?, ?, ?)",
                       [day, r.opens, r.closes])
    _mark_saved(db)


def save_days(db: Database, days: Sequence[DayOff]) -> None:
    """Inside a write: add or replace these holidays / make-up days (by date)."""
    for d in days:
        db.execute("INSERT INTO holidays (date, name, kind, works_as) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (date) DO UPDATE SET name = excluded.name,"
                   " kind = excluded.kind, works_as = excluded.works_as",
                   [d.date.isoformat(), d.name, d.kind, d.works_as])


def adopt(db: Database, base: BusinessHours) -> bool:
    """Inside a write, before the first edit: make ``base`` (the flow's hours, which the
    callers get until now) the box's saved hours, so an edit of one day or one holiday does
    not drop the rest. True if it did; False if the box already had saved hours."""
    if list(db.query("SELECT 1 FROM box_settings WHERE key = 'hours'")):
        return False
    save_week(db, base.week)
    db.execute("DELETE FROM holidays")
    save_days(db, list(base.days.values()))
    return True


def delete_day(db: Database, date: dt.date) -> bool:
    cur = db.execute("DELETE FROM holidays WHERE date = ?", [date.isoformat()])
    return bool(cur.rowcount)


def from_node(node: Mapping[str, Any], holiday_name: str = "节假日") -> BusinessHours:
    """The hours written in a flow's ``hours`` node (already validated with the flow); its
    holidays have no names of their own."""
    week: dict[str, list[Range]] = {}
    for entry in node.get("schedule", ()):
        for day in entry["days"]:
            week.setdefault(day, []).append(Range(entry["from"], entry["to"]))
    days = {dt.date.fromisoformat(d): DayOff(dt.date.fromisoformat(d), holiday_name, HOLIDAY)
            for d in node.get("holidays", ())}
    return BusinessHours({k: tuple(sorted(v, key=lambda r: r.opens)) for k, v in week.items()},
                         days)


__all__ = ["HOLIDAY", "KINDS", "WORKDAY", "WORKING_WEEKDAYS", "BusinessHours", "DayOff",
           "HoursError", "Range", "adopt", "check_ranges", "delete_day", "from_node", "list_days",
           "load_hours", "parse_day_off", "parse_holiday_csv", "parse_ranges", "save_days",
           "save_week"]
