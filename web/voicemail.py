"""Voicemail triage (语音信箱): the boxes, each box's inbox by state, one message with its
envelope, its recording and its audit trail, and the triage actions; the category list
with each category's response target; a salesperson's own list with their notifications.

Everything goes through :mod:`appliance.voicemail` (the service writes its own audit trail
in the same transaction as each change) and every action, playback and download is also a
row of the web audit log. Who sees what, beyond the permission matrix:

- seat agents handle the queue boxes only (the general box and salespeople's boxes are
  the supervisors');
- a salesperson account is tied to the salesperson whose code (业务员工号) is its
  username: it sees only the messages assigned to that code, and its notifications;
- callers' numbers in full only for the roles with ``see_phone``.

Recordings are served from the recordings folder only: a stored path that resolves
anywhere else is refused, so a tampered row cannot make the page read other files.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

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

from appliance import voicemail as vm
from appliance.voicemail.triage import STATUSES, UNCATEGORISED_TARGET_HOURS
from web import audit, permissions
from web.db import mask_phone, store

bp = Blueprint("voicemail", __name__, url_prefix="/voicemail")

#: the most messages an inbox page lists (newest first)
INBOX_LIMIT = 200


def recordings_root() -> Path:
    """The folder every voicemail recording must be under (the engine's recordings)."""
    configured = current_app.config.get("RECORDINGS_DIR")
    root = Path(configured) if configured else Path(current_app.config["DATA_DIR"]) / "recordings"
    return root.resolve()


def _inside_root(path: Path) -> Path:
    """``path`` resolved, if it is a file under the recordings folder; else 404."""
    root = recordings_root()
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        abort(404)
    if not real.is_relative_to(root) or not real.is_file():
        abort(404)
    return real


# ---------------------------------------------------------------------------- access

def _own_code() -> str | None:
    """The salesperson code of a salesperson account (its username), else None."""
    return str(g.user.username) if g.user.role == "salesperson" else None


def _box_allowed(box: vm.Box) -> bool:
    role = g.user.role
    if role == "agent":
        return box.kind is vm.BoxKind.QUEUE
    return role in ("admin", "supervisor", "auditor")


def _message(message_id: int) -> tuple[vm.Message, vm.Box]:
    """The message if this user may see it; 404 for no such message, one not yet recorded,
    and one this user may not see (another's message is not even said to exist)."""
    try:
        message = vm.get_message(store(), message_id)
    except LookupError:
        abort(404)
    if message.recording not in ("saved", "recovered"):
        abort(404)
    box = vm.get_box(store(), message.box_id)
    code = _own_code()
    if code is not None:
        if message.assignee != code:
            abort(404)
    elif not _box_allowed(box):
        abort(404)
    return message, box


def _now() -> float:
    return time.time()


def box_name(box: vm.Box, salespeople: dict[str, str] | None = None) -> str:
    if box.kind is vm.BoxKind.GENERAL:
        return _("General box")
    if box.kind is vm.BoxKind.QUEUE:
        return _("Queue box: %(queue)s", queue=box.queue or "")
    name = (salespeople or {}).get(box.salesperson_code or "", "")
    return _("Salesperson box: %(code)s %(name)s", code=box.salesperson_code or "", name=name)


def status_name(status: str) -> str:
    return {"new": _("New"), "heard": _("Heard"), "assigned": _("Assigned"),
            "done": _("Done")}.get(status, status)


def action_name(action: str) -> str:
    """A voicemail audit action in words."""
    return {"saved": _("Message received"), "recovered": _("Recovered after a restart"),
            "lost": _("Lost"), "heard": _("Listened to"), "categorise": _("Categorised"),
            "assign": _("Assigned"), "forward": _("Forwarded"), "done": _("Marked done"),
            "reopen": _("Reopened")}.get(action, action)


def _salespeople() -> dict[str, str]:
    return {r["code"]: r["name"] for r in store().query(
        "SELECT code, name FROM salespeople ORDER BY code")}


def _category_names(include_retired: bool = True) -> dict[str, vm.Category]:
    return {c.code: c for c in vm.categories(store(), include_retired=include_retired)}


def _overdue_by_id(now: float) -> dict[int, float]:
    return {o.message.id: o.due_at for o in vm.overdue(store(), now)}


_NUMBER = re.compile(r"\+?\d{7,}")


def _view_args() -> dict[str, Any]:
    see_phone = permissions.can(g.user.role, "see_phone")

    def masked_text(text: str) -> str:
        """A notification's text, its caller number masked for roles without see_phone."""
        return text if see_phone else _NUMBER.sub(lambda m: mask_phone(m.group()), text)

    return dict(status_name=status_name, box_name=box_name, mask_phone=mask_phone,
                see_phone=see_phone, masked_text=masked_text)


# ---------------------------------------------------------------------------- pages

@bp.route("/", endpoint="boxes")
def box_list() -> ResponseReturnValue:
    boxes = [b for b in vm.list_boxes(store()) if _box_allowed(b)]
    counts: dict[int, dict[str, int]] = {}
    for r in store().query("SELECT box_id, status, count(*) AS n FROM voicemails WHERE"
                           " recording IN ('saved', 'recovered') GROUP BY box_id, status"):
        counts.setdefault(r["box_id"], {})[r["status"]] = r["n"]
    late: dict[int, int] = {}
    for due in vm.overdue(store(), _now()):
        late[due.message.box_id] = late.get(due.message.box_id, 0) + 1
    return render_template("voicemail/boxes.html", boxes=boxes, counts=counts, late=late,
                           statuses=STATUSES, salespeople=_salespeople(), **_view_args())


@bp.route("/box/<int:box_id>")
def inbox(box_id: int) -> ResponseReturnValue:
    try:
        box = vm.get_box(store(), box_id)
    except LookupError:
        abort(404)
    if not _box_allowed(box):
        abort(404)
    status = request.args.get("status", "")
    category = request.args.get("category", "")
    only_late = request.args.get("overdue") == "1"
    cats = _category_names()
    now = _now()
    late = _overdue_by_id(now)
    rows = vm.messages(store(), box_id=box.id, status=status if status in STATUSES else None,
                       category=category if category in cats else None, limit=INBOX_LIMIT)
    if only_late:
        rows = [m for m in rows if m.id in late]
    audit.log("voicemail.list", str(box.id), status=status, category=category,
              overdue=only_late, shown=len(rows))
    return render_template("voicemail/inbox.html", box=box, rows=rows, late=late, cats=cats,
                           statuses=STATUSES, form=dict(status=status, category=category,
                                                        overdue=only_late),
                           limit=INBOX_LIMIT, salespeople=_salespeople(), **_view_args())


@bp.route("/<int:message_id>")
def message(message_id: int) -> ResponseReturnValue:
    msg, box = _message(message_id)
    now = _now()
    late = _overdue_by_id(now)
    cats = _category_names()
    trail = vm.audit_trail(store(), msg.id)
    # The service lists notifications by salesperson: ask for those this message went to.
    notes = sorted((n for code in {e.detail.get("to") for e in trail} if code
                    for n in vm.notifications(store(), salesperson_code=str(code),
                                              unsent_only=False)
                    if n.voicemail_id == msg.id), key=lambda n: n.id)
    audit.log("voicemail.view", str(msg.id))
    return render_template("voicemail/message.html", m=msg, box=box, cats=cats,
                           active=[c for c in cats.values() if not c.retired],
                           due_at=late.get(msg.id), trail=trail, notes=notes,
                           salespeople=_salespeople(), action_name=action_name,
                           raw_exists=msg.raw_path.is_file(), **_view_args())


def _audio(message_id: int, raw: bool) -> ResponseReturnValue:
    msg, _box = _message(message_id)
    path = _inside_root(msg.raw_path if raw else msg.playable)
    data = path.read_bytes()
    audit.log("voicemail.download" if raw else "voicemail.play", str(msg.id),
              file=path.name, bytes=len(data))
    if not raw and g.user.role != "auditor":
        # Someone with work to do listened: the service marks it heard (a salesperson's
        # own listening also clears their "new").
        vm.mark_heard(store(), msg.id, actor=g.user.username, now=_now())
    return send_file(io.BytesIO(data), mimetype="audio/wav", max_age=0,
                     as_attachment=raw, download_name=f"voicemail-{msg.id}"
                     f"{'-raw' if raw else ''}.wav")


@bp.route("/<int:message_id>/play.wav")
def play(message_id: int) -> ResponseReturnValue:
    """The trimmed copy, for the page's audio element."""
    return _audio(message_id, raw=False)


@bp.route("/<int:message_id>/raw.wav")
def raw(message_id: int) -> ResponseReturnValue:
    """The recording as taken, to download."""
    return _audio(message_id, raw=True)


def _act(message_id: int, action: str, fn: Any, **detail: Any) -> ResponseReturnValue:
    msg, _box = _message(message_id)
    try:
        fn(msg)
    except vm.TriageError as exc:
        flash(_("Not done: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("voicemail.message", message_id=msg.id)), 303
    audit.log(f"voicemail.{action}", str(msg.id), **detail)
    return redirect(url_for("voicemail.message", message_id=msg.id)), 303


@bp.route("/<int:message_id>/category", methods=["POST"])
def categorise(message_id: int) -> ResponseReturnValue:
    code = request.form.get("category", "")[:32]
    return _act(message_id, "categorise", lambda m: vm.categorise(
        store(), m.id, code, actor=g.user.username, now=_now()), category=code)


@bp.route("/<int:message_id>/assign", methods=["POST"])
def assign(message_id: int) -> ResponseReturnValue:
    code = request.form.get("salesperson", "").strip()[:32]
    note = request.form.get("note", "").strip()[:200]
    return _act(message_id, "assign", lambda m: vm.assign(
        store(), m.id, code, actor=g.user.username, now=_now(), note=note),
        salesperson=code, note=note)


@bp.route("/<int:message_id>/done", methods=["POST"])
def done(message_id: int) -> ResponseReturnValue:
    note = request.form.get("note", "").strip()[:200]
    return _act(message_id, "done", lambda m: vm.mark_done(
        store(), m.id, actor=g.user.username, now=_now(), note=note), note=note)


@bp.route("/<int:message_id>/reopen", methods=["POST"])
def reopen(message_id: int) -> ResponseReturnValue:
    note = request.form.get("note", "").strip()[:200]
    return _act(message_id, "reopen", lambda m: vm.reopen(
        store(), m.id, actor=g.user.username, now=_now(), note=note), note=note)


# ---------------------------------------------------------------------------- categories

@bp.route("/categories")
def categories() -> ResponseReturnValue:
    return render_template("voicemail/categories.html",
                           cats=vm.categories(store(), include_retired=True),
                           default_hours=UNCATEGORISED_TARGET_HOURS)


@bp.route("/categories", methods=["POST"])
def category_save() -> ResponseReturnValue:
    form = {k: request.form.get(k, "").strip()[:64]
            for k in ("code", "name_zh", "name_en", "target_hours")}
    try:
        hours = float(form["target_hours"])
    except ValueError:
        flash(_("The response target must be a number of hours."), "error")
        return redirect(url_for("voicemail.categories")), 303
    try:
        vm.save_category(store(), form["code"], form["name_zh"], form["name_en"], hours,
                         actor=g.user.username, now=_now())
    except vm.TriageError as exc:
        flash(_("Not saved: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("voicemail.categories")), 303
    audit.log("voicemail.category_save", form["code"], **form)
    flash(_("Category %(code)s saved.", code=form["code"]))
    return redirect(url_for("voicemail.categories")), 303


@bp.route("/categories/<code>/retire", methods=["POST"])
def category_retire(code: str) -> ResponseReturnValue:
    try:
        vm.retire_category(store(), code[:32], actor=g.user.username, now=_now())
    except vm.TriageError:
        abort(404)
    audit.log("voicemail.category_retire", code[:32])
    flash(_("Category %(code)s retired: it is no longer offered.", code=code[:32]))
    return redirect(url_for("voicemail.categories")), 303


# ---------------------------------------------------------------------------- salesperson

@bp.route("/mine")
def mine() -> ResponseReturnValue:
    code = str(g.user.username)
    known = bool(store().query("SELECT 1 FROM salespeople WHERE code = ?", [code]))
    rows = vm.salesperson_inbox(store(), code) if known else []
    notes = list(reversed(vm.notifications(store(), salesperson_code=code,
                                           unsent_only=False))) if known else []
    late = _overdue_by_id(_now())
    audit.log("voicemail.mine", code, shown=len(rows))
    return render_template("voicemail/mine.html", rows=rows, notes=notes, known=known,
                           code=code, late=late, cats=_category_names(), **_view_args())
