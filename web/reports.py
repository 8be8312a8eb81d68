"""Reports: calls by day and by hour over a date range (with bar charts drawn as SVG on the
server: no script, nothing from the internet), the book by status and by product, and the
premiums falling due; each table of calls exported whole for its range (.csv / .xlsx),
every day of it, not only what the page shows. Figures only: no personal data, so nothing
here is audited."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, render_template

from web.dates import date_range, day_bounds
from web.db import store
from web.sheets import download

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
    return render_template("reports/index.html", days=days, by_hour=by_hour, total=total,
                           answered=answered, book=book, products=products, due=due,
                           form={"from": start.isoformat(), "to": end.isoformat()},
                           error=error, chart=_chart)


EXPORTS = {
    "days": ("日期", "通话量", "接通", "平均通话时长（秒）"),
    "hours": ("时段", "通话量"),
}


@bp.route("/export/<table>.<fmt>", endpoint="export")
def export(table: str, fmt: str) -> Response:
    """A table of the report for its whole range: calls by day or by hour of the day."""
    if table not in EXPORTS or fmt not in ("csv", "xlsx"):
        abort(404)
    start, end, _error = date_range(14)
    days, by_hour = _calls(start, end)
    rows: list[tuple[Any, ...]]
    if table == "days":
        rows = [(d["day"], d["calls"], d["answered"],
                 "" if d["talk"] is None else round(d["talk"])) for d in days]
    else:
        rows = [(f"{h['label']}:00", h["calls"]) for h in by_hour]
    return download(fmt, f"calls-by-{table[:-1]}-{start}-{end}", "通话量", EXPORTS[table],
                    rows)


def _chart(items: list[dict[str, Any]], key: str, height: int = 140) -> dict[str, Any]:
    """Bar geometry for the SVG macro: one bar per item, scaled to the largest."""
    top = max((i[key] for i in items), default=0) or 1
    width = 28
    bars = []
    for n, item in enumerate(items):
        h = round(item[key] / top * (height - 20))
        bars.append({"x": n * width + 4, "y": height - 16 - h, "h": h, "w": width - 6,
                     "value": item[key], "label": item["label"]})
    return {"bars": bars, "width": len(items) * width + 8, "height": height, "top": top}
