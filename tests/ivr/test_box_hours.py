"""The box's business hours: the parsers refuse what an admin could mistype, and the IVR's
hours node follows an edit on the next call of a running engine (real DTMF from a
CallerBot, the default flow on the demo book)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from sqlite_utils import Database

from appliance.ivr import hours
from appliance.ivr.flow import load_flow
from appliance.ivr.hours import HoursError, Range
from appliance.ivr.insurance_lookups import InsuranceLookups
from appliance.ivr.interpreter import Step, make_flow_handler
from appliance.ivr.names import NameRecordings
from appliance.media.prompts import Prompt, concat
from appliance.media.tones import beep
from appliance.store.db import Store
from drivers.sim import CallerBot
from tests.ivr.test_default_flow import FLOW, LIB, audio, choose, open_book
from tests.rig import InlineExecutor, running_engine

WEEK = {"mon": (Range("08:30", "12:00"), Range("13:30", "17:30")),
        "sat": (Range("09:00", "12:00"),)}


def test_ranges_parse_and_bad_ones_name_the_day() -> None:
    assert hours.parse_ranges("mon", "13:30-17:30, 8:30-12:00") == (
        Range("08:30", "12:00"), Range("13:30", "17:30"))
    assert hours.parse_ranges("sun", "  ") == ()
    assert hours.parse_ranges("fri", "08:00-12:00 12:00-24:00")[1] == Range("12:00", "24:00")
    for text, said in (("09:00-08:00", "not after it opens"), ("08:00-12:00,11:00-13:00",
                                                               "overlap"),
                       ("25:00-26:00", "not a time"), ("0900", "not a range")):
        with pytest.raises(HoursError) as err:
            hours.parse_ranges("tue", text)
        assert err.value.field == "tue" and said in str(err.value)


def test_days_off_and_the_csv_import_refuse_bad_lines() -> None:
    day = hours.parse_day_off("2026-10-11", "国庆调休", "班", "")
    assert (day.kind, day.works_as) == ("workday", "mon")
    with pytest.raises(HoursError, match="date: 2026-02-30 does not exist"):
        hours.parse_day_off("2026-02-30", "x", "holiday")
    with pytest.raises(HoursError, match="works_as"):
        hours.parse_day_off("2026-10-01", "国庆节", "holiday", "mon")
    got = hours.parse_holiday_csv("date,name,kind,works_as\n2026-10-01,国庆节,休\n"
                                  "2026-10-11,国庆调休,workday,fri\n")
    assert [d.date.isoformat() for d in got] == ["2026-10-01", "2026-10-11"]
    with pytest.raises(HoursError, match=r"line 3: .*already on line 2"):
        hours.parse_holiday_csv("date,name,kind\n2026-10-01,a,休\n2026-10-01,b,休\n")
    with pytest.raises(HoursError, match="line 2: date:"):
        hours.parse_holiday_csv("日期,名称,类型\n2026/10/01,a,休\n")


def test_a_holiday_closes_and_a_make_up_day_opens_with_its_weekday_hours() -> None:
    days = {dt.date(2026, 10, 5): hours.DayOff(dt.date(2026, 10, 5), "国庆节"),
            dt.date(2026, 10, 11): hours.DayOff(dt.date(2026, 10, 11), "调休", "workday", "mon")}
    box = hours.BusinessHours(WEEK, days)
    assert box.state(dt.datetime(2026, 10, 12, 9, 0)) == (True, None)  # a Monday
    assert box.state(dt.datetime(2026, 10, 12, 12, 0))[0] is False  # lunch
    assert box.state(dt.datetime(2026, 10, 5, 9, 0)) == (False, days[dt.date(2026, 10, 5)])
    # Sunday 11 October is worked with Monday's hours.
    assert box.state(dt.datetime(2026, 10, 11, 14, 0)) == (True, days[dt.date(2026, 10, 11)])
    assert box.state(dt.datetime(2026, 10, 18, 14, 0))[0] is False  # an ordinary Sunday


def test_nothing_saved_means_the_flows_hours_and_adopt_copies_them(tmp_path: Path) -> None:
    node = load_flow(FLOW).nodes["person"]
    with Store(tmp_path / "appliance.db") as store:
        assert hours.load_hours(store) is None
        assert store.write(lambda db: hours.adopt(db, hours.from_node(node))) is True
        assert store.write(lambda db: hours.adopt(db, hours.from_node(node))) is False
        saved = hours.load_hours(store)
    assert saved is not None
    assert saved.week["sat"] == (Range("09:00", "12:00"),)
    assert dt.date(2026, 10, 7) in saved.days and "sun" not in saved.week


def test_an_edit_reaches_the_next_call_without_a_restart(tmp_path: Path) -> None:
    """A Wednesday at 10:00: the first caller who asks for a person goes to the queue; the
    admin then makes today a holiday, and the next caller on the same engine hears the
    after-hours message and leaves voicemail."""
    store, _ = open_book(tmp_path)
    now = dt.datetime(2026, 11, 25, 10, 0)
    paths: list[list[Step]] = []
    lookups = InsuranceLookups(store, now=lambda: now, executor=InlineExecutor(),
                               names=NameRecordings(tmp_path / "names"))
    flow = load_flow(FLOW)
    handler = make_flow_handler(flow, lookups.functions(), clock_now=lambda: now,
                                messages_dir=tmp_path / "messages",
                                on_done=lambda _call, path: paths.append(path), store=store,
                                executor=InlineExecutor())
    tone = concat([Prompt.from_samples("beep", beep())])

    async def call(exchange: object, closed: bool) -> bytes:
        bot = CallerBot(exchange, "13800138000")  # type: ignore[arg-type]
        await choose(bot, "zh", "0")
        if closed:
            assert await bot.wait_for(tone, timeout=60)
            await bot.send(audio("en", "welcome"))
            await bot.press("#")
        assert await bot.wait_hangup(60) == "normal"
        return bytes(bot.heard)

    async def main() -> tuple[bytes, bytes]:
        async with running_engine(handler, prompts=LIB, store=store,
                                  recordings=tmp_path / "recordings",
                                  trunks=2) as (_, exchange):
            first = await asyncio.wait_for(call(exchange, closed=False), 120)
            today = hours.DayOff(now.date(), "临时休假")

            def edit(db: Database) -> None:
                hours.adopt(db, hours.from_node(flow.nodes["person"]))
                hours.save_days(db, [today])

            store.write(edit)
            second = await asyncio.wait_for(call(exchange, closed=True), 120)
            return first, second

    try:
        first, second = asyncio.run(main())
    finally:
        store.close()
    assert len(paths) == 2
    before = next(s for s in paths[0] if s["node"] == "person")
    after = next(s for s in paths[1] if s["node"] == "person")
    assert (before["open"], before["source"]) == (True, "flow")
    assert (after["open"], after["source"], after["holiday"], after["day"]) == (
        False, "box", True, "临时休假")
    assert audio("zh", "to_operator") in first and audio("zh", "after_hours") not in first
    assert audio("zh", "after_hours") in second and audio("zh", "to_operator") not in second
    assert "after_hours" in [s["node"] for s in paths[1]]
