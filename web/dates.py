"""The date range a page's figures cover: ``from`` and ``to`` from the query string, whole
days in the box's time zone, with a default span ending today and a longest span."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app, request
from flask_babel import gettext as _

MAX_DAYS = 366


def date_range(default_days: int, max_days: int = MAX_DAYS) -> tuple[date, date, str | None]:
    """``(first, last, error)``: the days asked for (``to`` defaults to today, ``from`` to
    ``default_days`` days ending at ``to``), in order, at most ``max_days`` of them; the
    error says what was wrong with a date that is not one or a range that was shortened."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    days, error = asked_days()
    end = days["to"] or datetime.now(tz).date()
    start = days["from"] or end - timedelta(days=default_days - 1)
    if start > end:
        start, end = end, start
    if (end - start).days >= max_days:
        error = _("At most %(n)d days at once; the range was shortened.", n=max_days)
        start = end - timedelta(days=max_days - 1)
    return start, end, error


def asked_days() -> tuple[dict[str, date | None], str | None]:
    """``from`` and ``to`` as given in the query string (None when absent or not a date),
    and the error for one that is not a date."""
    days: dict[str, date | None] = {}
    error = None
    for name in ("from", "to"):
        raw = request.args.get(name, "").strip()[:10]
        try:
            days[name] = date.fromisoformat(raw) if raw else None
        except ValueError:
            days[name], error = None, _("Dates are written like 2026-11-26.")
    return days, error


def optional_days(column: str) -> tuple[list[str], list[float], str | None]:
    """The SQL conditions (and their values) keeping rows whose ``column`` (a Unix time)
    falls on the optional ``from`` .. ``to`` days, whole days in the box's time zone; and
    the error naming a date that is not one (that bound is then left out)."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    where: list[str] = []
    params: list[float] = []
    error = None
    for name, op, extra in (("from", ">=", 0), ("to", "<", 1)):
        raw = request.args.get(name, "").strip()
        if not raw:
            continue
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            error = _("Dates are written like 2026-11-26.")
            continue
        where.append(f"{column} {op} ?")  # "to" takes the whole of its day
        params.append(datetime.combine(day + timedelta(days=extra), datetime.min.time(),
                                       tz).timestamp())
    return where, params, error


def stamp(ts: float | None, tz: ZoneInfo) -> str:
    """``2026-11-26 09:30:00`` in ``tz`` ('' for None): a time in an export, whose rows are
    made after the request (and its app context) has gone, so the zone is passed in."""
    return "" if ts is None else datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The first instant of ``start`` and the first after ``end``, in the box's time zone."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    return (datetime.combine(start, datetime.min.time(), tz),
            datetime.combine(end + timedelta(days=1), datetime.min.time(), tz))
