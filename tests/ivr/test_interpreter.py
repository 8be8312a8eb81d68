"""Whole calls through the real engine on the manual clock: a CallerBot keys real DTMF tones
into a flow run by the interpreter, and the tests check what it heard (prompt audio, byte
for byte, in the language it should be in) and the path log the call left."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from appliance.ivr.flow import load_flow
from appliance.ivr.interpreter import MAX_STEPS, Step, make_flow_handler
from appliance.ivr.speech import say
from appliance.media.prompts import Prompt, PromptLibrary, concat
from appliance.media.tones import beep
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from tests.rig import running_engine

T = TypeVar("T")
DEMO = Path(__file__).parent / "flows" / "demo.json"
LIB = PromptLibrary()
WEDNESDAY_NOON = dt.datetime(2026, 11, 25, 12, 0)
SUNDAY_NOON = dt.datetime(2026, 11, 29, 12, 0)


def audio(lang: str, *names: str) -> bytes:
    return concat([LIB.get(name, lang) for name in names])


def run(tmp_path: Path, doc: Mapping[str, Any] | Path,
        scenario: Callable[[SimExchange], Awaitable[T]],
        lookups: Mapping[str, Callable[..., Any]] | None = None,
        now: dt.datetime = WEDNESDAY_NOON) -> tuple[T, list[Step]]:
    """Run ``scenario`` against an engine whose flow is ``doc``; returns its result and the
    path log of the (single) call."""
    paths: list[list[Step]] = []
    handler = make_flow_handler(load_flow(doc), lookups or {}, clock_now=lambda: now,
                                messages_dir=tmp_path / "messages",
                                on_done=lambda _call, path: paths.append(path))

    async def main() -> T:
        store = Store(tmp_path / "appliance.db")
        try:
            async with running_engine(handler, prompts=LIB, store=store,
                                      recordings=tmp_path / "recordings",
                                      trunks=4) as (_, exchange):
                return await asyncio.wait_for(scenario(exchange), timeout=60)
        finally:
            store.close()

    result = asyncio.run(main())
    assert len(paths) == 1, paths
    return result, paths[0]


def menu_flow(**menu: Any) -> dict[str, Any]:
    """main: a menu on 'welcome'; 1 says digit_1, 2 says digit_2; both then hang up."""
    return {
        "name": "menu", "version": 1, "languages": ["zh", "en"], "start": "main",
        "nodes": {
            "main": {"type": "menu", "prompt": ["welcome"], "options": {"1": "one", "2": "two"},
                     "on_invalid": "bad", "on_timeout": "silent", **menu},
            "one": {"type": "play", "prompts": ["digit_1"], "next": "bye"},
            "two": {"type": "play", "prompts": ["digit_2"], "next": "bye"},
            "bad": {"type": "play", "prompts": ["digit_hash"], "next": "bye"},
            "silent": {"type": "play", "prompts": ["digit_star"], "next": "bye"},
            "bye": {"type": "hangup", "prompt": ["goodbye"]},
        },
    }


def nodes(path: list[Step]) -> list[str]:
    return [s["node"] for s in path if "node" in s]


def heard_in_order(heard: bytes, *pieces: bytes) -> bool:
    """Each piece was heard whole, after the one before (separate plays may have a silent
    frame between them, so they are not one byte string)."""
    at = 0
    for piece in pieces:
        found = heard.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


async def dial_and_press(exchange: SimExchange, *presses: tuple[float, str]) -> bytes:
    """Dial, then for each (seconds, keys): listen that long and key them; returns all that
    was heard once the box hung up."""
    bot = CallerBot(exchange, "13800138000")
    await bot.dial("95500")
    for seconds, keys in presses:
        await bot.listen(seconds)
        await bot.press(keys)
    assert await bot.wait_hangup(40) == "normal"
    return bytes(bot.heard)


def test_menu_choice_routes_and_the_path_log_lists_it(tmp_path: Path) -> None:
    heard, path = run(tmp_path, menu_flow(),
                      lambda ex: dial_and_press(ex, (0.5, "2")))
    welcome = audio("zh", "welcome")
    assert heard.startswith(welcome[:3200]) and welcome not in heard  # the key cut it short
    assert heard_in_order(heard, audio("zh", "digit_2"), audio("zh", "goodbye"))
    assert audio("zh", "digit_1") not in heard
    assert nodes(path) == ["main", "two", "bye"]
    assert path[0]["key"] == "2" and path[0]["type"] == "menu"


def test_invalid_key_is_reprompted_then_on_invalid(tmp_path: Path) -> None:
    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await bot.dial("95500")
        await bot.listen(0.5)
        await bot.press("7")
        # The re-prompt: the invalid-key prompt (2.1 s), then the menu again.
        await bot.listen(3.0)
        await bot.press("#")
        assert await bot.wait_hangup(30) == "normal"
        return bytes(bot.heard)

    heard, path = run(tmp_path, menu_flow(retries=1, invalid_prompt=["no_input"]), scenario)
    assert audio("zh", "no_input") in heard
    assert heard_in_order(heard, audio("zh", "digit_hash"), audio("zh", "goodbye"))
    assert [(s["node"], s.get("key"), s.get("outcome"), s.get("attempt")) for s in path] == [
        ("main", "7", "invalid", 1), ("main", "#", "invalid", 2),
        ("bad", None, None, None), ("bye", None, None, None)]


def test_silence_is_reprompted_then_on_timeout(tmp_path: Path) -> None:
    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await bot.dial("95500")
        assert await bot.wait_hangup(40) == "normal"
        return bytes(bot.heard)

    heard, path = run(tmp_path, menu_flow(retries=1, timeout=1, timeout_prompt=["no_input"]),
                      scenario)
    # The whole menu prompt twice, the no-input prompt once in between, then on_timeout.
    assert heard.count(audio("zh", "welcome")) == 2
    assert heard.count(audio("zh", "no_input", "welcome")) == 1
    assert heard_in_order(heard, audio("zh", "digit_star"), audio("zh", "goodbye"))
    assert [(s["node"], s.get("outcome")) for s in path] == [
        ("main", "timeout"), ("main", "timeout"), ("silent", None), ("bye", None)]


def test_zero_goes_to_the_operator_node(tmp_path: Path) -> None:
    doc = menu_flow()
    doc["operator"] = "op"
    doc["nodes"]["op"] = {"type": "transfer", "queue": "agents", "prompt": ["digit_0"],
                          "next": "bye"}
    heard, path = run(tmp_path, doc, lambda ex: dial_and_press(ex, (0.5, "0")))
    assert heard_in_order(heard, audio("zh", "digit_0"), audio("zh", "goodbye"))
    assert nodes(path) == ["main", "op", "bye"]
    assert path[0]["operator"] is True and path[1]["queue"] == "agents"


def test_language_switch_makes_later_prompts_english(tmp_path: Path) -> None:
    doc = menu_flow()
    doc["start"] = "lang"
    doc["nodes"]["lang"] = {"type": "language", "prompt": ["welcome"],
                            "options": {"1": "zh", "2": "en"}, "next": "main"}
    heard, path = run(tmp_path, doc, lambda ex: dial_and_press(ex, (0.5, "2"), (0.5, "1")))
    assert heard.startswith(audio("zh", "welcome")[:3200])  # the box's default first
    assert heard_in_order(heard, audio("en", "digit_1"), audio("en", "goodbye"))
    assert audio("zh", "digit_1") not in heard and audio("zh", "goodbye") not in heard
    assert path[0] == {"node": "lang", "type": "language", "tick": path[0]["tick"],
                       "key": "2", "language": "en"}
    assert nodes(path) == ["lang", "main", "one", "bye"]


def test_demo_flow_reads_a_policy_and_its_premium_back_in_english(tmp_path: Path) -> None:
    asked: list[str] = []

    def policy_premium(policy: str) -> dict[str, str] | None:
        asked.append(policy)
        return {"amount": "1234.56"} if policy == "1234" else None

    digits = say("en", "digits", "1234")
    money = say("en", "money", "1234.56")

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await bot.dial("95500")
        for keys in ("2", "1", "1234#"):
            await bot.listen(0.5)
            await bot.press(keys)
        # A key would cut the read-back short: wait for it, then leave from the menu.
        assert await bot.wait_for(audio("en", *money), timeout=20)
        await bot.listen(0.5)
        await bot.press("9")
        assert await bot.wait_hangup(20) == "normal"
        return bytes(bot.heard)

    heard, path = run(tmp_path, DEMO, scenario, lookups={"policy_premium": policy_premium})
    assert asked == ["1234"]
    # A speak node's audio is its segments' prompts, one after another, in the call's
    # language.
    assert digits == ["n_1", "n_2", "n_3", "n_4"]
    assert heard_in_order(heard, audio("en", "you_entered"), audio("en", *digits),
                          audio("en", *money), audio("en", "goodbye"))
    assert audio("en", "goodbye") in heard
    assert nodes(path) == ["language", "main", "policy", "find", "readback", "say_policy",
                           "say_premium", "main", "bye"]
    find = path[3]
    assert (find["args"], find["result"], find["found"]) == (["1234"], {"amount": "1234.56"},
                                                            True)
    assert path[2]["digits"] == "1234" and path[2]["end"] == "terminator"
    assert path[6]["segments"] == money


def test_lookup_not_found_and_zh_speech(tmp_path: Path) -> None:
    doc = {
        "name": "speak", "version": 1, "languages": ["zh"], "start": "find",
        "nodes": {
            "find": {"type": "lookup", "function": "rate", "args": ["caller"], "into": "rate",
                     "on_found": "say", "on_not_found": "bye"},
            "say": {"type": "speak", "kind": "percent", "variable": "rate", "next": "when"},
            "when": {"type": "speak", "kind": "date", "value": "2026-11-26", "next": "bye"},
            "bye": {"type": "hangup", "prompt": ["goodbye"]},
        },
    }

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await bot.dial("95500")
        assert await bot.wait_hangup(30) == "normal"
        return bytes(bot.heard)

    heard, path = run(tmp_path, doc, scenario, lookups={"rate": lambda caller: "3.5"})
    assert heard.startswith(audio("zh", *say("zh", "percent", "3.5")))
    assert heard_in_order(heard, audio("zh", *say("zh", "date", "2026-11-26")),
                          audio("zh", "goodbye"))
    assert path[0]["args"] == ["13800138000"] and path[0]["result"] == "3.5"

    (tmp_path / "b").mkdir()
    _, path = run(tmp_path / "b", doc, scenario, lookups={"rate": lambda caller: None})
    assert nodes(path) == ["find", "bye"] and path[0]["found"] is False


@pytest.mark.parametrize(("now", "branch"), [(WEDNESDAY_NOON, "digit_1"),
                                             (SUNDAY_NOON, "digit_2")])
def test_hours_branch_uses_the_injected_clock(tmp_path: Path, now: dt.datetime,
                                              branch: str) -> None:
    doc = {
        "name": "hours", "version": 1, "languages": ["zh"], "start": "open",
        "nodes": {
            "open": {"type": "hours", "open": "yes", "closed": "no",
                     "schedule": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                                   "from": "09:00", "to": "17:30"}]},
            "yes": {"type": "hangup", "prompt": ["digit_1"]},
            "no": {"type": "hangup", "prompt": ["digit_2"]},
        },
    }

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await bot.dial("95500")
        await bot.wait_hangup(10)
        return bytes(bot.heard)

    heard, path = run(tmp_path, doc, scenario, now=now)
    assert heard.startswith(audio("zh", branch))
    assert path[0]["open"] is (branch == "digit_1")


def test_caller_hanging_up_ends_the_path_log(tmp_path: Path) -> None:
    async def scenario(ex: SimExchange) -> None:
        bot = CallerBot(ex, "13800138000")
        await bot.dial("95500")
        await bot.listen(0.5)
        await bot.press("1")
        await bot.listen(0.1)
        await bot.hangup()
        await bot.wait(0.5)

    _, path = run(tmp_path, menu_flow(), scenario)
    assert nodes(path)[0] == "main" and path[0]["key"] == "1"
    assert path[-1] == {"event": "ended", "cause": "remote"}


def test_handler_refuses_a_flow_whose_lookups_are_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="policy_premium"):
        make_flow_handler(load_flow(DEMO), {}, messages_dir=tmp_path)
    with pytest.raises(ValueError, match="messages_dir"):
        make_flow_handler(load_flow(DEMO), {"policy_premium": lambda p: None})


@pytest.mark.parametrize(("now", "folder"), [(WEDNESDAY_NOON, ""),
                                             (SUNDAY_NOON, "voicemail/general")])
def test_demo_flow_takes_a_message_in_hours_and_voicemail_after(
        tmp_path: Path, now: dt.datetime, folder: str) -> None:
    said = audio("en", "welcome")  # somebody speaking, as test_engine does

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await bot.dial("95500")
        for keys in ("1", "2"):
            await bot.listen(0.5)
            await bot.press(keys)
        # The prompt began while the key was still sounding; the beep is the cue to speak.
        assert await bot.wait_for(concat([Prompt.from_samples("beep", beep())]), timeout=20)
        await bot.send(said)
        assert await bot.wait_hangup(30) == "normal"
        return bytes(bot.heard)

    heard, path = run(tmp_path, DEMO, scenario, lookups={"policy_premium": lambda p: None},
                      now=now)
    assert heard_in_order(heard, audio("zh", "leave_message"), audio("zh", "message_saved"),
                          audio("zh", "goodbye"))
    taken = next(s for s in path if "recording" in s)
    recording = Path(taken["recording"])
    assert recording.parent == tmp_path / "messages" / folder
    assert recording.is_file() and taken["end"] == "silence" and taken["seconds"] > 3
    assert nodes(path)[-2:] == ["saved", "bye"]


def test_async_and_failing_lookups_and_on_step(tmp_path: Path) -> None:
    doc = {
        "name": "lookups", "version": 1, "languages": ["zh"], "start": "first",
        "nodes": {
            "first": {"type": "lookup", "function": "slow", "args": ["callee"], "into": "x",
                      "on_found": "second", "on_not_found": "bye"},
            "second": {"type": "lookup", "function": "broken", "into": "y",
                       "on_found": "bye", "on_not_found": "bye"},
            "bye": {"type": "hangup"},
        },
    }

    async def slow(callee: str) -> str:
        await asyncio.sleep(0)
        return callee[::-1]

    def broken() -> str:
        raise ConnectionError("policy database unreachable")

    seen: list[Step] = []
    handler = make_flow_handler(load_flow(doc), {"slow": slow, "broken": broken},
                                on_step=lambda _call, step: seen.append(step))

    async def main() -> None:
        store = Store(tmp_path / "appliance.db")
        try:
            async with running_engine(handler, prompts=LIB, store=store,
                                      recordings=tmp_path / "recordings",
                                      trunks=1) as (_, exchange):
                bot = CallerBot(exchange, "13800138000")
                await bot.dial("95500")
                assert await bot.wait_hangup(5) == "normal"
        finally:
            store.close()

    logging.disable(logging.ERROR)  # the failing lookup is logged with its traceback
    try:
        asyncio.run(main())
    finally:
        logging.disable(logging.NOTSET)
    assert [(s["node"], s.get("result"), s.get("error")) for s in seen] == [
        ("first", "00559", None), ("second", None, "policy database unreachable"),
        ("bye", None, None)]


def test_a_flow_loop_without_audio_is_cut_off(tmp_path: Path) -> None:
    # Two lookups that send each other round forever would spin without awaiting the line.
    doc = {
        "name": "loop", "version": 1, "languages": ["zh"], "start": "a",
        "nodes": {
            "a": {"type": "lookup", "function": "f", "into": "x", "on_found": "b",
                  "on_not_found": "bye"},
            "b": {"type": "lookup", "function": "f", "into": "x", "on_found": "a",
                  "on_not_found": "bye"},
            "bye": {"type": "hangup"},
        },
    }

    async def scenario(ex: SimExchange) -> str | None:
        bot = CallerBot(ex, "13800138000")
        await bot.dial("95500")
        return await bot.wait_hangup(5)

    logging.disable(logging.ERROR)
    try:
        cause, path = run(tmp_path, doc, scenario, lookups={"f": lambda: "yes"})
    finally:
        logging.disable(logging.NOTSET)
    assert cause is not None
    assert path[-1] == {"event": "loop", "node": "a"}
    assert len(path) == MAX_STEPS + 1
