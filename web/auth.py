"""Logging in and out, changing one's own password, and the page language."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from web import LANGUAGES, audit
from web.accounts import (
    authenticate,
    hash_password,
    password_problem,
    set_password,
    throttled,
    verify_password,
)
from web.db import store

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never an absolute URL an attacker put in the link.
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()[:64]
        password = request.form.get("password", "")[:256]
        address = request.remote_addr or "-"
        if throttled(store(), username, address):
            error = _("Too many failed logins. Wait 15 minutes and try again.")
            audit.log("login.throttled", username)
        else:
            user = authenticate(store(), username, password, address)
            if user is None:
                error = _("Wrong username or password.")
                audit.log("login.failed", username)
            else:
                lang = session.get("lang")
                session.clear()  # a fresh session: no fixation across the login
                session.permanent = True
                session.update(user_id=user.id, pwv=user.password_version,
                               login_at=time.time(), csrf=secrets.token_urlsafe(32))
                if lang:
                    session["lang"] = lang
                g.user = user
                audit.log("login", user.username)
                if user.must_change:
                    return redirect(url_for("auth.password"))
                return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), 200 if error is None else 401


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    audit.log("logout", g.user.username)
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
def password() -> ResponseReturnValue:
    user = g.user
    error = None
    if request.method == "POST":
        current = request.form.get("current", "")
        new = request.form.get("new", "")
        if not verify_password(store(), user.id, current):
            error = _("The current password is wrong.")
        elif new != request.form.get("confirm", ""):
            error = _("The two new passwords differ.")
        elif new == current:
            error = _("The new password must differ from the current one.")
        elif (problem := password_problem(new, user.username)) is not None:
            error = _(problem)
        else:
            entry = audit.audit_row("password.change", user.username)
            hashed = hash_password(new)

            def change(db: Database) -> None:
                set_password(db, user.id, hashed, must_change=False)
                audit.insert(db, entry)

            store().write(change)
            session["pwv"] = user.password_version + 1
            flash(_("Your password has been changed."))
            return redirect(url_for("home.index"))
    return render_template("password.html", error=error, first=user.must_change)


@bp.route("/language/<code>", methods=["POST"])
def language(code: str) -> ResponseReturnValue:
    if code not in LANGUAGES:
        abort(404)
    session["lang"] = code
    response = make_response(redirect(_safe_next(request.form.get("next"))))
    response.set_cookie("lang", code, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response
