"""The box's telephone ports: one row per DAHDI channel (an FXO trunk port, an FXS seat
port, or a timeslot of an E1 span), how each is checked, and the DAHDI and chan_dahdi
configuration the box would write for them. Pure: the admin's form values go in, a
:class:`Port` or a :class:`PortError` naming the field comes out, and the configuration is
text; nothing here touches ``/etc`` (the firmware installs the text and restarts DAHDI).

Names are DAHDI's own. A port's *kind* is what the card is (FXO: it takes a PSTN line, so
it uses FXS signalling, ``fxs_ks``; FXS: it feeds a phone, ``fxo_ks``). E1 spans are
numbered first, 31 channels each (span ``s`` is channels ``31*(s-1)+1`` to ``31*s``), and
their timeslot 16 carries the signalling (the PRI D channel, or R2's CAS), so it is never
a port; analog channels come after the spans. Every channel of one span has the same
signalling, as DAHDI configures the span as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Final

KINDS: Final = ("fxo", "fxs", "e1")
#: the chan_dahdi ``signalling`` each kind of port may use
SIGNALLING: Final[dict[str, tuple[str, ...]]] = {
    "fxo": ("fxs_ks", "fxs_ls"),  # a PSTN line: kewlstart (disconnect supervision) or loop
    "fxs": ("fxo_ks", "fxo_ls"),  # a seat phone
    "e1": ("mfcr2", "pri_cpe", "pri_net"),  # China R2 (CAS), ISDN PRI as user or network
}
#: system.conf's keyword for each analog signalling
SYSTEM_CONF_SIGNALLING: Final = {"fxs_ks": "fxsks", "fxs_ls": "fxsls", "fxo_ks": "fxoks",
                                 "fxo_ls": "fxols"}
#: caller ID modes: (chan_dahdi cidsignalling, cidstart), None for no caller ID
CALLER_ID: Final[dict[str, tuple[str, str] | None]] = {
    "none": None,
    "bell": ("bell", "ring"),  # FSK, Bell 202 tones, between the first and second ring
    "v23": ("v23", "ring"),  # FSK, ITU V.23 tones, between the first and second ring
    "dtmf": ("dtmf", "polarity"),  # DTMF after a polarity reversal, before the first ring
    "dtmf-ring": ("dtmf", "dtmf"),  # DTMF with no polarity reversal before it
}
ROUTE_KINDS: Final = ("flow", "queue", "number", "none")
MAX_SPANS: Final = 8
SPAN_CHANNELS: Final = 31
DCHAN_SLOT: Final = 16
MAX_CHANNEL: Final = MAX_SPANS * SPAN_CHANNELS + 64  # 8 E1 and up to 64 analog ports
MAX_LABEL: Final = 40
NUMBER_RE: Final = re.compile(r"[0-9*#]{1,20}")
#: chan_dahdi dial groups: outbound trunks are dialled as DAHDI/g1/...; the others never
GROUP_OUTBOUND: Final = 1
GROUP_INBOUND_ONLY: Final = 2
GROUP_SEATS: Final = 3

#: what a problem says, by code (the web has each in the user's language)
PROBLEMS: Final = {
    "required": "is required",
    "choice": "must be one of {choices}, got {value!r}",
    "integer": "must be a whole number from {lo} to {hi}, got {value!r}",
    "too-long": "must be at most {max} characters",
    "taken": "channel {value} is already port {other!r}",
    "dchan": "channel {value} is timeslot 16 of span {span}, which carries the signalling",
    "in-span": "channel {value} belongs to E1 span {span} (channels {lo}-{hi})",
    "span-mixed": "span {span} already uses {other}: every channel of a span has the same",
    "e1-caller-id": "an E1 line brings the caller's number in its signalling: choose none",
    "seat-route": "an FXS port rings a seat phone: it has no inbound route",
    "seat-reserved": "an FXS port rings a seat phone: it is not a trunk to reserve",
    "no-target": "a route to a {kind} needs its name or number",
    "unknown": "there is no {kind} {value!r}",
    "number": "must be digits (with * or #), 1 to 20, got {value!r}",
    "device": "must be a serial device under /dev, such as /dev/ttyUSB0, got {value!r}",
    "smsc": "must be a phone number (digits, + in front allowed), got {value!r}",
}


class PortError(ValueError):
    """A port refused: ``field`` is the form field, ``code`` one of :data:`PROBLEMS`."""

    def __init__(self, field: str, code: str, **params: Any) -> None:
        self.field, self.code, self.params = field, code, params
        super().__init__(f"{field}: {PROBLEMS[code].format(**params)}")


@dataclass(frozen=True, slots=True)
class Port:
    channel: int
    kind: str
    signalling: str
    caller_id: str = "none"
    route_kind: str = "none"
    route_target: str = ""
    reserved_inbound: bool = False
    label: str = ""

    @property
    def span(self) -> int:
        """The E1 span of this channel (0 for an analog port)."""
        return span_of(self.channel) if self.kind == "e1" else 0

    @property
    def trunk(self) -> bool:
        """A line to the outside (FXO or E1), not a seat phone."""
        return self.kind != "fxs"

    def as_row(self) -> dict[str, Any]:
        return {"channel": self.channel, "kind": self.kind, "signalling": self.signalling,
                "caller_id": self.caller_id, "route_kind": self.route_kind,
                "route_target": self.route_target,
                "reserved_inbound": int(self.reserved_inbound), "label": self.label}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Port:
        return cls(int(row["channel"]), row["kind"], row["signalling"], row["caller_id"],
                   row["route_kind"], row["route_target"], bool(row["reserved_inbound"]),
                   row["label"])


def span_of(channel: int) -> int:
    return (channel - 1) // SPAN_CHANNELS + 1


def span_channels(span: int) -> tuple[int, int]:
    return SPAN_CHANNELS * (span - 1) + 1, SPAN_CHANNELS * span


def dchan_of(span: int) -> int:
    return SPAN_CHANNELS * (span - 1) + DCHAN_SLOT


def _choice(field: str, value: str, choices: Sequence[str]) -> str:
    if not value:
        raise PortError(field, "required")
    if value not in choices:
        raise PortError(field, "choice", choices=", ".join(choices), value=value)
    return value


def span_forms(form: Mapping[str, str]) -> list[dict[str, str]]:
    """The form of each voice channel of the E1 span ``form["span"]`` (all 30 timeslots
    but 16), with the span form's signalling, route and reservation; raises
    :class:`PortError` for a span number out of range."""
    raw = str(form.get("span", "")).strip()
    if not raw:
        raise PortError("span", "required")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SPANS:
        raise PortError("span", "integer", lo=1, hi=MAX_SPANS, value=raw)
    span = int(raw)
    lo, hi = span_channels(span)
    return [dict(form, channel=str(ch), kind="e1", caller_id="none",
                 label=f"E1-{span}/{ch - lo + 1}")
            for ch in range(lo, hi + 1) if ch != dchan_of(span)]


def check_port(form: Mapping[str, str], others: Iterable[Port], *,
               flows: Iterable[str] = (), queues: Iterable[str] = ()) -> Port:
    """The port the form describes, checked against the other ports (its old row left
    out) and the flows and queues a route may name; raises :class:`PortError`."""
    text = {k: str(form.get(k, "")).strip() for k in
            ("channel", "kind", "signalling", "caller_id", "route_kind", "route_target",
             "label")}
    raw = text["channel"]
    if not raw:
        raise PortError("channel", "required")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_CHANNEL:
        raise PortError("channel", "integer", lo=1, hi=MAX_CHANNEL, value=raw)
    channel = int(raw)
    kind = _choice("kind", text["kind"], KINDS)
    signalling = _choice("signalling", text["signalling"], SIGNALLING[kind])
    caller_id = _choice("caller_id", text["caller_id"] or "none", tuple(CALLER_ID))
    route_kind = _choice("route_kind", text["route_kind"] or "none", ROUTE_KINDS)
    target = text["route_target"] if route_kind != "none" else ""
    reserved = str(form.get("reserved_inbound", "")).lower() in ("1", "on", "true", "yes")
    label = text["label"]
    if len(label) > MAX_LABEL:
        raise PortError("label", "too-long", max=MAX_LABEL)
    others = list(others)
    taken = {p.channel: p for p in others}
    if channel in taken:
        other = taken[channel]
        raise PortError("channel", "taken", value=channel, other=other.label or str(channel))

    e1_spans = {p.span: p.signalling for p in others if p.kind == "e1"}
    if kind == "e1":
        span = span_of(channel)
        if span > MAX_SPANS:
            raise PortError("channel", "integer", lo=1, hi=MAX_SPANS * SPAN_CHANNELS,
                            value=raw)
        if channel == dchan_of(span):
            raise PortError("channel", "dchan", value=channel, span=span)
        if e1_spans.get(span, signalling) != signalling:
            raise PortError("signalling", "span-mixed", span=span, other=e1_spans[span])
        if caller_id != "none":
            raise PortError("caller_id", "e1-caller-id")
        analog = [p for p in others if p.kind != "e1" and span_of(p.channel) == span]
        if analog:
            lo, hi = span_channels(span)
            raise PortError("channel", "in-span", value=analog[0].channel, span=span,
                            lo=lo, hi=hi)
    else:
        span = span_of(channel)
        if span in e1_spans:
            lo, hi = span_channels(span)
            raise PortError("channel", "in-span", value=channel, span=span, lo=lo, hi=hi)
    if kind == "fxs":
        if route_kind != "none":
            raise PortError("route_kind", "seat-route")
        if reserved:
            raise PortError("reserved_inbound", "seat-reserved")
    if route_kind != "none":
        if not target:
            raise PortError("route_target", "no-target", kind=route_kind)
        if route_kind == "number" and not NUMBER_RE.fullmatch(target):
            raise PortError("route_target", "number", value=target)
        known = {"flow": set(flows), "queue": set(queues)}.get(route_kind)
        if known is not None and target not in known:
            raise PortError("route_target", "unknown", kind=route_kind, value=target)
    return Port(channel, kind, signalling, caller_id, route_kind, target, reserved, label)


# ---------------------------------------------------------------------------- config text

def channel_list(channels: Iterable[int]) -> str:
    """``[1, 2, 3, 5, 7, 8]`` as DAHDI writes it: ``1-3,5,7-8``."""
    out = []
    for _, run in groupby(enumerate(sorted(set(channels))), lambda p: p[1] - p[0]):
        nums = [c for _, c in run]
        out.append(str(nums[0]) if len(nums) == 1 else f"{nums[0]}-{nums[-1]}")
    return ",".join(out)


def _runs(channels: Iterable[int]) -> list[str]:
    return channel_list(channels).split(",") if channels else []


HEADER = "generated by the appliance from its port settings; changes here are overwritten"


def system_conf(ports: Iterable[Port]) -> str:
    """``/etc/dahdi/system.conf`` for ``ports``."""
    ports = sorted(ports, key=lambda p: p.channel)
    lines = [f"# /etc/dahdi/system.conf: {HEADER}"]
    spans: dict[int, list[Port]] = {}
    for p in ports:
        if p.kind == "e1":
            spans.setdefault(p.span, []).append(p)
    for span, members in sorted(spans.items()):
        sig = members[0].signalling
        chans = [p.channel for p in members]
        # A span facing the exchange takes its clock from it (timing priority = its
        # number); as the network side (pri_net) the box is the clock source (0).
        timing = 0 if sig == "pri_net" else span
        if sig == "mfcr2":
            lines.append(f"span={span},{timing},0,cas,hdb3")
            lines += [f"cas={run}:1101" for run in _runs(chans)]
        else:
            lines.append(f"span={span},{timing},0,ccs,hdb3,crc4")
            lines.append(f"bchan={channel_list(chans)}")
            lines.append(f"dchan={dchan_of(span)}")
    analog = [p for p in ports if p.kind != "e1"]
    for sig, keyword in SYSTEM_CONF_SIGNALLING.items():
        chans = [p.channel for p in analog if p.signalling == sig]
        if chans:
            lines.append(f"{keyword}={channel_list(chans)}")
    if analog:
        # E1 spans are A-law already; analog modules default to mu-law (China is A-law).
        lines.append(f"alaw={channel_list(p.channel for p in analog)}")
    voice = [p.channel for p in ports]
    lines += [f"echocanceller=oslec,{run}" for run in _runs(voice)]
    lines += ["loadzone=cn", "defaultzone=cn"]
    return "\n".join(lines) + "\n"


def _settings(p: Port) -> list[tuple[str, str]]:
    """Every chan_dahdi setting of a port's block. chan_dahdi carries a setting over to the
    channels that follow it, so each block sets all of them, not only what differs."""
    if p.kind == "fxs":
        context, group = "seats", GROUP_SEATS
    else:
        context = "from-pstn"
        group = GROUP_INBOUND_ONLY if p.reserved_inbound else GROUP_OUTBOUND
    cid = CALLER_ID[p.caller_id]
    out = [("signalling", p.signalling), ("context", context), ("group", str(group))]
    if p.kind == "e1":
        out.append(("usecallerid", "yes"))  # the number comes in the signalling
    elif cid is None:
        out.append(("usecallerid", "no"))
    else:
        out += [("usecallerid", "yes"), ("cidsignalling", cid[0]), ("cidstart", cid[1])]
    if p.kind == "fxo":
        # An analog trunk has no answer signal and hangs up only on the busy tone China's
        # exchanges send (350 ms on, 350 ms off).
        out += [("busydetect", "yes"), ("busycount", "4"), ("busypattern", "350,350")]
    else:
        out.append(("busydetect", "no"))
    if p.signalling == "mfcr2":
        out += [("mfcr2_variant", "cn"), ("mfcr2_max_ani", "10"), ("mfcr2_max_dnis", "4"),
                ("mfcr2_category", "national_subscriber")]
    elif p.signalling.startswith("pri_"):
        out.append(("switchtype", "euroisdn"))
    out.append(("echocancel", "yes"))
    return out


def _route_text(p: Port) -> str:
    if p.kind == "fxs":
        return "seat phone"
    route = "the default flow" if p.route_kind == "none" else f"{p.route_kind} {p.route_target}"
    return route + (", inbound only" if p.reserved_inbound else "")


def chan_dahdi_conf(ports: Iterable[Port]) -> str:
    """The ``[channels]`` part of ``/etc/asterisk/chan_dahdi.conf`` for ``ports``: one block
    for each run of ports with the same settings. The inbound route is the engine's to
    follow (Asterisk hands every call to it); it is written beside the block as a comment."""
    ports = sorted(ports, key=lambda p: p.channel)
    lines = [f"; /etc/asterisk/chan_dahdi.conf: {HEADER}", "[trunkgroups]", "",
             "[channels]", "language=zh"]
    key = lambda p: (_settings(p), _route_text(p))  # noqa: E731
    for (settings, route), group in groupby(ports, key=key):
        members = list(group)
        labels = ", ".join(p.label for p in members if p.label)
        lines.append("")
        lines.append(f"; {members[0].kind.upper()}: {route}" + (f" ({labels})" if labels else ""))
        lines += [f"{k}={v}" for k, v in settings]
        lines.append(f"channel => {channel_list(p.channel for p in members)}")
    return "\n".join(lines) + "\n"


def outbound_trunks(ports: Iterable[Port]) -> list[int]:
    """The channels an outbound call may take: trunks not reserved for inbound."""
    return sorted(p.channel for p in ports if p.trunk and not p.reserved_inbound)


__all__ = ["CALLER_ID", "KINDS", "PROBLEMS", "ROUTE_KINDS", "SIGNALLING", "Port", "PortError",
           "chan_dahdi_conf", "channel_list", "check_port", "outbound_trunks", "span_forms",
           "span_of", "system_conf"]
