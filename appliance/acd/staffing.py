"""The staffing estimate (O1): from the last weeks' queue records, the calls offered and
the average handle time in each half hour of the week, and by Erlang C the agents each
half hour needs to reach a service-level target.

A call offered is a queue entry that ended (a box shutdown is the box's, not the
callers', and is left out); its handle time is the talk time plus the queue's wrap-up,
over the answered ones. Offered calls are averaged per week over the weeks the records
cover (a box in service for one week is not divided by four). A half hour with calls but
none answered is estimated with the average handle time of the whole period. Half hours
are counted in the box's time zone, at its offset at the end of the period (China keeps
one offset all year).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from appliance.acd.erlang import agents_needed, service_level, traffic
from appliance.store.db import Store

SLOT_SECONDS = 1800
SLOTS_PER_DAY = 86400 // SLOT_SECONDS
DEFAULT_WEEKS = 4


@dataclass(frozen=True)
class Slot:
    weekday: int  # 0 Monday … 6 Sunday
    slot: int  # half hours since midnight, 0 … 47
    offered: float  # calls a week, on average
    aht: float  # seconds
    erlangs: float
    agents: int
    level: float  # the service level those agents reach

    @property
    def label(self) -> str:
        start = self.slot * SLOT_SECONDS // 60
        return f"{start // 60:02d}:{start % 60:02d}"


@dataclass(frozen=True)
class Estimate:
    start: datetime
    end: datetime
    weeks: float
    target_seconds: int
    target_level: float
    slots: list[Slot]
    aht: float | None  # over the whole period

    def grid(self) -> list[tuple[str, list[Slot | None]]]:
        """Rows of half hours that had calls on any day, each with its seven days."""
        cells = {(s.slot, s.weekday): s for s in self.slots}
        rows = []
        for slot in sorted({s.slot for s in self.slots}):
            start = slot * SLOT_SECONDS // 60
            rows.append((f"{start // 60:02d}:{start % 60:02d}",
                         [cells.get((slot, day)) for day in range(7)]))
        return rows

    def peak(self) -> list[int]:
        """The most agents any half hour of each weekday needs."""
        top = [0] * 7
        for s in self.slots:
            top[s.weekday] = max(top[s.weekday], s.agents)
        return top


def estimate(store: Store, end: datetime, target_seconds: int, target_level: float,
             weeks: int = DEFAULT_WEEKS) -> Estimate:
    """The estimate over the ``weeks`` weeks before ``end`` (an aware datetime)."""
    if end.tzinfo is None:
        raise ValueError("end must carry its time zone")
    start = end - timedelta(weeks=weeks)
    offset = int(end.utcoffset().total_seconds())  # type: ignore[union-attr]
    window = {"start": start.timestamp(), "end": end.timestamp(), "off": offset}
    rows = store.query(
        "SELECT CAST(strftime('%w', e.joined_at + :off, 'unixepoch') AS INTEGER) AS dow,"
        " CAST(((CAST(e.joined_at AS INTEGER) + :off) % 86400) / 1800 AS INTEGER) AS slot,"
        " count(*) AS offered,"
        " sum(e.outcome IN ('answered', 'callback-answered') AND e.talk_seconds IS NOT NULL)"
        "  AS handled,"
        " sum(CASE WHEN e.outcome IN ('answered', 'callback-answered')"
        "     THEN e.talk_seconds + coalesce(json_extract(q.config, '$.wrap_up'), 0) END)"
        "  AS handle_sum"
        " FROM acd_entries e LEFT JOIN acd_queues q ON q.name = e.queue"
        " WHERE e.joined_at >= :start AND e.joined_at < :end AND e.ended_at IS NOT NULL"
        " AND e.outcome != 'shutdown' GROUP BY dow, slot", window)
    first = store.query("SELECT min(joined_at) AS t FROM acd_entries WHERE joined_at >= :start"
                        " AND joined_at < :end", window)[0]["t"]
    # Weeks the records cover: from the first entry in the window to its end, whole weeks.
    covered = weeks if first is None else min(
        weeks, max(1, math.ceil((end.timestamp() - first) / (7 * 86400))))
    handled = sum(r["handled"] or 0 for r in rows)
    overall = sum(r["handle_sum"] or 0.0 for r in rows) / handled if handled else None
    slots = []
    for r in rows:
        aht = (r["handle_sum"] / r["handled"]) if r["handled"] else overall
        if not aht or aht <= 0:
            continue  # nothing answered in the whole period: no handle time to go on
        offered = r["offered"] / covered
        erlangs = traffic(offered, aht, SLOT_SECONDS)
        agents = agents_needed(erlangs, aht, target_seconds, target_level)
        slots.append(Slot(weekday=(r["dow"] + 6) % 7, slot=r["slot"], offered=offered,
                          aht=aht, erlangs=erlangs, agents=agents,
                          level=service_level(agents, erlangs, aht, target_seconds)))
    slots.sort(key=lambda s: (s.weekday, s.slot))
    return Estimate(start=start, end=end, weeks=covered, target_seconds=target_seconds,
                    target_level=target_level, slots=slots, aht=overall)


def chart(est: Estimate, cell_w: int = 12, cell_h: int = 18) -> dict[str, Any]:
    """Heat-map geometry for the page's SVG: a row per weekday, a column per half hour, the
    cell's shade by the agents it needs."""
    top = max((s.agents for s in est.slots), default=0) or 1
    left, head = 34, 14
    cells = [{"x": left + s.slot * cell_w, "y": head + s.weekday * cell_h, "w": cell_w - 1,
              "h": cell_h - 1, "agents": s.agents, "label": s.label, "weekday": s.weekday,
              "offered": s.offered, "aht": s.aht,
              "shade": round(0.15 + 0.85 * s.agents / top, 2)} for s in est.slots]
    return {"cells": cells, "width": left + SLOTS_PER_DAY * cell_w, "left": left,
            "head": head, "cell_w": cell_w, "cell_h": cell_h,
            "height": head + 7 * cell_h + 2, "top": top,
            "hours": [{"x": left + h * 2 * cell_w, "label": f"{h:02d}"} for h in range(0, 24, 3)]}


__all__ = ["DEFAULT_WEEKS", "SLOT_SECONDS", "Estimate", "Slot", "chart", "estimate"]
