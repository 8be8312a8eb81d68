"""IVR flows (语音导航): the flow the engine runs, node by node as a caller meets them (what
each node says, in the chosen language, and where each key or outcome leads), and a
checker that runs a flow document through the engine's own validator and lists every
problem by node. Installing a new flow and placing a test call need the engine's control
API, which does not exist yet; this page only reads.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from appliance.ivr.flow import NODE_FIELDS, PROMPTS, TARGET, FlowError, validate

bp = Blueprint("flows", __name__, url_prefix="/flows")

DEFAULT_FLOW = Path(__file__).resolve().parents[1] / "appliance" / "ivr" / "default_flow.json"
MAX_FLOW_BYTES = 1024 * 1024


def node_type_name(kind: str) -> str:
    return {"play": _("Play"), "menu": _("Menu"), "collect": _("Collect keys"),
            "language": _("Language choice"), "hours": _("Opening hours"),
            "lookup": _("Look up"), "speak": _("Speak a value"), "record": _("Record"),
            "transfer": _("To a seat"), "voicemail": _("Voicemail"), "fax": _("Fax"),
            "goto": _("Go to"), "hangup": _("Hang up")}.get(kind, kind)


def outcome_name(field: str) -> str:
    return {"next": _("then"), "on_timeout": _("no input"), "on_invalid": _("wrong key"),
            "on_found": _("found"), "on_not_found": _("not found"), "open": _("open"),
            "closed": _("closed"), "target": _("then")}.get(field, field)


def _ordered(doc: dict[str, Any]) -> list[str]:
    """Node ids in the order a caller meets them (breadth first from the start), then any
    the start does not reach."""
    nodes: dict[str, Any] = doc.get("nodes", {})
    seen: list[str] = []
    queue = deque([doc.get("start", "")] + ([doc["operator"]] if doc.get("operator") else []))
    while queue:
        node_id = queue.popleft()
        if node_id in seen or node_id not in nodes:
            continue
        seen.append(node_id)
        node = nodes[node_id]
        for field, (kind, _required) in NODE_FIELDS.get(node.get("type", ""), {}).items():
            if kind == TARGET and isinstance(node.get(field), str):
                queue.append(node[field])
            elif (field == "options" and isinstance(node.get(field), dict)
                  and node.get("type") == "menu"):
                queue.extend(v for v in node[field].values() if isinstance(v, str))
    return seen + [n for n in nodes if n not in seen]


def _rows(doc: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    manifest_path = Path(current_app.config["PROMPTS_DIR"]) / "manifest.json"
    try:
        texts = json.loads(manifest_path.read_text("utf-8")).get(lang, {}).get("prompts", {})
    except FileNotFoundError:
        texts = {}
    rows = []
    for node_id in _ordered(doc):
        node = doc["nodes"][node_id]
        kind = node.get("type", "")
        said, goes = [], []
        for field, (fkind, _required) in NODE_FIELDS.get(kind, {}).items():
            value = node.get(field)
            if fkind == PROMPTS and isinstance(value, list):
                said += [texts.get(p, p) for p in value]
            elif fkind == TARGET and isinstance(value, str):
                goes.append((outcome_name(field), value))
            elif field == "options" and isinstance(value, dict):
                goes += [(_("key %(key)s", key=k), v) for k, v in value.items()]
        rows.append({"id": node_id, "type": kind, "said": said, "goes": goes})
    return rows


@bp.route("/", endpoint="view")
def flow_view() -> ResponseReturnValue:
    doc = json.loads(DEFAULT_FLOW.read_text("utf-8"))
    lang = request.args.get("lang", doc["languages"][0])
    if lang not in doc["languages"]:
        lang = doc["languages"][0]
    return render_template("flows/view.html", doc=doc, rows=_rows(doc, lang), lang=lang,
                           node_type_name=node_type_name)


@bp.route("/check", methods=["POST"])
def check() -> ResponseReturnValue:
    upload = request.files.get("file")
    data = upload.read(MAX_FLOW_BYTES + 1) if upload else b""
    errors: list[FlowError] = []
    problem = None
    doc: Any = None
    if not data:
        problem = _("Choose a file to import.")
    elif len(data) > MAX_FLOW_BYTES:
        problem = _("The file is too large: at most %(mb)d MB.", mb=1)
    else:
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            problem = _("The file is not a JSON flow document.")
        else:
            if not isinstance(doc, dict):
                problem = _("The file is not a JSON flow document.")
            else:
                errors = validate(doc, Path(current_app.config["PROMPTS_DIR"]))
    current = json.loads(DEFAULT_FLOW.read_text("utf-8"))
    lang = current["languages"][0]
    name = doc.get("name") if isinstance(doc, dict) else None
    nodes = len(doc.get("nodes") or {}) if isinstance(doc, dict) else 0
    checked = {"problem": problem, "errors": errors, "name": name, "nodes": nodes}
    page = render_template("flows/view.html", doc=current, rows=_rows(current, lang),
                           lang=lang, node_type_name=node_type_name, checked=checked)
    return page, 400 if problem or errors else 200
