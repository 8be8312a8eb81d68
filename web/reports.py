"""Reports: calls by day and by hour over a date range (with bar charts drawn as SVG on the
server: no script, nothing from the internet); for the same range the IVR path funnel, the
queues' service level and abandon rate, each agent's figures, the satisfaction scores and
voicemail response times (:mod:`web.report_figures`), the premium reminder calls by
outcome (:mod:`appliance.reminders.attempts`); the book by status and by product,
and the premiums falling due. Each table of the range is exported whole (.csv / .xlsx),
every row of it, not only what the page shows. Figures only: no personal data (agents are
named by their code), so nothing here is audited."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, render_template

from appliance.acd.etiquette import agent_etiquette
from appliance.reminders.attempts import CONTACT, OUTCOMES, outcome_counts, outcomes_by_day
from web import report_figures as rf
from web.dates import date_range, day_bounds
from web.db import store
from web.reminders import outcome_label
from web.sheets import download
from web.supervisor import asked_service_seconds, figures

bp = Blueprint("reports", __name__, url_prefix="/reports")


def _calls(start: date, end: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Calls by day (every day of the range, empty ones too) and by hour of the day."""
    t0, t1 = day_bounds(start, end)
    offset = int(t0.utcoffset().total_seconds()) if t0.utcoffset() else 0  # type: ignore[union-attr]
    params = [offset, t0.timestamp(), t1.timestamp()]
    by_day = {r["day"]: r for r in store().query(
        "SELECT date(started_at + ?, 'unixepoch') AS day, count(*) AS calls,"
        " count(answered_at) AS answered,"
        " avg(CASE WHEN answered_at IS NOT NULL AND ended_at IS NOT NULL"
        "     THEN ended_at - answered_at END) AS talk"
        " FROM calls WHERE started_at >= ? AND started_at < ? GROUP BY day", params)}
    days = []
    d = start
    while d <= end:
        r = by_day.get(d.isoformat(), {})
        days.append({"label": d.strftime("%m-%d"), "day": d.isoformat(),
                     "calls": r.get("calls", 0), "answered": r.get("answered", 0),
                     "talk": r.get("talk")})
        d += timedelta(days=1)
    hours = {r["hour"]: r["calls"] for r in store().query(
        "SELECT CAST(strftime('%H', started_at + ?, 'unixepoch') AS INTEGER) AS hour,"
        " count(*) AS calls FROM calls WHERE started_at >= ? AND started_at < ?"
        " GROUP BY hour", params)}
    by_hour = [{"label": f"{h:02d}", "calls": hours.get(h, 0)} for h in range(24)]
    return days, by_hour


def _reminders(start: date, end: date) -> dict[str, Any]:
    """Premium reminder attempts started in the range: the count of each outcome (with the
    contact and confirmation rates), the bars of the chart, and the same by day (every
    day of the range)."""
    t0, t1 = day_bounds(start, end)
    offset = int(t0.utcoffset().total_seconds()) if t0.utcoffset() else 0  # type: ignore[union-attr]
    totals = outcome_counts(store(), t0.timestamp(), t1.timestamp())
    by_day = outcomes_by_day(store(), t0.timestamp(), t1.timestamp(), offset)
    days = []
    d = start
    while d <= end:
        got = by_day.get(d.isoformat(), {})
        ended = sum(got.get(o, 0) for o in OUTCOMES)
        contact = sum(got.get(o, 0) for o in CONTACT)
        days.append({"day": d.isoformat(), "attempts": ended + got.get("open", 0),
                     "open": got.get("open", 0), **{o: got.get(o, 0) for o in OUTCOMES},
                     "contact_rate": contact / ended if ended else None,
                     "confirmation_rate": got.get("confirmed", 0) / contact if contact
                     else None})
        d += timedelta(days=1)
    bars = [{"label": outcome_label(o), "n": totals["counts"][o]} for o in OUTCOMES]
    return dict(totals, days=days, bars=bars)


@bp.route("/", endpoint="index")
def reports_index() -> str:
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    today = datetime.now(tz).date()
    start, end, error = date_range(14)
    days, by_hour = _calls(start, end)
    total = sum(x["calls"] for x in days)
    answered = sum(x["answered"] for x in days)
    book = store().query("SELECT status, count(*) AS n, sum(premium_fen) AS premium"
                         " FROM policies GROUP BY status ORDER BY n DESC")
    products = store().query(
        "SELECT p.product_code, pr.name_zh, pr.name_en, count(*) AS n,"
        " sum(CASE WHEN p.status = 'in_force' THEN 1 ELSE 0 END) AS in_force,"
        " sum(p.sum_insured_fen) AS sum_insured FROM policies p"
        " JOIN products pr ON pr.code = p.product_code GROUP BY p.product_code"
        " ORDER BY p.product_code")
    due = store().query(
        "SELECT sum(next_due_date < ?) AS overdue, sum(next_due_date >= ? AND"
        " next_due_date < ?) AS due30, sum(CASE WHEN next_due_date >= ? AND next_due_date < ?"
        " THEN next_due_fen ELSE 0 END) AS due30_fen FROM policies"
        " WHERE status = 'in_force' AND next_due_date IS NOT NULL",
        [today.isoformat(), today.isoformat(), (today + timedelta(days=30)).isoformat(),
         today.isoformat(), (today + timedelta(days=30)).isoformat()])[0]
    t0, t1 = (t.timestamp() for t in day_bounds(start, end))
    sl = asked_service_seconds()
    return render_template("reports/index.html", days=days, by_hour=by_hour, total=total,
                           answered=answered, book=book, products=products, due=due,
                           form={"from": start.isoformat(), "to": end.isoformat()},
                           error=error, chart=_chart, funnel=rf.ivr_funnel(t0, t1),
                           queue=figures(t0, t1, sl),
                           agents=agent_etiquette(store(), since=t0, until=t1),
                           surveys=rf.surveys(t0, t1),
                           voicemail=rf.voicemail_times(t0, t1, time.time()),
                           reminders=_reminders(start, end))



EXPORTS = {
    "days": ("日期", "通话量", "接通", "平均通话时长（秒）"),
    "hours": ("时段", "通话量"),
    "ivr": ("节点", "类型", "到达通话", "占进入语音导航通话", "在此结束"),
    "agents": ("坐席员", "接听", "三声内接听", "平均振铃（声）", "平均振铃（秒）",
               "平均通话（秒）", "通话合计（秒）", "保持次数", "保持合计（秒）", "最长保持（秒）",
               "保持提醒", "客户先挂机", "坐席先挂机", "转接", "转接后接通再离开", "评分数",
               "平均评分"),
    "surveys": ("评分", "次数"),
    "voicemail": ("分类", "响应目标（小时）", "收到", "已办结", "平均办结（小时）",
                  "目标内办结", "逾期未办结"),
    "reminders": ("日期", "拨打次数", "已确认", "转人工", "已收听", "中途挂机", "忙线",
                  "无人接听", "线路拥塞", "失败", "进行中", "接通率", "确认率"),
}


def _num(value: Any, digits: int = 0) -> Any:
    return "" if value is None else round(value, digits) if digits else round(value)


@bp.route("/export/<table>.<fmt>", endpoint="export")
def export(table: str, fmt: str) -> Response:
    """A table of the report for its whole range: calls by day or by hour of the day."""
    if table not in EXPORTS or fmt not in ("csv", "xlsx"):
        abort(404)
    start, end, _error = date_range(14)
    t0, t1 = (t.timestamp() for t in day_bounds(start, end))
    rows: list[tuple[Any, ...]]
    if table in ("days", "hours"):
        days, by_hour = _calls(start, end)
        if table == "days":
            rows = [(d["day"], d["calls"], d["answered"], _num(d["talk"])) for d in days]
        else:
            rows = [(f"{h['label']}:00", h["calls"]) for h in by_hour]
        return download(fmt, f"calls-by-{table[:-1]}-{start}-{end}", "通话量",
                        EXPORTS[table], rows)
    if table == "ivr":
        rows = [(n["node"], n["type"], n["calls"], _num(n["share"], 4), n["ended"])
                for n in rf.ivr_funnel(t0, t1)["nodes"]]
    elif table == "agents":
        rows = [(a.agent, a.calls, a.answered_within_3_rings, a.mean_rings,
                 _num(a.mean_ring_seconds, 1), _num(a.mean_talk_seconds), _num(a.talk_seconds),
                 a.holds, _num(a.hold_seconds), _num(a.longest_hold_seconds),
                 a.hold_reminders, a.caller_hung_up_first, a.agent_hung_up_first, a.transfers,
                 a.transfers_answered_before_leaving, a.surveys, _num(a.mean_score, 2))
                for a in agent_etiquette(store(), since=t0, until=t1)]
    elif table == "reminders":
        rows = [(d["day"], d["attempts"], *(d[o] for o in OUTCOMES), d["open"],
                 _num(d["contact_rate"], 4), _num(d["confirmation_rate"], 4))
                for d in _reminders(start, end)["days"]]
    elif table == "surveys":
        got = rf.surveys(t0, t1)
        rows = [(s["score"], s["n"]) for s in got["scores"]]
        rows += [("未评分", got["no_score"]), ("挂机", got["hung_up"])]
    else:
        rows = [(v["name_zh"] or "未分类", v["target_hours"], v["received"], v["done"],
                 _num(v["avg_hours"], 1), v["within_target"], v["overdue"])
                for v in rf.voicemail_times(t0, t1, time.time())]
    return download(fmt, f"report-{table}-{start}-{end}", "报表", EXPORTS[table], rows)


def _chart(items: list[dict[str, Any]], key: str, height: int = 140,
           width: int = 28) -> dict[str, Any]:
    """Bar geometry for the SVG macro: one bar per item, scaled to the largest; ``width``
    per bar (wider for labels longer than a day's)."""
    top = max((i[key] for i in items), default=0) or 1
    bars = []
    for n, item in enumerate(items):
        h = round(item[key] / top * (height - 20))
        bars.append({"x": n * width + 4, "y": height - 16 - h, "h": h, "w": width - 6,
                     "value": item[key], "label": item["label"]})
    return {"bars": bars, "width": len(items) * width + 8, "height": height, "top": top}
