"""Conference rooms end to end on the simulated exchange and the manual clock: callers dial
the conference number, key the room and PIN, and talk together on the engine's mixer; the
host mutes and drops parties; wrong PINs and a ninth caller are refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from appliance.calls.call import Call
from appliance.calls.engine import Engine
from appliance.conference import ConferenceError, Conferences, RoomError, create_room
from appliance.conference import rooms as room_store
from appliance.conference.service import entry_tone, exit_tone
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from tests.acd.helpers import LIB, audio, until, voice
from tests.rig import InlineExecutor, running_engine

T = TypeVar("T")
NUMBER = "95599"


async def _ivr_stand_in(call: Call) -> None:
    await call.answer()
    await call.play("welcome")
    await call.hangup()


def run_room(tmp_path: Path, scenario: Callable[[Engine, SimExchange, Conferences],
                                                 Awaitable[T]]) -> tuple[T, Store]:
    store = Store(tmp_path / "appliance.db")
    create_room(store, "1234", "5678", "9999", name="Claims weekly", now=0.0)
    conf = Conferences(store, executor=InlineExecutor())

    async def main() -> T:
        async with running_engine(conf.route([NUMBER], _ivr_stand_in), prompts=LIB,
                                  store=store, recordings=None, trunks=16) as (engine, ex):
            result = await asyncio.wait_for(scenario(engine, ex, conf), timeout=50)
            await engine.settle()
            return result

    return asyncio.run(main()), store


async def enter(bot: CallerBot, room: str, pin: str) -> None:
    """Dial the conference number, key the room, and the PIN once asked for it."""
    await bot.dial(NUMBER)
    await bot.press(room + "#")
    assert await bot.wait_for(audio("zh", "conf_enter_pin")[4000:8000], timeout=15)
    await bot.press(pin + "#")


def test_pins_are_stored_hashed_and_checked() -> None:
    stored = room_store.hash_pin("5678")
    assert "5678" not in stored and room_store.pin_matches("5678", stored)
    assert not room_store.pin_matches("5679", stored)
    assert not room_store.pin_matches("5678", "garbage")


def test_room_and_pin_are_validated(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        for room, pin, host in (("12a4", "5678", "9999"), ("1234", "56", "9999"),
                                ("1234", "5678", "5678")):
            with pytest.raises(RoomError):
                create_room(store, room, pin, host, now=0.0)
        create_room(store, "77", "1111", "2222", now=0.0)
        (row,) = store.query("SELECT * FROM conference_rooms")
        assert "1111" not in row["pin_hash"] and "2222" not in row["host_pin_hash"]
        assert room_store.check_pin(store, "77", "2222") is not None
        assert room_store.check_pin(store, "77", "3333") is None


def test_four_parties_hear_each_other_mute_and_drop(tmp_path: Path) -> None:
    says = [voice("agent-pass.wav", seed=10 + i) for i in range(4)]
    muted_says, late_says = voice("auth-thankyou.wav", seed=30), voice("agent-pass.wav", seed=40)

    async def scenario(engine: Engine, ex: SimExchange, conf: Conferences) -> dict[str, object]:
        bots = [CallerBot(ex, f"1380000000{i}", name=f"p{i}") for i in range(4)]
        # The first in with the host PIN is the host.
        await enter(bots[0], "1234", "9999")
        for bot in bots[1:]:
            await enter(bot, "1234", "5678")
        assert await until(engine, lambda: "1234" in conf.in_use()
                           and len(conf.parties("1234")) == 4, 10)
        await bots[0].wait(4)  # every "you are in" and tone is over
        marks = [len(b.heard) for b in bots]
        for bot, said in zip(bots, says, strict=True):
            await bot.send(said)
            await bot.wait(0.3)
        heard = [bytes(b.heard[m:]) for b, m in zip(bots, marks, strict=True)]
        parties = conf.parties("1234")
        ids = {p.caller: p.id for p in parties}
        host_id = ids[bots[0].number]
        with pytest.raises(ConferenceError, match="not the room's host"):
            conf.mute("1234", ids[bots[3].number], host=ids[bots[1].number])
        # The host mutes party 3: it still hears, but is not heard.
        view = conf.mute("1234", ids[bots[3].number], host=host_id)
        assert view.muted
        marks = [len(b.heard) for b in bots]
        await bots[3].send(muted_says)
        await bots[3].wait(0.3)
        after_mute = [bytes(b.heard[m:]) for b, m in zip(bots, marks, strict=True)]
        # The host drops party 2: its call ends and it is out of the room.
        conf.drop("1234", ids[bots[2].number], host=host_id)
        dropped_cause = await bots[2].wait_hangup(5)
        marks = [len(b.heard) for b in bots]
        await bots[1].wait(1)
        await bots[1].send(late_says)
        await bots[1].wait(0.3)
        after_drop = [bytes(b.heard[m:]) for b, m in zip(bots, marks, strict=True)]
        left = [p.caller for p in conf.parties("1234")]
        for bot in (bots[0], bots[1], bots[3]):
            await bot.hangup()
        await bots[0].wait(0.5)
        return {"heard": heard, "parties": parties, "after_mute": after_mute,
                "dropped_cause": dropped_cause, "after_drop": after_drop, "left": left,
                "all_heard": [bytes(b.heard) for b in bots], "conf": conf}

    result, store = run_room(tmp_path, scenario)
    try:
        events = [(e["event"], e["host"]) for e in room_store.events(store, "1234")]
    finally:
        store.close()
    heard = result["heard"]
    assert isinstance(heard, list)
    for i, said in enumerate(says):
        for j, got in enumerate(heard):
            # Each voice crossed unchanged to the other three, and was never echoed back.
            assert (said in got) is (i != j), (i, j)
    parties = result["parties"]
    assert isinstance(parties, list)
    assert [p.host for p in parties] == [True, False, False, False]
    after_mute = result["after_mute"]
    assert isinstance(after_mute, list)
    assert not any(muted_says in got for got in after_mute)
    assert all(not any(after_mute[j]) for j in (0, 1, 2))  # the muted voice: silence
    assert result["dropped_cause"] is not None
    after_drop = result["after_drop"]
    assert isinstance(after_drop, list)
    assert late_says in after_drop[0] and late_says in after_drop[3]
    assert late_says not in after_drop[2] and not after_drop[2]
    assert result["left"] == ["13800000000", "13800000001", "13800000003"]
    all_heard = result["all_heard"]
    assert isinstance(all_heard, list)
    entry, leave = b"".join(entry_tone().frames), b"".join(exit_tone().frames)
    assert all_heard[0].count(entry) == 3 and leave in all_heard[0]
    assert audio("zh", "conf_joined") in all_heard[3]
    conf = result["conf"]
    assert isinstance(conf, Conferences) and conf.in_use() == []  # the last out closes it
    assert events.count(("join", 0)) == 3 and ("join", 1) in events
    assert ("mute", 0) in events and ("drop", 0) in events
    assert events.count(("leave", 0)) + events.count(("leave", 1)) == 4


def test_wrong_pin_is_refused_and_the_ninth_caller_is_turned_away(tmp_path: Path) -> None:
    async def scenario(engine: Engine, ex: SimExchange,
                       conf: Conferences) -> tuple[bytes, bytes, str | None, int]:
        wrong = CallerBot(ex, "13900000000", name="wrong")
        await enter(wrong, "1234", "0000")
        assert await wrong.wait_for(audio("zh", "conf_wrong")[4000:12000], timeout=10)
        wrong_heard = bytes(wrong.heard)
        await wrong.hangup()
        bots = [CallerBot(ex, f"1380000001{i}", name=f"p{i}") for i in range(8)]
        for bot in bots:
            await enter(bot, "1234", "5678")
        assert await until(engine, lambda: len(conf.parties("1234")) == 8, 10)
        ninth = CallerBot(ex, "13900000009", name="ninth")
        await enter(ninth, "1234", "5678")
        cause = await ninth.wait_hangup(20)
        count = len(conf.parties("1234"))
        for bot in bots:
            await bot.hangup()
        await ninth.wait(0.5)
        return wrong_heard, bytes(ninth.heard), cause, count

    (wrong_heard, ninth_heard, cause, count), store = run_room(tmp_path, scenario)
    try:
        events = [e["event"] for e in room_store.events(store, "1234")]
    finally:
        store.close()
    assert audio("zh", "conf_joined") not in wrong_heard
    assert audio("zh", "conf_full") in ninth_heard and cause is not None
    assert audio("zh", "conf_joined") not in ninth_heard
    assert count == 8
    assert events.count("refused-pin") == 1 and events.count("refused-full") == 1
    assert events.count("join") == 8
