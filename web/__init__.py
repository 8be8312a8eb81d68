"""The web admin: a Flask app over the appliance database, run in its own process.

:func:`create_app` builds the app: one blueprint per area (staff, policies, salespeople,
customers, products, calls), the permission matrix checked against the routes, a login
required everywhere but the login page, CSRF on every form, sessions that expire after
:data:`IDLE_MINUTES` idle or :data:`MAX_SESSION_HOURS` in all, and pages in Chinese
(zh_CN) unless the user switches to English.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, redirect, render_template, request, session, url_for
from flask_babel import Babel
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Response

from appliance.media.prompts import DEFAULT_PROMPTS_DIR
from appliance.store.db import Store
from web import permissions
from web.accounts import get_user

IDLE_MINUTES = 30
MAX_SESSION_HOURS = 12
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
LANGUAGES = {"zh_CN": "中文", "en": "English"}
DEFAULT_LOCALE = "zh_CN"


def _secret_key(data: Path) -> str:
    """The session-signing key, made once per box and kept beside the database (0600)."""
    path = data / "web_secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key


def create_app(data: Path, test_config: dict[str, Any] | None = None,
               store: Store | None = None) -> Flask:
    """The app on the database in ``data`` (``appliance.db``), or on ``store`` if given."""
    app = Flask(__name__)
    data = Path(data)
    data.mkdir(parents=True, exist_ok=True)
    app.config.update(
        SECRET_KEY=_secret_key(data),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="appliance_session",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=IDLE_MINUTES),
        SESSION_REFRESH_EACH_REQUEST=True,
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
        BABEL_DEFAULT_LOCALE=DEFAULT_LOCALE,
        BABEL_DEFAULT_TIMEZONE="Asia/Shanghai",
        TIMEZONE="Asia/Shanghai",
        PAGE_SIZE=50,
        DATA_DIR=str(data),
        PROMPTS_DIR=str(DEFAULT_PROMPTS_DIR),
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["appliance_store"] = store if store is not None else Store(
        data / "appliance.db")
    Babel(app, locale_selector=_locale)

    from web import (
        auth,
        calls,
        console,
        customers,
        faxes,
        flows,
        home,
        hours,
        import_progress,
        kb,
        lines,
        order_field_pages,
        orders,
        policies,
        products,
        prompts,
        queues,
        recordings,
        reminders,
        reports,
        restore,
        salespeople,
        sms,
        staff,
        supervisor,
        voicemail,
    )

    for module in (auth, home, staff, policies, salespeople, customers, products, calls,
                   prompts, flows, lines, reports, voicemail, faxes, console, supervisor,
                   recordings, reminders):
        app.register_blueprint(module.bp)
    for module in (orders, order_field_pages, kb):  # F9 orders, F13 knowledge base
        app.register_blueprint(module.bp)
    app.register_blueprint(sms.bp)  # F8 SMS through the box's GSM modem
    # The box's settings: business hours, queues and seats, restore of a backup.
    for module in (hours, queues, restore):
        app.register_blueprint(module.bp)
    app.register_blueprint(import_progress.bp)  # the progress bar of every import form
    permissions.check_matrix(rule.endpoint for rule in app.url_map.iter_rules())

    app.before_request(_guard)
    app.after_request(_headers)
    app.after_request(import_progress.finish)
    app.register_error_handler(HTTPException, _error_page)
    from web.prompts import language_name

    app.jinja_env.globals.update(csrf_token=csrf_token, LANGUAGES=LANGUAGES, can_see=_can_see,
                                 may=_may, role_name=role_name, page_lang=_locale,
                                 language_name=language_name)
    app.jinja_env.filters["when"] = _when
    app.jinja_env.filters["yuan"] = _yuan
    return app


def _locale() -> str:
    lang = session.get("lang") or request.cookies.get("lang")
    return lang if lang in LANGUAGES else DEFAULT_LOCALE


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    token = session.get("csrf") or ""
    return bool(token) and hmac.compare_digest(str(sent), str(token))


def _guard() -> Response | None:
    """Every request: CSRF on writes, the login, the session's age, the matrix."""
    endpoint = request.endpoint or ""
    g.user = None
    if request.method not in ("GET", "HEAD", "OPTIONS") and not _csrf_ok():
        abort(400, _("The form has expired or did not come from this site. "
                     "Reload the page and try again."))
    if endpoint in permissions.PUBLIC or request.url_rule is None:
        return None  # public, or no such route: the 404 / 405 follows
    user_id = session.get("user_id")
    user = get_user(_store(), int(user_id)) if user_id else None
    now = time.time()
    # The cookie's own expiry is the browser's to honour; these checks are the server's,
    # so a copied cookie dies as the session would.
    login_at = float(session.get("login_at", 0))
    if (user is None or not user.active
            or session.get("pwv") != user.password_version
            or now - login_at > MAX_SESSION_HOURS * 3600
            or now - float(session.get("seen_at", login_at)) > IDLE_MINUTES * 60):
        session.pop("user_id", None)
        if request.method == "GET" and endpoint:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(401)
    g.user = user
    session["seen_at"] = now
    if user.must_change and endpoint not in permissions.ANY_USER:
        return redirect(url_for("auth.password"))
    if not permissions.allowed(endpoint, user.role):
        abort(403)
    return None


def _store() -> Store:
    from web.db import store

    return store()


def _headers(response: Response) -> Response:
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'")
    if g.get("user") is not None:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _error_page(exc: HTTPException) -> tuple[str, int]:
    if isinstance(exc, RequestEntityTooLarge):
        message = _("The file is too large: at most %(mb)d MB.",
                    mb=MAX_UPLOAD_BYTES // (1024 * 1024))
    elif exc.code == 403:
        message = _("Your role may not open this page.")
    elif exc.code == 404:
        message = _("There is no such page or record.")
    elif exc.code == 401:
        message = _("Please log in.")
    elif exc.code == 400 and exc.description != BadRequest.description:
        message = exc.description or ""  # ours, already translated
    else:
        message = _("The request could not be handled.")
    return render_template("error.html", code=exc.code, message=message), exc.code or 500


def _can_see(capability: str) -> bool:
    user = g.get("user")
    return bool(user) and permissions.can(user.role, capability)


def role_name(role: str) -> str:
    names = {"admin": _("Administrator"), "supervisor": _("Supervisor"),
             "agent": _("Seat agent"), "salesperson": _("Salesperson"),
             "auditor": _("Auditor")}
    return names.get(role, role)


def _may(endpoint: str) -> bool:
    user = g.get("user")
    return bool(user) and permissions.allowed(endpoint, user.role)


def _when(ts: float | None) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from flask import current_app

    if ts is None:
        return ""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def _yuan(fen: int | None) -> str:
    if fen is None:
        return ""
    return f"{fen / 100:,.2f}"
