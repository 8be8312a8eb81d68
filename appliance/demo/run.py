"""``make run``: the appliance on its embedded default, so a newcomer sees calls work.

The engine runs on the real clock with two drivers: the simulated exchange, into which a
few simulated callers dial every few seconds, and the AudioSocket listener on 127.0.0.1 that
Asterisk on the box would connect to. Every call goes through the demo flow (greeting, keys
read back, a message after the beep); the console shows each call's events, what the
caller heard, and the CDR row and recording it left. Ctrl-C stops everything cleanly: calls
in progress are ended through the engine's clean-up path, so their recordings are final.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from pathlib import Path
from typing import Any

import click

from appliance.calls.call import Call
from appliance.calls.clock import MonotonicClock
from appliance.calls.engine import Engine
from appliance.demo.flow import digit_prompts, make_demo_flow
from appliance.media.prompts import PromptLibrary, concat
from appliance.runtime import DataDirs, install_stop_signals
from appliance.store import cdr
from appliance.store.db import Store
from drivers.asterisk.audiosocket import AudioSocketDriver
from drivers.base import LineError
from drivers.sim import CallerBot, SimExchange

log = logging.getLogger("appliance.demo")

SERVICE_NUMBER = "95500"


def _say(text: str) -> None:
    click.echo(f"{time.strftime('%H:%M:%S')}  {text}")


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


async def callers(exchange: SimExchange, prompts: PromptLibrary, engine: Engine,
                  every: float, concurrent: int) -> None:
    rng = random.Random(2026)
    tasks: set[asyncio.Task[None]] = set()
    for n in itertools.count(1):
        if engine.stopped.is_set():
            break
        if len(tasks) < concurrent:
            task = asyncio.create_task(demo_caller(exchange, prompts, f"1380013{n:04d}", rng))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(every)


async def run_demo(data: Path, audiosocket_port: int, every: float, concurrent: int,
                   show_calls: int) -> None:
    dirs = DataDirs(data).create()
    store = Store(dirs.database)
    prompts = PromptLibrary()
    prompts.preload("zh")
    exchange = SimExchange(trunks=30)
    audiosocket = AudioSocketDriver("127.0.0.1", audiosocket_port)
    engine = Engine(clock=MonotonicClock(), drivers=[exchange, audiosocket],
                    flow=make_demo_flow(dirs.messages), prompts=prompts, store=store,
                    recordings=dirs.recordings, on_event=print_event)
    install_stop_signals(engine.stop)
    engine_task = asyncio.create_task(engine.run())
    await engine.started.wait()
    if engine_task.done():
        store.close()
        engine_task.result()  # raises why the engine could not start (e.g. port in use)
    _say(f"engine up: simulated exchange (service number {SERVICE_NUMBER}), AudioSocket on "
         f"127.0.0.1:{audiosocket.port}, data in {dirs.root}; Ctrl-C to stop")
    caller_task = asyncio.create_task(callers(exchange, prompts, engine, every, concurrent))
    try:
        await engine_task
    finally:
        caller_task.cancel()
        await asyncio.gather(caller_task, return_exceptions=True)
        rows = cdr.recent_calls(store, limit=show_calls)
        store.close()
    _say(f"stopped cleanly; last {len(rows)} CDR rows:")
    for row in rows:
        _say(f"  {row['call_id'][:8]}  {row['line']}  {row['caller']} → {row['callee']}  "
             f"keys {row['keys'] or '-'}  end {row['end_cause']}  recording {row['recording']}")
