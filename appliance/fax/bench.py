"""``appliance bench fax``: one A4 fine page through the engine, clean and on a noisy line.

Both ends are spandsp: the box's :func:`~appliance.fax.send.send_fax_on_call` on one side
of a simulated line, a :class:`~appliance.fax.machine.FaxMachine` that dials in and presses
Start on the other, through the real engine on the manual clock (so an hour of calls takes
a minute). The document is a rendered policy summary: one A4 page at fine resolution, sent
at up to 14 400 bit/s with ECM. First one clean call gives ``page_seconds``, the call time
from the answer to the hang-up, and the level of the fax signal; then ``calls`` calls with
white noise that many dB below that level added to both directions of the line count the
pages that did not arrive whole (a page counts only if it is pixel-identical to the one
rendered). Each noisy caller presses Start after a pause of its own (0–2 s).
"""

from __future__ import annotations

import asyncio
import collections
import math
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from appliance.calls.call import Call
from appliance.calls.clock import ManualClock
from appliance.calls.engine import Engine
from appliance.fax.machine import FaxMachine
from appliance.fax.render import read_pages
from appliance.fax.send import prepare_tiff, render_document, send_fax_on_call
from appliance.fax.session import FaxResult
from appliance.insurance.demo_data import load_demo_data
from appliance.media.prompts import PromptLibrary
from appliance.store.db import Store
from drivers.sim import SimExchange

SERVICE = "95500"
MAX_START_DELAY_TICKS = 100
TODAY = date(2026, 11, 26)


def run_fax_bench(calls: int = 50, snr_db: float = 20.0, concurrent: int = 5,
                  seed: int = 1) -> dict[str, Any]:
    if calls < 1 or concurrent < 1:
        raise ValueError(f"calls and concurrent must be at least 1, got {calls}, {concurrent}")
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_bench(Path(tmp), calls, snr_db, concurrent, seed))


async def _bench(root: Path, calls: int, snr_db: float, concurrent: int,
                 seed: int) -> dict[str, Any]:
    store = Store(root / "bench.db")
    try:
        load_demo_data(store, 20, today=TODAY, pin_iterations=1000)
        number = store.query("SELECT number FROM policies ORDER BY number LIMIT 1")[0]["number"]
        tiff = render_document(store, "policy_summary", {"number": number},
                               root / "page.tiff", on=TODAY)
        want = [np.array(p) for p in read_pages(tiff)]
        # Checked once, before any call: a check per call would run on a worker thread
        # while the manual clock races on, and each call would start at a different tick.
        prepared = await prepare_tiff(tiff)
        box: dict[str, tuple[Call, FaxResult, float]] = {}
        machines: dict[str, FaxMachine] = {}

        async def flow(call: Call) -> None:
            await call.answer()
            # As the IVR does: the document is ready before the caller is told to press
            # Start, and the fax begins when they do, each caller after their own pause.
            machine = machines[call.caller]
            await call.silence(machine.start_delay)
            machine.press_start(calling_party=False)
            started = call.engine.clock.wall()
            result = await send_fax_on_call(call, prepared, document="policy_summary",
                                            params={"number": number})
            box[call.caller] = (call, result, started)
            await call.hangup()

        exchange = SimExchange(trunks=concurrent + 2)
        engine = Engine(clock=ManualClock(), drivers=[exchange], flow=flow,
                        prompts=PromptLibrary(), store=store, recordings=None)
        task = asyncio.create_task(engine.run())
        await engine.started.wait()
        wall = time.perf_counter()
        try:
            clean = await _one_call(exchange, machines, root, "clean", 0.0, 0, want)
            call, clean_fax, clean_start = box["clean"]
            assert call.ended_at is not None
            signal_power = clean.machine_power
            noise_rms = math.sqrt(signal_power) / 10 ** (snr_db / 20)
            gate = asyncio.Semaphore(concurrent)

            async def noisy(i: int) -> _Call:
                async with gate:
                    return await _one_call(exchange, machines, root, f"n{i}", noise_rms,
                                           seed + i, want)

            runs = await asyncio.gather(*(noisy(i) for i in range(calls)))
        finally:
            engine.stop()
            await task
        wall = time.perf_counter() - wall
        store.write(lambda db: None)  # every fax row written
        failed_rows = store.query("SELECT count(*) AS n FROM faxes WHERE ok = 0")[0]["n"]
    finally:
        store.close()
    noisy_results = [box[r.name][1] for r in runs if r.name in box]
    durations = [box[r.name][0].ended_at - box[r.name][2] for r in runs  # type: ignore[operator]
                 if r.name in box]
    rates = collections.Counter(r.bit_rate for r in noisy_results)
    return {
        "page_seconds": round(call.ended_at - clean_start, 2),
        "fax_seconds": round(clean_fax.seconds, 2),
        "bit_rate": clean_fax.bit_rate,
        "ecm": clean_fax.ecm,
        "page_ok": clean.pages_ok == 1,
        "page_bytes": tiff.stat().st_size,
        "calls": calls,
        "snr_db": snr_db,
        "signal_dbfs": round(_dbfs(signal_power), 1),
        "noise_dbfs": round(_dbfs(noise_rms**2), 1),
        "pages_sent": calls,
        "pages_failed": sum(1 - r.pages_ok for r in runs),
        "calls_failed": sum(1 for r in noisy_results if not r.ok) + calls - len(noisy_results),
        "log_rows_failed": failed_rows,
        "noisy_bit_rates": {str(k): v for k, v in sorted(rates.items())},
        "noisy_page_seconds_mean": round(float(np.mean(durations)), 2) if durations else None,
        "noisy_page_seconds_max": round(float(np.max(durations)), 2) if durations else None,
        "wall_seconds": round(wall, 1),
    }


class _Call:
    def __init__(self, name: str, pages_ok: int, machine_power: float) -> None:
        self.name = name
        self.pages_ok = pages_ok
        self.machine_power = machine_power


async def _one_call(exchange: SimExchange, machines: dict[str, FaxMachine], root: Path,
                    name: str, noise_rms: float, seed: int, want: list[np.ndarray]) -> _Call:
    """One caller's machine dials, Start is pressed and it receives; pages that match
    count."""
    rx = root / f"{name}.tiff"
    machine = machines[name] = FaxMachine(exchange, name, rx, noise_rms=noise_rms, seed=seed,
                                          name=name)
    # Callers press Start 0–2 s after the box answers (the clean call at once), so the
    # noise before the fax differs from call to call as it would.
    machine.start_delay = 0.0 if not noise_rms else float(
        np.random.default_rng(seed).integers(0, MAX_START_DELAY_TICKS)) / 50
    try:
        await machine.dial(SERVICE)
        while machine.session is None and machine.connected:
            await machine.wait(0.02)
        await machine.wait_fax(timeout=600)
        await machine.wait_hangup(timeout=30)
    finally:
        machine.close()
    ok = 0
    if rx.exists():
        try:
            got = [np.array(p) for p in read_pages(rx)]
        except (OSError, SyntaxError):
            got = []
        ok = sum(1 for a, b in zip(want, got, strict=False)
                 if a.shape == b.shape and np.array_equal(a, b))
    power = machine.signal_power / machine.signal_frames if machine.signal_frames else 0.0
    return _Call(name, ok, power)


def _dbfs(power: float) -> float:
    return 10 * math.log10(power / 32768.0**2) if power > 0 else -math.inf
