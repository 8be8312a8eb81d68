"""The reports page's figures beyond the call counts, each over the calls of a date range:
how far callers go in the IVR (each node reached, and where their IVR part ended), the
satisfaction scores, and how fast voicemail is answered against each category's target.
Plain queries over what the engine and the triage pages already store; each returns rows
the page shows and the export writes whole. Each agent's figures are the etiquette facts
summed per agent (:func:`appliance.acd.etiquette.agent_etiquette`)."""

from __future__ import annotations

from typing import Any

from appliance.voicemail.messages import LISTED
from appliance.voicemail.triage import UNCATEGORISED_TARGET_HOURS
from web.db import store

#: the IVR nodes the funnel lists, most reached first
FUNNEL_NODES = 40


def ivr_funnel(start: float, end: float) -> dict[str, Any]:
    """Calls that entered the IVR in [start, end), and for each node how many of them
    reached it and how many ended their IVR part there (hung up, or sent to a person)."""
    db = store()
    params = [start, end]
    reached = db.query(
        "SELECT json_extract(s.value, '$.node') AS node, json_extract(s.value, '$.type') AS type,"
        " count(DISTINCT c.call_id) AS calls"
        " FROM calls c, json_each(c.ivr_path) s"
        " WHERE c.started_at >= ? AND c.started_at < ? AND c.ivr_path IS NOT NULL"
        " AND json_valid(c.ivr_path) GROUP BY node ORDER BY calls DESC, node LIMIT ?",
        [*params, FUNNEL_NODES])
    # Each call that entered the IVR ended its part at exactly one step: their sum is
    # the calls that entered.
    last = {r["node"]: r["n"] for r in db.query(
        "SELECT json_extract(ivr_path, '$[#-1].node') AS node, count(*) AS n FROM calls"
        " WHERE started_at >= ? AND started_at < ? AND ivr_path IS NOT NULL"
        " AND json_valid(ivr_path) AND json_array_length(ivr_path) > 0 GROUP BY node", params)}
    n = sum(last.values())
    rows = [dict(r, share=r["calls"] / n if n else None, ended=last.get(r["node"], 0))
            for r in reached]
    return {"calls": n, "nodes": rows}


def surveys(start: float, end: float) -> dict[str, Any]:
    """Satisfaction survey answers given in [start, end): how many of each score, how many
    callers keyed none or hung up, and the average score."""
    rows = store().query(
        "SELECT survey_status AS status, survey_score AS score, count(*) AS n"
        " FROM acd_entries WHERE survey_at >= ? AND survey_at < ? AND survey_status IS NOT NULL"
        " GROUP BY survey_status, survey_score", [start, end])
    scores = {s: 0 for s in range(1, 6)}
    unscored = {"no-score": 0, "hung-up": 0}
    for r in rows:
        if r["status"] == "scored" and r["score"] in scores:
            scores[r["score"]] += r["n"]
        elif r["status"] in unscored:
            unscored[r["status"]] += r["n"]
    answered = sum(scores.values())
    average = sum(s * n for s, n in scores.items()) / answered if answered else None
    return {"scores": [{"label": str(s), "score": s, "n": n} for s, n in scores.items()],
            "answered": answered, "asked": answered + sum(unscored.values()),
            "no_score": unscored["no-score"], "hung_up": unscored["hung-up"],
            "average": average}


def voicemail_times(start: float, end: float, now: float) -> list[dict[str, Any]]:
    """Per category (uncategorised messages as one row, held to the triage's default
    target), the messages received in [start, end): how many, how many done, the average
    hours to done, how many were done within the target, and how many are still open past
    it at ``now`` (as the triage's overdue list counts them)."""
    hours = UNCATEGORISED_TARGET_HOURS
    return store().query(
        "SELECT v.category AS code, c.name_zh, c.name_en,"
        " coalesce(c.target_hours, :hours) AS target_hours,"
        " count(*) AS received, count(v.done_at) AS done,"
        " avg((v.done_at - v.received_at) / 3600.0) AS avg_hours,"
        " sum(v.done_at IS NOT NULL"
        "     AND v.done_at - v.received_at <= coalesce(c.target_hours, :hours) * 3600)"
        "  AS within_target,"
        " sum(v.status != 'done'"
        "     AND v.received_at + coalesce(c.target_hours, :hours) * 3600 < :now) AS overdue"
        " FROM voicemails v LEFT JOIN voicemail_categories c ON c.code = v.category"
        f" WHERE v.received_at >= :start AND v.received_at < :end AND v.{LISTED}"
        " GROUP BY v.category ORDER BY c.position IS NULL, c.position, v.category",
        {"hours": hours, "now": now, "start": start, "end": end})
