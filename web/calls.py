"""Call records (the CDR the engine writes): by date range and number, and CSV export of
the whole result. Numbers are personal data: shown in full only with ``see_phone``, and
every list and export is audited."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, g, render_template, request
from flask_babel import gettext as _

from appliance.acd.etiquette import (
    GOOD_RINGS,
    CallEtiquette,
    TransferFact,
    etiquette_of_calls,
    transfer_facts,
)
from web import audit, permissions
from web.dates import optional_days, stamp
from web.db import mask_phone, prefix_range, store
from web.paging import page_number, read_page
from web.sheets import download

bp = Blueprint("calls", __name__, url_prefix="/calls")


def _filters() -> tuple[str, list[Any], dict[str, str], str | None]:
    days, bounds, error = optional_days("started_at")
    where: list[str] = list(days)
    params: list[Any] = list(bounds)
    raw = request.args.get("number", "")
    number = "".join(c for c in raw if c not in " -")[:32]
    if number and not all(c.isdigit() or c in "+*#" for c in number):
        error = _("A number has only digits, * and #.")
        where.append("0")  # nothing matches a number that cannot be one
        number = raw[:32]
    elif number:
        lo, hi = prefix_range(number)
        where.append("call_id IN (SELECT call_id FROM calls WHERE caller >= ? AND caller < ?"
                     " UNION SELECT call_id FROM calls WHERE callee >= ? AND callee < ?)")
        params += [lo, hi, lo, hi]
    form = {"from": request.args.get("from", "")[:10], "to": request.args.get("to", "")[:10],
            "number": number}
    return ("WHERE " + " AND ".join(where)) if where else "", params, form, error


def cause_name(cause: str | None) -> str:
    """How a call ended, as the engine records it, in the page's language."""
    if not cause:
        return ""
    return {"normal": _("Ended by the system"), "caller": _("Caller hung up"),
            "hangup": _("Hung up"), "busy": _("Busy"), "congestion": _("Congestion"),
            "no-answer": _("No answer"), "ringback": _("Rang, no answer"),
            "silence": _("Silence"), "shutdown": _("System stopped"),
            "line-dropped": _("Line dropped"), "flow-error": _("IVR error"),
            "flow-loop": _("IVR loop stopped"), "engine-crash": _("System restarted"),
            "agent": _("Hung up by the agent"),
            }.get(cause, cause)


@bp.app_context_processor
def _names() -> dict[str, Any]:
    return dict(cause_name=cause_name, transfer_name=transfer_name,
                etiquette_text=etiquette_text)


@bp.route("/", endpoint="list")
def call_list() -> str:
    clause, params, form, error = _filters()
    number = page_number()
    page, rows = read_page(store(), f"SELECT 1 FROM calls {clause}",
                           f"SELECT * FROM calls {clause} ORDER BY started_at DESC"
                           " LIMIT ? OFFSET ?", params, number)
    audit.log("call.list", "", **form, page=number, shown=len(rows))
    return render_template("calls/list.html", rows=rows, form=form, error=error,
                           page=page,
                           see_phone=permissions.can(g.user.role, "see_phone"),
                           mask_phone=mask_phone,
                           transfers=_transfers([r["call_id"] for r in rows]),
                           etiquette=etiquette_of_calls(store(), [r["call_id"] for r in rows]))


def _transfers(call_ids: list[str]) -> dict[str, list[TransferFact]]:
    """Each listed call's transfers (an etiquette fact shown with the call)."""
    by_call: dict[str, list[TransferFact]] = {}
    for fact in transfer_facts(store(), call_ids):
        by_call.setdefault(fact.call_id, []).append(fact)
    return by_call


def etiquette_text(e: CallEtiquette) -> str:
    """"Agent A001: answered after 2 rings · 1 hold, 30 s · the caller hung up first ·
    score 5", the O5 facts of one answered queue stay of a call."""
    parts = []
    if e.rings is not None:
        parts.append(_("answered after %(n)d rings", n=e.rings) if e.rings <= GOOD_RINGS
                     else _("answered after %(n)d rings (more than %(good)d)", n=e.rings,
                            good=GOOD_RINGS))
    if e.hold_count:
        parts.append(_("%(n)d holds, %(s)d s", n=e.hold_count, s=round(e.hold_seconds)))
    first = {"caller": _("the caller hung up first"), "agent": _("the agent hung up first"),
             "box": _("the line dropped")}.get(e.hung_up_first or "")
    if first:
        parts.append(first)
    if e.survey_score is not None:
        parts.append(_("score %(n)d", n=e.survey_score))
    return _("Agent %(agent)s: %(facts)s", agent=e.agent, facts=" · ".join(parts))


def transfer_name(fact: TransferFact, see_phone: bool) -> str:
    """"Consult transfer to seat s2, answered before the agent left", in words."""
    kind = {"blind": _("Blind transfer"), "consult": _("Consult transfer"),
            "conference": _("3-way conference")}.get(fact.kind, fact.kind)
    target = fact.target if fact.target_kind != "number" or see_phone else \
        mask_phone(fact.target)
    where = {"seat": _("seat %(target)s", target=target),
             "queue": _("queue %(target)s", target=target),
             "number": _("number %(target)s", target=target)}.get(fact.target_kind, target)
    if fact.answered_before_agent_left:
        answered = _("answered before the agent left")
    elif fact.answered:
        answered = _("answered after the agent left")
    else:
        answered = _("not answered")
    return _("%(kind)s to %(where)s (%(answered)s)", kind=kind, where=where,
             answered=answered)


HEADER = ("通话编号", "线路", "方向", "主叫号码", "被叫号码", "开始时间", "应答时间", "结束时间",
          "时长（秒）", "结束原因", "按键", "录音")


@bp.route("/export")
def export() -> Response:
    clause, params, form, _error = _filters()
    see_phone = permissions.can(g.user.role, "see_phone")
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    audit.log("call.export", "", **form)

    def when(ts: float | None) -> str:
        return stamp(ts, tz)

    db = store()  # the generator runs after the request context has gone

    def rows() -> Any:
        # Keyset pages over (started_at, call_id), newest first: every matching call, in
        # short reads.
        last: tuple[float, str] | None = None
        while True:
            key = "(started_at < ? OR (started_at = ? AND call_id < ?))"
            where = clause
            args = list(params)
            if last is not None:
                where = f"{clause} AND {key}" if clause else f"WHERE {key}"
                args += [last[0], last[0], last[1]]
            chunk = db.query(f"SELECT * FROM calls {where} ORDER BY started_at DESC,"
                                  " call_id DESC LIMIT 5000", args)
            for r in chunk:
                duration = "" if r["ended_at"] is None else f"{r['ended_at'] - r['started_at']:.0f}"
                yield (r["call_id"], r["line"], r["direction"],
                       r["caller"] if see_phone else mask_phone(r["caller"]),
                       r["callee"] if see_phone else mask_phone(r["callee"]),
                       when(r["started_at"]), when(r["answered_at"]), when(r["ended_at"]),
                       duration, r["end_cause"] or "", r["keys"], r["recording"] or "")
            if len(chunk) < 5000:
                return
            last = (chunk[-1]["started_at"], chunk[-1]["call_id"])

    return download("csv", "calls", "", HEADER, rows())
