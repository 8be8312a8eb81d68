"""The default insurance flow end to end: the real engine on the manual clock, the demo book
in a SQLite store, and a CallerBot keying real DTMF tones and checking what it heard, byte
for byte, in the language it chose."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from appliance.fax.desk import FaxDesk
from appliance.fax.machine import FaxMachine
from appliance.fax.send import CallbackResult, render_document
from appliance.fax.session import FaxResult
from appliance.insurance.demo_data import demo_pin, load_demo_data
from appliance.insurance.quote import quote
from appliance.ivr.flow import load_flow
from appliance.ivr.insurance_lookups import InsuranceLookups, is_set, money
from appliance.ivr.interpreter import Step, make_flow_handler
from appliance.ivr.names import NameRecordings
from appliance.ivr.speech import LANGUAGES, say
from appliance.media.prompts import Prompt, PromptLibrary, concat
from appliance.media.tones import beep
from appliance.media.wavio import read_slin
from appliance.store.db import Store
from appliance.voicemail import BoxKind, assign, general_box, get_box, get_message
from drivers.sim import CallerBot, SimExchange
from tests.fax.conftest import pixels
from tests.rig import InlineExecutor, running_engine
from tests.voicemail.conftest import make_message

T = TypeVar("T")
FLOW = Path(__file__).parents[2] / "appliance" / "ivr" / "default_flow.json"
LIB = PromptLibrary()
TODAY = dt.date(2026, 11, 25)
NOW = dt.datetime(2026, 11, 25, 12, 0)
LANG_KEY = {"zh": "1", "yue": "2", "en": "3"}


def audio(lang: str, *names: str) -> bytes:
    return concat([LIB.get(name, lang) for name in names])


def heard_in_order(heard: bytes, *pieces: bytes) -> bool:
    at = 0
    for piece in pieces:
        found = heard.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def nodes(path: list[Step]) -> list[str]:
    return [s["node"] for s in path if "node" in s]


@dataclass(frozen=True)
class Policy:
    number: str
    last4: str  # as keyed: * for X
    premium: str
    due_date: str
    due_amount: str
    mode: str


def open_book(tmp_path: Path) -> tuple[Store, list[Policy]]:
    """A store with the demo book; the sample policies in force with a premium due."""
    store = Store(tmp_path / "appliance.db")
    summary = load_demo_data(store, policies=200, today=TODAY, pin_iterations=1000)
    found = []
    for number, full_id in summary.sample_ids.items():
        row = store.query("SELECT status, premium_fen, next_due_date, next_due_fen, "
                          "payment_mode "
                          "FROM policies WHERE number = ?", [number])[0]
        if row["status"] == "in_force" and row["next_due_date"]:
            found.append(Policy(
                number=number, last4=full_id[-4:].replace("X", "*"),
                premium=f"{row['premium_fen'] // 100}.{row['premium_fen'] % 100:02d}",
                due_date=row["next_due_date"],
                due_amount=f"{row['next_due_fen'] // 100}.{row['next_due_fen'] % 100:02d}",
                mode=row["payment_mode"]))
    assert len(found) >= 3
    return store, found


#: per test folder, every prompt the engine was asked to play, as "lang/name" (its event log)
PLAYED: dict[Path, list[str]] = {}


def record_prompts(tmp_path: Path) -> Callable[[str, Any, dict[str, Any]], None]:
    played = PLAYED.setdefault(tmp_path, [])

    def on_event(what: str, _call: Any, info: dict[str, Any]) -> None:
        if what == "prompts":
            played.extend(f"{info['language']}/{name}" for name in info["names"])

    return on_event


def played_in_order(tmp_path: Path, lang: str, *names: str) -> bool:
    """Did the engine's event log play ``names`` (in ``lang``) in this order?"""
    log = iter(PLAYED[tmp_path])
    return all(f"{lang}/{name}" in log for name in names)


#: per test folder, the results of the callback faxes its call queued, once all finished
CALLBACKS: dict[Path, list[CallbackResult | None]] = {}


def run(tmp_path: Path, store: Store, scenario: Callable[[SimExchange], Awaitable[T]],
        now: dt.datetime = NOW, fax: bool = False) -> tuple[T, list[Step]]:
    """The default flow on the demo book, ``scenario`` calling in. With ``fax``, a fax desk
    sends on the call and dials callbacks on the exchange (their results in CALLBACKS)."""
    paths: list[list[Step]] = []
    lookups = InsuranceLookups(store, now=lambda: now, executor=InlineExecutor(),
                               names=NameRecordings(tmp_path / "names"))
    desk = FaxDesk(store, tmp_path / "faxes", today=lambda: TODAY) if fax else None
    handler = make_flow_handler(load_flow(FLOW), lookups.functions(), clock_now=lambda: now,
                                messages_dir=tmp_path / "messages",
                                on_done=lambda _call, path: paths.append(path), store=store,
                                executor=InlineExecutor(), fax=desk)

    async def main() -> T:
        async with running_engine(handler, prompts=LIB, store=store,
                                  recordings=tmp_path / "recordings", trunks=2,
                                  on_event=record_prompts(tmp_path)) as (_, exchange):
            if desk is not None:
                desk.callback_driver = exchange
            result = await asyncio.wait_for(scenario(exchange), timeout=120)
            if desk is not None and desk.jobs:
                CALLBACKS[tmp_path] = list(
                    await asyncio.wait_for(asyncio.gather(*desk.jobs), 120))
            return result

    try:
        result = asyncio.run(main())
    finally:
        store.close()
    assert len(paths) == 1, paths
    return result, paths[0]


async def press_then_hear(bot: CallerBot, keys: str, pattern: bytes,
                          timeout: float = 60) -> bool:
    """Key ``keys`` and wait to hear ``pattern``, listening from before the first key: a
    prompt that starts as the last key ends is not missed."""
    heard = asyncio.ensure_future(bot.wait_for(pattern, timeout=timeout))
    await asyncio.sleep(0)  # the waiter is registered before any key is sent
    await bot.press(keys)
    return await heard


async def choose(bot: CallerBot, lang: str, option: str) -> None:
    """Dial, pick the language, then a main-menu option (each key cuts its prompt short)."""
    await bot.dial("95500")
    await bot.listen(0.5)
    await bot.press(LANG_KEY[lang])
    await bot.listen(0.5)
    await bot.press(option)
    await bot.listen(0.5)


def test_the_flow_validates_with_all_three_languages(tmp_path: Path) -> None:
    flow = load_flow(FLOW)
    assert flow.languages == LANGUAGES
    # A person: the service queue in office hours, the general voicemail box otherwise.
    person = flow.node(flow.operator or "")
    assert person["type"] == "hours"
    assert flow.node(person["open"])["queue"] == "service"
    assert flow.node(person["closed"])["box"] == "general"
    store = Store(tmp_path / "appliance.db")
    try:
        assert flow.functions() == set(InsuranceLookups(store).functions())
    finally:
        store.close()


def test_lookups_count_tries_per_call_and_say_why_a_policy_failed(tmp_path: Path) -> None:
    store, policies = open_book(tmp_path)
    policy = policies[0]
    lookups = InsuranceLookups(store, now=lambda: NOW, max_calls=2)
    wrong = "0000" if policy.last4 != "0000" else "1111"

    async def main() -> None:
        got = await lookups.policy("a", policy.number, policy.last4)
        assert got is not None and got["premium"] == policy.premium
        assert got["due_date"] == policy.due_date and got["status_in_force"] == "1"
        assert lookups.policy_to_person("a") is None and lookups.policy_unknown("a") is None
        assert await lookups.policy("b", "999999999999", "1234") is None
        assert lookups.policy_unknown("b") == "1" and lookups.policy_to_person("b") is None
        assert await lookups.policy("b", policy.number, wrong) is None
        assert lookups.policy_unknown("b") is None and lookups.policy_to_person("b") is None
        assert await lookups.policy("b", policy.number, wrong) is None
        assert lookups.policy_to_person("b") == "1"  # three failures of any kind
        # Once handed over, even the right digits are refused for the rest of the call.
        assert await lookups.policy("b", policy.number, policy.last4) is None
        assert lookups.policy_to_person("b") == "1"
        await lookups.policy("c", policy.number, wrong)
        assert list(lookups._calls) == ["b", "c"]  # the oldest call is forgotten
        assert await lookups.salesperson("999") is None
        (phone,) = store.query("SELECT phone FROM salespeople WHERE code = '310018'")
        assert await lookups.salesperson("310018") == {"code": "310018", "branch_3": "1",
                                                       "licence_suspended": "1",
                                                       "phone": phone["phone"],
                                                       "has_phone": "1"}
        assert await lookups.report_claim("", "999999999999", "") is None
        assert await lookups.policy_exists("999999999999") is None
        assert await lookups.policy_exists(policy.number) == policy.number

    try:
        asyncio.run(main())
    finally:
        store.close()
    assert money(Decimal("1234.5")) == "1234.50" and money(Decimal(7)) == "7.00"
    assert is_set("1") == "1" and is_set("") is None and is_set("0") is None


@pytest.mark.parametrize("lang", LANGUAGES)
def test_policy_enquiry_reads_premium_and_due_date(tmp_path: Path, lang: str) -> None:
    store, policies = open_book(tmp_path)
    policy = policies[LANGUAGES.index(lang)]
    premium = audio(lang, *say(lang, "money", policy.premium))
    due = audio(lang, *say(lang, "date", policy.due_date))
    due_amount = audio(lang, *say(lang, "money", policy.due_amount))

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "1")
        await bot.press(policy.number + "#")
        await bot.listen(0.5)
        await bot.press(policy.last4)
        # The read-back ends at the menu: a key would cut it short, so wait for that.
        assert await bot.wait_for(audio(lang, "main_menu")[:3200], timeout=60)
        await bot.press("0")
        assert await bot.wait_hangup(30) == "normal"
        return bytes(bot.heard)

    heard, path = run(tmp_path, store, scenario)
    assert heard_in_order(heard, audio(lang, "policy_status"), audio(lang, "status_in_force"),
                          audio(lang, "policy_premium"), premium,
                          audio(lang, "policy_pay_mode", f"pay_{policy.mode}"),
                          audio(lang, "policy_next_due"), due,
                          audio(lang, "policy_due_amount"), due_amount,
                          audio(lang, "to_operator"), audio(lang, "goodbye"))
    # The engine's own log of what it played says the same, in the caller's language.
    product = next(s for s in path if s["node"].startswith("say_pr_"))["node"][7:]
    assert played_in_order(tmp_path, lang, "policy_status", "status_in_force",
                           "policy_product", f"product_{product}", "policy_sum_insured",
                           "policy_premium", *say(lang, "money", policy.premium),
                           "policy_pay_mode", f"pay_{policy.mode}", "policy_next_due",
                           "policy_due_amount", "fax_offer", "to_operator", "goodbye")
    other = next(o for o in LANGUAGES if o != lang)
    assert audio(other, "policy_premium") not in heard
    found = next(s for s in path if s["node"] == "pol_find")
    # The ID digits are checked but never written down: the path log and the CDR show x.
    assert found["found"] is True and found["args"][1:] == [policy.number, "xxxx"]
    assert found["result"]["premium"] == policy.premium
    assert nodes(path)[-3:] == ["person", "operator", "bye"]
    with Store(tmp_path / "appliance.db") as reopened:
        (row,) = reopened.query("SELECT keys, ivr_path FROM calls")
    assert row["keys"] == f"{LANG_KEY[lang]}1{policy.number}#xxxx0"
    # The path the call took is kept with its CDR row, secrets masked there too.
    kept = json.loads(row["ivr_path"])
    assert [s["node"] for s in kept if "node" in s] == nodes(path)
    assert next(s for s in kept if s.get("node") == "pol_find")["args"][1:] == [
        policy.number, "xxxx"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_wrong_id_three_times_goes_to_the_operator(tmp_path: Path, lang: str) -> None:
    store, policies = open_book(tmp_path)
    policy = policies[0]
    wrong = "0000" if policy.last4 != "0000" else "1111"

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "1")
        await bot.press(policy.number + "#")
        for attempt in range(3):
            await bot.listen(0.5)
            if attempt < 2:
                assert await press_then_hear(bot, wrong, audio(lang, "id_mismatch"))
            else:
                await bot.press(wrong)
        assert await bot.wait_hangup(40) == "normal"
        return bytes(bot.heard)

    heard, path = run(tmp_path, store, scenario)
    assert heard.count(audio(lang, "id_mismatch")) == 2
    assert PLAYED[tmp_path].count(f"{lang}/id_mismatch") == 2
    assert played_in_order(tmp_path, lang, "too_many_tries", "to_operator", "goodbye")
    assert heard_in_order(heard, audio(lang, "too_many_tries"), audio(lang, "to_operator"),
                          audio(lang, "goodbye"))
    assert [s["found"] for s in path if s["node"] == "pol_find"] == [False] * 3
    transfer = next(s for s in path if s["node"] == "operator")
    assert transfer["queue"] == "service"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_unknown_policy_number_is_told_and_back_to_the_menu(tmp_path: Path, lang: str) -> None:
    store, _ = open_book(tmp_path)

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "1")
        await bot.press("999999999999#")
        await bot.listen(0.5)
        assert await press_then_hear(bot, "1234", audio(lang, "policy_not_found"))
        assert await bot.wait_for(audio(lang, "main_menu")[:3200], timeout=60)
        await bot.hangup()
        return bytes(bot.heard)

    heard, path = run(tmp_path, store, scenario)
    assert audio(lang, "id_mismatch") not in heard
    went = nodes(path)
    at = went.index("pol_find")
    assert went[at:at + 5] == ["pol_find", "pol_to_person", "pol_unknown", "pol_not_found",
                               "main"]
    assert path[-1] == {"event": "ended", "cause": "remote"}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_claim_report_creates_a_case_with_the_recording(tmp_path: Path, lang: str) -> None:
    store, policies = open_book(tmp_path)
    policy = policies[0]
    said = audio("en", "welcome")  # somebody speaking

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13900139000")
        await choose(bot, lang, "3")
        await bot.press(policy.number + "#")
        assert await bot.wait_for(concat([Prompt.from_samples("beep", beep())]), timeout=60)
        await bot.send(said)
        assert await bot.wait_for(audio(lang, "claim_reported"), timeout=60)
        assert await bot.wait_for(audio(lang, "main_menu")[:3200], timeout=60)
        await bot.hangup()
        return bytes(bot.heard)

    db_path = tmp_path / "appliance.db"
    heard, path = run(tmp_path, store, scenario)
    check = Store(db_path)
    try:
        claims = check.query("SELECT case_number, policy_number, caller, description_recording "
                             "FROM claims")
    finally:
        check.close()
    assert len(claims) == 1
    claim = claims[0]
    assert claim["case_number"] == "202611250001"
    assert (claim["policy_number"], claim["caller"]) == (policy.number, "13900139000")
    assert Path(claim["description_recording"]).is_file()
    assert heard_in_order(heard, audio(lang, "claim_reported"),
                          audio(lang, *say(lang, "digits", claim["case_number"])))
    assert played_in_order(tmp_path, lang, "claim_describe", "claim_reported",
                           *say(lang, "digits", claim["case_number"]))
    recorded = next(s for s in path if s["node"] == "cl_record")
    assert recorded["recording"] == claim["description_recording"] and recorded["seconds"] > 1


@pytest.mark.parametrize("lang", LANGUAGES)
def test_salesperson_lookup_reads_code_branch_and_licence(tmp_path: Path, lang: str) -> None:
    store, _ = open_book(tmp_path)

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "2")
        await bot.press("310007#")  # the seventh salesperson: licence expired
        assert await bot.wait_for(phone, timeout=60)
        await bot.hangup()
        return bytes(bot.heard)

    (row,) = store.query("SELECT name, phone FROM salespeople WHERE code = '310007'")
    phone = audio(lang, *say(lang, "digits", row["phone"]))
    heard, path = run(tmp_path, store, scenario)
    # The name, synthesised ahead of its first use, in the caller's language's voice.
    found = next(s for s in path if s["node"] == "sp_find")
    name_file = Path(found["result"]["name_audio"])
    assert name_file.parent == tmp_path / "names" / lang
    name = concat([Prompt.from_samples("name", read_slin(name_file))])
    assert heard_in_order(heard, audio(lang, "salesperson_code"),
                          audio(lang, *say(lang, "digits", "310007")),
                          audio(lang, "salesperson_name"), name,
                          audio(lang, "salesperson_branch", "branch_2"),
                          audio(lang, "licence_expired"),
                          audio(lang, "salesperson_phone"), phone)
    assert any(s["node"] == "sp_find" and s["found"] for s in path)



def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def own_figures(store: Store, code: str) -> tuple[str, str, str, str]:
    """This month's commission, premium written and policies sold, and last month's
    commission of ``code``, read straight from the store."""
    last_month = TODAY.replace(day=1) - dt.timedelta(days=1)
    rows = {r["month"]: r for r in store.query(
        "SELECT month, commission_fen, premium_fen, policies_sold FROM commissions "
        "WHERE salesperson_code = ?", [code])}
    this, last = rows[f"{TODAY:%Y-%m}"], rows[f"{last_month:%Y-%m}"]
    return (yuan(this["commission_fen"]), yuan(this["premium_fen"]),
            str(this["policies_sold"]), yuan(last["commission_fen"]))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_salesperson_hears_own_commission_after_the_pin(tmp_path: Path, lang: str) -> None:
    store, _ = open_book(tmp_path)
    code = "310004"
    other = "310005"
    commission, premium, sold, last = own_figures(store, code)
    assert (commission, premium, sold, last) != own_figures(store, other)
    expected = [audio(lang, "my_commission"), audio(lang, *say(lang, "money", commission)),
                audio(lang, "my_premium_written"), audio(lang, *say(lang, "money", premium)),
                audio(lang, "my_policies_sold"), audio(lang, *say(lang, "number", sold)),
                audio(lang, "my_last_commission"), audio(lang, *say(lang, "money", last))]
    pin = demo_pin(code)

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "*")
        await bot.press(code + "#")
        await bot.listen(0.5)
        await bot.press(pin + "#")
        assert await bot.wait_for(expected[-1], timeout=60)
        assert await bot.wait_for(audio(lang, "main_menu")[:3200], timeout=60)
        await bot.hangup()
        return bytes(bot.heard)

    heard, path = run(tmp_path, store, scenario)
    # The code and PIN prompts are cut short by the keys; the figures are heard whole.
    assert heard_in_order(heard, *expected)
    assert audio(lang, "pin_wrong") not in heard
    login = next(s for s in path if s["node"] == "me_login")
    assert login["args"] == [code, "x" * len(pin)]
    assert login["result"]["commission"] == commission
    assert login["result"]["last_commission"] == last
    with Store(tmp_path / "appliance.db") as reopened:
        (row,) = reopened.query("SELECT keys, ivr_path FROM calls")
        (sp,) = reopened.query("SELECT failed_pins, locked FROM salespeople WHERE code = ?",
                               [code])
    # The PIN keys (and their #) are masked in the CDR, and in the path kept with it.
    assert row["keys"] == f"{LANG_KEY[lang]}*{code}#{'x' * (len(pin) + 1)}"
    kept = json.loads(row["ivr_path"])
    assert next(s for s in kept if s.get("node") == "me_login")["args"] == [code, "xxxx"]
    assert (sp["failed_pins"], sp["locked"]) == (0, 0)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_five_wrong_pins_lock_the_code_even_for_the_right_pin(tmp_path: Path, lang: str) -> None:
    store, _ = open_book(tmp_path)
    code = "310002"
    pin = demo_pin(code)
    wrong = "9999" if pin != "9999" else "8888"

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "*")
        await bot.press(code + "#")
        await bot.listen(0.5)
        for _ in range(4):
            assert await press_then_hear(bot, wrong + "#", audio(lang, "pin_wrong"))
            await bot.listen(0.5)  # into the re-asked PIN prompt
        assert await press_then_hear(bot, wrong + "#", audio(lang, "pin_locked"))
        assert await bot.wait_for(audio(lang, "main_menu")[:3200], timeout=60)
        # The right PIN afterwards is refused too.
        await bot.press("*")
        await bot.listen(0.5)
        await bot.press(code + "#")
        await bot.listen(0.5)
        await bot.press(pin + "#")
        assert await bot.wait_for(audio(lang, "main_menu")[:3200], timeout=60)
        await bot.hangup()
        return bytes(bot.heard)

    heard, path = run(tmp_path, store, scenario)
    assert heard.count(audio(lang, "pin_wrong")) == 4
    assert heard.count(audio(lang, "pin_locked")) == 2
    assert audio(lang, "my_commission") not in heard
    logins = [s for s in path if s.get("node") == "me_login"]
    assert len(logins) == 6
    assert all(s["args"] == [code, "xxxx"] for s in logins)
    assert [s["result"]["locked"] for s in logins] == ["0"] * 4 + ["1"] * 2
    assert all(s["result"]["ok"] == "0" and "commission" not in s["result"] for s in logins)
    with Store(tmp_path / "appliance.db") as reopened:
        (row,) = reopened.query("SELECT keys FROM calls")
        (sp,) = reopened.query("SELECT locked FROM salespeople WHERE code = ?", [code])
    assert sp["locked"] == 1
    assert row["keys"] == LANG_KEY[lang] + "*" + code + "#" + "xxxxx" * 5 + "*" + code + "#xxxxx"


# (language, keys after the main menu's 4: each with the prompt it must bring, if a
# rejection, and the parameters the quote computation is given)
QUOTES = [
    # Term life: an age outside the table is re-asked.
    ("zh", [("1", None), ("99#", "quote_bad_age"), ("30#", None), ("2", None),
            ("20#", None), ("50#", None), ("2", None)],
     dict(product_code="TL20", sum_insured=Decimal(500_000), age=30, sex="F", term=20,
          payment_mode="monthly")),
    # Critical illness: no single premium; then 50-year-olds have no 30-year term, so the
    # whole set is asked again.
    ("yue", [("3", None), ("50#", None), ("1", None), ("30#", None), ("10#", None),
             ("3", "quote_bad_mode"), ("1", "quote_no_rate"), ("40#", None), ("1", None),
             ("30#", None), ("10#", None), ("1", None)],
     dict(product_code="CI30", sum_insured=Decimal(100_000), age=40, sex="M", term=30,
          payment_mode="annual")),
    # Motor: a vehicle value above the product's range, then seats.
    ("en", [("4", None), ("500#", "quote_bad_sum"), ("25#", None), ("99#", "quote_bad_seats"),
            ("7#", None)],
     dict(product_code="MOT1", sum_insured=Decimal(250_000), term=1, payment_mode="annual",
          seats=7)),
]


@pytest.mark.parametrize(("lang", "steps", "params"), QUOTES, ids=[q[0] for q in QUOTES])
def test_phone_quote_speaks_the_rate_table_premium(tmp_path: Path, lang: str,
                                                   steps: list[tuple[str, str | None]],
                                                   params: dict[str, Any]) -> None:
    store, _ = open_book(tmp_path)
    premium = money(quote(store, **params).premium)
    spoken = audio(lang, *say(lang, "money", premium))

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "4")
        for keys, rejected in steps[:-1]:
            if rejected is None:
                await bot.press(keys)
            else:
                assert await press_then_hear(bot, keys, audio(lang, rejected))
            await bot.listen(0.5)
        # The last answer: the premium follows at once.
        assert await press_then_hear(bot, steps[-1][0], spoken)
        assert await bot.wait_for(audio(lang, "main_menu")[:3200], timeout=60)
        await bot.hangup()
        return bytes(bot.heard)

    heard, path = run(tmp_path, store, scenario)
    assert heard_in_order(heard, audio(lang, "quote_result"), spoken)
    assert played_in_order(tmp_path, lang, "quote_result", *say(lang, "money", premium))
    assert heard.count(spoken) == 1
    for _, rejected in steps:
        if rejected is not None:
            assert audio(lang, rejected) in heard
    calc = [s for s in path if s.get("node") == "q_calc"]
    assert calc[-1]["found"] is True and calc[-1]["result"]["premium"] == premium
    # What it was priced on comes back for a fax of the rates.
    priced = calc[-1]["result"]
    assert priced["product_code"] == params["product_code"]
    assert priced["sum_insured"] == str(params["sum_insured"])
    assert priced["payment_mode"] == params["payment_mode"]
    assert [s["found"] for s in calc[:-1]] == [False] * (len(calc) - 1)


def test_login_and_quote_lookups_directly(tmp_path: Path) -> None:
    store, _ = open_book(tmp_path)
    lookups = InsuranceLookups(store, now=lambda: NOW)

    async def main() -> None:
        assert await lookups.salesperson_login("999", "0000") is None
        ok = await lookups.salesperson_login("310001", demo_pin("310001"))
        assert ok is not None and (ok["ok"], ok["wrong"], ok["locked"]) == ("1", "0", "0")
        assert ok["commission"] == own_figures(store, "310001")[0]
        assert await lookups.quote_product("5") is None
        assert await lookups.quote_product("0") is None
        assert await lookups.quote_product("2") == {
            "code": "ACC1", "age": "1", "sex": "0", "term": "0", "mode": "1", "seats": "0",
            "motor": "0"}
        assert await lookups.quote_product("4") == {
            "code": "MOT1", "age": "0", "sex": "0", "term": "0", "mode": "0", "seats": "1",
            "motor": "1"}
        assert await lookups.quote_age("ACC1", "65") == "65"
        assert await lookups.quote_age("ACC1", "66") is None
        assert await lookups.quote_age("ACC1", "17") is None
        assert await lookups.quote_term("TL20", "20") == "20"
        assert await lookups.quote_term("TL20", "15") is None
        assert await lookups.quote_sum("ACC1", "1") == "1"
        assert await lookups.quote_sum("ACC1", "101") is None
        assert await lookups.quote_sum("ACC1", "0") is None
        assert await lookups.quote_mode("TL20", "3") == "single"
        assert await lookups.quote_mode("ACC1", "3") is None
        assert await lookups.quote_seats("MOT1", "36") == "36"
        assert await lookups.quote_seats("MOT1", "0") is None
        # Parameters a product is not priced on are ignored; its one term is taken.
        got = await lookups.quote("ACC1", "20", "30", "1", "20", "2", "7")
        assert got == {"premium": money(quote(store, "ACC1", Decimal(200_000), age=30, term=1,
                                              payment_mode="monthly").premium),
                       "product_code": "ACC1", "sum_insured": "200000", "age": "30",
                       "sex": "", "term": "1", "payment_mode": "monthly", "seats": ""}
        assert await lookups.quote("TL20", "50", "55", "1", "30", "1", "") is None

    try:
        asyncio.run(main())
    finally:
        store.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_information_menus_play_company_clauses_and_procedures(tmp_path: Path,
                                                              lang: str) -> None:
    store, _ = open_book(tmp_path)

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "5")
        assert await press_then_hear(bot, "1", audio(lang, "info_company")[:8000])
        # A key cuts the company text short and is taken by the menu it returns to.
        assert await press_then_hear(bot, "3", audio(lang, "clause_menu")[:8000])
        assert await press_then_hear(bot, "2", audio(lang, "clause_ACC1"), timeout=120)
        await bot.listen(0.5)
        await bot.press("#")  # back to the information menu
        await bot.listen(0.5)
        await bot.press("4")
        await bot.listen(0.5)
        assert await press_then_hear(bot, "3", audio(lang, "proc_claims"), timeout=120)
        await bot.listen(0.5)
        await bot.press("#")
        await bot.listen(0.5)
        assert await press_then_hear(bot, "#", audio(lang, "main_menu")[:3200])
        await bot.hangup()
        return bytes(bot.heard)

    heard, path = run(tmp_path, store, scenario)
    assert heard_in_order(heard, audio(lang, "info_company")[:8000],
                          audio(lang, "clause_menu")[:8000], audio(lang, "clause_ACC1"),
                          audio(lang, "proc_menu")[:8000], audio(lang, "proc_claims"))
    went = [(s["node"], s.get("key")) for s in path if s.get("type") == "menu"]
    assert went == [("main", "5"), ("info", "1"), ("info", "3"), ("clauses", "2"),
                    ("clauses", "#"), ("info", "4"), ("procedures", "3"), ("procedures", "#"),
                    ("info", "#")]
    assert audio(lang, "clause_TL20")[:8000] not in heard
    # The key that cut the company text short was typed ahead: the information menu it
    # chose from was not played again, unlike after '#'.
    assert played_in_order(tmp_path, lang, "info_menu", "info_company",
                           "clause_menu", "clause_ACC1", "clause_menu", "info_menu",
                           "proc_menu", "proc_claims", "proc_menu", "info_menu", "main_menu")
    log = PLAYED[tmp_path]
    assert log[log.index(f"{lang}/info_company") + 1] == f"{lang}/clause_menu"
    assert f"{lang}/clause_TL20" not in log


# When no one is in the office: a Sunday, a public holiday on a weekday, a weekday evening.
CLOSED = [("zh", dt.datetime(2026, 11, 29, 10, 0)), ("yue", dt.datetime(2026, 10, 7, 10, 0)),
          ("en", dt.datetime(2026, 11, 25, 20, 0))]


@pytest.mark.parametrize(("lang", "now"), CLOSED, ids=[c[0] for c in CLOSED])
def test_out_of_hours_a_person_means_the_general_voicemail_box(tmp_path: Path, lang: str,
                                                                now: dt.datetime) -> None:
    store, _ = open_book(tmp_path)
    said = audio("en", "welcome")  # somebody speaking
    tone = concat([Prompt.from_samples("beep", beep())])

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "0")
        assert await bot.wait_for(tone, timeout=60)
        await bot.send(said)
        await bot.press("#")
        assert await bot.wait_hangup(30) == "normal"
        return bytes(bot.heard)

    heard, path = run(tmp_path, store, scenario, now=now)
    assert heard_in_order(heard, audio(lang, "after_hours"), audio(lang, "vm_greeting_general"),
                          audio(lang, "leave_message"), tone, audio(lang, "message_saved"),
                          audio(lang, "goodbye"))
    assert audio(lang, "to_operator") not in heard
    assert played_in_order(tmp_path, lang, "after_hours", "vm_greeting_general",
                           "leave_message", "beep", "message_saved", "goodbye")
    hours = next(s for s in path if s["node"] == "person")
    assert hours["open"] is False
    assert hours.get("holiday", False) is (now.date() == dt.date(2026, 10, 7))
    taken = next(s for s in path if s["node"] == "after_hours")
    assert taken["end"] == "key" and 1.0 < taken["seconds"] < 5.0 and taken["empty"] is False
    # The message is in the general box with its envelope, ready for triage.
    with Store(tmp_path / "appliance.db") as reopened:
        message = get_message(reopened, taken["message"])
        box = get_box(reopened, message.box_id)
    assert box.kind is BoxKind.GENERAL
    assert (message.caller, message.lang, message.status) == ("13800138000", lang, "new")
    assert message.policy_number is None
    assert [s["node"] for s in message.ivr_path if "node" in s][-2:] == ["main", "person"]
    assert str(message.raw_path) == taken["recording"] and message.raw_path.is_file()
    assert message.play_path is not None and message.play_path.is_file()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_two_retries_then_a_person_for_wrong_keys_and_for_silence(tmp_path: Path,
                                                                  lang: str) -> None:
    store, _ = open_book(tmp_path)

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await bot.dial("95500")
        await bot.listen(0.5)
        await bot.press(LANG_KEY[lang])
        await bot.listen(0.5)
        # Neither 7 nor 8 is a main-menu key.
        assert await press_then_hear(bot, "7", audio(lang, "invalid_key"))
        assert await press_then_hear(bot, "8", audio(lang, "invalid_key"))
        assert await press_then_hear(bot, "8", audio(lang, "to_operator"))
        assert await bot.wait_hangup(30) == "normal"
        return bytes(bot.heard)

    heard, path = run(tmp_path, store, scenario)
    assert heard.count(audio(lang, "invalid_key")) == 2
    tries = [(s.get("outcome"), s.get("attempt")) for s in path if s["node"] == "main"]
    assert tries == [("invalid", 1), ("invalid", 2), ("invalid", 3)]
    assert nodes(path)[-3:] == ["person", "operator", "bye"]

    # Silence instead of keys: the menu is offered three times in all, then a person.
    (tmp_path / "silent").mkdir()
    store, _ = open_book(tmp_path / "silent")

    async def silent(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await bot.dial("95500")
        await bot.listen(0.5)
        await bot.press(LANG_KEY[lang])
        assert await bot.wait_for(audio(lang, "to_operator"), timeout=120)
        assert await bot.wait_hangup(30) == "normal"
        return bytes(bot.heard)

    heard, path = run(tmp_path / "silent", store, silent)
    assert heard.count(audio(lang, "no_input")) == 2
    tries = [(s.get("outcome"), s.get("attempt")) for s in path if s["node"] == "main"]
    assert tries == [("timeout", 1), ("timeout", 2), ("timeout", 3)]
    assert nodes(path)[-3:] == ["person", "operator", "bye"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_salesperson_hears_only_the_voicemail_forwarded_to_them(tmp_path: Path,
                                                                 lang: str) -> None:
    store, _ = open_book(tmp_path)
    code, other = "310004", "310005"
    general = general_box(store)
    mine = make_message(store, general, tmp_path / "vm", caller="13911112222", seed=1)
    theirs = make_message(store, general, tmp_path / "vm", caller="13933334444", seed=2)
    assign(store, mine.id, code, actor="supervisor", now=NOW.timestamp())
    assign(store, theirs.id, other, actor="supervisor", now=NOW.timestamp())
    played = concat([Prompt.from_samples("m", read_slin(mine.playable))])
    other_played = concat([Prompt.from_samples("m", read_slin(theirs.playable))])

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "*")
        await bot.press(code + "#")
        await bot.listen(0.5)
        await bot.press(demo_pin(code) + "#")
        assert await bot.wait_for(audio(lang, "vm_no_more_messages"), timeout=120)
        await bot.hangup()
        return bytes(bot.heard)

    heard, path = run(tmp_path, store, scenario)
    assert heard_in_order(heard, audio(lang, "my_last_commission"),
                          audio(lang, "vm_you_have", *say(lang, "number", "1"),
                                "vm_new_messages"),
                          audio(lang, "vm_from", *say(lang, "digits", "13911112222")), played,
                          audio(lang, "vm_no_more_messages"))
    assert other_played not in heard and audio(lang, *say(lang, "digits", "13933334444")) \
        not in heard
    inbox = next(s for s in path if s["node"] == "me_messages")
    assert (inbox["salesperson"], inbox["heard"]) == (code, 1)
    with Store(tmp_path / "appliance.db") as reopened:
        assert get_message(reopened, mine.id).assignee_heard_at is not None
        assert get_message(reopened, theirs.id).assignee_heard_at is None


def same_pages(sent: Path, received: Path) -> None:
    want, got = pixels(sent), pixels(received)
    assert len(got) == len(want) >= 1
    for a, b in zip(want, got, strict=True):
        assert a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_policy_summary_by_fax_on_the_same_call(tmp_path: Path, lang: str) -> None:
    store, policies = open_book(tmp_path)
    policy = policies[LANGUAGES.index(lang)]
    expected = render_document(store, "policy_summary", {"number": policy.number},
                               tmp_path / "expected.tiff", on=TODAY)

    async def scenario(ex: SimExchange) -> FaxResult | None:
        machine = FaxMachine(ex, "02166667777", tmp_path / "received.tiff")
        try:
            await choose(machine, lang, "1")
            await machine.press(policy.number + "#")
            await machine.listen(0.5)
            await machine.press(policy.last4)
            assert await machine.wait_for(audio(lang, "fax_offer")[:3200], timeout=90)
            assert await press_then_hear(machine, "1", audio(lang, "fax_press_start"))
            machine.press_start(calling_party=False)  # the caller's machine receives
            return await machine.wait_fax(timeout=200)
        finally:
            machine.close()

    far, path = run(tmp_path, store, scenario, fax=True)
    assert far is not None and far.ok and far.pages == 1
    same_pages(expected, tmp_path / "received.tiff")
    sent = next(s for s in path if s["node"] == "pol_fax_here")
    assert sent["sent"] is True and sent["pages"] == 1 and sent["bit_rate"] >= 9600
    with Store(tmp_path / "appliance.db") as reopened:
        (row,) = reopened.query("SELECT mode, document, params, result FROM faxes")
    assert (row["mode"], row["document"], row["result"]) == ("same-call", "policy_summary", "ok")
    assert json.loads(row["params"]) == {"number": policy.number}


def test_quote_rates_faxed_to_the_number_the_caller_keys(tmp_path: Path) -> None:
    store, _ = open_book(tmp_path)
    lang, steps, _ = QUOTES[0]
    fax_number = "02188889999"
    expected = render_document(
        store, "rates", {"product_code": "TL20", "sum_insured": "500000", "age": "30",
                         "sex": "F", "term": "20", "payment_mode": "monthly", "seats": ""},
        tmp_path / "expected.tiff", on=TODAY)

    machines: list[FaxMachine] = []

    async def scenario(ex: SimExchange) -> None:
        machine = FaxMachine(ex, fax_number, tmp_path / "received.tiff", noise_rms=3.0)
        machines.append(machine)
        ex.subscribe(fax_number, machine, answer_after=4.0)
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "4")
        for keys, _ in steps:
            await bot.press(keys)
            await bot.listen(0.5)
        assert await bot.wait_for(audio(lang, "fax_offer")[:3200], timeout=90)
        await bot.press("2")
        await bot.listen(0.5)
        assert await press_then_hear(bot, fax_number + "#", audio(lang, "fax_will_send"))
        await bot.hangup()  # the box dials the fax machine on its own

    try:
        _, path = run(tmp_path, store, scenario, fax=True)
    finally:
        for machine in machines:
            machine.close()
    (done,) = CALLBACKS[tmp_path]
    assert done is not None and done.ok and done.results == ["ok"]
    assert done.fax is not None and done.fax.pages == 1
    same_pages(expected, tmp_path / "received.tiff")
    queued = next(s for s in path if s["node"] == "q_fax_later")
    assert queued["queued"] is True and queued["to"] == fax_number
    with Store(tmp_path / "appliance.db") as reopened:
        (row,) = reopened.query("SELECT mode, document, destination, attempt, result FROM faxes")
    assert dict(row) == {"mode": "callback", "document": "rates", "destination": fax_number,
                         "attempt": 1, "result": "ok"}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_unknown_salesperson_code_is_told_and_back_to_the_menu(tmp_path: Path,
                                                              lang: str) -> None:
    store, _ = open_book(tmp_path)

    async def scenario(ex: SimExchange) -> bytes:
        bot = CallerBot(ex, "13800138000")
        await choose(bot, lang, "2")
        assert await press_then_hear(bot, "999999#", audio(lang, "salesperson_not_found"))
        assert await bot.wait_for(audio(lang, "main_menu")[:3200], timeout=60)
        await bot.hangup()
        return bytes(bot.heard)

    heard, path = run(tmp_path, store, scenario)
    assert audio(lang, "salesperson_code") not in heard
    found = next(s for s in path if s["node"] == "sp_find")
    assert found["found"] is False and found["args"] == ["999999", lang]
    went = nodes(path)
    assert went[went.index("sp_find"):][:3] == ["sp_find", "sp_not_found", "main"]
