"""A salesperson hears their new messages by phone: the count, each message with its
envelope spoken (time, caller, policy), and each one marked heard once played."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from appliance.calls.call import Call, FlowFn
from appliance.ivr.speech import say
from appliance.media.prompts import Prompt, PromptLibrary, concat
from appliance.media.wavio import read_slin
from appliance.store.db import Store
from appliance.voicemail import (
    Message,
    assign,
    audit_trail,
    general_box,
    get_message,
    salesperson_box,
    salesperson_inbox,
    salesperson_messages,
)
from drivers.sim import CallerBot
from tests.calls.conftest import Rig
from tests.voicemail.conftest import INLINE, make_message

T0 = 1_780_000_000.0
LIB = PromptLibrary()


def audio(lang: str, *names: str) -> bytes:
    return concat([LIB.get(name, lang) for name in names])


def envelope(msg: Message, lang: str) -> bytes:
    """What the salesperson should hear for ``msg``, built here from its parts."""
    when = dt.datetime.fromtimestamp(msg.received_at)
    names = ["vm_next_message", "vm_received_at",
             *say(lang, "date", when.strftime("%Y-%m-%d")),
             *say(lang, "time", when.strftime("%H:%M")),
             "vm_from", *say(lang, "digits", msg.caller)]
    if msg.policy_number:
        names += ["vm_policy", *say(lang, "digits", msg.policy_number)]
    played = Prompt.from_samples("m", read_slin(msg.playable))
    return audio(lang, *names) + concat([played])


def inbox_flow(store: Store, lang: str, results: list[int]) -> FlowFn:
    async def flow(call: Call) -> None:
        await call.answer()
        results.append(await salesperson_messages(call, "S001", lang, store,
                                                  executor=INLINE))
        await call.hangup()

    return flow


def two_messages(store: Store, root: Path) -> tuple[Message, Message]:
    first = make_message(store, general_box(store), root, caller="13911112222",
                         received_at=T0, policy_number="880001234567", seed=1,
                         sound="vm-theperson.wav")
    first = assign(store, first.id, "S001", actor="clerk", now=T0 + 60)
    second = make_message(store, salesperson_box(store, "S001"), root, caller="02087654321",
                          received_at=T0 + 7200, seed=2, sound="agent-pass.wav")
    return first, second


def test_salesperson_hears_count_envelopes_and_messages_then_they_are_heard(
        run_vm: Any, store: Store, tmp_path: Path) -> None:
    first, second = two_messages(store, tmp_path)
    assert second.assignee == "S001"  # left in their own box
    results: list[int] = []

    async def scenario(rig: Rig) -> bytes:
        bot = CallerBot(rig.exchange, "13900000001")
        await bot.dial("95500")
        assert await bot.wait_hangup(120) is not None
        return bytes(bot.heard)

    heard = run_vm(inbox_flow(store, "en", results), scenario)
    assert results == [2]
    count = audio("en", "vm_you_have", *say("en", "number", "2"), "vm_new_messages")
    positions = [heard.find(part) for part in
                 (count, envelope(first, "en"), envelope(second, "en"),
                  audio("en", "vm_no_more_messages"))]
    assert -1 not in positions and positions == sorted(positions)
    for msg in (first, second):
        now = get_message(store, msg.id)
        assert now.assignee_heard_at is not None and now.status == "assigned"
        assert audit_trail(store, msg.id)[-1].actor == "S001"
        assert audit_trail(store, msg.id)[-1].action == "heard"
    assert salesperson_inbox(store, "S001", only_new=True) == []
    assert len(salesperson_inbox(store, "S001")) == 2  # still theirs to deal with


def test_hanging_up_mid_message_leaves_it_new(run_vm: Any, store: Store,
                                              tmp_path: Path) -> None:
    first, second = two_messages(store, tmp_path)
    results: list[int] = []

    async def scenario(rig: Rig) -> None:
        bot = CallerBot(rig.exchange, "13900000001")
        await bot.dial("95500")
        # Listen to the first message, hang up in the middle of the second one's envelope.
        assert await bot.wait_for(envelope(first, "zh"), timeout=60)
        assert await bot.wait_for(audio("zh", "vm_next_message", "vm_received_at"), timeout=10)
        await bot.hangup()

    run_vm(inbox_flow(store, "zh", results), scenario)
    assert results == []  # the flow ended with the call
    assert get_message(store, first.id).assignee_heard_at is not None
    assert get_message(store, second.id).assignee_heard_at is None
    assert [m.id for m in salesperson_inbox(store, "S001", only_new=True)] == [second.id]


def test_no_new_messages(run_vm: Any, store: Store) -> None:
    results: list[int] = []

    async def scenario(rig: Rig) -> bool:
        bot = CallerBot(rig.exchange, "13900000001")
        await bot.dial("95500")
        return await bot.wait_for(audio("yue", "vm_no_new_messages"), timeout=30)

    assert run_vm(inbox_flow(store, "yue", results), scenario)
    assert results == [0]
