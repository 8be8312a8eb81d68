"""How far an import has got, for the progress bar on every import form.

The page's script makes a random token, sends it with the upload (field ``progress``) and,
once the file is sent, asks ``/imports/progress/<token>`` a few times a second while the
server checks the rows and writes them; the answer is the phase (``check``, ``write``),
the rows checked and the rows in the sheet. The import itself is unchanged: still every
row checked first and all written in one transaction or none, in the request that
uploaded it. The web is one process (waitress threads), so the figures are kept in memory,
each for its uploader only, and forgotten a few minutes after the import's last step.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass

from flask import Blueprint, Response, abort, g, jsonify, request
from flask.typing import ResponseReturnValue

bp = Blueprint("imports", __name__, url_prefix="/imports")

TOKEN = re.compile(r"[0-9a-f]{32}")
#: how long an import's figures are kept after its last step
KEEP_SECONDS = 300.0
#: rows between two updates (the check runs tens of thousands of rows a second)
EVERY_ROWS = 250


@dataclass
class Progress:
    user: str
    phase: str = "check"  # check, write, done
    rows: int = 0
    total: int | None = None  # rows in the sheet when the reader knows it
    at: float = 0.0


_lock = threading.Lock()
_imports: dict[str, Progress] = {}


def _current() -> tuple[str, Progress] | None:
    """The progress of the import this request uploads, if its form sent a token."""
    if "import_progress" in g:
        found: tuple[str, Progress] | None = g.import_progress
        return found
    token = request.form.get("progress", "") if request.method == "POST" else ""
    found = None
    user = g.get("user")
    if TOKEN.fullmatch(token) and user is not None:
        now = time.monotonic()
        with _lock:
            for key in [k for k, p in _imports.items() if now - p.at > KEEP_SECONDS]:
                del _imports[key]
            _imports[token] = Progress(user.username, at=now)
            found = (token, _imports[token])
    g.import_progress = found
    return found


def sheet_rows(total: int) -> None:
    """The reader knows how many rows the sheet has (the header excluded)."""
    _update(total=max(total, 0))


def checked(rows: int) -> None:
    """``rows`` rows of the sheet have been checked; recorded every :data:`EVERY_ROWS`."""
    if rows % EVERY_ROWS == 0:
        _update(rows=rows)


def writing(rows: int) -> None:
    """Every row is checked and clean: the import is writing ``rows`` rows."""
    _update(phase="write", rows=rows)


def _update(**fields: object) -> None:
    current = _current()
    if current is None:
        return
    with _lock:
        progress = current[1]
        for name, value in fields.items():
            setattr(progress, name, value)
        progress.at = time.monotonic()


def finish(response: Response) -> Response:
    """After each request: an import's request is answering (a result, or the problems
    found), so its figures say done."""
    if g.get("import_progress") is not None:
        _update(phase="done")
    return response


@bp.route("/progress/<token>", endpoint="progress")
def progress(token: str) -> ResponseReturnValue:
    with _lock:
        found = _imports.get(token)
        doc = asdict(found) if found is not None else None
    # Someone else's import is as unknown as none.
    if doc is None or doc.pop("user") != g.user.username:
        abort(404)
    del doc["at"]
    return jsonify(doc)
