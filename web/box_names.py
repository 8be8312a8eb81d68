"""The words of the lines and box page: port kinds, signalling, caller ID modes, routes,
line states and form fields in the page's language, and a port or modem setting refused
by :mod:`appliance.box` said as a sentence naming the field."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from flask_babel import gettext as _

from appliance.box.ports import Port, PortError


def kind_name(kind: str) -> str:
    return {"fxo": _("FXO (trunk line)"), "fxs": _("FXS (seat phone)"),
            "e1": _("E1 channel")}.get(kind, kind)


def signalling_name(sig: str) -> str:
    return {"fxs_ks": _("fxs_ks: kewlstart (disconnect supervision)"),
            "fxs_ls": _("fxs_ls: loopstart"),
            "fxo_ks": _("fxo_ks: kewlstart"), "fxo_ls": _("fxo_ls: loopstart"),
            "mfcr2": _("mfcr2: China No. 1 signalling (R2)"),
            "pri_cpe": _("pri_cpe: ISDN PRI, user side"),
            "pri_net": _("pri_net: ISDN PRI, network side")}.get(sig, sig)


def caller_id_name(mode: str) -> str:
    return {"none": _("None"), "bell": _("FSK Bell 202, after the first ring"),
            "v23": _("FSK V.23, after the first ring"),
            "dtmf": _("DTMF after a polarity reversal"),
            "dtmf-ring": _("DTMF before the first ring")}.get(mode, mode)


def route_kind_name(kind: str) -> str:
    return {"none": _("The default IVR flow"), "flow": _("IVR flow"), "queue": _("Queue"),
            "number": _("Number")}.get(kind, kind)


def route_effect(port: Port, flows: Collection[str], queues: Collection[str]) -> str:
    """What a call arriving on ``port`` gets now, given the flows with a published version
    and the queues the box has (a target gone since the route was saved is said so)."""
    target = port.route_target
    if port.kind == "fxs":
        return _("Rings a seat phone: no inbound calls.")
    if port.route_kind == "flow":
        if target in flows:
            return _("Calls run the published version of flow “%(flow)s”.", flow=target)
        return _("Flow “%(flow)s” has no published version: calls run the default IVR flow.",
                 flow=target)
    if port.route_kind == "queue":
        if target in queues:
            return _("Calls go straight into queue “%(queue)s”, with no IVR.", queue=target)
        return _("There is no queue “%(queue)s” any more: calls run the default IVR flow.",
                 queue=target)
    if port.route_kind == "number":
        return _("Calls are handled as calls to %(number)s.", number=target)
    return _("Calls run the default IVR flow.")


def line_state_name(state: str) -> str:
    return {"idle": _("Idle"), "ringing": _("Ringing"), "in-call": _("In call"),
            "alarm": _("Alarm")}.get(state, state)


def field_name(name: str) -> str:
    return {"channel": _("Channel"), "kind": _("Port kind"), "signalling": _("Signalling"),
            "caller_id": _("Caller ID"), "route_kind": _("Inbound route"),
            "route_target": _("Route to"), "reserved_inbound": _("Reserved for inbound"),
            "label": _("Port name"), "span": _("E1 span"), "device": _("Serial device"),
            "baud": _("Baud rate"),
            "smsc": _("SMS centre number"), "enabled": _("Enabled")}.get(name, name)


def problem_text(exc: PortError) -> str:
    """The refusal in the user's language, starting with the field it is about."""
    params = dict(exc.params)
    if "kind" in params:
        params["kind"] = route_kind_name(params["kind"])
    # Looked up without values, then filled: each code has its own parameters.
    texts = {
        "required": _("is required"),
        "choice": _("must be one of %(choices)s, not “%(value)s”"),
        "integer": _("must be a whole number from %(lo)s to %(hi)s, not “%(value)s”"),
        "too-long": _("must be at most %(max)s characters"),
        "taken": _("channel %(value)s is already port “%(other)s”"),
        "dchan": _("channel %(value)s is timeslot 16 of E1 span %(span)s, which carries the"
                   " signalling"),
        "in-span": _("channel %(value)s belongs to E1 span %(span)s (channels %(lo)s–%(hi)s)"),
        "span-mixed": _("E1 span %(span)s already uses %(other)s: every channel of a span"
                        " has the same signalling"),
        "e1-caller-id": _("an E1 line brings the caller's number in its signalling: choose"
                          " None"),
        "seat-route": _("an FXS port rings a seat phone: it has no inbound route"),
        "seat-reserved": _("an FXS port rings a seat phone: it is not a trunk to reserve"),
        "no-target": _("a route to %(kind)s needs its name or number"),
        "unknown": _("there is no %(kind)s “%(value)s”"),
        "number": _("must be digits (with * or #), 1 to 20, not “%(value)s”"),
        "device": _("must be a serial device under /dev, such as /dev/ttyUSB0, not"
                    " “%(value)s”"),
        "smsc": _("must be a phone number (digits, + in front allowed), not “%(value)s”"),
    }
    text = texts[exc.code] % params if exc.code in texts else str(exc)
    return f"{field_name(exc.field)}: {text}"


def names() -> dict[str, Any]:
    """For the templates."""
    return dict(kind_name=kind_name, signalling_name=signalling_name,
                caller_id_name=caller_id_name, route_kind_name=route_kind_name,
                line_state_name=line_state_name)


__all__ = ["field_name", "names", "problem_text", "route_effect"]
