"""IVR flows (语音导航): the flow the engine runs, node by node as a caller meets them (what
each node says, in the chosen language, and where each key or outcome leads); its
versions in the store (drafts uploaded here or edited node by node, each edit a new draft;
the published one, roll-back), drawn as a diagram (:mod:`web.flow_diagram`), each publish
validated by the engine's own validator with every problem listed by node; and test calls:
a simulated caller pressing the keys given through any version, with the path it took,
the prompts it heard and the audio to play. The engine runs whatever is published from
its next call on (see :mod:`appliance.ivr.versions`).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from appliance.ivr import versions
from appliance.ivr.flow import (
    NODE_FIELDS,
    PROMPTS,
    TARGET,
    FlowError,
    FlowInvalid,
    load_flow,
    validate,
)
from appliance.ivr.trial import TrialError, parse_keys, run_trial
from web import audit, flow_diagram, flow_edit
from web.db import store
from web.prompts import prompt_texts

bp = Blueprint("flows", __name__, url_prefix="/flows")

DEFAULT_FLOW = Path(__file__).resolve().parents[1] / "appliance" / "ivr" / "default_flow.json"
MAX_FLOW_BYTES = 1024 * 1024


def node_type_name(kind: str) -> str:
    return {"play": _("Play"), "menu": _("Menu"), "collect": _("Collect keys"),
            "language": _("Language choice"), "hours": _("Opening hours"),
            "lookup": _("Look up"), "speak": _("Speak a value"), "record": _("Record"),
            "transfer": _("To a seat"), "voicemail": _("Voicemail"), "fax": _("Fax"),
            "goto": _("Go to"), "hangup": _("Hang up"), "conference": _("Conference"),
            "inbox": _("Salesperson's messages")}.get(kind, kind)


def status_name(status: str) -> str:
    return {"draft": _("draft"), "published": _("published"),
            "retired": _("retired")}.get(status, status)


def outcome_name(field: str) -> str:
    return {"next": _("then"), "on_timeout": _("no input"), "on_invalid": _("wrong key"),
            "on_found": _("found"), "on_not_found": _("not found"), "open": _("open"),
            "closed": _("closed"), "target": _("then")}.get(field, field)


def _ordered(doc: dict[str, Any]) -> list[str]:
    """Node ids in the order a caller meets them (breadth first from the start), then any
    the start does not reach."""
    return [node_id for column in flow_diagram.columns(doc) for node_id in column]


def edge_label(edge: flow_diagram.Edge) -> str:
    return (_("key %(key)s", key=edge.key) if edge.key is not None
            else outcome_name(edge.field))


def _rows(doc: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    texts = prompt_texts(lang)
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


FLOW_NAME = "default"


def _shown(version: int | None) -> tuple[dict[str, Any], versions.FlowVersion | None]:
    """The document to show: the version asked for, else the published one, else the file
    the box starts from."""
    if version is not None:
        stored = versions.get_version(store(), FLOW_NAME, version)
        if stored is None:
            abort(404)
        return stored.document, stored
    live = versions.published_version(store(), FLOW_NAME)
    if live is not None:
        return live.document, live
    return json.loads(DEFAULT_FLOW.read_text("utf-8")), None


def _page(version: int | None = None, **extra: Any) -> str:
    doc, stored = _shown(version)
    languages = doc.get("languages") or ["zh"]
    lang = request.values.get("lang", languages[0])
    if lang not in languages:
        lang = languages[0]
    has_nodes = isinstance(doc.get("nodes"), dict)
    if stored is not None and stored.status == versions.DRAFT and "checked" not in extra:
        # A draft may be unfinished: what publishing would refuse is shown beside it.
        extra["problems"] = validate(doc, Path(current_app.config["PROMPTS_DIR"]))
    return render_template("flows/view.html", doc=doc, stored=stored,
                           rows=_rows(doc, lang) if has_nodes else [],
                           diagram=flow_diagram.layout(doc, edge_label) if has_nodes else None,
                           node_types=list(NODE_FIELDS),
                           lang=lang, node_type_name=node_type_name, status_name=status_name,
                           versions=versions.versions(store(), FLOW_NAME), **extra)


@bp.route("/", endpoint="view")
def flow_view() -> ResponseReturnValue:
    version = request.args.get("version", type=int)
    return _page(version)


def _uploaded_document() -> tuple[Any, str | None]:
    upload = request.files.get("file")
    data = upload.read(MAX_FLOW_BYTES + 1) if upload else b""
    if not data:
        return None, _("Choose a file to import.")
    if len(data) > MAX_FLOW_BYTES:
        return None, _("The file is too large: at most %(mb)d MB.", mb=1)
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, _("The file is not a JSON flow document.")
    if not isinstance(doc, dict):
        return None, _("The file is not a JSON flow document.")
    return doc, None


@bp.route("/check", methods=["POST"])
def check() -> ResponseReturnValue:
    doc, problem = _uploaded_document()
    errors: list[FlowError] = []
    if doc is not None:
        errors = validate(doc, Path(current_app.config["PROMPTS_DIR"]))
    name = doc.get("name") if isinstance(doc, dict) else None
    nodes = len(doc.get("nodes") or {}) if isinstance(doc, dict) else 0
    checked = {"problem": problem, "errors": errors, "name": name, "nodes": nodes}
    return _page(checked=checked), 400 if problem or errors else 200


@bp.route("/draft", methods=["POST"])
def draft() -> ResponseReturnValue:
    """Store an uploaded document as the next version, a draft (it may still be unfinished;
    publishing is what must pass the validator)."""
    doc, problem = _uploaded_document()
    if doc is not None and doc.get("name") != FLOW_NAME:
        problem = _("The flow must be named %(name)s.", name=FLOW_NAME)
    if problem:
        return _page(checked={"problem": problem, "errors": [], "name": None,
                              "nodes": 0}), 400
    assert doc is not None
    user = audit.current_username()
    number = versions.save_draft(store(), doc, by=user, now=time.time())
    audit.log("flow.draft", f"{FLOW_NAME}/{number}")
    return _saved(doc, number)


def _saved(doc: dict[str, Any], number: int) -> ResponseReturnValue:
    """Tell whether the draft just saved can be published, and show it."""
    errors = validate(doc, Path(current_app.config["PROMPTS_DIR"]))
    if errors:
        flash(_("Saved as draft version %(n)d; it has %(p)d problems to fix before it can be "
                "published.", n=number, p=len(errors)), "error")
    else:
        flash(_("Saved as draft version %(n)d; it is valid and can be published.", n=number))
    return redirect(url_for("flows.view", version=number)), 303


@bp.route("/<int:version>/publish", methods=["POST"])
def publish(version: int) -> ResponseReturnValue:
    try:
        versions.publish(store(), FLOW_NAME, version, by=audit.current_username(),
                         now=time.time(), prompts_root=Path(current_app.config["PROMPTS_DIR"]))
    except versions.FlowVersionError:
        abort(404)
    except FlowInvalid as exc:
        checked = {"problem": None, "errors": exc.errors, "name": FLOW_NAME,
                   "nodes": 0}
        return _page(version, checked=checked), 400
    audit.log("flow.publish", f"{FLOW_NAME}/{version}")
    flash(_("Version %(n)d is published: the next call runs it.", n=version))
    return redirect(url_for("flows.view")), 303


@bp.route("/rollback", methods=["POST"])
def rollback() -> ResponseReturnValue:
    try:
        flow = versions.roll_back(store(), FLOW_NAME, by=audit.current_username(),
                                  now=time.time(),
                                  prompts_root=Path(current_app.config["PROMPTS_DIR"]))
    except versions.FlowVersionError:
        flash(_("There is no earlier published version to go back to."), "error")
        return redirect(url_for("flows.view")), 303
    except FlowInvalid as exc:
        return _page(checked={"problem": None, "errors": exc.errors, "name": FLOW_NAME,
                              "nodes": 0}), 400
    audit.log("flow.rollback", f"{FLOW_NAME}/{flow.version}")
    flash(_("Version %(n)d is published again: the next call runs it.", n=flow.version))
    return redirect(url_for("flows.view")), 303


def _stored_or_404(version: int) -> versions.FlowVersion:
    stored = versions.get_version(store(), FLOW_NAME, version)
    if stored is None or not isinstance(stored.document.get("nodes"), dict):
        abort(404)
    return stored


def _node_page(stored: versions.FlowVersion, node_id: str, kind: str,
               node: dict[str, Any], problems: list[str] | None = None,
               typed: dict[str, str] | None = None) -> str:
    doc = stored.document
    return render_template("flows/node.html", doc=doc, stored=stored, node_id=node_id,
                           kind=kind, is_new=node_id not in doc["nodes"],
                           fields=flow_edit.fields(kind, node, typed), node_ids=list(doc["nodes"]),
                           leading_to=flow_diagram.leading_to(doc, node_id),
                           problems=problems or [], node_type_name=node_type_name,
                           status_name=status_name, outcome_name=outcome_name)


def _new_node_kind(doc: dict[str, Any], node_id: str, kind: str) -> str | None:
    """Why a node ``node_id`` of type ``kind`` cannot be added, or None."""
    if not flow_edit.NODE_ID.fullmatch(node_id):
        return _("A node id is 1 to 60 letters, digits, _ . or -, not %(id)s.", id=repr(node_id))
    if node_id in doc["nodes"]:
        return _("There is already a node %(id)s.", id=node_id)
    if kind not in NODE_FIELDS:
        return _("%(type)s is not a node type.", type=repr(kind))
    return None


@bp.route("/<int:version>/nodes", methods=["POST"])
def node_add(version: int) -> ResponseReturnValue:
    """Start a new node: its id and type, then its form (nothing is saved until that)."""
    stored = _stored_or_404(version)
    node_id = request.form.get("node_id", "").strip()
    kind = request.form.get("type", "")
    why = _new_node_kind(stored.document, node_id, kind)
    if why:
        flash(why, "error")
        return redirect(url_for("flows.view", version=version)), 303
    return redirect(url_for("flows.node_form", version=version, node_id=node_id,
                            type=kind)), 303


@bp.route("/<int:version>/node/<node_id>", endpoint="node_form")
def node_form(version: int, node_id: str) -> ResponseReturnValue:
    stored = _stored_or_404(version)
    node = stored.document["nodes"].get(node_id)
    if isinstance(node, dict):
        return _node_page(stored, node_id, str(node.get("type", "")), node)
    kind = request.args.get("type", "")
    if node is not None or _new_node_kind(stored.document, node_id, kind):
        abort(404)
    return _node_page(stored, node_id, kind, {})


@bp.route("/<int:version>/node/<node_id>", methods=["POST"], endpoint="node_save")
def node_save(version: int, node_id: str) -> ResponseReturnValue:
    """Save the version with this one node as the form gives it, as a new draft (the
    version edited, published or not, stays as it was)."""
    stored = _stored_or_404(version)
    doc = stored.document
    old = doc["nodes"].get(node_id)
    if old is None:
        kind = request.form.get("type", "")
        why = _new_node_kind(doc, node_id, kind)
        if why:
            flash(why, "error")
            return redirect(url_for("flows.view", version=version)), 303
    elif isinstance(old, dict) and old.get("type") in NODE_FIELDS:
        kind = old["type"]
    else:
        abort(404)  # not a node the form can edit: upload a corrected document instead
    node, problems = flow_edit.read_node(kind, request.form, set(doc["nodes"]) | {node_id},
                                         list(doc.get("languages") or []), old)
    if problems:
        return _node_page(stored, node_id, kind, node, problems, request.form.to_dict()), 400
    if node == old:
        flash(_("Node %(id)s is unchanged: no new version saved.", id=node_id))
        return redirect(url_for("flows.view", version=version)), 303
    changed = {**doc, "nodes": {**doc["nodes"], node_id: node}}
    number = versions.save_draft(store(), changed, by=audit.current_username(),
                                 now=time.time())
    audit.log("flow.node_add" if old is None else "flow.node_save", f"{FLOW_NAME}/{number}",
              node=node_id, based_on=version)
    return _saved(changed, number)


@bp.route("/<int:version>/node/<node_id>/delete", methods=["POST"])
def node_delete(version: int, node_id: str) -> ResponseReturnValue:
    stored = _stored_or_404(version)
    doc = stored.document
    if node_id not in doc["nodes"]:
        abort(404)
    sources = flow_diagram.leading_to(doc, node_id)
    if node_id in (doc.get("start"), doc.get("operator")):
        sources.insert(0, _("the flow itself (start or operator)"))
    if sources:
        flash(_("Node %(id)s is not deleted: %(n)d nodes still lead to it: %(from)s.",
                id=node_id, n=len(sources), **{"from": ", ".join(sources)}), "error")
        return redirect(url_for("flows.node_form", version=version, node_id=node_id)), 303
    changed = {**doc, "nodes": {k: v for k, v in doc["nodes"].items() if k != node_id}}
    number = versions.save_draft(store(), changed, by=audit.current_username(),
                                 now=time.time())
    audit.log("flow.node_delete", f"{FLOW_NAME}/{number}", node=node_id, based_on=version)
    return _saved(changed, number)


def _trials_dir() -> Path:
    return Path(current_app.config["DATA_DIR"]) / "flow_tests"


@bp.route("/<int:version>/test", methods=["POST"])
def test_call(version: int) -> ResponseReturnValue:
    """A simulated caller through ``version`` pressing the keys given, on a copy of the
    database: the path, the prompts heard in order, and the audio."""
    stored = versions.get_version(store(), FLOW_NAME, version)
    if stored is None:
        abort(404)
    keys_text = request.form.get("keys", "")
    try:
        keys = parse_keys(keys_text)
        flow = load_flow(stored.document, Path(current_app.config["PROMPTS_DIR"]))
    except TrialError as exc:
        flash(_("The keys cannot be pressed: %(why)s", why=str(exc)), "error")
        return redirect(url_for("flows.view", version=version)), 303
    except FlowInvalid as exc:
        return _page(version, checked={"problem": None, "errors": exc.errors,
                                       "name": FLOW_NAME, "nodes": 0}), 400
    trial_id = uuid.uuid4().hex
    wav = _trials_dir() / f"{trial_id}.wav"
    result = run_trial(flow, store().path, keys, wav)
    audit.log("flow.test_call", f"{FLOW_NAME}/{version}", keys=keys_text)
    played = [(lang, name, prompt_texts(lang).get(name, name)) for lang, name in result.played]
    return _page(version, trial={"id": trial_id, "keys": keys_text, "result": result,
                                 "played": played})


@bp.route("/test/<trial_id>.wav", endpoint="test_audio")
def test_audio(trial_id: str) -> ResponseReturnValue:
    if len(trial_id) != 32 or not all(c in "0123456789abcdef" for c in trial_id):
        abort(404)
    path = _trials_dir() / f"{trial_id}.wav"
    if not path.is_file():
        abort(404)
    return Response(path.read_bytes(), mimetype="audio/wav")  # small: a few seconds
