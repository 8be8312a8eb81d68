"""Service etiquette as measured facts (O5), per call and summed per agent, for the
supervisor page.

Nothing here is asked of the agent: the ACD writes the facts as the call happens (how
long the seat rang and so how many rings, each hold and its length, who hung up first,
the caller's survey score). O5's "answer within three rings" is ``rings <= 3`` of China's
5-second cadence; "the customer hangs up first" is ``hung_up_first = 'caller'``. Each
transfer an agent makes (:mod:`appliance.acd.transfer`) is a fact of the call too: its
kind, its target, and whether the target answered before the agent left (a consult or
conference that the agent completed, not a blind hand-over).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

from appliance.store.db import Store

#: O5: answer within three rings
GOOD_RINGS: Final = 3


@dataclass(frozen=True, slots=True)
class CallEtiquette:
    entry: str
    call_id: str
    queue: str
    agent: str
    seat: str
    joined_at: float
    ring_seconds: float | None
    rings: int | None
    hold_count: int
    hold_seconds: float
    hold_reminders: int
    hung_up_first: str | None
    survey_status: str | None
    survey_score: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TransferFact:
    """One transfer of a call: ``kind`` blind, consult or conference; ``target_kind``
    seat, queue or number; ``answered_before_agent_left`` None while the agent stayed
    (returned to the caller, or the target hung up first)."""

    call_id: str
    seat: str
    agent: str
    kind: str
    target_kind: str
    target: str
    started_at: float
    answered: bool
    answered_before_agent_left: bool | None
    outcome: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def transfer_facts(store: Store, call_ids: list[str]) -> list[TransferFact]:
    """The transfers of the calls ``call_ids`` (a page of them), oldest first."""
    if not call_ids:
        return []
    marks = ", ".join("?" * len(call_ids))
    rows = store.query(f"SELECT * FROM acd_transfers WHERE call_id IN ({marks})"
                       " ORDER BY started_at, rowid", list(call_ids))
    return [TransferFact(
        call_id=r["call_id"], seat=r["seat_id"], agent=r["agent"], kind=r["kind"],
        target_kind=r["target_kind"], target=r["target"], started_at=r["started_at"],
        answered=r["answered_at"] is not None,
        answered_before_agent_left=(None if r["answered_before_agent_left"] is None
                                    else bool(r["answered_before_agent_left"])),
        outcome=r["outcome"]) for r in rows]


@dataclass(frozen=True, slots=True)
class AgentEtiquette:
    agent: str
    calls: int
    answered_within_3_rings: int
    mean_rings: float
    max_rings: int
    mean_ring_seconds: float
    holds: int
    hold_seconds: float
    longest_hold_seconds: float
    hold_reminders: int
    caller_hung_up_first: int
    agent_hung_up_first: int
    surveys: int
    mean_score: float | None
    talk_seconds: float = 0.0
    mean_talk_seconds: float = 0.0
    transfers: int = 0
    transfers_answered_before_leaving: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CALL_SQL = """
SELECT e.key, e.call_id, e.queue, e.agent, e.answered_by, e.joined_at, e.ring_seconds,
       e.rings, e.hold_count, e.hold_seconds, e.hung_up_first, e.survey_status,
       e.survey_score,
       (SELECT coalesce(sum(h.reminders), 0) FROM acd_holds h WHERE h.entry_key = e.key)
           AS reminders
FROM acd_entries e
WHERE e.answered_by IS NOT NULL AND e.agent IS NOT NULL
"""


def _call(row: dict[str, Any]) -> CallEtiquette:
    return CallEtiquette(
        entry=row["key"], call_id=row["call_id"], queue=row["queue"], agent=row["agent"],
        seat=row["answered_by"], joined_at=row["joined_at"], ring_seconds=row["ring_seconds"],
        rings=row["rings"], hold_count=row["hold_count"], hold_seconds=row["hold_seconds"],
        hold_reminders=row["reminders"], hung_up_first=row["hung_up_first"],
        survey_status=row["survey_status"], survey_score=row["survey_score"])


def call_etiquette(store: Store, call_id: str) -> list[CallEtiquette]:
    """The facts of each answered queue stay of the call ``call_id`` (usually one)."""
    rows = store.query(_CALL_SQL + " AND e.call_id = ? ORDER BY e.joined_at", [call_id])
    return [_call(r) for r in rows]


def etiquette_of_calls(store: Store, call_ids: list[str]) -> dict[str, list[CallEtiquette]]:
    """The facts of each of ``call_ids`` (a page of the call list), by call."""
    if not call_ids:
        return {}
    marks = ", ".join("?" * len(call_ids))
    by_call: dict[str, list[CallEtiquette]] = {}
    for row in store.query(_CALL_SQL + f" AND e.call_id IN ({marks}) ORDER BY e.joined_at",
                           list(call_ids)):
        by_call.setdefault(row["call_id"], []).append(_call(row))
    return by_call


def calls_etiquette(store: Store, *, since: float | None = None, until: float | None = None,
                    agent: str | None = None) -> list[CallEtiquette]:
    """Answered calls joined in ``[since, until)``, oldest first, optionally one agent's."""
    sql, args = _window(_CALL_SQL, [], since, until, agent)
    return [_call(r) for r in store.query(sql + " ORDER BY e.joined_at", args)]


def agent_etiquette(store: Store, *, since: float | None = None,
                    until: float | None = None) -> list[AgentEtiquette]:
    """Per agent (by agent code), the facts of their answered calls in ``[since, until)``
    summed: rings, talk, holds, who hung up first, the survey scores, and the transfers
    they started in the window (how many the target answered before the agent left)."""
    sql = """
    SELECT e.agent, count(*) AS calls,
           sum(e.rings <= ?) AS good,
           avg(e.rings) AS mean_rings, max(e.rings) AS max_rings,
           avg(e.ring_seconds) AS mean_ring,
           sum(e.hold_count) AS holds, sum(e.hold_seconds) AS hold_seconds,
           (SELECT coalesce(max(h.seconds), 0) FROM acd_holds h
              JOIN acd_entries x ON x.key = h.entry_key
             WHERE h.agent = e.agent AND x.joined_at >= ? AND x.joined_at < ?) AS longest,
           (SELECT coalesce(sum(h.reminders), 0) FROM acd_holds h
              JOIN acd_entries x ON x.key = h.entry_key
             WHERE h.agent = e.agent AND x.joined_at >= ? AND x.joined_at < ?) AS reminders,
           sum(e.hung_up_first = 'caller') AS caller_first,
           sum(e.hung_up_first = 'agent') AS agent_first,
           count(e.survey_score) AS surveys, avg(e.survey_score) AS mean_score,
           sum(e.talk_seconds) AS talk, avg(e.talk_seconds) AS mean_talk,
           (SELECT count(*) FROM acd_transfers t WHERE t.agent = e.agent
               AND t.started_at >= ? AND t.started_at < ?) AS transfers,
           (SELECT coalesce(sum(t.answered_before_agent_left), 0) FROM acd_transfers t
             WHERE t.agent = e.agent AND t.started_at >= ? AND t.started_at < ?)
               AS transfers_answered
    FROM acd_entries e
    WHERE e.answered_by IS NOT NULL AND e.agent IS NOT NULL
      AND e.joined_at >= ? AND e.joined_at < ?
    GROUP BY e.agent ORDER BY e.agent
    """
    lo = float("-inf") if since is None else since
    hi = float("inf") if until is None else until
    rows = store.query(sql, [GOOD_RINGS, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi])
    return [AgentEtiquette(
        agent=r["agent"], calls=r["calls"], answered_within_3_rings=r["good"] or 0,
        mean_rings=round(r["mean_rings"] or 0.0, 2), max_rings=r["max_rings"] or 0,
        mean_ring_seconds=round(r["mean_ring"] or 0.0, 3), holds=r["holds"] or 0,
        hold_seconds=round(r["hold_seconds"] or 0.0, 3),
        longest_hold_seconds=round(r["longest"], 3), hold_reminders=r["reminders"],
        caller_hung_up_first=r["caller_first"] or 0, agent_hung_up_first=r["agent_first"] or 0,
        surveys=r["surveys"],
        mean_score=None if r["mean_score"] is None else round(r["mean_score"], 2),
        talk_seconds=round(r["talk"] or 0.0, 3), mean_talk_seconds=round(r["mean_talk"] or 0.0, 3),
        transfers=r["transfers"], transfers_answered_before_leaving=r["transfers_answered"])
        for r in rows]


def _window(sql: str, args: list[Any], since: float | None, until: float | None,
            agent: str | None) -> tuple[str, list[Any]]:
    if since is not None:
        sql, args = sql + " AND e.joined_at >= ?", [*args, since]
    if until is not None:
        sql, args = sql + " AND e.joined_at < ?", [*args, until]
    if agent is not None:
        sql, args = sql + " AND e.agent = ?", [*args, agent]
    return sql, args


__all__ = ["GOOD_RINGS", "AgentEtiquette", "CallEtiquette", "TransferFact", "agent_etiquette",
           "call_etiquette", "calls_etiquette", "etiquette_of_calls", "transfer_facts"]
