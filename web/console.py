"""The seat console: an agent logs in to a seat, goes ready or not ready with a reason,
sees the queue, and when a call rings the seat gets the screen pop (the caller's customer
record and policies, last calls, open claims); then hangs up and gives the call a wrap-up
code and note. Every action goes to the engine through its control API; the live parts
are server-sent events relayed from the engine's event stream. The engine holds the calls,
so reloading this page (or restarting the web) drops none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from appliance.control import (
    AGENT_REASONS,
    WRAP_UP_CODES,
    ControlClient,
    ControlError,
    ControlUnavailable,
)
from appliance.control.protocol import TRANSFER_MODES, TRANSFER_TARGETS
from web import audit, permissions, screenpop
from web.db import mask_phone, store

bp = Blueprint("console", __name__, url_prefix="/console")

#: seat states with a call to show (ringing, in it, or wrapping it up)
BUSY = frozenset({"ringing", "talking", "wrap-up"})
QUEUE_EVENTS = frozenset({"queue-join", "queue-leave", "offer", "connected",
                          "callback-booked"})
#: a seat's hold and transfer steps, shown on its own page
CALL_EVENTS = frozenset({"hold", "unhold", "hold-reminder", "transfer"})


def control() -> ControlClient:
    return ControlClient.for_data(Path(current_app.config["DATA_DIR"]))


def state_name(state: str) -> str:
    return {"logged-out": _("Not logged in"), "ready": _("Ready"), "not-ready": _("Not ready"),
            "ringing": _("Ringing"), "talking": _("Talking"), "wrap-up": _("Wrap-up"),
            }.get(state, state)


def reason_name(reason: str) -> str:
    return {"break": _("Break"), "lunch": _("Lunch"), "meeting": _("Meeting"),
            "training": _("Training"), "after-call-work": _("After-call work"),
            "other": _("Other"), "no-answer": _("Did not answer"),
            "unreachable": _("Phone unreachable")}.get(reason, reason)


def wrap_up_name(code: str) -> str:
    return {"enquiry": _("Enquiry"), "payment": _("Premium payment"), "claim": _("Claim"),
            "change": _("Policy change"), "complaint": _("Complaint"), "sales": _("Sales"),
            "other": _("Other")}.get(code, code)


def phone(number: str | None) -> str:
    """A number as this user may see it (in full only with ``see_phone``)."""
    if g.get("user") is not None and permissions.can(g.user.role, "see_phone"):
        return number or ""
    return mask_phone(number)


@bp.app_context_processor
def _names() -> dict[str, Any]:
    return dict(state_name=state_name, reason_name=reason_name, wrap_up_name=wrap_up_name,
                phone=phone, transfer_target_name=transfer_target_name)


def _my_seat(seats: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The seat this user is logged in to, as the engine knows it: after a web restart or
    in a new browser the agent finds their seat (and its call) again."""
    seat_id = session.get("seat")
    mine = [s for s in seats if s["agent"] == g.user.username
            and s["state"] != "logged-out"]
    for seat in sorted(mine, key=lambda s: s["id"] != seat_id):
        session["seat"] = seat["id"]
        return seat
    return None


@bp.route("/", endpoint="index")
def index() -> str:
    try:
        client = control()
        seats, queues = client.request("seats"), client.request("queues")
    except ControlUnavailable:
        return render_template("console/index.html", down=True, seat=None, seats=[],
                               queues=[])
    seat = _my_seat(seats)
    if seat is None:
        session.pop("seat", None)  # logged out meanwhile (elsewhere, or by a restart)
    pop = None
    if seat is not None and seat["offer"] and seat["state"] in BUSY:
        # Opened mid-call (reloaded, or the web restarted): the screen pop again.
        pop = Markup(_pop_html(seat["offer"]))
        audit.log("customer.screen_pop", seat["offer"]["call"], seat=seat["id"])
    return render_template("console/index.html", down=False, seat=seat, seats=seats,
                           queues=queues, reasons=AGENT_REASONS, codes=WRAP_UP_CODES,
                           pop=pop, transfer_targets=TRANSFER_TARGETS)


def _done(message: str, result: Any = None) -> BaseResponse:
    """The answer to an action: JSON to the page's script, else back to the page."""
    if request.accept_mimetypes.best == "application/json":
        return Response(json.dumps({"ok": True, "message": message, "result": result},
                                   ensure_ascii=False), mimetype="application/json")
    flash(message)
    return redirect(url_for("console.index"))


def _refused(message: str, status: int = 409) -> BaseResponse:
    if request.accept_mimetypes.best == "application/json":
        return Response(json.dumps({"ok": False, "message": message}, ensure_ascii=False),
                        status=status, mimetype="application/json")
    flash(message, "error")
    return redirect(url_for("console.index"))


def _act(op: str, **fields: Any) -> Any:
    """``op`` for this agent's seat; raises what the engine refused."""
    return control().request(op, seat=session["seat"], **fields)


def _engine_down() -> BaseResponse:
    return _refused(_("The call engine is not running; ask the administrator."), 503)


@bp.route("/seat", methods=["POST"], endpoint="seat_login")
def seat_login() -> BaseResponse:
    seat_id = request.form.get("seat", "").strip()
    try:
        control().request("login", seat=seat_id, agent=g.user.username)
    except ControlUnavailable:
        return _engine_down()
    except ControlError as exc:
        return _refused(_("Could not log in to the seat: %(why)s", why=str(exc)))
    session["seat"] = seat_id
    audit.log("seat.login", seat_id)
    return _done(_("You are logged in to seat %(seat)s and ready.", seat=seat_id))


def _need_seat() -> BaseResponse | None:
    if not session.get("seat"):
        return _refused(_("Log in to a seat first."))
    return None


@bp.route("/seat/logout", methods=["POST"], endpoint="seat_logout")
def seat_logout() -> BaseResponse:
    if (refused := _need_seat()) is not None:
        return refused
    try:
        _act("logout")
    except ControlUnavailable:
        return _engine_down()
    except ControlError as exc:
        return _refused(_("Could not log out: %(why)s", why=str(exc)))
    audit.log("seat.logout", session.pop("seat"))
    return _done(_("You are logged out of the seat."))


@bp.route("/state", methods=["POST"], endpoint="state")
def set_state() -> BaseResponse:
    if (refused := _need_seat()) is not None:
        return refused
    state = request.form.get("state", "")
    reason = request.form.get("reason", "") if state == "not-ready" else ""
    if state == "not-ready" and reason not in AGENT_REASONS:
        return _refused(_("Choose a reason for not ready."), 400)
    try:
        view = _act("set-state", state=state, reason=reason)
    except ControlUnavailable:
        return _engine_down()
    except ControlError as exc:
        return _refused(_("Could not change the state: %(why)s", why=str(exc)))
    return _done(_("Now: %(state)s", state=state_name(view["state"])), view)


@bp.route("/hangup", methods=["POST"], endpoint="hangup")
def hangup() -> BaseResponse:
    if (refused := _need_seat()) is not None:
        return refused
    try:
        view = _act("hangup")
    except ControlUnavailable:
        return _engine_down()
    except ControlError as exc:
        return _refused(_("Could not hang up: %(why)s", why=str(exc)))
    audit.log("call.hangup", session["seat"])
    return _done(_("Call ended."), view)


@bp.route("/wrap-up", methods=["POST"], endpoint="wrap_up")
def wrap_up() -> BaseResponse:
    if (refused := _need_seat()) is not None:
        return refused
    call = request.form.get("call", "").strip()
    code = request.form.get("code", "")
    note = request.form.get("note", "")
    if not call:
        return _refused(_("There is no call to wrap up yet."), 400)
    if code not in WRAP_UP_CODES:
        return _refused(_("Choose a wrap-up code."), 400)
    if len(note) > 500:
        return _refused(_("The note is too long: at most 500 characters."), 400)
    try:
        result = _act("wrap-up", call=call, code=code, note=note)
    except ControlUnavailable:
        return _engine_down()
    except ControlError as exc:
        return _refused(_("Could not save the wrap-up: %(why)s", why=str(exc)))
    audit.log("call.wrap_up", call, code=code)
    return _done(_("Wrap-up saved: %(code)s", code=wrap_up_name(code)), result)


# ---------------------------------------------------------------------- hold and transfers
def transfer_target_name(to: str) -> str:
    return {"seat": _("Seat"), "queue": _("Queue"), "number": _("Outside number")}.get(to, to)


def transfer_step_name(step: str) -> str:
    return {"started": _("ringing the target"), "answered": _("the target answered"),
            "no-answer": _("no answer"), "requeued": _("back at the front of the queue"),
            "completed": _("transferred"), "returned": _("back to the caller"),
            "target-hung-up": _("the target hung up: back to the caller"),
            "caller-hung-up": _("the caller hung up"), "conference": _("3-way conference"),
            }.get(step, step)


def _call_control(op: str, action: str, done: str, failed: str,
                  **fields: Any) -> BaseResponse:
    """One of the agent's call controls for this seat, audited when the engine did it."""
    if (refused := _need_seat()) is not None:
        return refused
    try:
        result = _act(op, **fields)
    except ControlUnavailable:
        return _engine_down()
    except ControlError as exc:
        return _refused(_("%(what)s: %(why)s", what=failed, why=str(exc)))
    audit.log(action, session["seat"], **{f"transfer_{k}": v for k, v in fields.items()})
    return _done(done, result)


@bp.route("/hold", methods=["POST"], endpoint="hold")
def hold() -> BaseResponse:
    return _call_control("hold", "call.hold", _("The caller is on hold."),
                         _("Could not hold the call"))


@bp.route("/unhold", methods=["POST"], endpoint="unhold")
def unhold() -> BaseResponse:
    return _call_control("unhold", "call.unhold", _("Back to the caller."),
                         _("Could not take the call off hold"))


@bp.route("/transfer", methods=["POST"], endpoint="transfer")
def transfer() -> BaseResponse:
    to = request.form.get("to", "")
    target = request.form.get("target", "").strip()
    mode = request.form.get("mode", "blind")
    if to not in TRANSFER_TARGETS:
        return _refused(_("Choose what to transfer to: a seat, a queue or an outside "
                          "number."), 400)
    if not target:
        return _refused(_("Enter the seat, queue or number to transfer to."), 400)
    if mode not in TRANSFER_MODES:
        return _refused(_("Choose a blind or a consult transfer."), 400)
    done = (_("Consulting %(target)s; the caller is on hold.", target=target)
            if mode == "consult" else _("Transferring to %(target)s.", target=target))
    return _call_control("transfer", "call.transfer", done, _("Could not transfer"),
                         to=to, target=target, mode=mode)


@bp.route("/consult/complete", methods=["POST"], endpoint="consult_complete")
def consult_complete() -> BaseResponse:
    return _call_control("consult-complete", "call.transfer_complete",
                         _("Transferred: the caller is with the target."),
                         _("Could not complete the transfer"))


@bp.route("/consult/return", methods=["POST"], endpoint="consult_return")
def consult_return() -> BaseResponse:
    return _call_control("consult-return", "call.transfer_return", _("Back to the caller."),
                         _("Could not return to the caller"))


@bp.route("/conference", methods=["POST"], endpoint="conference")
def conference() -> BaseResponse:
    return _call_control("conference", "call.conference",
                         _("3-way conference: the caller, you and the target."),
                         _("Could not start the conference"))


def _call_event(kind: str, data: dict[str, Any]) -> Iterator[str]:
    """What this seat's page shows of a hold or transfer step (a reminder stands out)."""
    if kind == "hold":
        yield sse("call", {"state": "held", "text": _("The caller is on hold.")})
    elif kind == "unhold":
        yield sse("call", {"state": "talking", "text": _("Back to the caller.")})
    elif kind == "hold-reminder":
        yield sse("call", {"state": "held", "reminder": True, "text": _(
            "The caller has been on hold for %(seconds)d s.",
            seconds=round(data["held_seconds"]))})
    elif kind == "transfer":
        target = phone(data["target"]) if data["to"] == "number" else data["target"]
        yield sse("call", {"state": "transfer", "step": data["step"], "text": _(
            "Transfer to %(to)s %(target)s: %(step)s", to=transfer_target_name(data["to"]),
            target=target, step=transfer_step_name(data["step"]))})


def sse(kind: str, payload: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


class EndStream(Exception):
    """Raised by a relay handler: this page's stream ends here."""


Handler = Callable[[ControlClient, str, dict[str, Any]], Iterator[str]]


def relay(handle: Handler) -> Response:
    """A server-sent event stream of what ``handle(client, kind, data)`` makes of each
    engine event; comments keep it alive (and find a closed page out), a stopped engine
    is said once and the browser reconnects by itself."""

    def stream() -> Iterator[str]:
        try:
            client = control()
            feed = client.follow()  # subscribed from here on
        except ControlUnavailable:
            yield sse("down", {"message": _("The call engine is not running.")})
            return
        with feed:
            yield "retry: 2000\n\n"
            try:
                for event in feed:
                    if event is None:
                        yield ": still here\n\n"
                        continue
                    yield from handle(client, event["event"], event["data"])
            except ControlUnavailable:
                yield sse("down", {"message": _("The call engine is not running.")})
            except EndStream:
                return

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.route("/events", endpoint="events")
def events() -> Response:
    """This agent's live feed: its seat's state, the queue, and the screen pop of each call
    offered to its seat, relayed from the engine's event stream."""
    seat_id = session.get("seat", "")
    username = g.user.username
    current = {"call": ""}

    def handle(client: ControlClient, kind: str, data: dict[str, Any]) -> Iterator[str]:
        if kind == "offer" and seat_id in data["seats"]:
            current["call"] = data["call"]
            yield sse("pop", {"call": data["call"], "at": data["at"],
                              "html": _pop_html(data)})
            audit.log("customer.screen_pop", data["call"], seat=seat_id)
        elif kind == "seat" and data["seat"] == seat_id:
            if data["agent"] != username and data["state"] != "logged-out":
                raise EndStream  # someone else has the seat now
            yield sse("seat", {"state": data["state"], "reason": data["reason"],
                               "label": _seat_label(data["state"], data["reason"])})
        elif kind == "connected" and data["seat"] == seat_id:
            yield sse("connected", {"call": data["call"]})
        elif kind == "dial" and data["seat"] == seat_id:
            yield sse("dial", dial_event(data))
        elif kind == "call-ended" and data["call"] == current["call"]:
            yield sse("ended", {"call": data["call"]})
        elif kind in CALL_EVENTS and data["seat"] == seat_id:
            yield from _call_event(kind, data)
        if kind in QUEUE_EVENTS:
            yield sse("queue", {"html": render_template(
                "console/queue.html", queues=client.request("queues"))})

    return relay(handle)


def _seat_label(state: str, reason: str) -> str:
    label = state_name(state)
    return f"{label}（{reason_name(reason)}）" if state == "not-ready" and reason else label


def _pop_html(offer: dict[str, Any]) -> str:
    found = screenpop.find(store(), offer.get("caller", ""), offer.get("policy", ""))
    return render_template("console/pop.html", offer=offer, **found)


# ---------------------------------------------------------------------- click-to-dial
#: the columns of a customer's numbers a page may offer to dial; the browser sends the
#: column's name (and the customer's id), never the number
PHONE_KINDS = ("phone",)


def customer_phones(customer: dict[str, Any]) -> list[dict[str, str]]:
    """Each number the customer has: its kind and how this user may see it."""
    return [{"kind": kind, "shown": phone(customer[kind])} for kind in PHONE_KINDS
            if customer.get(kind)]


@bp.app_context_processor
def _dial_names() -> dict[str, Any]:
    return {"customer_phones": customer_phones}


def dial_event(data: dict[str, Any]) -> dict[str, Any]:
    """A ``dial`` engine event as this agent's page gets it (the engine's has no number)."""
    return {"dial": data["dial"], "action": data["action"], "call": data.get("call", "")}


@bp.route("/dial", methods=["POST"], endpoint="dial")
def dial() -> BaseResponse:
    """Click-to-dial: ring this agent's seat, then the customer's number, which the server
    looks up and never sends to the page."""
    if (refused := _need_seat()) is not None:
        return refused
    customer_id = request.form.get("customer", "").strip()
    kind = request.form.get("phone", "")
    if not customer_id.isdigit():
        return _refused(_("Which customer? The request named none."), 400)
    if kind not in PHONE_KINDS:
        return _refused(_("Which number? Expected one of: %(kinds)s.",
                          kinds=", ".join(PHONE_KINDS)), 400)
    rows = store().query(f"SELECT id, name, {kind} AS number FROM customers WHERE id = ?",
                         [int(customer_id)])
    if not rows:
        return _refused(_("There is no customer %(id)s.", id=customer_id), 404)
    if not rows[0]["number"]:
        return _refused(_("The customer has no number of this kind."), 409)
    try:
        result = _act("dial", number=rows[0]["number"], customer=customer_id)
    except ControlUnavailable:
        return _engine_down()
    except ControlError as exc:
        return _refused(_("Could not dial: %(why)s", why=str(exc)))
    audit.log("call.dial", customer_id, seat=session["seat"], phone=kind, dial=result["dial"])
    return _done(_("Your phone rings first; when you answer, %(name)s is called.",
                   name=rows[0]["name"]), {"dial": result["dial"]})


__all__ = ["PHONE_KINDS", "bp", "customer_phones", "dial_event", "reason_name", "relay",
           "sse", "state_name", "wrap_up_name"]
