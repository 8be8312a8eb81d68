"""A test call: one simulated caller through a flow version, before anyone real hears it.

The admin picks a version and the keys a caller would press; this runs the real engine on
the manual clock with the simulated exchange, the interpreter and the insurance lookups,
and a :class:`~drivers.sim.CallerBot` that dials, presses each step's keys as real DTMF
tones once the box has started talking, and listens. It returns what a person needs to
judge the flow: the path the call took (nodes, keys, lookup results), the prompts the
engine played in order, and the audio the caller heard as a WAV file. The lookups run on
a copy of the database, so a test call that reports a claim, locks a salesperson's PIN or
leaves a voicemail changes nothing real; the copy is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from appliance.calls.call import Call
from appliance.calls.clock import InlineExecutor, ManualClock, WritesTakeNoTime
from appliance.calls.engine import Engine
from appliance.ivr.flow import Flow
from appliance.ivr.insurance_lookups import InsuranceLookups
from appliance.ivr.interpreter import Step, make_flow_handler
from appliance.media.prompts import PromptLibrary
from appliance.media.wavio import write_slin
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange

#: one step of keys: DTMF keys only, at most a policy number and its '#'
_STEP: Final = re.compile(r"[0-9*#A-D]{1,24}")
MAX_STEPS: Final = 20
#: simulated seconds the caller listens after each step, and after the last one
STEP_SECONDS: Final = 2.0
TAIL_SECONDS: Final = 12.0
CALLER: Final = "13800000000"
SERVICE: Final = "95500"


class TrialError(ValueError):
    """The keys given for a test call cannot be pressed (names what is wrong)."""


@dataclass
class TrialResult:
    path: list[Step]
    played: list[tuple[str, str]] = field(default_factory=list)  # (language, prompt name)
    heard_seconds: float = 0.0
    ended: str = ""  # how the call ended: the box hung up, or the caller after the last step


def parse_keys(text: str) -> list[str]:
    """``"1 5 201901000123#"`` → the steps ``["1", "5", "201901000123#"]``."""
    steps = text.split()
    if not steps:
        raise TrialError("no keys: give at least one step, e.g. 1 5 1")
    if len(steps) > MAX_STEPS:
        raise TrialError(f"{len(steps)} steps: at most {MAX_STEPS}")
    for step in steps:
        if not _STEP.fullmatch(step):
            raise TrialError(f"step {step!r}: only the keys 0-9 * # A-D, at most 24 a step")
    return steps


def run_trial(flow: Flow, database: Path, keys: list[str], heard_wav: Path,
              prompts: PromptLibrary | None = None) -> TrialResult:
    """Place the test call (blocking; a few seconds of real time) and write what the caller
    heard to ``heard_wav``."""
    with tempfile.TemporaryDirectory(prefix="trial-") as tmp:
        root = Path(tmp)
        copy = root / "appliance.db"
        with sqlite3.connect(database) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)  # a consistent copy even while the engine writes
        # A thread of its own: the caller may already run an event loop on this one.
        with ThreadPoolExecutor(1, thread_name_prefix="test-call") as pool:
            return pool.submit(asyncio.run, _trial(flow, copy, root, keys, heard_wav,
                                                   prompts or PromptLibrary())).result()


async def _trial(flow: Flow, database: Path, root: Path, keys: list[str], heard_wav: Path,
                 prompts: PromptLibrary) -> TrialResult:
    # Lookups and store work run inline, and the clock waits for the writes a flow awaits:
    # the manual clock must not run on while a thread works, or a busy machine would make
    # the caller's waits time out.
    asyncio.get_running_loop().set_default_executor(InlineExecutor())
    store = Store(database)
    paths: list[list[Step]] = []
    played: list[tuple[str, str]] = []

    def on_event(what: str, _call: Call, info: dict[str, Any]) -> None:
        if what == "prompts":
            played.extend((info["language"], name) for name in info["names"])

    try:
        lookups = InsuranceLookups(store)
        handler = make_flow_handler(flow, lookups.functions(), messages_dir=root / "messages",
                                    store=store, on_done=lambda _c, path: paths.append(path))
        exchange = SimExchange(trunks=1)
        engine = Engine(clock=ManualClock(hold=WritesTakeNoTime(store)), drivers=[exchange],
                        flow=handler, prompts=prompts, store=store, recordings=None,
                        on_event=on_event)
        task = asyncio.create_task(engine.run())
        await engine.started.wait()
        bot = CallerBot(exchange, CALLER, name="test call")
        ended = "the caller hung up after the last step"
        try:
            await bot.dial(SERVICE)
            for step in keys:
                await bot.listen(STEP_SECONDS)
                await bot.press(step)
            if await bot.wait_hangup(TAIL_SECONDS) is not None:
                ended = "the box hung up"
            else:
                await bot.hangup()
        finally:
            engine.stop()
            await task
            await engine.settle()
        heard = np.frombuffer(bytes(bot.heard), dtype="<i2")
        heard_wav.parent.mkdir(parents=True, exist_ok=True)
        write_slin(heard_wav, heard)
        return TrialResult(paths[0] if paths else [], played, len(heard) / 8000, ended)
    finally:
        store.close()
        shutil.rmtree(root / "messages", ignore_errors=True)


__all__ = ["TrialError", "TrialResult", "parse_keys", "run_trial"]
