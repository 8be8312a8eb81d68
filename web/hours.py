"""Business hours and holidays (营业时间与节假日): the weekly opening ranges, public holidays
and make-up working days (调休) the IVR's hours node reads at each call, so a change here
reaches the next caller without restarting the engine.

Until the first save the IVR keeps the hours written in its published flow; the page shows
those, and the first change (of the week or of one day) copies them into the store with the
change, so nothing else moves. Each change is one write with its audit row; a bad value is
refused with the field named and nothing saved.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from appliance.ivr import hours as bh
from appliance.ivr import versions
from appliance.ivr.flow import WEEKDAYS
from web import audit
from web.db import store

bp = Blueprint("hours", __name__, url_prefix="/settings/hours")

FLOW_NAME = "default"
MAX_CSV_BYTES = 256 * 1024


def weekday_name(day: str) -> str:
    return {"mon": _("Monday"), "tue": _("Tuesday"), "wed": _("Wednesday"),
            "thu": _("Thursday"), "fri": _("Friday"), "sat": _("Saturday"),
            "sun": _("Sunday")}.get(day, day)


def _flow_hours() -> bh.BusinessHours:
    """The hours in the published flow's first hours node (the file's if none published):
    what callers get while the box has none saved."""
    live = versions.published_version(store(), FLOW_NAME)
    if live is not None:
        doc = live.document
    else:
        from web.flows import DEFAULT_FLOW

        doc = json.loads(DEFAULT_FLOW.read_text("utf-8"))
    node: dict[str, Any] = next(
        (n for n in doc.get("nodes", {}).values() if n.get("type") == "hours"), {})
    return bh.from_node(node, holiday_name=_("Public holiday"))


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()


def _page(status: int = 200, week_form: dict[str, str] | None = None,
          errors: dict[str, str] | None = None, day_form: dict[str, str] | None = None,
          day_error: str | None = None) -> ResponseReturnValue:
    saved = bh.load_hours(store())
    shown = saved if saved is not None else _flow_hours()
    if week_form is None:
        week_form = {d: ", ".join(str(r) for r in shown.week.get(d, ())) for d in WEEKDAYS}
    today = _today()
    days = sorted(shown.days.values(), key=lambda d: d.date)
    return render_template(
        "settings/hours.html", saved=saved is not None, week_form=week_form,
        errors=errors or {}, weekdays=WEEKDAYS, weekday_name=weekday_name,
        working_weekdays=bh.WORKING_WEEKDAYS, days=days, today=today,
        day_form=day_form or {}, day_error=day_error,
        open_now=shown.state(dt.datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).replace(
            tzinfo=None))[0]), status


@bp.route("/", endpoint="view")
def view() -> ResponseReturnValue:
    return _page()


def _write(change: Callable[[Database], object], entry: list[Any]) -> None:
    """One write: the flow's hours adopted if the box had none, the change, its audit row."""
    base = _flow_hours()

    def run(db: Database) -> None:
        bh.adopt(db, base)
        change(db)
        audit.insert(db, entry)

    store().write(run)


@bp.route("/week", methods=["POST"])
def save_week() -> ResponseReturnValue:
    form = {d: request.form.get(d, "").strip()[:200] for d in WEEKDAYS}
    week: dict[str, tuple[bh.Range, ...]] = {}
    errors: dict[str, str] = {}
    for day in WEEKDAYS:
        try:
            week[day] = bh.parse_ranges(day, form[day])
        except bh.HoursError as exc:
            errors[day] = str(exc).split(": ", 1)[1]
    if errors:
        return _page(400, week_form=form, errors=errors)
    before = bh.load_hours(store())
    entry = audit.audit_row(
        "hours.week", "business_hours",
        before={d: [str(r) for r in before.week.get(d, ())] for d in WEEKDAYS}
        if before else None,
        after={d: [str(r) for r in week[d]] for d in WEEKDAYS})
    _write(lambda db: bh.save_week(db, week), entry)
    flash(_("Business hours saved: the next call uses them."))
    return redirect(url_for("hours.view")), 303


@bp.route("/days", methods=["POST"])
def add_day() -> ResponseReturnValue:
    form = {k: request.form.get(k, "").strip()[:60] for k in ("date", "name", "kind", "works_as")}
    try:
        day = bh.parse_day_off(form["date"], form["name"], form["kind"], form["works_as"])
    except bh.HoursError as exc:
        return _page(400, day_form=form, day_error=_day_error(exc))
    entry = audit.audit_row("hours.day_save", day.date.isoformat(), name=day.name,
                            kind=day.kind, works_as=day.works_as)
    _write(lambda db: bh.save_days(db, [day]), entry)
    flash(_("%(date)s %(name)s saved.", date=day.date.isoformat(), name=day.name))
    return redirect(url_for("hours.view")), 303


def _day_error(exc: bh.HoursError) -> str:
    field = {"date": _("Date"), "name": _("Holiday name"), "kind": _("Kind"),
             "works_as": _("Works as")}.get(exc.field, exc.field)
    return _("Not saved: %(field)s: %(reason)s", field=field,
             reason=str(exc).split(": ", 1)[1])


@bp.route("/days/<day>/delete", methods=["POST"])
def delete_day(day: str) -> ResponseReturnValue:
    try:
        date = dt.date.fromisoformat(day[:10])
    except ValueError:
        flash(_("Not a date: %(day)s", day=day[:10]), "error")
        return redirect(url_for("hours.view")), 303
    entry = audit.audit_row("hours.day_delete", date.isoformat())
    _write(lambda db: bh.delete_day(db, date), entry)
    flash(_("%(date)s removed.", date=date.isoformat()))
    return redirect(url_for("hours.view")), 303


@bp.route("/import", methods=["POST"])
def import_days() -> ResponseReturnValue:
    upload = request.files.get("file")
    raw = upload.read(MAX_CSV_BYTES + 1) if upload else b""
    if not raw:
        return _page(400, day_error=_("Choose a CSV file to import."))
    if len(raw) > MAX_CSV_BYTES:
        return _page(400, day_error=_("The file is too big for a holiday list."))
    try:
        days = bh.parse_holiday_csv(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return _page(400, day_error=_("The file is not UTF-8 text (save it as CSV UTF-8)."))
    except bh.HoursError as exc:
        return _page(400, day_error=_("Nothing was imported: %(reason)s", reason=str(exc)))
    entry = audit.audit_row("hours.import", (upload.filename if upload else "") or "",
                            days=len(days))
    _write(lambda db: bh.save_days(db, days), entry)
    flash(_("%(n)d holidays and make-up working days imported.", n=len(days)))
    return redirect(url_for("hours.view")), 303
