"""``appliance bench acd``: how long one routing decision takes with a full box.

Eight seats and fifty callers waiting, every strategy, routing by the caller's language
with penalties, as :meth:`Acd._dispatch` calls :func:`~appliance.acd.routing.decide`. Each
decision gets a fresh random situation (which seats are ready, their load, which callers are
already being offered a seat), set up outside the timed part; only the decision is timed.
Callers ask for the three languages and seats speak one to three of them, so some decisions
pass over callers no ready seat can serve before finding one, as they do on a real box.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from appliance.acd.model import AgentState, QueueConfig, SeatConfig, SeatStatus, Strategy
from appliance.acd.routing import Entry, RoundRobinMemory, WaitingList, decide

LANGS = ("zh", "yue", "en")
STATES = (AgentState.READY, AgentState.READY, AgentState.NOT_READY, AgentState.TALKING,
          AgentState.WRAP_UP, AgentState.RINGING)


def run_acd_bench(decisions: int = 20_000, seats: int = 8, waiting: int = 50,
                  seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    seat_list = [
        SeatStatus(SeatConfig(f"s{i}", f"80{i:02d}",
                              skills={lang: 1 for lang in rng.sample(LANGS, rng.randint(1, 3))}),
                   i)
        for i in range(seats)]
    queues = [QueueConfig(f"q-{s.value}", s, language_skill=True,
                          members={x.id: rng.randint(0, 2) for x in seat_list})
              for s in Strategy]
    memory = RoundRobinMemory()
    times: list[float] = []
    offered = 0
    for n in range(decisions):
        for seat in seat_list:
            seat.state = rng.choice(STATES)
            seat.calls = rng.randint(0, 60)
            seat.talk_seconds = rng.uniform(0, 20_000)
            seat.idle_since = rng.uniform(0, 1000)
        queue = queues[n % len(queues)]
        entries = WaitingList(
            Entry(key=f"{n}-{i}", queue=queue.name, caller="13800000000",
                  language=rng.choice(LANGS), priority=rng.choice((0, 0, 0, 5, 10)),
                  joined_at=float(i), engaged=rng.random() < 0.1)
            for i in range(waiting))
        start = time.perf_counter()
        offer = decide(queue, entries, seat_list, memory)
        times.append((time.perf_counter() - start) * 1000)
        offered += offer is not None
    cuts = statistics.quantiles(times, n=100)
    return {"decisions": decisions, "seats": seats, "waiting": waiting,
            "offers_made": offered, "p50_ms": round(cuts[49], 4), "p99_ms": round(cuts[98], 4),
            "max_ms": round(max(times), 4)}


__all__ = ["run_acd_bench"]
