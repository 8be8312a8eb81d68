"""Restore of a backup archive (admin only): upload, check, see what it replaces, confirm.

The upload is unpacked into a staging folder beside the database and checked completely
(:func:`appliance.store.backup.check_archive`); a bad archive is refused with the reason
and leaves nothing behind. A good one waits under a random token while the admin reads
what it holds and what it will replace; only the confirm replaces the database and the
recordings (:func:`appliance.store.backup.restore`, the previous copy kept in
``previous/``), and the restore is written to the audit log of the restored database.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from appliance.runtime import DataDirs, DataFolderInUse
from appliance.store import backup
from web import audit
from web.db import store

bp = Blueprint("restore", __name__, url_prefix="/staff/restore")

#: the largest archive the restore page takes (the app's own limit is for sheets and audio)
MAX_ARCHIVE_BYTES = 4 * 1024**3
STAGING = "restore-staging"
_TOKEN = re.compile(r"[0-9a-f]{32}")
#: one restore at a time in this process
_LOCK = threading.Lock()


@bp.before_app_request
def _archive_size() -> None:
    # Runs before the app's guard parses the form for its CSRF check; only a logged-in
    # session may send this much (the guard then checks the role).
    if request.endpoint == "restore.check" and session.get("user_id"):
        request.max_content_length = MAX_ARCHIVE_BYTES


def _dirs() -> DataDirs:
    return DataDirs(store().path.parent)


def _staging(token: str) -> Path:
    if not _TOKEN.fullmatch(token):
        abort(404)
    return _dirs().root / STAGING / token


def _current() -> dict[str, Any]:
    """What the restore would replace."""
    counts = {t: store().query(f"SELECT count(*) AS n FROM {t}")[0]["n"]
              for t in ("calls", "policies", "customers", "users", "recordings")}
    wavs = list(_dirs().recordings.rglob("*.wav")) if _dirs().recordings.is_dir() else []
    return {"counts": counts, "recordings": len(wavs),
            "database_bytes": store().path.stat().st_size,
            "recording_bytes": sum(p.stat().st_size for p in wavs)}


def _engine_running() -> bool:
    # By the engine's own lock on the data folder: the control API is up only on boxes
    # with seats and queues.
    return _dirs().in_use()


@bp.route("/", endpoint="form")
def form() -> ResponseReturnValue:
    return render_template("staff/restore.html", checked=None, error=None)


@bp.route("/", methods=["POST"], endpoint="check")
def check() -> ResponseReturnValue:
    upload = request.files.get("archive")
    if upload is None or not upload.filename:
        return render_template("staff/restore.html", checked=None,
                               error=_("Choose a backup archive to upload.")), 400
    token = secrets.token_hex(16)
    staging = _staging(token)
    staging.parent.mkdir(exist_ok=True)
    archive = staging.with_suffix(".upload")
    try:
        upload.save(archive)
        checked = backup.check_archive(archive, staging)
    except backup.BackupError as exc:
        audit.log("backup.restore_refused", upload.filename[:100], reason=str(exc))
        return render_template("staff/restore.html", checked=None,
                               error=_("The archive is refused, nothing was changed: "
                                       "%(reason)s", reason=str(exc))), 400
    finally:
        archive.unlink(missing_ok=True)
    summary = asdict(checked)
    summary["staging"] = str(checked.staging)
    staging.with_suffix(".json").write_text(json.dumps(summary))
    return render_template("staff/restore.html", checked=summary, token=token,
                           current=_current(), engine=_engine_running(),
                           data_folder=str(_dirs().root), error=None, filename=upload.filename)


def _load(token: str) -> backup.Checked:
    staging = _staging(token)
    try:
        doc = json.loads(staging.with_suffix(".json").read_text())
    except FileNotFoundError:
        abort(404)
    if not staging.is_dir():
        abort(404)
    doc["staging"] = staging
    return backup.Checked(**doc)


def _drop(token: str) -> None:
    staging = _staging(token)
    shutil.rmtree(staging, ignore_errors=True)
    staging.with_suffix(".json").unlink(missing_ok=True)


@bp.route("/<token>", methods=["POST"], endpoint="apply")
def apply(token: str) -> ResponseReturnValue:
    if not _LOCK.acquire(blocking=False):
        flash(_("Another restore is running."), "error")
        return redirect(url_for("restore.form")), 303
    try:
        checked = _load(token)
        dirs = _dirs()
        try:
            # No engine may run meanwhile: its calls in progress would end with their
            # recordings in previous/ and no call record in the restored database.
            with dirs.held():
                kept = backup.restore(checked, dirs.database, dirs.recordings)
        except DataFolderInUse:
            flash(_("Not restored: the engine is running, and the calls in progress would "
                    "lose their recordings and call records. Stop the engine, restore from "
                    "the web admin started alone (python -m web --data %(folder)s), then "
                    "start the engine again.", folder=str(dirs.root)), "error")
            return redirect(url_for("restore.form")), 303
        except (backup.BackupError, OSError) as exc:
            flash(_("Not restored: %(reason)s", reason=str(exc)), "error")
            return redirect(url_for("restore.form")), 303
        finally:
            _drop(token)
        # Into the restored database: the restore is part of its history from now on.
        audit.log("backup.restore", checked.created_at, kept=str(kept.name),
                  recording_files=checked.recordings, rows=checked.counts)
    finally:
        _LOCK.release()
    flash(_("Restored the backup of %(when)s. The previous database and recordings are kept "
            "in %(kept)s. Start the engine again: it loads everything from the restored "
            "database.", when=checked.created_at, kept=str(kept)))
    return redirect(url_for("restore.form")), 303


@bp.route("/<token>/cancel", methods=["POST"], endpoint="cancel")
def cancel(token: str) -> ResponseReturnValue:
    _staging(token)
    _drop(token)
    flash(_("Restore cancelled; nothing was changed."))
    return redirect(url_for("restore.form")), 303
