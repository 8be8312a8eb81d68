"""The start page: a few figures, each a link to its page (only those the role may open)."""

from __future__ import annotations

from flask import Blueprint, render_template, url_for
from flask_babel import gettext as _

from web import permissions
from web.db import store

bp = Blueprint("home", __name__)


@bp.route("/")
def index() -> str:
    from flask import g

    counts = store().query(
        "SELECT (SELECT count(*) FROM policies) AS policies,"
        " (SELECT count(*) FROM salespeople) AS salespeople,"
        " (SELECT count(*) FROM products) AS products,"
        " (SELECT count(*) FROM calls WHERE started_at > strftime('%s', 'now') - 86400)"
        " AS calls_today")[0]
    cards = [
        ("policies.list", counts["policies"], _("Policies")),
        ("salespeople.list", counts["salespeople"], _("Salespeople")),
        ("products.list", counts["products"], _("Products and rates")),
        ("calls.list", counts["calls_today"], _("Calls in the last 24 hours")),
    ]
    shown = [dict(url=url_for(ep), figure=f"{n:,}", label=label) for ep, n, label in cards
             if permissions.allowed(ep, g.user.role)]
    return render_template("home.html", cards=shown)
