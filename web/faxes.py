"""The fax log (传真记录): every attempt with its document, destination, pages sent, bit
rate, duration and result with spandsp's reason in words; filters by date and result; a
PNG preview of a logged document, rendered again from its kind and parameters by the fax
module's renderer (cached under the data folder); and "resend", which queues a request
for the engine (the web process has no line to dial on): see :mod:`appliance.fax.requests`.
"""

from __future__ import annotations

import io
import os
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from appliance.fax import log as faxlog
from appliance.fax.render import FaxDocumentError, preview_png
from appliance.fax.requests import request_resend, requests_for
from appliance.fax.send import render_document
from web import audit, permissions
from web.db import mask_phone, store
from web.paging import page_number, read_page

bp = Blueprint("faxes", __name__, url_prefix="/faxes")

RESULTS = ("ok", "failed", "busy", "no-answer", "congestion", "no-line")
MAX_PREVIEW_PAGE = 50


def result_name(result: str) -> str:
    return {"ok": _("Sent"), "failed": _("Failed"), "busy": _("Busy"),
            "no-answer": _("No answer"), "congestion": _("Congestion or no such number"),
            "no-line": _("No free line")}.get(result, result)


def document_name(kind: str) -> str:
    return {"policy_summary": _("Policy summary"), "rates": _("Premium quotation"),
            "claim_form": _("Claim form"), "procedures": _("Claim and service procedures"),
            "file": _("File")}.get(kind, kind)


def mode_name(mode: str) -> str:
    return {"same-call": _("On the caller's call"), "poll": _("Polled by the caller"),
            "callback": _("Called back")}.get(mode, mode)


def request_status_name(status: str) -> str:
    return {"queued": _("Queued for the engine"), "sending": _("Sending"),
            "sent": _("Sent"), "failed": _("Failed")}.get(status, status)


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _filters() -> tuple[str, list[Any], dict[str, str]]:
    where: list[str] = []
    params: list[Any] = []
    start, end = _day(request.args.get("from", "")), _day(request.args.get("to", ""))
    result = request.args.get("result", "")
    if start:
        where.append("started_at >= ?")
        params.append(datetime.combine(start, datetime.min.time(), _tz()).timestamp())
    if end:
        where.append("started_at < ?")
        params.append(datetime.combine(end + timedelta(days=1), datetime.min.time(),
                                       _tz()).timestamp())
    if result in RESULTS:
        where.append("result = ?")
        params.append(result)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    return clause, params, {"from": start.isoformat() if start else "",
                            "to": end.isoformat() if end else "",
                            "result": result if result in RESULTS else ""}


@bp.route("/", endpoint="list")
def fax_list() -> ResponseReturnValue:
    clause, params, form = _filters()
    page, rows = read_page(store(), f"SELECT 1 FROM faxes {clause}",
                           f"SELECT * FROM faxes {clause} ORDER BY started_at DESC, id DESC"
                           " LIMIT ? OFFSET ?", params, page_number())
    see_phone = permissions.can(g.user.role, "see_phone")
    return render_template("faxes/list.html", rows=rows, page=page, form=form,
                           results=RESULTS, result_name=result_name,
                           document_name=document_name, mode_name=mode_name,
                           request_status_name=request_status_name,
                           requests=requests_for(store(), 20), see_phone=see_phone,
                           mask_phone=mask_phone)


def _cache() -> Path:
    folder = Path(current_app.config["DATA_DIR"]) / "fax_preview"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _document_tiff(row: dict[str, Any]) -> Path:
    """The document of a logged fax as a TIFF: rendered again from its kind and parameters
    (dated the day it was sent), or the logged file for a plain TIFF sent as it was."""
    if row["document"] == "file":
        path = Path(row["tiff"])
        if not path.is_file():
            abort(404)
        return path
    tiff = _cache() / f"fax{row['id']}.tiff"
    if not tiff.exists():
        sent_on = datetime.fromtimestamp(row["started_at"], _tz()).date()
        render_document(store(), row["document"], row["params"], tiff, on=sent_on)
    return tiff


@bp.route("/<int:fax_id>/preview.png")
def preview(fax_id: int) -> ResponseReturnValue:
    try:
        number = int(request.args.get("page", "1"))
    except ValueError:
        abort(404)
    if not 1 <= number <= MAX_PREVIEW_PAGE:
        abort(404)
    try:
        row = faxlog.get(store(), fax_id)
    except LookupError:
        abort(404)
    png = _cache() / f"fax{fax_id}-p{number}.png"
    if not png.exists():
        try:
            tiff = _document_tiff(row)
            part = png.with_name(f"{png.name}.{os.getpid()}.part")
            preview_png(tiff, part, page=number, scale=1.0)  # full fax width, 1728 px
            os.replace(part, png)
        except (FaxDocumentError, ValueError, KeyError, OSError):
            # A page it does not have, or a document the book can no longer build.
            abort(404)
    audit.log("fax.preview", str(fax_id), page=number)
    return send_file(io.BytesIO(png.read_bytes()), mimetype="image/png", max_age=0)


@bp.route("/<int:fax_id>/resend", methods=["POST"])
def resend(fax_id: int) -> ResponseReturnValue:
    number = request.form.get("number", "").strip()[:32] or None
    try:
        request_id = request_resend(store(), fax_id, requested_by=g.user.username,
                                    now=datetime.now(_tz()).timestamp(), number=number)
    except LookupError:
        abort(404)
    except ValueError as exc:
        flash(_("Not queued: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("faxes.list")), 303
    audit.log("fax.resend", str(fax_id), request=request_id, number=number or "")
    flash(_("Resend queued (request %(id)d): the engine dials within a few seconds; its "
            "attempts appear in the log.", id=request_id))
    return redirect(url_for("faxes.list")), 303
