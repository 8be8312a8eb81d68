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


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The first instant of ``start`` and the first after ``end``, in the box's time zone."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    return (datetime.combine(start, datetime.min.time(), tz),
            datetime.combine(end + timedelta(days=1), datetime.min.time(), tz))
