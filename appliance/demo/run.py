"""``make run``: the appliance on its embedded default, so a newcomer sees calls work.

The engine runs on the real clock with two drivers: the simulated exchange, into which a
few simulated callers dial every few seconds, and the AudioSocket listener on 127.0.0.1 that
Asterisk on the box would connect to. By default every call goes through the insurance IVR
(``appliance/ivr/default_flow.json``) over the seeded demo book: each caller picks a
language, asks for one of the demo policies, keys its number and the holder's ID digits,
hears the policy read back and asks for a person: in office hours the ACD queues them
for one of three simulated seats (agents logged in at start, who answer, greet the caller
and hang up), otherwise the general voicemail box. ``--flow demo`` runs the foundation's
small flow instead (greeting, keys read back, a message after the beep). The console shows
each call's events, what the caller heard, and the CDR row and recording it left. Ctrl-C
stops everything cleanly: calls in progress are ended through the engine's clean-up path,
so their recordings are final.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import socket
import time
from datetime import date
from pathlib import Path
from typing import Any

import click

from appliance.acd import Acd, QueueConfig, SeatConfig, Strategy, records
from appliance.box.settings import reserved_inbound_channels
from appliance.calls.call import Call, FlowFn
from appliance.calls.clock import MonotonicClock
from appliance.calls.engine import Engine
from appliance.conference import DEFAULT_NUMBER as CONFERENCE_NUMBER
from appliance.conference import Conferences
from appliance.control import ControlServer
from appliance.demo.flow import digit_prompts, make_demo_flow
from appliance.demo.reminders import ensure_demo_policies, subscribe_holders
from appliance.demo.webadmin import WebAdmin, web_command
from appliance.fax.requests import serve_resend_requests
from appliance.insurance.demo_data import load_demo_data
from appliance.ivr.port_routes import PortRoutes
from appliance.ivr.service import insurance_ivr
from appliance.media.prompts import PromptLibrary, concat
from appliance.promptrec.phone import DEFAULT_NUMBER as RECORDING_NUMBER
from appliance.promptrec.phone import PromptRecording
from appliance.reminders.dialer import ReminderDialer
from appliance.reminders.selection import Due
from appliance.reminders.settings import load as load_reminder_settings
from appliance.runtime import DataDirs, install_stop_signals
from appliance.sms.demo import demo_traffic, start_demo_modem, stop_demo_modem
from appliance.sms.service import SmsService
from appliance.store import cdr
from appliance.store.db import Store
from appliance.voicemail import recovery_hook
from drivers.asterisk.audiosocket import AudioSocketDriver
from drivers.base import LineError
from drivers.sim import CallerBot, SimExchange

log = logging.getLogger("appliance.demo")

SERVICE_NUMBER = "95500"


_console = {"gone": False}


def _say(text: str) -> None:
    """A line on the console. Once it cannot be written (its reader gone: ``appliance run
    | head``; a full log disk) the box goes on without it: raised from an event listener,
    the error kept every call event from the web's live pages."""
    if _console["gone"]:
        return
    try:
        click.echo(f"{time.strftime('%H:%M:%S')}  {text}")
    except OSError as exc:
        _console["gone"] = True
        log.warning("the console cannot be written any more (%s); going on without it", exc)


def print_event(what: str, call: Call, info: dict[str, Any]) -> None:
    who = f"call {call.id[:8]} on {call.line.id} ({call.caller or '?'} → {call.callee or '?'})"
    if what == "started":
        _say(f"{who}: ringing")
    elif what == "answered":
        _say(f"{who}: answered")
    elif what == "key":
        _say(f"{who}: key {info['digit']}")
    elif what == "ended":
        _say(f"{who}: ended ({info.get('cause')}), keys {call.keys or '-'}")


def heard_readback(bot: CallerBot, prompts: PromptLibrary, digits: str) -> bool:
    """Did the caller hear 'you entered' and each digit, byte for byte as recorded?"""
    expected = concat([prompts.get(p) for p in ["you_entered", *digit_prompts(digits)]])
    return expected in bytes(bot.heard)


async def demo_caller(exchange: SimExchange, prompts: PromptLibrary, number: str,
                      rng: random.Random) -> None:
    bot = CallerBot(exchange, number, name=f"caller {number}")
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 6)))
    try:
        await bot.dial(SERVICE_NUMBER)
        await bot.listen(rng.uniform(1.0, 5.0))  # part of the greeting, or all of it
        await bot.press(digits + "#")
        await bot.listen(6.0)  # the digits read back, then the message prompt and beep
        await bot.send(concat([prompts.get("welcome", "en")]))  # say something
        cause = await bot.wait_hangup(60.0)
        ok = "heard its keys read back" if heard_readback(bot, prompts, digits) else \
            "did NOT hear its keys read back"
        _say(f"caller {number}: keyed {digits}#, {ok}, heard {len(bot.heard) / 16000:.1f} s, "
             f"box hung up ({cause})")
    except LineError as exc:
        _say(str(exc))
    finally:
        await bot.hangup()


DEMO_SEATS = (SeatConfig("s1", "8001", name="坐席一"), SeatConfig("s2", "8002", name="坐席二"),
              SeatConfig("s3", "8003", name="坐席三"))
#: the seat left free for a person at the seat console (its phone answers by itself)
CONSOLE_SEAT = SeatConfig("s4", "8004", name="坐席四")


def print_reminder(due: Due, attempt: int, outcome: str, detail: str) -> None:
    _say(f"premium reminder: policy {due.policy_number} (due {due.due_date}, "
         f"{due.language}) to {due.phone}, attempt {attempt}: {outcome}"
         f"{f' ({detail})' if detail else ''}")
def print_sms_event(kind: str, data: dict[str, Any]) -> None:
    if kind == "sent":
        _say(f"SMS {data['id']} to {data['number']}: sent ({len(data['refs'])} part(s))")
    elif kind == "failed":
        _say(f"SMS {data['id']} to {data['number']}: failed: {data['error']}")
    elif kind == "received":
        _say(f"SMS from {data['number']}: {data['text']}")


def print_acd_event(kind: str, data: dict[str, Any]) -> None:
    if kind == "seat":
        reason = f" ({data['reason']})" if data["reason"] else ""
        _say(f"seat {data['seat']} {data['agent'] or '-'}: {data['state']}{reason}")
    elif kind == "connected":
        _say(f"queue {data['queue']}: {data['caller']} answered by seat {data['seat']} after "
             f"{data['waited']:.1f} s")
    elif kind == "queue-join":
        _say(f"queue {data['queue']}: {data['caller']} waits, position {data['position']}")


async def demo_agent(exchange: SimExchange, prompts: PromptLibrary, seat: SeatConfig) -> None:
    """A seat's phone with an agent who answers, greets the caller and ends the call."""
    bot = CallerBot(exchange, seat.number, name=f"seat {seat.id}")
    exchange.add_seat(seat.number, bot, answer_after=2.0)
    greeting = concat([prompts.get("welcome", "zh")])
    line = None
    while True:
        await asyncio.sleep(0.2)
        if bot.line is None or bot.line is line or not bot.line.connected:
            continue
        line = bot.line
        try:
            await bot.send(greeting)
            await bot.wait(4.0)
            await bot.hangup()
        except LineError:
            continue  # the caller hung up first: the phone is free for the next call


async def console_phone(exchange: SimExchange, seat: SeatConfig) -> None:
    """The phone of the seat a person uses from the seat console: it answers when it rings
    and stays on the line until the agent hangs up on the page (or the caller does)."""
    bot = CallerBot(exchange, seat.number, name=f"seat {seat.id}")
    exchange.add_seat(seat.number, bot, answer_after=2.0)
    await asyncio.Event().wait()


LANGUAGE_KEYS = {"zh": "1", "yue": "2", "en": "3"}
LANGUAGE_NAMES = {"zh": "普通话", "yue": "粤语", "en": "English"}


def sample_policies(store: Store, count: int = 50) -> list[tuple[str, str]]:
    """(policy number, keyed ID digits) of in-force demo policies with a premium due."""
    rows = store.query(
        "SELECT p.number, c.id_last4 FROM policies p JOIN customers c ON c.id = p.holder_id"
        " WHERE p.status = 'in_force' AND p.next_due_date IS NOT NULL"
        " ORDER BY p.number LIMIT ?", [count])
    return [(r["number"], r["id_last4"].replace("X", "*")) for r in rows]


async def insurance_caller(exchange: SimExchange, prompts: PromptLibrary, number: str,
                           rng: random.Random, policies: list[tuple[str, str]]) -> None:
    bot = CallerBot(exchange, number, name=f"caller {number}")
    lang = rng.choice(list(LANGUAGE_KEYS))
    policy, id_digits = rng.choice(policies)
    menu = concat([prompts.get("main_menu", lang)])[:3200]
    try:
        await bot.dial(SERVICE_NUMBER)
        await bot.listen(1.0)
        await bot.press(LANGUAGE_KEYS[lang])
        await bot.listen(0.5)
        await bot.press("1")  # policy enquiry
        await bot.listen(0.5)
        await bot.press(policy + "#")
        await bot.listen(0.5)
        await bot.press(id_digits)
        start = len(bot.heard)
        if await bot.wait_for(menu, timeout=60):  # the read-back ends at the menu
            premium = concat([prompts.get("policy_premium", lang)])
            told = premium in bytes(bot.heard[start:])
            await bot.press("0")  # a person, please
            cause = await bot.wait_hangup(120)
            _say(f"caller {number} ({LANGUAGE_NAMES[lang]}): policy {policy}, "
                 f"{'heard its premium read back' if told else 'was NOT told its premium'}"
                 f", asked for a person; box hung up ({cause})")
        else:
            why = (f"the call ended ({bot.hangup_cause}) first" if bot.hangup_cause
                   else "the read-back never came back to the menu")
            _say(f"caller {number} ({LANGUAGE_NAMES[lang]}): policy {policy}: {why}")
    except LineError as exc:
        _say(str(exc))
    finally:
        await bot.hangup()


async def callers(exchange: SimExchange, prompts: PromptLibrary, engine: Engine,
                  every: float, concurrent: int,
                  policies: list[tuple[str, str]] | None = None) -> None:
    rng = random.Random(2026)
    tasks: set[asyncio.Task[None]] = set()
    for n in itertools.count(1):
        if engine.stopped.is_set():
            break
        if len(tasks) < concurrent:
            number = f"1380013{n:04d}"
            caller = (insurance_caller(exchange, prompts, number, rng, policies) if policies
                      else demo_caller(exchange, prompts, number, rng))
            task = asyncio.create_task(caller)
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(every)


def _check_free(port: int, what: str) -> None:
    """Refuse to start when ``port`` is taken: the web admin runs in a process of its own,
    and its failing to listen would leave the run up with no admin (its one line lost
    among the calls'). Bound as waitress binds (SO_REUSEADDR), so a port just freed is
    not refused."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise OSError(exc.errno, f"{what} on 127.0.0.1:{port}: {exc.strerror}") from exc


async def run_demo(data: Path, audiosocket_port: int, every: float, concurrent: int,
                   show_calls: int, flow_name: str = "insurance", web_port: int = 0,
                   control_port: int = 0) -> None:
    if web_port:
        _check_free(web_port, "web admin")
    # Absolute, so the recording paths the CDR rows keep hold from any working folder.
    dirs = DataDirs(data.resolve()).create().claim()
    store = Store(dirs.database)
    prompts = PromptLibrary()
    for lang in LANGUAGE_KEYS:
        prompts.preload(lang)
    policies: list[tuple[str, str]] | None = None
    flow: FlowFn
    exchange = SimExchange(trunks=30)
    # The trunks the admin reserved for inbound calls (the lines page), as at each start.
    exchange.reserved_inbound = reserved_inbound_channels(store)
    acd: Acd | None = None
    due_today = 0
    if flow_name == "insurance":
        loaded = load_demo_data(store)
        if loaded.loaded:
            _say(f"loaded the demo book into {dirs.database}")
        policies = sample_policies(store)
        # Premium reminders: a few demo holders due today, every holder a simulated phone.
        due_today = ensure_demo_policies(store, date.today())
        subscribe_holders(exchange, store, prompts)
        # The seats and queues saved on the box (the admin's page edits them); the demo's
        # own the first time.
        saved_seats, saved_queues = records.load_seats(store), records.load_queues(store)
        acd = Acd(saved_seats or (*DEMO_SEATS, CONSOLE_SEAT),
                  saved_queues if saved_seats and saved_queues else
                  [QueueConfig("service", Strategy.LONGEST_IDLE, wrap_up=5.0,
                               announce_every=20.0, max_wait=120.0)],
                  store=store, messages_dir=dirs.messages)
        acd.subscribe(print_acd_event)
        if acd.restore_callbacks():
            _say("callbacks booked before the last stop are back in the queue")
        # The published version of the default flow (the file is its first version); a
        # version published from the admin reaches the next caller. Callback faxes are
        # dialled on the simulated exchange (on the box: Asterisk, via AMI).
        # Conference rooms: key 6 in the main menu, or the conference number directly.
        rooms = Conferences(store)
        ivr, live = insurance_ivr(store, dirs, fax_driver=exchange, acd=acd,
                                  conference=rooms)
        flow = rooms.route([CONFERENCE_NUMBER], ivr)
        # Admins record prompts over the phone (staff number, phone PIN, prompt number).
        flow = PromptRecording(store, dirs.root).route([RECORDING_NUMBER], flow)
        # Each trunk's inbound route, as the lines page sets it, decides before the number.
        flow = PortRoutes(store, flow, ivr.make_handler, acd=acd)
        _say(f"IVR flow {live.name!r} version {live.version} is live; conference rooms on "
             f"{CONFERENCE_NUMBER}")
        _say(f"prompts recorded by phone on {RECORDING_NUMBER}")
    else:
        flow = make_demo_flow(dirs.messages)
    audiosocket = AudioSocketDriver("127.0.0.1", audiosocket_port)
    # The web's way in: seats, queues and live events (the port goes into the data folder).
    control = ControlServer(acd, dirs.root, store=store, port=control_port) if acd else None

    def on_event(what: str, call: Call, info: dict[str, Any]) -> None:
        if control is not None:
            control.call_event(what, call, info)  # the web's live pages first
        print_event(what, call, info)

    # A voicemail a crash cut short is repaired by the engine, then listed in its box.
    engine = Engine(clock=MonotonicClock(), drivers=[exchange, audiosocket],
                    flow=flow, prompts=prompts, store=store, freeze_heap=True,
                    recordings=dirs.recordings, on_event=on_event,
                    after_recover=[recovery_hook(store, engine_folder=dirs.recordings)])
    install_stop_signals(engine.stop)
    # Premium reminder calls on the simulated exchange (on the box: Asterisk's lines, once
    # AMI originates); the web's "run now" reaches them through the control API.
    reminders = ReminderDialer(engine, exchange, store, acd=acd, on_outcome=print_reminder) \
        if acd is not None else None
    if control is not None:
        control.reminders = reminders
        await control.start()  # before the web, which reads its address
    # Started after the demo book is in, so its first page has data; it prints its own
    # address and the first-login admin password.
    web = WebAdmin(web_command(dirs.root, web_port), _say) if web_port else None
    if web is not None:
        web.start()
    engine_task = asyncio.create_task(engine.run())
    await engine.started.wait()
    if engine_task.done():
        if web is not None:
            web.stop()
        if control is not None:
            await control.close()
        store.close()
        engine_task.result()  # raises why the engine could not start (e.g. port in use)
        # Or it was stopped (Ctrl-C, SIGTERM) before its first tick: nothing more to do.
        _say("stopped before the start-up finished")
        return
    _say(f"engine up: simulated exchange (service number {SERVICE_NUMBER}), AudioSocket on "
         f"127.0.0.1:{audiosocket.port}, data in {dirs.root}; Ctrl-C to stop")
    agents: list[asyncio.Task[None]] = []
    if acd is not None:
        acd.bind(engine)
        # The demo's agents sit at the demo's seats, on the numbers the box has for them.
        demo_ids = {seat.id for seat in DEMO_SEATS}
        for status in acd.seats.values():
            if status.id in demo_ids and status.config.driver == "sim":
                agents.append(asyncio.create_task(demo_agent(exchange, prompts,
                                                             status.config)))
                acd.login(status.id, f"A00{status.id[1:]}")
            elif status.id == CONSOLE_SEAT.id and status.config.driver == "sim":
                agents.append(asyncio.create_task(console_phone(exchange, status.config)))
    # SMS through a simulated GSM modem (unless the admin configured a real one): one
    # reminder goes out and a customer's question comes in, both shown on /sms/.
    modem = start_demo_modem(store)
    sms = SmsService(store, on_event=print_sms_event)
    sms.start()
    if modem is not None and demo_traffic(store, modem) is not None:
        _say(f"SMS: simulated modem on {modem.path}; a reminder queued, a question arriving")
    caller_task = asyncio.create_task(callers(exchange, prompts, engine, every, concurrent,
                                              policies))
    # Faxes the web's fax log asks to send again, dialled on the simulated exchange.
    resends = asyncio.create_task(serve_resend_requests(engine, exchange, store,
                                                        out_dir=dirs.root / "faxes"))
    reminding = asyncio.create_task(reminders.serve()) if reminders is not None else None
    # An admin that dies mid-run (a crash, the OOM killer) is started again.
    watching = asyncio.create_task(web.watch(lambda: not engine.stopping)) \
        if web is not None else None
    if reminders is not None:
        rs = load_reminder_settings(store)
        _say(f"premium reminders {'on' if rs.enabled else 'off'}: due in {rs.days_ahead} days or"
             f" overdue up to {rs.overdue_days}, {rs.window_start}–{rs.window_end},"
             f" {rs.max_concurrent} calls at once ({due_today} demo holders due today)")
    try:
        await engine_task
    finally:
        for task in (caller_task, *agents):
            task.cancel()
        await asyncio.gather(caller_task, *agents, return_exceptions=True)
        await asyncio.gather(resends, return_exceptions=True)  # it ends with the engine
        if reminding is not None:
            await asyncio.gather(reminding, return_exceptions=True)  # so does this
        await asyncio.get_running_loop().run_in_executor(None, sms.stop)
        if modem is not None:
            stop_demo_modem(store, modem)
        if watching is not None:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
        if web is not None:
            web.stop()
        if control is not None:
            await control.close()
        rows = cdr.recent_calls(store, limit=show_calls)
        store.close()
    _say(f"stopped cleanly; last {len(rows)} CDR rows:")
    for row in rows:
        _say(f"  {row['call_id'][:8]}  {row['line']}  {row['caller']} → {row['callee']}  "
             f"keys {row['keys'] or '-'}  end {row['end_cause']}  recording {row['recording']}")
