"""The default insurance IVR offers the rooms: key 6 in the main menu asks for the room
and PIN in the caller's language, and that caller talks with one who dialled the
conference number directly."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from appliance.calls.engine import Engine
from appliance.conference import Conferences, create_room
from appliance.ivr.flow import load_flow
from appliance.ivr.insurance_lookups import InsuranceLookups
from appliance.ivr.interpreter import Step, make_flow_handler
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from tests.acd.helpers import LIB, audio, until, voice
from tests.rig import InlineExecutor, running_engine

FLOW = Path(__file__).parents[2] / "appliance" / "ivr" / "default_flow.json"
NOW = dt.datetime(2026, 11, 25, 12, 0)


def test_menu_key_six_joins_a_room_with_a_caller_of_the_direct_number(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    create_room(store, "42", "2468", "1357", now=0.0)
    conf = Conferences(store, executor=InlineExecutor())
    lookups = InsuranceLookups(store, now=lambda: NOW, executor=InlineExecutor())
    paths: list[list[Step]] = []
    ivr = make_flow_handler(load_flow(FLOW), lookups.functions(), clock_now=lambda: NOW,
                            messages_dir=tmp_path / "messages", store=store,
                            executor=InlineExecutor(), conference=conf,
                            on_done=lambda _call, path: paths.append(path))
    said = voice("agent-pass.wav", seed=7)

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, bytes]:
        direct = CallerBot(ex, "13800000001", name="direct")
        await direct.dial("95599")
        await direct.press("42#")
        assert await direct.wait_for(audio("zh", "conf_enter_pin")[4000:8000], timeout=15)
        await direct.press("1357#")
        menu = CallerBot(ex, "13800000002", name="menu")
        await menu.dial("95500")
        await menu.listen(0.5)
        await menu.press("3")  # English
        assert await menu.wait_for(audio("en", "menu_conference")[4000:8000], timeout=40)
        await menu.press("6")
        assert await menu.wait_for(audio("en", "conf_enter_room")[4000:8000], timeout=10)
        await menu.press("42#")
        assert await menu.wait_for(audio("en", "conf_enter_pin")[4000:8000], timeout=10)
        await menu.press("2468#")
        assert await until(engine, lambda: "42" in conf.in_use()
                           and len(conf.parties("42")) == 2, 10)
        await menu.wait(3)
        mark = len(direct.heard)
        await menu.send(said)
        await menu.wait(0.3)
        heard = bytes(direct.heard[mark:])
        await menu.hangup()
        await direct.hangup()
        await direct.wait(0.5)
        return heard, bytes(menu.heard)

    async def main() -> tuple[bytes, bytes]:
        async with running_engine(conf.route(["95599"], ivr), prompts=LIB, store=store,
                                  recordings=None) as (engine, ex):
            result = await asyncio.wait_for(scenario(engine, ex), timeout=50)
            await engine.settle()
            return result

    try:
        direct_heard, menu_heard = asyncio.run(main())
    finally:
        store.close()
    assert said in direct_heard
    assert audio("en", "conf_joined") in menu_heard
    (path,) = paths
    step = next(s for s in path if s.get("node") == "conf")
    assert step["type"] == "conference" and step["outcome"] == "left"
