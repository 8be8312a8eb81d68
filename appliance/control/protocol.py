"""The control protocol: one JSON object a line, both ways, over TCP on 127.0.0.1.

A request is ``{"token": ..., "op": ..., <fields>}``; the answer is ``{"ok": true,
"result": ...}`` or ``{"ok": false, "error": "<what was wrong>"}``. A connection may carry
any number of requests, one at a time. ``{"op": "follow"}`` turns the connection into an
event stream: after its ``ok`` answer the server sends ``{"event": kind, "data": {...}}``
lines until either side closes.

The token is a secret the engine keeps in the data folder (``control_token``, mode 0600),
so only a process that may read that folder (the web) can use the API; the port the engine
listens on is in ``control.json`` beside it.

This module is pure: the validation of each request against :data:`OPS`, and the files.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from appliance.acd.model import REASONS

TOKEN_FILE: Final = "control_token"
ADDRESS_FILE: Final = "control.json"
#: longest request line the server reads
MAX_LINE: Final = 64 * 1024
#: the wrap-up codes an agent may give a call
WRAP_UP_CODES: Final = ("enquiry", "payment", "claim", "change", "complaint", "sales",
                        "other")
MAX_NOTE: Final = 500
#: most ports one request may name (8 E1 spans and the analog ports)
MAX_PORTS: Final = 400
#: the not-ready reasons an agent may give (the ACD itself sets no-answer and unreachable)
AGENT_REASONS: Final = tuple(r for r in ("break", "lunch", "meeting", "training",
                                         "after-call-work", "other") if r in REASONS)

#: how a supervisor joins a seat's call: hear both sides, or also talk to the agent only
LISTEN_MODES: Final = ("listen", "whisper")
#: the languages a dialled customer may be spoken to in (a survey after the call)
DIAL_LANGUAGES: Final = ("zh", "yue", "en")
#: what an agent may transfer a call to, and how
TRANSFER_TARGETS: Final = ("seat", "queue", "number")
TRANSFER_MODES: Final = ("blind", "consult")

Check = Callable[[Any], str | None]  # None when fine, else what was expected


class ControlError(ValueError):
    """A request refused: the message names the field or the state that was wrong."""


def _text(max_len: int = 64, empty: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"a string, got {type(value).__name__}"
        if not empty and not value.strip():
            return "a non-empty string"
        if len(value) > max_len:
            return f"at most {max_len} characters, got {len(value)}"
        return None

    return check


def _ports(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) > MAX_PORTS:
        return f"a list of at most {MAX_PORTS} port numbers"
    if not all(isinstance(p, str) and p.isdigit() and len(p) <= 4 for p in value):
        return f"a list of port numbers as strings, got {value[:5]!r}"
    return None


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        if value not in choices:
            return f"one of {', '.join(choices)}, got {value!r}"
        return None

    return check


@dataclass(frozen=True)
class Field:
    check: Check
    required: bool = True
    default: Any = None


#: every request: its fields (beyond ``token`` and ``op``)
OPS: Final[dict[str, dict[str, Field]]] = {
    "seats": {},
    "queues": {},
    "login": {"seat": Field(_text()), "agent": Field(_text())},
    "logout": {"seat": Field(_text())},
    "set-state": {"seat": Field(_text()), "state": Field(_one_of(("ready", "not-ready"))),
                  "reason": Field(_text(empty=True), required=False, default="")},
    "hangup": {"seat": Field(_text())},
    "wrap-up": {"seat": Field(_text()), "call": Field(_text()),
                "code": Field(_one_of(WRAP_UP_CODES)),
                "note": Field(_text(MAX_NOTE, empty=True), required=False, default="")},
    "follow": {},
    # A supervisor's listen-in and whisper (the supervisor page), click-to-dial (console).
    "listen": {"seat": Field(_text()), "phone": Field(_text()),
               "mode": Field(_one_of(LISTEN_MODES)), "supervisor": Field(_text())},
    "listen-mode": {"monitor": Field(_text()), "mode": Field(_one_of(LISTEN_MODES))},
    "listen-stop": {"monitor": Field(_text())},
    "monitors": {},
    "dial": {"seat": Field(_text()), "number": Field(_text(32)),
             "customer": Field(_text(empty=True), required=False, default=""),
             "queue": Field(_text(empty=True), required=False, default=""),
             "language": Field(_one_of(DIAL_LANGUAGES), required=False, default="zh")},
    "lines": {},
    "reserve-inbound": {"ports": Field(_ports)},
    # Seats and queues as saved in the store, taken by the running ACD between calls.
    "reload-acd": {},
    # The agent's call controls beyond answer and hang-up (appliance.acd.transfer).
    "hold": {"seat": Field(_text())},
    "unhold": {"seat": Field(_text())},
    "transfer": {"seat": Field(_text()), "to": Field(_one_of(TRANSFER_TARGETS)),
                 "target": Field(_text(32)),
                 "mode": Field(_one_of(TRANSFER_MODES), required=False, default="blind")},
    "consult-complete": {"seat": Field(_text())},
    "consult-return": {"seat": Field(_text())},
    "conference": {"seat": Field(_text())},
    # A premium reminder pass now (the reminders page's "run now"; appliance.reminders).
    "reminders-run": {},
}
#: the ops :meth:`ControlServer._listen_or_dial` answers
LISTEN_DIAL_OPS: Final = frozenset({"listen", "listen-mode", "listen-stop", "monitors",
                                    "dial"})


@dataclass(frozen=True)
class Request:
    op: str
    args: dict[str, Any]


def parse_request(line: bytes, token: str) -> Request:
    """The request on ``line``, checked against the token and :data:`OPS`; raises
    :class:`ControlError` naming what was wrong."""
    try:
        doc = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlError(f"request is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ControlError(f"request must be a JSON object, got {type(doc).__name__}")
    sent = doc.pop("token", None)
    if not isinstance(sent, str) or not secrets.compare_digest(sent, token):
        raise ControlError("token: missing or wrong (the engine's data folder has it)")
    op = doc.pop("op", None)
    if op not in OPS:
        raise ControlError(f"op: expected one of {', '.join(OPS)}, got {op!r}")
    return Request(op, check_fields(op, doc))


def check_fields(op: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    spec = OPS[op]
    unknown = sorted(set(doc) - set(spec))
    if unknown:
        raise ControlError(f"{op}: unknown field {', '.join(unknown)} (fields: "
                           f"{', '.join(spec) or 'none'})")
    args: dict[str, Any] = {}
    for name, field in spec.items():
        if name not in doc:
            if field.required:
                raise ControlError(f"{op}: missing field {name!r}")
            args[name] = field.default
            continue
        problem = field.check(doc[name])
        if problem:
            raise ControlError(f"{op}: field {name!r} must be {problem}")
        args[name] = doc[name].strip() if isinstance(doc[name], str) and name != "note" \
            else doc[name]
    return args


def encode(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def ensure_token(data: Path) -> str:
    """The data folder's token, made once (0600) if there is none yet."""
    path = Path(data) / TOKEN_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made meanwhile by another process
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(token)
        return token


def write_address(data: Path, host: str, port: int) -> None:
    path = Path(data) / ADDRESS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"host": host, "port": port}))
    tmp.replace(path)


def read_address(data: Path) -> tuple[str, int, str] | None:
    """``(host, port, token)`` of the engine using ``data``, or None if none has run."""
    try:
        doc = json.loads((Path(data) / ADDRESS_FILE).read_text())
        token = (Path(data) / TOKEN_FILE).read_text().strip()
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return str(doc["host"]), int(doc["port"]), token


__all__ = [
    "ADDRESS_FILE",
    "AGENT_REASONS",
    "DIAL_LANGUAGES",
    "LISTEN_DIAL_OPS",
    "LISTEN_MODES",
    "MAX_LINE",
    "MAX_NOTE",
    "OPS",
    "TOKEN_FILE",
    "TRANSFER_MODES",
    "TRANSFER_TARGETS",
    "WRAP_UP_CODES",
    "ControlError",
    "Request",
    "check_fields",
    "encode",
    "ensure_token",
    "parse_request",
    "read_address",
    "write_address",
]
