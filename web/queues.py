"""Queues and seats (队列与坐席): the ACD's configuration as the engine loads it, edited here.

Each save builds the box's whole configuration (every seat, every queue) with the edit in
it, checks it with the ACD model's own checks (:class:`~appliance.acd.model.SeatConfig`,
:class:`~appliance.acd.model.QueueConfig`, ``check_seats``, ``check_queues``) and writes it
in one transaction with its audit row; a bad value is refused with the field named and
nothing written. Then the running engine is asked to take it (the control API's
``reload-acd``), which it does between calls without dropping any; with no engine running,
or when the engine refuses (a seat still logged in that the edit removes), the page says
the change applies at the next engine start.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from appliance.acd import records
from appliance.acd.model import (
    MAX_SEATS,
    ConfigError,
    Overflow,
    QueueConfig,
    SeatConfig,
    Strategy,
)
from appliance.control import ControlClient, ControlError, ControlUnavailable
from appliance.ivr import versions
from web import audit
from web.db import store

bp = Blueprint("acd_settings", __name__, url_prefix="/settings/acd")

FLOW_NAME = "default"
#: the seat phone kinds: the engine's driver that reaches each
PHONE_KINDS = ("asterisk", "sound", "sim")
_SKILL = re.compile(r"[A-Za-z0-9_.-]{1,32}")


class FormError(ValueError):
    """A form value that is not even a number or a list: ``label`` is the field's name."""

    def __init__(self, label: str, message: str) -> None:
        super().__init__(f"{label}: {message}")


def strategy_name(strategy: str) -> str:
    return {"ring-all": _("Ring all"), "round-robin": _("Round robin"),
            "longest-idle": _("Longest idle"), "fewest-calls": _("Fewest calls"),
            "least-talk": _("Least talk time")}.get(strategy, strategy)


def overflow_name(overflow: str) -> str:
    return {"voicemail": _("Voicemail"), "callback": _("Callback (keeps the place)")}.get(
        overflow, overflow)


def kind_name(kind: str) -> str:
    return {"asterisk": _("Phone via Asterisk (analog FXS or SIP)"),
            "sound": _("Headset on the box's sound card"),
            "sim": _("Simulated (tests and demo)")}.get(kind, kind)


def _seconds(form: Mapping[str, str], key: str, label: str) -> float:
    text = form.get(key, "").strip()
    try:
        value = float(text)
    except ValueError:
        raise FormError(label, _("%(value)s is not a number of seconds", value=repr(text))
                        ) from None
    if not math.isfinite(value):
        raise FormError(label, _("%(value)s is not a number of seconds", value=repr(text)))
    return value


def _skills_list(text: str, label: str) -> tuple[str, ...]:
    out = tuple(s for s in re.split(r"[,，\s]+", text.strip()) if s)
    for s in out:
        if not _SKILL.fullmatch(s):
            raise FormError(label, _("%(skill)s is not a skill name (letters, digits, _ . -)",
                                     skill=repr(s)))
    return out


def _skill_levels(text: str, label: str) -> dict[str, int]:
    """``"zh:2, en"`` -> {"zh": 2, "en": 1}."""
    levels: dict[str, int] = {}
    for part in re.split(r"[,，\s]+", text.strip()):
        if not part:
            continue
        name, _sep, level = part.partition(":")
        _skills_list(name, label)
        try:
            levels[name] = int(level) if level else 1
        except ValueError:
            raise FormError(label, _("level %(level)s of %(skill)s is not a whole number",
                                     level=repr(level), skill=name)) from None
    return levels


def queue_from_form(form: Mapping[str, str], seat_ids: list[str],
                    old: QueueConfig | None) -> QueueConfig:
    """The queue the form describes (FormError or the model's ConfigError)."""
    members: dict[str, int] = {}
    for sid in seat_ids:
        if form.get(f"member_{sid}"):
            text = form.get(f"penalty_{sid}", "0").strip() or "0"
            if not re.fullmatch(r"-?\d{1,4}", text):
                raise FormError(_("Penalty of seat %(seat)s", seat=sid),
                                _("%(value)s is not a whole number", value=repr(text)))
            members[sid] = int(text)
    try:
        strategy = Strategy(form.get("strategy", ""))
    except ValueError:
        raise FormError(_("Strategy"), _("choose one")) from None
    try:
        overflow = Overflow(form.get("overflow", ""))
    except ValueError:
        raise FormError(_("After the maximum wait"), _("choose one")) from None
    base = old or QueueConfig(form.get("name", "").strip())
    return replace(
        base, strategy=strategy, members=members,
        skills=_skills_list(form.get("skills", ""), _("Required skills")),
        language_skill=bool(form.get("language_skill")),
        ring_timeout=_seconds(form, "ring_timeout", _("Ring timeout")),
        max_wait=_seconds(form, "max_wait", _("Maximum wait")), overflow=overflow,
        wrap_up=_seconds(form, "wrap_up", _("Wrap-up")),
        announce_every=_seconds(form, "announce_every", _("Announcement interval")),
        auto_pause=bool(form.get("auto_pause")))


def seat_from_form(form: Mapping[str, str], old: SeatConfig | None) -> SeatConfig:
    kind = form.get("driver", "")
    if kind not in PHONE_KINDS:
        raise FormError(_("Phone kind"), _("choose one"))
    return SeatConfig(id=old.id if old else form.get("id", "").strip(),
                      number=form.get("number", "").strip(), driver=kind,
                      name=form.get("name", "").strip()[:40],
                      skills=_skill_levels(form.get("skills", ""), _("Skills")))


def _config() -> tuple[list[SeatConfig], list[QueueConfig]]:
    return records.load_seats(store()), records.load_queues(store())


def _page(status: int = 200, error: str | None = None, **forms: Any) -> ResponseReturnValue:
    seats, queues = _config()
    return render_template(
        "settings/acd.html", seats=seats, queues=queues, error=error, forms=forms,
        strategies=[s.value for s in Strategy], overflows=[o.value for o in Overflow],
        kinds=PHONE_KINDS, strategy_name=strategy_name, overflow_name=overflow_name,
        kind_name=kind_name, max_seats=MAX_SEATS), status


@bp.route("/", endpoint="view")
def view() -> ResponseReturnValue:
    return _page()


def _save(seats: list[SeatConfig], queues: list[QueueConfig], entry: list[Any]) -> None:
    # Checked here first, so a refusal never reaches the writer thread (which would log it
    # as a failed write); replace_config checks again inside the transaction.
    records.check_config(seats, queues)

    def write(db: Database) -> None:
        records.replace_config(db, seats, queues, time.time())
        audit.insert(db, entry)

    store().write(write)
    _apply()


def _apply() -> None:
    """Ask the running engine to take the saved settings; say what happened."""
    try:
        ControlClient.for_data(Path(current_app.config["DATA_DIR"])).request("reload-acd")
    except ControlUnavailable:
        flash(_("Saved. No engine is running: the settings apply at the next engine start."))
    except ControlError as exc:
        flash(_("Saved, but the running engine keeps its current settings until it restarts: "
                "%(reason)s", reason=str(exc)), "error")
    else:
        flash(_("Saved and applied to the running engine: calls in progress go on, the next "
                "offer uses the new settings."))


def _refused(exc: ValueError, **forms: Any) -> ResponseReturnValue:
    return _page(400, error=_("Not saved: %(reason)s", reason=str(exc)), **forms)


@bp.route("/queues", methods=["POST"])
def queue_save() -> ResponseReturnValue:
    form = {k: v[:200] for k, v in request.form.items() if k != "csrf_token"}
    seats, queues = _config()
    name = form.get("name", "").strip()
    old = next((q for q in queues if q.name == name), None)
    try:
        queue = queue_from_form(form, [s.id for s in seats], old)
        new = [queue if q.name == name else q for q in queues] if old else [*queues, queue]
        _save(seats, new, audit.audit_row(
            "acd.queue_save", name, after=records.queue_document(queue),
            before=records.queue_document(old) if old else None))
    except (FormError, ConfigError) as exc:
        return _refused(exc, queue=form)
    return redirect(url_for("acd_settings.view")), 303


def _flow_queues() -> dict[str, str]:
    """Queue name -> the node of the published IVR flow that transfers to it."""
    live = versions.published_version(store(), FLOW_NAME)
    nodes = live.document.get("nodes", {}) if live else {}
    return {str(n.get("queue")): node_id for node_id, n in nodes.items()
            if isinstance(n, dict) and n.get("type") == "transfer"}


@bp.route("/queues/<name>/delete", methods=["POST"])
def queue_delete(name: str) -> ResponseReturnValue:
    seats, queues = _config()
    if name in _flow_queues():
        return _refused(ValueError(_("the IVR flow transfers callers to queue %(name)s "
                                     "(node %(node)s)", name=name,
                                     node=_flow_queues()[name])))
    new = [q for q in queues if q.name != name]
    if len(new) == len(queues):
        return _refused(ValueError(_("there is no queue %(name)s", name=name[:32])))
    try:
        _save(seats, new, audit.audit_row("acd.queue_delete", name))
    except ConfigError as exc:
        return _refused(exc)
    return redirect(url_for("acd_settings.view")), 303


@bp.route("/seats", methods=["POST"])
def seat_save() -> ResponseReturnValue:
    form = {k: v[:200] for k, v in request.form.items() if k != "csrf_token"}
    seats, queues = _config()
    sid = form.get("id", "").strip()
    old = next((s for s in seats if s.id == sid), None)
    try:
        seat = seat_from_form(form, old)
        new = [seat if s.id == sid else s for s in seats] if old else [*seats, seat]
        _save(new, queues, audit.audit_row(
            "acd.seat_save", sid, number=seat.number, driver=seat.driver, name=seat.name,
            skills=dict(seat.skills)))
    except (FormError, ConfigError) as exc:
        return _refused(exc, seat=form)
    return redirect(url_for("acd_settings.view")), 303


@bp.route("/seats/<seat_id>/delete", methods=["POST"])
def seat_delete(seat_id: str) -> ResponseReturnValue:
    seats, queues = _config()
    new = [s for s in seats if s.id != seat_id]
    if len(new) == len(seats):
        return _refused(ValueError(_("there is no seat %(seat)s", seat=seat_id[:32])))
    alone = [q.name for q in queues if set(q.members) == {seat_id}]
    if alone:
        # With no members left a queue would ring every seat: not what removing meant.
        return _refused(ValueError(_("seat %(seat)s is the only member of queue %(queue)s",
                                     seat=seat_id, queue=", ".join(alone))))
    queues = [replace(q, members={k: v for k, v in q.members.items() if k != seat_id})
              for q in queues]
    try:
        _save(new, queues, audit.audit_row("acd.seat_delete", seat_id))
    except ConfigError as exc:
        return _refused(exc)
    return redirect(url_for("acd_settings.view")), 303
