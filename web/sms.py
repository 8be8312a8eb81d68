"""SMS (短信): the messages sent and received through the box's GSM modem, filtered by
direction, status, number and date, with export of the whole result; and the send form,
for a number typed in or for a customer (from the customer's page: the server takes the
number from the book, so an agent sends without seeing it). The web cannot reach the
modem: a sent message is a ``queued`` row, committed with its audit row, which the
engine's SMS service sends; the page says why nothing goes out when no modem is enabled
or the engine is not running. Numbers are shown in full only with ``see_phone``; every
list, export and send is audited.
"""

from __future__ import annotations

import time
from typing import Any, Final
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
from flask_babel import pgettext

from appliance.box.settings import load_modem
from appliance.sms import messages
from appliance.sms.service import HEARTBEAT
from drivers.gsm.sms import MAX_PARTS, TextError, check_number, check_text, count_parts
from web import audit, permissions
from web.dates import optional_days, stamp
from web.db import mask_phone, prefix_range, store
from web.paging import page_number, read_page
from web.sheets import download

bp = Blueprint("sms", __name__, url_prefix="/sms")

MAX_TEXT: Final = 1000  # characters a form may carry (the parts limit says the rest)


def _filters() -> tuple[str, list[Any], dict[str, str], str | None]:
    days, bounds, error = optional_days("created_at")
    where: list[str] = list(days)
    params: list[Any] = list(bounds)
    direction = request.args.get("direction", "")
    if direction in messages.DIRECTIONS:
        where.append("direction = ?")
        params.append(direction)
    status = request.args.get("status", "")
    if status in messages.STATUSES:
        where.append("status = ?")
        params.append(status)
    customer = request.args.get("customer", "")
    if customer.isdigit():  # a customer's messages (their page links here, no number shown)
        where.append("customer_id = ?")
        params.append(int(customer))
    raw = request.args.get("number", "")
    number = "".join(c for c in raw if c not in " -")[:32]
    if number and not all(c.isdigit() or c == "+" for c in number):
        error = _("A number has only digits and a leading +.")
        where.append("0")
        number = raw[:32]
    elif number:
        # As typed, or as the network writes a mainland number (+86...).
        candidates = {number, messages.national(number)}
        if not number.startswith("+"):
            candidates.add("+86" + number)
        ors = []
        for c in sorted(candidates):
            lo, hi = prefix_range(c)
            ors.append("(number >= ? AND number < ?)")
            params += [lo, hi]
        where.append("(" + " OR ".join(ors) + ")")
    form = {"direction": direction if direction in messages.DIRECTIONS else "",
            "status": status if status in messages.STATUSES else "",
            "from": request.args.get("from", "")[:10], "to": request.args.get("to", "")[:10],
            "number": number, "customer": customer if customer.isdigit() else ""}
    return ("WHERE " + " AND ".join(where)) if where else "", params, form, error


def status_name(status: str) -> str:
    return {"queued": _("Queued"), "sending": _("Sending"), "sent": _("Sent"),
            "failed": _("Failed"), "received": pgettext("sms", "Received")}.get(status, status)


def direction_name(direction: str) -> str:
    return {"in": pgettext("sms", "Incoming"), "out": pgettext("sms", "Outgoing")}.get(
        direction, direction)


def modem_notice() -> str:
    """Why queued messages are not going out, in words; '' when the modem is ready."""
    modem = load_modem(store())
    if modem is None or not modem.device:
        return _("No GSM modem is configured: messages stay queued until the admin sets one"
                 " up on the Lines page.")
    if not modem.enabled:
        return _("The GSM modem (%(device)s) is disabled: messages stay queued until the "
                 "admin enables it on the Lines page.", device=modem.device)
    state = messages.service_state(store())
    if state is None or time.time() - state["updated_at"] > 3 * HEARTBEAT:
        return _("The engine is not running (its SMS service has not reported for a while):"
                 " messages stay queued until it runs.")
    if state["state"] == "error":
        return _("The GSM modem does not work: %(why)s. Messages stay queued and are sent "
                 "once it answers.", why=state["detail"])
    if state["state"] == "off":
        return _("The SMS service has let the modem go (%(why)s): messages stay queued.",
                 why=state["detail"])
    return ""


@bp.app_context_processor
def _names() -> dict[str, Any]:
    return dict(sms_status_name=status_name, sms_direction_name=direction_name)


def _shown(number: str, see_phone: bool) -> str:
    return number if see_phone else mask_phone(number)


@bp.route("/", endpoint="list")
def sms_list() -> str:
    clause, params, form, error = _filters()
    number = page_number()
    page, rows = read_page(store(), f"SELECT 1 FROM sms_messages {clause}",
                           f"SELECT * FROM sms_messages {clause} ORDER BY id DESC"
                           " LIMIT ? OFFSET ?", params, number)
    audit.log("sms.list", "", **form, page=number, shown=len(rows))
    see_phone = permissions.can(g.user.role, "see_phone")
    return render_template("sms/list.html", rows=rows, form=form, error=error, page=page,
                           see_phone=see_phone, shown=_shown, notice=modem_notice(),
                           statuses=messages.STATUSES, directions=messages.DIRECTIONS,
                           names=_customer_names([r["customer_id"] for r in rows]))


def _customer_names(ids: list[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = store().query(f"SELECT id, name FROM customers WHERE id IN "
                         f"({', '.join('?' * len(wanted))})", wanted)
    return {r["id"]: r["name"] for r in rows}


HEADER: Final = ("编号", "方向", "号码", "客户编号", "内容", "状态", "原因", "条数", "创建时间",
                 "发送/接收时间", "发送人")


@bp.route("/export", endpoint="export")
def export() -> Response:
    clause, params, form, _error = _filters()
    see_phone = permissions.can(g.user.role, "see_phone")
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    audit.log("sms.export", "", **form)

    def when(ts: float | None) -> str:
        return stamp(ts, tz)

    db = store()  # the generator runs after the request context has gone

    def rows() -> Any:
        # Keyset pages over id, newest first: every matching message, in short reads.
        last: int | None = None
        while True:
            where, args = clause, list(params)
            if last is not None:
                where = f"{clause} AND id < ?" if clause else "WHERE id < ?"
                args.append(last)
            chunk = db.query(f"SELECT * FROM sms_messages {where} ORDER BY id DESC"
                             " LIMIT 5000", args)
            for r in chunk:
                yield (r["id"], r["direction"], _shown(r["number"], see_phone),
                       r["customer_id"] or "", r["text"], r["status"], r["error"],
                       r["parts"], when(r["created_at"]), when(r["sent_at"]),
                       r["created_by"])
            if len(chunk) < 5000:
                return
            last = chunk[-1]["id"]

    return download("csv", "sms", "", HEADER, rows())


def _customer(raw: str) -> dict[str, Any] | None:
    if not raw:
        return None
    if not raw.isdigit():
        abort(404)
    rows = store().query("SELECT id, name, phone FROM customers WHERE id = ?", [int(raw)])
    if not rows:
        abort(404)
    return rows[0]


def _form_page(form: dict[str, str], customer: dict[str, Any] | None, error: str = "",
               status: int = 200) -> ResponseReturnValue:
    see_phone = permissions.can(g.user.role, "see_phone")
    return render_template("sms/send.html", form=form, customer=customer, error=error,
                           customer_phone=_shown(customer["phone"] or "", see_phone)
                           if customer else "", notice=modem_notice(),
                           max_parts=MAX_PARTS, max_text=MAX_TEXT,
                           parts=count_parts(form.get("text", "")[:MAX_TEXT])), status


@bp.route("/send", endpoint="compose")
def compose() -> ResponseReturnValue:
    """The send form, for ``?customer=`` (their number from the book) or a number."""
    customer = _customer(request.args.get("customer", ""))
    if customer is not None:  # the customer's name and number on the page
        audit.log("sms.compose", str(customer["id"]))
    return _form_page({"number": "", "text": ""}, customer)


@bp.route("/send", methods=["POST"], endpoint="send")
def send() -> ResponseReturnValue:
    customer = _customer(request.form.get("customer", ""))
    text = request.form.get("text", "").replace("\r\n", "\n")
    form = {"number": request.form.get("number", "").strip()[:32], "text": text[:MAX_TEXT]}
    if customer is not None:
        number = customer["phone"] or ""
        if not number:
            return _form_page(form, customer, _("The customer has no phone number."), 409)
    else:
        number = form["number"]
        if not number:
            return _form_page(form, None, _("Enter the number to send to."), 400)
    if len(text) > MAX_TEXT:
        return _form_page(form, customer, _("The text is longer than %(n)d characters.",
                                            n=MAX_TEXT), 400)
    try:
        number = check_number(number)
        check_text(text)
    except TextError as exc:
        return _form_page(form, customer, _text_error(exc), 400)
    see_phone = permissions.can(g.user.role, "see_phone")
    by, now = audit.current_username(), time.time()
    row = audit.audit_row("sms.send", "", customer=customer["id"] if customer else None,
                          number=_shown(number, see_phone), parts=count_parts(text),
                          chars=len(text))

    def write(db: Any) -> int:
        message_id = messages.queue(db, number, text, by=by, now=now,
                                    customer_id=customer["id"] if customer else
                                    messages.customer_for(db, number))
        row[5] = str(message_id)  # the audit row's target: the message it queued
        audit.insert(db, row)
        return message_id

    try:
        message_id = store().write(write)
    except TextError as exc:
        return _form_page(form, customer, _text_error(exc), 400)
    flash(_("Message %(id)d queued; the engine sends it through the GSM modem.",
            id=message_id))
    return redirect(url_for("sms.list"), 303)


def _text_error(exc: TextError) -> str:
    """The driver's reason, in the page's language where it is a common one."""
    why = str(exc)
    if why == "the text is empty":
        return _("Write the text of the message.")
    if "is not a phone number" in why:
        return _("That is not a phone number: digits only, optionally a leading +.")
    if "emoji" in why:
        return _("The text has a character SMS cannot carry (such as an emoji): %(why)s",
                 why=why)
    if "more than" in why:
        return _("The text is too long: at most %(n)d messages.", n=MAX_PARTS)
    return why


__all__ = ["bp", "direction_name", "modem_notice", "status_name"]
