"""Lines and box (外线与设备): each port of the box (FXO trunk, FXS seat phone, E1 channel)
with its signalling, caller ID mode, inbound route and whether it is kept for inbound calls,
edited by the admin and checked by :mod:`appliance.box.ports`, which also renders the DAHDI
and chan_dahdi configuration shown here; the live state of each line (idle, ringing, in
call, alarm) from the running engine's ``lines`` op, kept current by server-sent events;
the SMS modem's serial settings and its test; and each line's usage from the call records.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from appliance.box import dialplan
from appliance.box import ports as box_ports
from appliance.box import settings as box
from appliance.box.ports import Port, PortError
from appliance.control import ControlError, ControlUnavailable
from web import audit, box_names
from web.box_names import problem_text
from web.console import control, sse
from web.db import store
from web.sms import modem_notice

bp = Blueprint("lines", __name__, url_prefix="/lines")
bp.app_context_processor(box_names.names)

# A call still open after this long is shown as stale, not busy: the engine closes
# rows a crash left open only when it starts again.
STALE_AFTER_S = 12 * 3600
#: how often the live table asks the engine (the engine has no event for a line's state)
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 5.0  # a comment now and then finds a closed page out


# ---------------------------------------------------------------------------- the page

def _usage() -> list[dict[str, Any]]:
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    now = time.time()
    midnight = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    return store().query(
        "SELECT line, driver,"
        " sum(ended_at IS NULL AND started_at > ?) AS busy,"
        " sum(ended_at IS NULL AND started_at <= ?) AS stale,"
        " sum(started_at >= ?) AS today,"
        " sum(started_at >= ? AND answered_at IS NOT NULL) AS answered_today,"
        " sum(started_at >= ? AND direction = 'in') AS inbound_today,"
        " max(started_at) AS last_call"
        " FROM calls GROUP BY line, driver ORDER BY line",
        [now - STALE_AFTER_S, now - STALE_AFTER_S, midnight, midnight, midnight])


def live_rows(lines: list[dict[str, Any]], ports: list[Port]) -> list[dict[str, Any]]:
    """Each configured port with what the engine says of its line, then the engine's lines
    no port row names (a simulated trunk, a call Asterisk did not say the channel of)."""
    by_channel = {str(p.channel): p for p in ports}
    seen: set[str] = set()
    rows = []
    for line in lines:
        port = by_channel.get(line["port"])
        seen.add(line["port"])
        row = dict(line, label=port.label if port else "", kind=port.kind if port else "",
                   pending=False)
        if port is not None and port.reserved_inbound != bool(line["reserved_inbound"]):
            # A change the engine did not hear of (saved while it was not answering): the
            # admin's setting, which it reads at its next start.
            row.update(reserved_inbound=port.reserved_inbound, pending=True)
        rows.append(row)
    for p in ports:
        if str(p.channel) not in seen:
            rows.append({"port": str(p.channel), "state": "", "label": p.label, "kind": p.kind,
                         "driver": "", "call": "", "direction": "",
                         "reserved_inbound": p.reserved_inbound, "detail": "",
                         "pending": False})
    return sorted(rows, key=lambda r: (not r["port"].isdigit(),
                                       int(r["port"]) if r["port"].isdigit() else 0))


def _live() -> tuple[list[dict[str, Any]], bool]:
    """The live rows, and whether the engine answered."""
    ports = box.load_ports(store())
    try:
        lines = control().request("lines")
    except (ControlUnavailable, ControlError):
        return live_rows([], ports), False
    return live_rows(lines, ports), True


@bp.route("/", endpoint="list")
def line_list() -> ResponseReturnValue:
    rows, up = _live()
    return render_template("lines/list.html", usage=_usage(), live=rows, up=up,
                           ports=box.load_ports(store()), effects=_effects(),
                           modem=box.load_modem(store()), modem_form=None, bauds=box.BAUDS,
                           sms_notice=modem_notice())


def _effects() -> dict[int, str]:
    """What a call on each port gets now, in words (calls follow a route change at once)."""
    flows, queues = box.live_targets(store())
    return {p.channel: box_names.route_effect(p, flows, queues)
            for p in box.load_ports(store())}


@bp.route("/events", endpoint="events")
def events() -> Response:
    """The live table again each time a line's state changes (asked every second: the
    engine reports calls, not line states)."""

    def stream() -> Iterator[str]:
        yield "retry: 2000\n\n"
        last, quiet = "", 0.0
        while True:
            rows, up = _live()
            html = render_template("lines/live.html", live=rows, up=up)
            if html != last:
                last, quiet = html, 0.0
                yield sse("live", {"html": html})
            elif quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": still here\n\n"
            time.sleep(POLL_SECONDS)
            quiet += POLL_SECONDS

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.route("/config", endpoint="config")
def config() -> ResponseReturnValue:
    ports = box.load_ports(store())
    return render_template("lines/config.html", system_conf=box_ports.system_conf(ports),
                           chan_dahdi_conf=box_ports.chan_dahdi_conf(ports),
                           extensions_conf=dialplan.extensions_conf(), ports=ports)


# ---------------------------------------------------------------------------- ports

_NEW_PORT: Final = {"kind": "fxo", "signalling": "fxs_ks", "caller_id": "bell",
                     "route_kind": "none"}


def _port_page(form: Mapping[str, Any], *, old: int | None, error: PortError | None = None,
               span_form: Mapping[str, Any] | None = None,
               span_error: PortError | None = None, status: int = 200) -> ResponseReturnValue:
    flows, queues = box.route_names(store())
    return render_template(
        "lines/port.html", form=form, old=old, flows=flows, queues=queues,
        error=problem_text(error) if error else "", error_field=error.field if error else "",
        span_form=span_form or {"signalling": "mfcr2", "route_kind": "none"},
        span_error=problem_text(span_error) if span_error else "",
        kinds=box_ports.KINDS, signalling=box_ports.SIGNALLING,
        caller_ids=tuple(box_ports.CALLER_ID), route_kinds=box_ports.ROUTE_KINDS), status


@bp.route("/ports/edit", endpoint="port_edit")
def port_edit() -> ResponseReturnValue:
    """The form for a new port, or for the port on ``?channel=``."""
    raw = request.args.get("channel", "")
    if not raw:
        return _port_page(_NEW_PORT, old=None)
    if not raw.isdigit():
        abort(404)
    found = [p for p in box.load_ports(store()) if p.channel == int(raw)]
    if not found:
        abort(404)
    return _port_page(found[0].as_row(), old=found[0].channel)


def _tell_engine() -> None:
    """Hand the running engine every port now kept for inbound calls, so that no outbound
    call takes one from now on (an engine not running reads them at its start)."""
    reserved = sorted(str(c) for c in box.reserved_inbound_channels(store()))
    with contextlib.suppress(ControlUnavailable, ControlError):
        control().request("reserve-inbound", ports=reserved)


def _old_channel() -> int | None:
    raw = request.form.get("old_channel", "")
    return int(raw) if raw.isdigit() else None


@bp.route("/ports/save", methods=["POST"], endpoint="port_save")
def port_save() -> ResponseReturnValue:
    old = _old_channel()
    ports = box.load_ports(store())
    before = next((p for p in ports if p.channel == old), None)
    if old is not None and before is None:
        flash(_("That port is gone (deleted meanwhile); nothing was saved."), "error")
        return redirect(url_for("lines.list"), 303)
    flows, queues = box.route_names(store())
    try:
        port = box_ports.check_port(request.form, [p for p in ports if p.channel != old],
                                    flows=flows, queues=queues)
    except PortError as exc:
        return _port_page(request.form, old=old, error=exc, status=400)
    row = audit.audit_row("port.save", str(port.channel), before=before.as_row()
                          if before else None, after=port.as_row())
    box.save_port(store(), port, old_channel=old, by=audit.current_username(),
                  extra=lambda db: audit.insert(db, row))
    _tell_engine()
    flash(_("Port %(channel)s saved. The box writes the DAHDI configuration and applies it"
            " at its next restart.", channel=port.channel))
    return redirect(url_for("lines.list"), 303)


@bp.route("/ports/span", methods=["POST"], endpoint="span_add")
def span_add() -> ResponseReturnValue:
    """Every voice channel of one E1 span at once, checked as one: all or none."""
    ports = box.load_ports(store())
    flows, queues = box.route_names(store())
    new: list[Port] = []
    try:
        for form in box_ports.span_forms(request.form):
            new.append(box_ports.check_port(form, ports + new, flows=flows, queues=queues))
    except PortError as exc:
        return _port_page(_NEW_PORT, old=None, span_form=request.form, span_error=exc,
                          status=400)
    span = new[0].span
    row = audit.audit_row("port.span_add", f"E1 {span}", channels=box_ports.channel_list(
        p.channel for p in new), after=new[0].as_row())
    box.add_ports(store(), new, by=audit.current_username(),
                  extra=lambda db: audit.insert(db, row))
    _tell_engine()
    flash(_("E1 span %(span)s added: channels %(channels)s.", span=span,
            channels=box_ports.channel_list(p.channel for p in new)))
    return redirect(url_for("lines.list"), 303)


@bp.route("/ports/delete", methods=["POST"], endpoint="port_delete")
def port_delete() -> ResponseReturnValue:
    old = _old_channel()
    before = next((p for p in box.load_ports(store()) if p.channel == old), None)
    if old is None or before is None:
        flash(_("There is no such port."), "error")
        return redirect(url_for("lines.list"), 303)
    row = audit.audit_row("port.delete", str(old), before=before.as_row())
    box.delete_port(store(), old, extra=lambda db: audit.insert(db, row))
    _tell_engine()
    flash(_("Port %(channel)s deleted.", channel=old))
    return redirect(url_for("lines.list"), 303)


# ---------------------------------------------------------------------------- SMS modem

def _modem_error(exc: PortError) -> ResponseReturnValue:
    rows, up = _live()
    return render_template("lines/list.html", usage=_usage(), live=rows, up=up,
                           ports=box.load_ports(store()), effects=_effects(),
                           modem=box.load_modem(store()),
                           modem_form=request.form, modem_error=problem_text(exc),
                           bauds=box.BAUDS, sms_notice=modem_notice()), 400


@bp.route("/modem", methods=["POST"], endpoint="modem_save")
def modem_save() -> ResponseReturnValue:
    try:
        modem = box.check_modem(request.form)
    except PortError as exc:
        return _modem_error(exc)
    before = box.load_modem(store())
    row = audit.audit_row("modem.save", modem.device,
                          before=_plain(before) if before else None, after=_plain(modem))

    def record(db: Database) -> None:
        audit.insert(db, row)

    box.save_modem(store(), modem, by=audit.current_username(), extra=record)
    flash(_("SMS modem settings saved."))
    return redirect(url_for("lines.list") + "#modem", 303)


def _plain(modem: Any) -> dict[str, Any]:
    return {"device": modem.device, "baud": modem.baud, "smsc": modem.smsc,
            "enabled": modem.enabled}


@bp.route("/modem/test", methods=["POST"], endpoint="modem_test")
def modem_test() -> ResponseReturnValue:
    """Open the modem's port and ask it (the settings in the form, saved or not)."""
    # The web talks to the modem itself for this test only. While the modem is enabled the
    # engine's SMS service holds the port under an exclusive lock, and the test says the
    # port is busy (disable the modem to test it); asking through the engine is for later.
    from drivers.gsm.at import ModemError, probe

    try:
        modem = box.check_modem(request.form)
    except PortError as exc:
        return _modem_error(exc)
    try:
        status = probe(modem.device, modem.baud)
    except ModemError as exc:
        audit.log("modem.test", modem.device, ok=False, error=str(exc))
        flash(_("Modem test failed: %(why)s", why=str(exc)), "error")
        return redirect(url_for("lines.list") + "#modem", 303)
    audit.log("modem.test", modem.device, ok=True, sim=status.sim, rssi=status.rssi)
    signal = (_("%(dbm)s dBm (CSQ %(csq)s of 31)", dbm=status.dbm, csq=status.rssi)
              if status.rssi is not None else _("unknown (no network)"))
    flash(_("The modem answers. SIM: %(sim)s. Signal: %(signal)s. SMS text mode: %(mode)s.",
            sim=_("ready") if status.sim_ready else status.sim, signal=signal,
            mode=_("yes") if status.text_mode else _("refused")),
          "message" if status.sim_ready and status.text_mode else "error")
    return redirect(url_for("lines.list") + "#modem", 303)


__all__ = ["bp", "live_rows"]
