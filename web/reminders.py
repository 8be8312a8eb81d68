"""Premium reminders (续期缴费提醒): the settings the engine's reminder dialer reads at each
pass, the attempt log with filters and its export, and "run now", which asks the running
engine for a pass at once (control op ``reminders-run``).

A bad setting is refused with its field named and nothing saved; a save is one write with
its audit row (before and after). The attempt list shows holders' numbers (personal
data): in full only with ``see_phone``, and every list and export is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from appliance.control import ControlError, ControlUnavailable
from appliance.reminders import attempts as log
from appliance.reminders import settings as rs
from appliance.reminders.selection import closed, holidays
from web import audit, permissions
from web.console import control
from web.dates import asked_days
from web.db import mask_phone, store
from web.paging import page_number, read_page
from web.sheets import download

bp = Blueprint("reminders", __name__, url_prefix="/reminders")

def field_name(field: str) -> str:
    """A setting's name as the form labels it."""
    return {"enabled": _("Automatic reminders"), "days_ahead": _("Days ahead of the due date"),
            "overdue_days": _("Days overdue at most"), "window_start": _("Calls from"),
            "window_end": _("Calls until"), "max_concurrent": _("Calls at once"),
            "retry_minutes": _("Minutes before trying again"),
            "max_attempts": _("Attempts at most"),
            "sms_after_calls": _("Send the reminder by SMS when the calls reach nobody"),
            }.get(field, field)


def outcome_name(outcome: str | None) -> str:
    """An attempt's outcome in the page's language (None: the call is in progress)."""
    if outcome is None:
        return _("Calling now")
    return {"confirmed": _("Confirmed (pressed 1)"), "transferred": _("To an agent (pressed 2)"),
            "heard": _("Heard, no key"), "hung_up": _("Hung up during the message"),
            "busy": _("Busy"), "no_answer": _("No answer"), "congested": _("Congestion"),
            "failed": _("Failed")}.get(outcome, outcome)


def outcome_label(outcome: str) -> str:
    """An outcome in a word or two, for a chart's bar."""
    return {"confirmed": _("Confirmed"), "transferred": _("To agent"), "heard": _("Heard"),
            "hung_up": _("Hung up"), "busy": _("Busy"), "no_answer": _("No answer"),
            "congested": _("Congestion"), "failed": _("Failed")}.get(outcome, outcome)


@bp.app_context_processor
def _names() -> dict[str, Any]:
    return dict(reminder_outcome_name=outcome_name)


def _filters() -> tuple[str, list[Any], dict[str, str], str | None]:
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    days, error = asked_days()
    start = days["from"]
    end = days["to"]
    outcome = request.args.get("outcome", "").strip()
    if outcome not in (*log.OUTCOMES, "open"):
        outcome = ""
    policy = request.args.get("policy", "").strip()[:32]
    clause, params = log.where(
        start=datetime.combine(start, datetime.min.time(), tz).timestamp() if start else None,
        end=datetime.combine(end + timedelta(days=1), datetime.min.time(), tz).timestamp()
        if end else None, outcome=outcome, policy=policy)
    form = {"from": start.isoformat() if start else "", "to": end.isoformat() if end else "",
            "outcome": outcome, "policy": policy}
    return clause, params, form, error


def _page(status: int = 200, form: dict[str, str] | None = None,
          error: str | None = None, error_field: str = "") -> ResponseReturnValue:
    clause, params, filters, filter_error = _filters()
    number = page_number()
    page, rows = read_page(store(), f"SELECT 1 FROM reminder_attempts {clause}",
                           f"SELECT * FROM reminder_attempts {clause}"
                           " ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?", params, number)
    audit.log("reminder.list", "", **filters, page=number, shown=len(rows))
    settings = rs.load(store())
    now = datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).replace(tzinfo=None)
    shut = closed(settings, now, store().read(holidays))
    if form is None:
        form = {k: str(v) for k, v in settings.as_dict().items()}
        form["enabled"] = "on" if settings.enabled else ""
        form["sms_after_calls"] = "on" if settings.sms_after_calls else ""
    return render_template(
        "reminders/index.html", rows=rows, page=page, filters=filters,
        filter_error=filter_error, form=form, error=error, error_field=error_field,
        field_name=field_name, outcomes=log.OUTCOMES, limits=rs.LIMITS, settings=settings,
        closed_now=why_closed(shut.kind, shut.detail) if shut else "",
        see_phone=permissions.can(g.user.role, "see_phone"), mask_phone=mask_phone), status


@bp.route("/", endpoint="index")
def index() -> ResponseReturnValue:
    return _page()


@bp.route("/settings", methods=["POST"], endpoint="save_settings")
def save_settings() -> ResponseReturnValue:
    form = {k: request.form.get(k, "").strip()[:20] for k in rs.FIELDS}
    try:
        settings = rs.check(form)
    except rs.SettingsError as exc:
        return _page(400, form=form, error_field=exc.field, error=_(
            "Not saved: %(field)s: %(reason)s", field=field_name(exc.field),
            reason=exc.message))
    before = rs.load(store())
    entry = audit.audit_row("reminder.settings", "reminder_settings",
                            before=before.as_dict(), after=settings.as_dict())
    by = audit.current_username()
    at = entry[0]

    def write(db: Any) -> None:
        rs.save(db, settings, by=by, at=at)
        audit.insert(db, entry)

    store().write(write)
    flash(_("Reminder settings saved: the next pass uses them."))
    return redirect(url_for("reminders.index")), 303


@bp.route("/run", methods=["POST"], endpoint="run_now")
def run_now() -> ResponseReturnValue:
    try:
        result = control().request("reminders-run")
    except ControlUnavailable:
        flash(_("The engine is not running: no reminder calls can be placed now."), "error")
        return redirect(url_for("reminders.index")), 303
    except ControlError as exc:
        flash(_("The engine refused: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("reminders.index")), 303
    audit.log("reminder.run", "", **result)
    if result.get("started"):
        flash(_("Reminder pass started: %(n)d policies to call.", n=result.get("due", 0)))
    else:
        flash(_("No reminder pass started: %(reason)s", reason=why_closed(
            result.get("why", ""), result.get("detail", ""), result.get("reason", ""))),
            "error")
    return redirect(url_for("reminders.index")), 303


def why_closed(why: str, detail: str, reason: str = "") -> str:
    """Why no reminder call starts now, in the page's language."""
    if why == "window":
        return _("now is outside the calling window %(window)s", window=detail)
    if why == "holiday":
        return _("today is a public holiday (%(name)s)", name=detail)
    if why == "running":
        return _("a reminder pass is already running")
    return reason


HEADER = ("保单号", "应缴日", "渠道", "第几次", "号码", "语言", "开始时间", "结束时间", "结果",
          "说明", "通话编号", "下次重试")


@bp.route("/export.<fmt>", endpoint="export")
def export(fmt: str) -> Response:
    """Every attempt the filters select (not only the page shown), as .csv or .xlsx."""
    if fmt not in ("csv", "xlsx"):
        abort(404)
    clause, params, filters, _error = _filters()
    see_phone = permissions.can(g.user.role, "see_phone")
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    audit.log("reminder.export", "", **filters, format=fmt)

    def when(ts: float | None) -> str:
        return "" if ts is None else datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")

    rows = [(r["policy_number"], r["due_date"], r["channel"], r["attempt"],
             r["number"] if see_phone else mask_phone(r["number"]), r["language"],
             when(r["started_at"]), when(r["ended_at"]), r["outcome"] or "open", r["detail"],
             r["call_id"] or "", when(r["next_retry_at"]))
            for r in store().query(f"SELECT * FROM reminder_attempts {clause}"
                                   " ORDER BY started_at DESC, id DESC", params)]
    return download(fmt, "reminder-attempts", "催缴记录", HEADER, rows)
