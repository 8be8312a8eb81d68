"""Lines (外线): each line the call records name, with its driver, the calls on it now and
today, answered share and last call, read from the CDR the engine writes. Setting the
ports up (FXO, E1 R2/PRI) belongs to the box's firmware configuration, not here yet."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue

from web.db import store

bp = Blueprint("lines", __name__, url_prefix="/lines")

# A call still open after this long is shown as stale, not busy: the engine closes
# rows a crash left open only when it starts again.
STALE_AFTER_S = 12 * 3600


@bp.route("/", endpoint="list")
def line_list() -> ResponseReturnValue:
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    now = time.time()
    midnight = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    rows = store().query(
        "SELECT line, driver,"
        " sum(ended_at IS NULL AND started_at > ?) AS busy,"
        " sum(ended_at IS NULL AND started_at <= ?) AS stale,"
        " sum(started_at >= ?) AS today,"
        " sum(started_at >= ? AND answered_at IS NOT NULL) AS answered_today,"
        " sum(started_at >= ? AND direction = 'in') AS inbound_today,"
        " max(started_at) AS last_call"
        " FROM calls GROUP BY line, driver ORDER BY line",
        [now - STALE_AFTER_S, now - STALE_AFTER_S, midnight, midnight, midnight])
    return render_template("lines/list.html", rows=rows)
