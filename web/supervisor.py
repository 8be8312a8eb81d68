"""The supervisor page: every seat's state with its time in state and pause reason, the
queues with their waiting callers, live (server-sent events relayed from the engine); the
figures of a date range (today unless chosen) from the ACD's records (``acd_entries``):
calls per seat, service level (answered within N seconds), abandon rate, average wait and
handle time; and the Erlang C staffing estimate per half hour of the week from the four
weeks up to the range's last day (:mod:`appliance.acd.staffing`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from appliance.acd import staffing
from appliance.control import ControlClient, ControlError, ControlUnavailable
from appliance.control.protocol import LISTEN_MODES
from web import audit
from web.console import control, relay, sse
from web.dates import date_range, day_bounds
from web.db import store

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")

DEFAULT_SERVICE_SECONDS = 20
#: outcomes that count as a call offered to the seats (shutdown is the box's, not theirs)
ANSWERED = ("answered", "callback-answered")


def today(now: float | None = None) -> tuple[float, float]:
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    day = datetime.fromtimestamp(now if now is not None else datetime.now(tz).timestamp(),
                                 tz).date()
    start = datetime.combine(day, datetime.min.time(), tz)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def figures(start: float, end: float, service_seconds: int) -> dict[str, Any]:
    """The day's figures over the entries that joined a queue in [start, end) and ended
    (callers still waiting and calls cut by a shutdown are left out)."""
    (totals,) = store().query(
        "SELECT count(*) AS offered,"
        " coalesce(sum(e.outcome IN ('answered', 'callback-answered')), 0) AS answered,"
        " coalesce(sum(e.outcome IN ('answered', 'callback-answered')"
        "              AND e.waited_seconds <= :sl), 0) AS within,"
        " coalesce(sum(e.outcome = 'abandoned'), 0) AS abandoned,"
        " avg(e.waited_seconds) AS avg_wait,"
        " avg(e.talk_seconds + coalesce(json_extract(q.config, '$.wrap_up'), 0))"
        "  AS avg_handle"
        " FROM acd_entries e LEFT JOIN acd_queues q ON q.name = e.queue"
        " WHERE e.joined_at >= :start AND e.joined_at < :end AND e.ended_at IS NOT NULL"
        # Calls an agent dialled (click-to-dial) are the seat's, not the queue's.
        " AND e.outcome NOT IN ('shutdown', 'dialled', 'dial-failed')",
        {"start": start, "end": end, "sl": service_seconds})
    offered = totals["offered"]
    per_seat = store().query(
        "SELECT e.answered_by AS seat, s.name, count(*) AS calls,"
        " avg(e.talk_seconds) AS avg_talk, sum(e.talk_seconds) AS talk,"
        " sum(e.waited_seconds <= :sl) AS within"
        " FROM acd_entries e LEFT JOIN acd_seats s ON s.id = e.answered_by"
        " WHERE e.joined_at >= :start AND e.joined_at < :end AND e.answered_by IS NOT NULL"
        " GROUP BY e.answered_by ORDER BY e.answered_by",
        {"start": start, "end": end, "sl": service_seconds})
    return dict(
        totals, per_seat=per_seat, service_seconds=service_seconds,
        service_level=totals["within"] / offered if offered else None,
        abandon_rate=totals["abandoned"] / offered if offered else None)


def asked_service_seconds() -> int:
    try:
        value = int(request.args.get("sl", DEFAULT_SERVICE_SECONDS))
    except ValueError:
        return DEFAULT_SERVICE_SECONDS
    return min(max(value, 1), 600)


# ---------------------------------------------- date range and staffing estimate (O1)

DEFAULT_TARGET_PERCENT = 80


def _target_level() -> float:
    try:
        value = int(request.args.get("target", DEFAULT_TARGET_PERCENT))
    except ValueError:
        return DEFAULT_TARGET_PERCENT / 100
    return min(max(value, 1), 99) / 100


@bp.route("/", endpoint="index")
def index() -> str:
    service_seconds = asked_service_seconds()
    start, end, error = date_range(1)
    t0, t1 = day_bounds(start, end)
    est = staffing.estimate(store(), t1, service_seconds, _target_level())
    try:
        client = control()
        seats, queues, down = client.request("seats"), client.request("queues"), False
        listening = listen_context(client, seats)
    except ControlUnavailable:
        seats, queues, down, listening = [], [], True, {}
    return render_template("supervisor/index.html", seats=seats, queues=queues, down=down,
                           day=figures(t0.timestamp(), t1.timestamp(), service_seconds),
                           period={"from": start.isoformat(), "to": end.isoformat()},
                           period_error=error, staffing=est, staffing_chart=staffing.chart(est),
                           **listening)


@bp.route("/events", endpoint="events")
def events() -> Response:
    """Seats and queues again after each change the engine reports."""

    def handle(client: ControlClient, kind: str, data: dict[str, Any]) -> Iterator[str]:
        if not kind.startswith("call-"):
            seats = client.request("seats")
            yield sse("live", {"html": render_template(
                "supervisor/live.html", seats=seats, queues=client.request("queues"),
                **listen_context(client, seats))})

    return relay(handle)


# ---------------------------------------------------------------------- listen-in, whisper
def listen_context(client: ControlClient, seats: list[dict[str, Any]]) -> dict[str, Any]:
    """What the listen-in controls need: the listen-ins in progress, and the phone to ring
    by default (the seat this supervisor is logged in to at the console, if any)."""
    mine = [s["id"] for s in seats if s["agent"] == g.user.username
            and s["state"] != "logged-out"]
    return {"monitors": client.request("monitors"), "my_phone": mine[0] if mine else "",
            "listen_modes": LISTEN_MODES}


def _back(message: str, error: bool = False) -> BaseResponse:
    flash(message, "error" if error else "message")
    return redirect(url_for("supervisor.index"))


def _listen_request(op: str, **fields: str) -> dict[str, Any] | BaseResponse:
    try:
        result: dict[str, Any] = control().request(op, **fields)
    except ControlUnavailable:
        return _back(_("The call engine is not running; ask the administrator."), True)
    except ControlError as exc:
        return _back(_("The engine refused: %(why)s", why=str(exc)), True)
    return result


@bp.route("/listen", methods=["POST"], endpoint="listen")
def listen() -> BaseResponse:
    """Ring the supervisor's phone and listen in (or whisper) on a seat's call."""
    seat, phone = request.form.get("seat", "").strip(), request.form.get("phone", "").strip()
    mode = request.form.get("mode", "")
    if mode not in LISTEN_MODES:
        return _back(_("Choose listen or whisper."), True)
    if not seat or not phone:
        return _back(_("Choose the seat to listen to and the phone to ring."), True)
    result = _listen_request("listen", seat=seat, phone=phone, mode=mode,
                             supervisor=g.user.username)
    if isinstance(result, BaseResponse):
        return result
    audit.log("supervisor.listen", seat, mode=mode, phone=phone, monitor=result["monitor"])
    if mode == "whisper":
        return _back(_("The phone of seat %(phone)s rings: answer it to whisper to the agent.",
                       phone=phone))
    return _back(_("The phone of seat %(phone)s rings: answer it to listen in.", phone=phone))


@bp.route("/listen/mode", methods=["POST"], endpoint="listen_mode")
def listen_mode() -> BaseResponse:
    monitor, mode = request.form.get("monitor", "").strip(), request.form.get("mode", "")
    if mode not in LISTEN_MODES:
        return _back(_("Choose listen or whisper."), True)
    result = _listen_request("listen-mode", monitor=monitor, mode=mode)
    if isinstance(result, BaseResponse):
        return result
    audit.log("supervisor.listen_mode", result["seat"], mode=mode, monitor=monitor)
    return _back(_("Now: %(mode)s", mode=mode_name(mode)))


@bp.route("/listen/stop", methods=["POST"], endpoint="listen_stop")
def listen_stop() -> BaseResponse:
    monitor = request.form.get("monitor", "").strip()
    result = _listen_request("listen-stop", monitor=monitor)
    if isinstance(result, BaseResponse):
        return result
    audit.log("supervisor.listen_stop", result["seat"], monitor=monitor)
    return _back(_("You left the call; it goes on."))


def mode_name(mode: str) -> str:
    return {"listen": _("Listen silently"), "whisper": _("Whisper to the agent")}.get(mode, mode)


@bp.app_context_processor
def _listen_names() -> dict[str, Any]:
    return {"mode_name": mode_name}


__all__ = ["bp", "figures", "listen_context", "mode_name", "today"]
