"""``appliance bench engine``: full-featured channels through AudioSocket on one core.

The engine runs in this process, pinned to one core, with the real AudioSocket driver,
the real store and crash-safe stereo recording of every call; a separate load process
(pinned to the other core, not counted) opens the calls over loopback TCP and streams
speech with DTMF keys. Each channel is full-featured: DTMF detection, VAD and recording on
the inbound side, prompt playback on the outbound side (a greeting in a loop, and on every
key the prompt that names the digit). Figures are taken over a window after a warm-up:
tick lateness (how late each 20 ms tick started), the engine's CPU per channel-frame, RSS
per channel, key→prompt latency as the load saw it, and the share of inbound frames that
had not arrived when their tick ran. ``appliance bench ivr`` runs the same harness with the
default insurance IVR on the demo book instead of the greeting loop, so key→prompt is
measured on a real menu (see :mod:`appliance.bench.load`).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from appliance.calls.call import Call, FlowFn
from appliance.calls.clock import MonotonicClock
from appliance.calls.engine import Engine
from appliance.insurance.demo_data import load_demo_data
from appliance.ivr.flow import load_flow
from appliance.ivr.insurance_lookups import InsuranceLookups
from appliance.ivr.interpreter import make_flow_handler
from appliance.media.prompts import PromptLibrary
from appliance.runtime import run_loop
from appliance.store.db import Store
from drivers.asterisk.audiosocket import AudioSocketDriver

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_KIB


def cpu_seconds() -> tuple[float, float]:
    """User and system CPU seconds of this process (all its threads)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


async def bench_flow(call: Call) -> None:
    """Greeting in a loop; each key answered by the prompt naming the digit."""
    await call.answer()
    while True:
        key = await call.play("welcome")
        if key is not None:
            call.flush_keys()
            await call.play(f"digit_{key}" if key.isdigit() else "you_entered",
                            interruptible=False)


def pin_core(core: int) -> None:
    if core >= 0 and hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


DEFAULT_FLOW = Path(__file__).resolve().parents[1] / "ivr" / "default_flow.json"


async def start_load(port: int, channels: int, seconds: float, warmup: float, t0: float,
                     lead_ms: float, core: int, ivr: str = "") -> asyncio.subprocess.Process:
    """Start the load process (:mod:`appliance.bench.load`) against ``port`` with its
    frames ``lead_ms`` before the ticks of a clock started at ``t0``; return once every
    call streams and the ``warmup`` seconds after that have passed."""
    load = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance.bench.load", "--port", str(port),
        "--channels", str(channels), "--seconds", str(warmup + seconds + 0.5),
        "--warmup", str(warmup), "--t0", repr(t0), "--lead", str(lead_ms),
        "--core", str(core), *(("--ivr", ivr) if ivr else ()),
        stdout=asyncio.subprocess.PIPE,
    )
    assert load.stdout is not None
    first = json.loads(await load.stdout.readline())
    streaming = float(first["streaming"])
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, streaming + warmup - loop.time()))
    return load


def run_bench(*, channels: int, seconds: float, warmup: float, engine_core: int,
              load_core: int, lead_ms: float = 6.0, ivr: str = "",
              align_phase: bool = True) -> dict[str, Any]:
    """The engine bench; with ``ivr`` (a language) the calls walk the default IVR; without
    ``align_phase`` the tick stays on the fixed grid (to compare)."""
    pin_core(engine_core)
    return run_loop(lambda: _bench(channels, seconds, warmup, load_core, lead_ms, ivr,
                                   align_phase))


def _ivr_flow(store: Store, messages: Path) -> FlowFn:
    load_demo_data(store, pin_iterations=1000)
    lookups = InsuranceLookups(store)
    return make_flow_handler(load_flow(DEFAULT_FLOW), lookups.functions(),
                             messages_dir=messages, store=store)


async def _bench(channels: int, seconds: float, warmup: float, load_core: int,
                 lead_ms: float, ivr: str, align_phase: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        root = Path(tmp)
        store = Store(root / "bench.db")
        prompts = PromptLibrary()
        prompts.preload()
        flow = _ivr_flow(store, root / "messages") if ivr else bench_flow
        driver = AudioSocketDriver("127.0.0.1", 0)
        engine = Engine(clock=MonotonicClock(), drivers=[driver], flow=flow, freeze_heap=True,
                        prompts=prompts, store=store, recordings=root / "recordings",
                        align_phase=align_phase)
        engine.stats.keep_samples = True
        engine_task = asyncio.create_task(engine.run())
        await engine.started.wait()
        rss_before = rss_kib()
        load = await start_load(driver.port, channels, seconds, warmup, engine.start_time,
                                lead_ms, load_core, ivr)
        loop = asyncio.get_running_loop()
        tick0, (user0, sys0), wall0 = engine.stats.ticks, cpu_seconds(), loop.time()
        in0, late0 = engine.stats.frames_in, engine.stats.frames_late
        skipped0 = engine.stats.skipped_ticks
        await asyncio.sleep(seconds)
        tick1, (user1, sys1), wall1 = engine.stats.ticks, cpu_seconds(), loop.time()
        in1, late1 = engine.stats.frames_in, engine.stats.frames_late
        skipped1 = engine.stats.skipped_ticks
        rss_after = rss_kib()
        active = len(engine.calls)
        engine.stop()  # hangs every call up: the load then reports
        await engine_task
        out, _ = await load.communicate()
        load_result = json.loads(out.decode().strip().splitlines()[-1])
        store.close()
    lateness = np.array(engine.stats.lateness[tick0:tick1]) * 1000
    work = np.array(engine.stats.tick_work[tick0:tick1]) * 1000
    # Per 20 ms of wall time, not per tick run: an overloaded engine skips ticks, and
    # dividing by the ticks it managed would flatter it.
    frame_slots = max(1.0, (wall1 - wall0) / 0.02)
    frames = in1 - in0 + late1 - late0
    user, system = user1 - user0, sys1 - sys0
    cpu = user + system
    per_frame = 1e6 / (channels * frame_slots)
    return {
        "flow": f"default ({ivr})" if ivr else "bench",
        "channels": channels,
        "active_calls": active,
        "seconds": seconds,
        "p50_lateness_ms": round(float(np.percentile(lateness, 50)), 3),
        "p99_lateness_ms": round(float(np.percentile(lateness, 99)), 3),
        "max_lateness_ms": round(float(lateness.max()), 3),
        "tick_work_p50_ms": round(float(np.percentile(work, 50)), 3),
        "tick_work_p99_ms": round(float(np.percentile(work, 99)), 3),
        "cpu_us_per_channel_frame": round(cpu * per_frame, 2),
        # The kernel's share is mostly one TCP send per channel per tick (AudioSocket).
        "cpu_user_us_per_channel_frame": round(user * per_frame, 2),
        "cpu_sys_us_per_channel_frame": round(system * per_frame, 2),
        "core_pct": round(100 * cpu / (wall1 - wall0), 1),
        "rss_kib_per_channel": round((rss_after - rss_before) / max(1, channels), 1),
        "key_to_prompt_p50_ms": load_result["key_to_prompt_p50_ms"],
        "key_to_prompt_p99_ms": load_result["key_to_prompt_p99_ms"],
        "keys_measured": load_result["keys_measured"],
        "keys_missed": load_result["keys_missed"],
        "late_inbound_pct": round(100 * (late1 - late0) / max(1, frames), 3),
        "skipped_ticks": skipped1 - skipped0,
        "lead_ms": lead_ms,
        # Where the engine's tick settled relative to the fixed 20 ms grid (≤ 0: earlier).
        "tick_phase_ms": round(engine.phase * 1000, 2),
        # How long before the tick the early pass took the frames already in (0: none).
        "early_lead_ms": round(engine.early_lead * 1000, 2),
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
    }
