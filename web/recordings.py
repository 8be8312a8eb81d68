"""Call recordings (通话录音): every recording the engine indexed, with its call's record
(time, direction, numbers, line, queue, agent and seat, the policy number keyed in the
IVR, the wrap-up code), searched by date range, number, agent and policy number; played
in the browser (HTTP Range, so the player can seek) and downloaded; and the access log,
where every playback and download is a row (who, when, which recording, play or download,
from which address).

Who may do what (the matrix in :mod:`web.permissions` says which pages; this module says
which recordings): admin, supervisor and auditor list and play every recording; a seat
agent lists and plays only the calls they answered; only admin and supervisor download.
Callers' numbers are shown in full only with ``see_phone``. Files are served from the
recordings folder only: a stored path that resolves anywhere else is a 404.

A playback is one row, however many range requests the player makes for it: a request
from the first byte starts a playback unless the same user's playback of the same
recording was logged a moment ago (:data:`REOPEN_SECONDS`, the player opening the file
twice); a request further in (a seek) is part of the playback logged within
:data:`PLAYBACK_SECONDS`, and is logged as one if there is none, so no byte of a recording
leaves the box without a row naming who took it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, g, render_template, request, send_file
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from web import audit, permissions
from web.console import wrap_up_name
from web.db import mask_phone, prefix_range, store
from web.paging import page_number, read_page
from web.voicemail import _inside_root

bp = Blueprint("recordings", __name__, url_prefix="/recordings")

#: a request from the first byte this soon after a logged playback is the same playback
REOPEN_SECONDS = 5.0
#: a seek (a range further in) belongs to the playback logged this long before it
PLAYBACK_SECONDS = 30 * 60.0
#: the roles that see every recording; others (seat agents) see the calls they answered
ALL_RECORDINGS = frozenset({"admin", "supervisor", "auditor"})

KINDS = ("play", "download")
SEAT_LEG = ("NOT EXISTS (SELECT 1 FROM calls s WHERE s.call_id = r.call_id"
            " AND s.direction = 'out' AND s.callee IN (SELECT number FROM acd_seats))")


def _day(name: str) -> tuple[date | None, str | None]:
    raw = request.args.get(name, "").strip()[:10]
    if not raw:
        return None, None
    try:
        return date.fromisoformat(raw), None
    except ValueError:
        return None, _("Dates are written like 2026-11-26.")


def _date_range() -> tuple[float | None, float | None, str | None]:
    """``from`` / ``to`` as the start of the first day and the end of the last (in the
    box's time zone), and the error for a date that is not one."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    bounds: list[float | None] = []
    errors = []
    for name, shift in (("from", 0), ("to", 1)):
        day, error = _day(name)
        if error:
            errors.append(error)
        bounds.append(None if day is None else datetime.combine(
            day + timedelta(days=shift), datetime.min.time(), tz).timestamp())
    return bounds[0], bounds[1], errors[0] if errors else None


def _own_only() -> bool:
    return g.user.role not in ALL_RECORDINGS


@dataclass
class Search:
    """A search of the list as SQL: rows of ``source`` that pass ``where``, in ``order``."""

    source: str
    where: list[str]
    params: list[Any]
    key: str  # what the rows are ordered by, newest first
    order: str
    form: dict[str, str]
    error: str | None

    @property
    def clause(self) -> str:
        return "WHERE " + " AND ".join(self.where)


def _search() -> Search:
    """The list's search, every condition an indexed lookup. By agent (or for an agent,
    who sees only their own calls) the rows are read off that agent's queue entries in
    the order they reached the queue, so a busy agent's calls are not picked out of every
    recording; otherwise off the recordings index, newest first."""
    start, end, error = _date_range()
    agent = request.args.get("agent", "").strip()[:64]
    agents = {a for a in (agent, g.user.username if _own_only() else "") if a}
    where: list[str] = []
    params: list[Any] = []
    if agents:  # queue entries are the customers' calls, never a seat's leg
        search = Search("acd_entries e JOIN recordings r ON r.call_id = e.call_id",
                        where, params, "e.joined_at", "e.joined_at DESC", {}, error)
        where.append("e.agent = ?")
        params.append(agents.pop() if len(agents) == 1 else "")  # two agents: nobody
        if start is not None:  # a call joins a queue after it starts
            where.append("e.joined_at >= ?")
            params.append(start)
        if end is not None:  # and no call is in the IVR and the queue for a whole day
            where.append("e.joined_at < ?")
            params.append(end + 86400)
    else:
        # A seat's own leg (the box dialling the seat's phone) is recorded too, but the
        # customer's call already holds both sides: the list leaves seat legs out.
        where.append(SEAT_LEG)
        search = Search("recordings r", where, params, "r.started_at",
                        "r.started_at DESC, r.rowid DESC", {}, error)
    if start is not None:
        where.append("r.started_at >= ?")
        params.append(start)
    if end is not None:
        where.append("r.started_at < ?")
        params.append(end)
    number = "".join(c for c in request.args.get("number", "") if c not in " -")[:32]
    if number and not all(c.isdigit() or c in "+*#" for c in number):
        search.error = _("A number has only digits, * and #.")
        where.append("0")  # nothing matches a number that cannot be one
    elif number:
        lo, hi = prefix_range(number)
        where.append("r.call_id IN (SELECT call_id FROM calls WHERE caller >= ? AND caller < ?"
                     " UNION SELECT call_id FROM calls WHERE callee >= ? AND callee < ?)")
        params += [lo, hi, lo, hi]
    policy = request.args.get("policy", "").strip()[:32]
    if policy and not policy.isdigit():
        search.error = _("A policy number has only digits.")
        where.append("0")
    elif policy:
        lo, hi = prefix_range(policy)
        where.append("r.call_id IN (SELECT call_id FROM calls WHERE policy_number >= ?"
                     " AND policy_number < ?)")
        params += [lo, hi]
    search.form = {"from": request.args.get("from", "").strip()[:10],
                   "to": request.args.get("to", "").strip()[:10],
                   "number": number, "policy": policy, "agent": agent}
    return search


def _with_entries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with its call's queue entry (the answered one if several: a call that came
    back by callback has two), seat and agent."""
    ids = [r["call_id"] for r in rows if r["call_id"]]
    entries: dict[str, dict[str, Any]] = {}
    if ids:
        marks = ", ".join("?" * len(ids))
        for e in store().query(
                "SELECT e.call_id, e.queue, e.answered_by, e.agent, e.outcome, s.name AS seat"
                " FROM acd_entries e LEFT JOIN acd_seats s ON s.id = e.answered_by"
                f" WHERE e.call_id IN ({marks}) ORDER BY e.joined_at", ids):
            if e["call_id"] not in entries or e["answered_by"]:
                entries[e["call_id"]] = e
    return [dict(r, entry=entries.get(r["call_id"] or "")) for r in rows]


# The page's rows are chosen first with the search alone, then joined to their call and
# wrap-up: a deep page skips thousands of rows without looking each one up.
LIST_SQL = (
    "SELECT r.rowid AS id, r.path, r.call_id, r.started_at, r.seconds, r.recovered,"
    " c.direction, c.caller, c.callee, c.line, c.policy_number, w.code AS wrap_code"
    " FROM (SELECT r.rowid AS id, {key} AS k FROM {source} {where}"
    "  ORDER BY {order} LIMIT ? OFFSET ?) AS p"
    " JOIN recordings r ON r.rowid = p.id LEFT JOIN calls c ON c.call_id = r.call_id"
    " LEFT JOIN call_wrapups w ON w.call_id = r.call_id ORDER BY p.k DESC, p.id DESC")


@bp.route("/", endpoint="list")
def recording_list() -> str:
    search = _search()
    number = page_number()
    page, rows = read_page(
        store(), f"SELECT 1 FROM {search.source} {search.clause}",
        LIST_SQL.format(source=search.source, where=search.clause, key=search.key,
                        order=search.order),
        search.params, number)
    audit.log("recording.list", "", **search.form, page=number, shown=len(rows))
    wrap_names = {r["wrap_code"]: wrap_up_name(r["wrap_code"]) for r in rows if r["wrap_code"]}
    return render_template("recordings/list.html", rows=_with_entries(rows),
                           wrap_names=wrap_names,
                           form=search.form, error=search.error, page=page,
                           see_phone=permissions.can(g.user.role, "see_phone"),
                           mask_phone=mask_phone)


def _recording(recording_id: int) -> dict[str, Any]:
    """The recording if this user may have it; 404 for none, one this user may not have
    (another agent's call is not even said to exist) and a file outside the folder."""
    rows = store().query("SELECT rowid AS id, path, call_id FROM recordings WHERE rowid = ?",
                         [recording_id])
    if not rows:
        abort(404)
    row = rows[0]
    if _own_only() and not store().query(
            "SELECT 1 FROM acd_entries WHERE call_id = ? AND agent = ? LIMIT 1",
            [row["call_id"] or "", g.user.username]):
        abort(404)
    return row


def _first_byte() -> int | None:
    """Where the requested bytes start: 0 without a Range, None for a suffix range."""
    ranges = request.range.ranges if request.range is not None else []
    if not ranges:
        return 0
    start = ranges[0][0]
    return start if start >= 0 else None


def _log_access(kind: str, row: dict[str, Any], from_start: bool) -> None:
    """Write the access row (and its audit row) unless this request continues a playback
    already logged. One write on the store's writer, so the check and the row agree."""
    user, now = g.user, time.time()
    access = [now, user.username, user.role, request.remote_addr or "-", kind, row["path"],
              row["call_id"]]
    audit_row = audit.audit_row(f"recording.{kind}", str(row["id"]), call=row["call_id"])
    window = REOPEN_SECONDS if from_start else PLAYBACK_SECONDS

    def write(db: Database) -> None:
        if kind == "play" and db.execute(
                "SELECT 1 FROM recording_access WHERE path = ? AND username = ? AND at > ?"
                " AND kind = 'play' LIMIT 1", [row["path"], user.username, now - window]
        ).fetchone():
            return
        db.execute("INSERT INTO recording_access (at, username, role, address, kind, path,"
                   " call_id) VALUES (?, ?, ?, ?, ?, ?, ?)", access)
        audit.insert(db, audit_row)

    store().write(write)


def _serve(recording_id: int, kind: str) -> ResponseReturnValue:
    row = _recording(recording_id)
    path = _inside_root(Path(row["path"]))
    _log_access(kind, row, from_start=_first_byte() == 0)
    name = f"recording-{row['call_id'] or row['id']}.wav"
    # conditional: Werkzeug answers a Range with 206 and just those bytes.
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=0,
                     as_attachment=kind == "download", download_name=name)


@bp.route("/<int:recording_id>/play.wav", endpoint="play")
def play(recording_id: int) -> ResponseReturnValue:
    """The recording for the page's audio element (seekable)."""
    return _serve(recording_id, "play")


@bp.route("/<int:recording_id>/download.wav", endpoint="download")
def download(recording_id: int) -> ResponseReturnValue:
    """The recording as a file to keep."""
    return _serve(recording_id, "download")


@bp.route("/access", endpoint="access")
def access_log() -> str:
    """Every playback and download, newest first; by date range, user and call."""
    where: list[str] = []
    params: list[Any] = []
    start, end, error = _date_range()
    for bound, op in ((start, ">="), (end, "<")):
        if bound is not None:
            where.append(f"a.at {op} ?")
            params.append(bound)
    who = request.args.get("user", "").strip()[:64]
    if who:
        where.append("a.username = ?")
        params.append(who)
    call = request.args.get("call", "").strip()[:64]
    if call:
        where.append("a.call_id = ?")
        params.append(call)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    number = page_number()
    page, rows = read_page(
        store(), f"SELECT 1 FROM recording_access a {clause}",
        "SELECT a.*, r.rowid AS recording_id FROM recording_access a"
        f" LEFT JOIN recordings r ON r.path = a.path {clause}"
        " ORDER BY a.id DESC LIMIT ? OFFSET ?", params, number, size=100)
    form = {"from": request.args.get("from", "").strip()[:10],
            "to": request.args.get("to", "").strip()[:10], "user": who, "call": call}
    return render_template("recordings/access.html", rows=rows, page=page, form=form,
                           error=error)


__all__ = ["KINDS", "bp"]
