"""Staff accounts (admin only) and the audit log (admin and auditor)."""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import tempfile
import time
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from appliance.promptrec import pins
from appliance.runtime import DataDirs
from appliance.store.backup import write_archive
from web import audit
from web.accounts import create_user, generate_password, hash_password, set_password
from web.db import store
from web.paging import page_number, read_page
from web.permissions import ROLES

bp = Blueprint("staff", __name__, url_prefix="/staff")

_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")


@bp.route("/", endpoint="list")
def staff_list() -> ResponseReturnValue:
    return render_template("staff/list.html", users=_users(), roles=ROLES,
                           phone_number=pins.DEFAULT_NUMBER)


def _users() -> list[dict[str, Any]]:
    """Every account, with the state of its phone PIN (none / set / locked)."""
    return store().query(
        "SELECT u.id, u.username, u.display_name, u.role, u.active, u.must_change,"
        " u.last_login_at, CASE WHEN p.user_id IS NULL THEN 'none' WHEN p.locked THEN"
        " 'locked' ELSE 'set' END AS pin_state FROM users u"
        " LEFT JOIN staff_phone_pins p ON p.user_id = u.id ORDER BY u.username")


def _is_salesperson_code(username: str) -> bool:
    return bool(store().query("SELECT 1 FROM salespeople WHERE code = ?", [username]))


def _salesperson_username_rule() -> str:
    # A salesperson's pages show the voicemail assigned to their code: the account is tied
    # to the salesperson by its username.
    return _("A salesperson account's username must be the salesperson code (业务员工号) "
             "of a salesperson in the book.")


@bp.route("/new", methods=["POST"])
def create() -> ResponseReturnValue:
    username = request.form.get("username", "").strip()
    display = request.form.get("display_name", "").strip()[:50]
    role = request.form.get("role", "")
    error = None
    if not _USERNAME.match(username):
        error = _("The username must be 2–32 letters, digits, dots, dashes or underscores.")
    elif role not in ROLES:
        error = _("Choose a role.")
    elif role == "salesperson" and not _is_salesperson_code(username):
        error = _salesperson_username_rule()
    if error is None:
        password = generate_password()

        entry = audit.audit_row("user.create", username, role=role)
        hashed = hash_password(password)

        def add(db: Database) -> None:
            create_user(db, username, display, role, hashed)
            audit.insert(db, entry)

        try:
            store().write(add)
        except sqlite3.IntegrityError:
            error = _("The username %(name)s is taken.", name=username)
        else:
            flash(_("Account %(name)s created. One-time password: %(password)s (it must be "
                    "changed at the first login).", name=username, password=password))
            return redirect(url_for("staff.list"))
    return render_template("staff/list.html", users=_users(), roles=ROLES,
                           phone_number=pins.DEFAULT_NUMBER, error=error), 400


def _user(user_id: int) -> dict[str, Any]:
    rows = store().query("SELECT * FROM users WHERE id = ?", [user_id])
    if not rows:
        abort(404)
    return rows[0]


@bp.route("/<int:user_id>", methods=["POST"])
def edit(user_id: int) -> ResponseReturnValue:
    user = _user(user_id)
    role = request.form.get("role", user["role"])
    active = request.form.get("active") == "1"
    if role not in ROLES:
        abort(400, _("Choose a role."))
    if role == "salesperson" != user["role"] and not _is_salesperson_code(user["username"]):
        abort(400, _salesperson_username_rule())
    from flask import g

    if user_id == g.user.id and (role != "admin" or not active):
        abort(400, _("You cannot take away your own administrator rights."))

    entry = audit.audit_row("user.edit", user["username"],
                     before={"role": user["role"], "active": user["active"]},
                     after={"role": role, "active": int(active)})

    def change(db: Database) -> None:
        db.execute("UPDATE users SET role = ?, active = ? WHERE id = ?",
                   [role, int(active), user_id])
        audit.insert(db, entry)

    store().write(change)
    flash(_("Account %(name)s saved.", name=user["username"]))
    return redirect(url_for("staff.list"))


@bp.route("/<int:user_id>/password", methods=["POST"])
def reset_password(user_id: int) -> ResponseReturnValue:
    user = _user(user_id)
    password = generate_password()

    entry = audit.audit_row("user.password_reset", user["username"])
    hashed = hash_password(password)

    def reset(db: Database) -> None:
        set_password(db, user_id, hashed, must_change=True)
        audit.insert(db, entry)

    store().write(reset)
    flash(_("New one-time password for %(name)s: %(password)s (it must be changed at the "
            "next login).", name=user["username"], password=password))
    return redirect(url_for("staff.list"))


@bp.route("/<int:user_id>/phone-pin", methods=["POST"])
def reset_phone_pin(user_id: int) -> ResponseReturnValue:
    """A new random phone PIN for the account (for recording prompts on the recording
    line), shown once to the admin as a salesperson's PIN reset does; it also clears a lock.
    Stored only hashed; the audit log records the reset, never the PIN."""
    user = _user(user_id)
    pin = f"{secrets.randbelow(10**6):06d}"
    entry = audit.audit_row("phone_pin.reset", user["username"],
                            before=pins.pin_state(store(), user_id))
    now = time.time()

    def reset(db: Database) -> None:
        pins.set_pin(db, user_id, pin, now)
        audit.insert(db, entry)

    store().write(reset)
    flash(_("New phone PIN for %(name)s: %(pin)s. Tell it to them; it is not shown again."
            " On %(number)s they key staff number %(staff)d, then this PIN.",
            name=user["username"], pin=pin, number=pins.DEFAULT_NUMBER, staff=user_id))
    if user["role"] != pins.ROLE:
        flash(_("The recording line takes only administrators' PINs: this one works once"
                " %(name)s is an administrator.", name=user["username"]), "error")
    return redirect(url_for("staff.list"))


def action_name(action: str) -> str:
    """An audit action in words of the page's language (the code stays searchable)."""
    return {
        "login": _("Logged in"), "login.failed": _("Failed login"),
        "login.throttled": _("Login refused: too many failures"), "logout": _("Logged out"),
        "password.change": _("Changed own password"), "user.create": _("Created an account"),
        "user.edit": _("Changed an account"), "user.password_reset": _("Reset a password"),
        "policy.list": _("Listed policies"), "policy.view": _("Viewed a policy"),
        "policy.import": _("Imported policies"), "policy.export": _("Exported policies"),
        "customer.list": _("Listed customers"), "customer.view": _("Viewed a customer"),
        "customer.import": _("Imported customers"),
        "customer.export": _("Exported customers"),
        "salesperson.edit": _("Changed a salesperson"),
        "salesperson.pin_reset": _("Reset a salesperson's PIN"),
        "salesperson.import": _("Imported salespeople"),
        "salesperson.export": _("Exported salespeople"),
        "product.create": _("Created a product"), "product.edit": _("Changed a product"),
        "rates.import": _("Replaced a rate table"), "rates.export": _("Exported a rate table"),
        "call.list": _("Listed call records"), "call.export": _("Exported call records"),
        "recording.list": _("Listed call recordings"),
        "recording.play": _("Played a call recording"),
        "recording.download": _("Downloaded a call recording"),
        "prompt.replace": _("Replaced a voice prompt"),
        "phone_pin.set": _("Set their phone PIN for recording prompts"),
        "phone_pin.reset": _("Reset an account's phone PIN"),
        "database.backup": _("Downloaded a database backup"),
        "voicemail.list": _("Listed a voicemail box"),
        "voicemail.view": _("Viewed a voicemail"), "voicemail.play": _("Played a voicemail"),
        "voicemail.download": _("Downloaded a voicemail recording"),
        "voicemail.categorise": _("Categorised a voicemail"),
        "voicemail.assign": _("Assigned or forwarded a voicemail"),
        "voicemail.done": _("Marked a voicemail done"),
        "voicemail.reopen": _("Reopened a voicemail"),
        "voicemail.category_save": _("Saved a voicemail category"),
        "voicemail.category_retire": _("Retired a voicemail category"),
        "voicemail.mine": _("Listed own voicemail"),
        "fax.preview": _("Previewed a fax document"), "fax.resend": _("Asked for a fax resend"),
        "sms.list": _("Listed SMS"), "sms.export": _("Exported SMS"),
        "sms.compose": _("Opened the SMS form for a customer"), "sms.send": _("Sent an SMS"),
        "flow.draft": _("Saved an IVR flow draft"), "flow.publish": _("Published an IVR flow"),
        "flow.rollback": _("Rolled back the IVR flow"),
        "flow.test_call": _("Placed an IVR test call"),
        "flow.node_save": _("Changed a node of an IVR flow draft"),
        "flow.node_add": _("Added a node to an IVR flow draft"),
        "flow.node_delete": _("Deleted a node from an IVR flow draft"),
        "seat.login": _("Logged in to a seat"), "seat.logout": _("Logged out of a seat"),
        "customer.screen_pop": _("Saw a caller's screen pop"),
        "call.hangup": _("Hung up a call at a seat"),
        "call.wrap_up": _("Wrapped up a call"),
        "call.dial": _("Dialled a customer from a seat"),
        "supervisor.listen": _("Listened in on a seat's call"),
        "supervisor.listen_mode": _("Switched between listening and whispering"),
        "supervisor.listen_stop": _("Left a seat's call"),
        "rates.edit": _("Edited rates in the grid"),
        "order.list": _("Listed orders"), "order.view": _("Viewed an order"),
        "order.create": _("Created an order"), "order.edit": _("Changed an order"),
        "order.import": _("Imported orders"), "order.export": _("Exported orders"),
        "order_field.create": _("Added an order field"),
        "order_field.edit": _("Changed an order field"),
        "kb.create": _("Wrote a knowledge-base article"),
        "kb.edit": _("Changed a knowledge-base article"),
        "kb.delete": _("Deleted a knowledge-base article"),
        "kb.import": _("Imported knowledge-base articles"),
        "kb.export": _("Exported knowledge-base articles"),
        "port.save": _("Saved a telephone port"), "port.delete": _("Deleted a telephone port"),
        "port.span_add": _("Added an E1 span's ports"),
        "modem.save": _("Saved the SMS modem settings"), "modem.test": _("Tested the SMS modem"),
        "hours.week": _("Changed the business hours"),
        "hours.day_save": _("Saved a holiday or make-up working day"),
        "hours.day_delete": _("Removed a holiday or make-up working day"),
        "hours.import": _("Imported holidays"),
        "reminder.settings": _("Changed the premium reminder settings"),
        "reminder.run": _("Started a premium reminder pass"),
        "reminder.list": _("Viewed premium reminder calls"),
        "reminder.export": _("Exported premium reminder calls"),
        "acd.queue_save": _("Saved a queue"), "acd.queue_delete": _("Removed a queue"),
        "acd.seat_save": _("Saved a seat"), "acd.seat_delete": _("Removed a seat"),
        "backup.restore_refused": _("Uploaded a backup that was refused"),
        "backup.restore": _("Restored a backup"),
    }.get(action, action)


@bp.route("/audit")
def audit_view() -> ResponseReturnValue:
    who = request.args.get("user", "").strip()[:64]
    action = request.args.get("action", "").strip()[:64]
    where, params = [], []
    if who:
        where.append("username = ?")
        params.append(who)
    if action:
        where.append("action >= ? AND action < ?")
        params += [action, action + "\U0010ffff"]
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    number = page_number()
    page, rows = read_page(store(), f"SELECT 1 FROM audit_log {clause}",
                           f"SELECT * FROM audit_log {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                           params, number, size=100)
    return render_template("staff/audit.html", rows=rows, page=page, action_name=action_name,
                           form=dict(user=who, action=action))


@bp.route("/backup")
def backup() -> ResponseReturnValue:
    """An archive of the database (a consistent copy made with SQLite's online backup, so
    the engine keeps writing meanwhile) and the call recordings, to download; the restore
    page takes it back. It holds personal data: admin only, and audited."""
    source = store().path
    fd, name = tempfile.mkstemp(prefix="backup-", suffix=".tar.gz", dir=source.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            made = write_archive(source, DataDirs(source.parent).recordings, out)
        audit.log("database.backup", source.name, bytes=os.path.getsize(name), **made)
        # Open, then unlink: the download reads the open file and nothing is left behind,
        # however the response ends.
        copy = open(name, "rb")  # noqa: SIM115 - closed by the response
    finally:
        os.unlink(name)
    return send_file(copy, mimetype="application/gzip", as_attachment=True,
                     download_name=f"appliance-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz")
