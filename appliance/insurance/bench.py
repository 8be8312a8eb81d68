"""``appliance bench lookup``: how fast the IVR's policy lookup answers on a full book.

Builds a throw-away database with the demo book at the given size, then times random
policy lookups by number with ID verification, each through :class:`PolicyLookup` and the
store's read connection, as the IVR makes them. Three in four lookups key the right ID
digits; the rest key wrong ones, which take the same path to the database.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from appliance.insurance.demo_data import load_demo_data
from appliance.insurance.lookups import PolicyLookup
from appliance.store.db import Store


def run_lookup_bench(policies: int = 100_000, lookups: int = 5000,
                     seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        try:
            t0 = time.perf_counter()
            summary = load_demo_data(store, policies, today=date(2026, 11, 26))
            load_s = time.perf_counter() - t0
            numbers = summary.policy_numbers
            last4 = {r["number"]: r["id_last4"] for r in store.query(
                "SELECT p.number, c.id_last4 FROM policies p "
                "JOIN customers c ON c.id = p.holder_id")}
            times = []
            for _ in range(lookups):
                number = rng.choice(numbers)
                digits = last4[number] if rng.random() < 0.75 else "0000"
                session = PolicyLookup(store)  # a fresh call: never sent to a person
                start = time.perf_counter()
                session.lookup(number, digits)
                times.append((time.perf_counter() - start) * 1000)
        finally:
            store.close()
    cuts = statistics.quantiles(times, n=100)
    return {"policies": summary.policies, "lookups": lookups, "load_s": round(load_s, 2),
            "p50_ms": round(cuts[49], 3), "p99_ms": round(cuts[98], 3)}
