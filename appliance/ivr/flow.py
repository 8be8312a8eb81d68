"""Call flows as versioned JSON documents, and the validator that refuses a broken one.

A flow is ``{"name", "version", "languages", "start", "nodes": {id: {"type": ...}}}`` plus
an optional ``"operator"`` node that ``0`` reaches from any menu. Each node type has a fixed
set of fields (:data:`NODE_FIELDS`); the validator checks every field's type, every target,
that every node is reachable from ``start`` and leads somewhere (only ``hangup`` ends a
call), that every prompt exists as ``<prompts_root>/<lang>/<name>.wav`` in every language
the flow enables, and that every variable read is written by some node. It reports all
errors at once, each naming the node, so an editor fixes a document in one pass rather than
one error per upload. The interpreter (:mod:`appliance.ivr.interpreter`) trusts a
:class:`Flow` and does no checking of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from appliance.ivr.speech import KINDS, LANGUAGES, grammar, say
from appliance.media.prompts import DEFAULT_PROMPTS_DIR

#: variables every call has before its first node runs
BUILTIN_VARIABLES: Final = frozenset({"caller", "callee", "call_id", "language"})
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KEYS: Final = frozenset("0123456789*#ABCD")
_HHMM: Final = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00")
_BOX: Final = re.compile(r"general|queue:[A-Za-z0-9_.-]+|salesperson:[A-Za-z0-9]+")
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")

# Field kinds: how a field's value is checked, and whether it names other nodes.
PROMPTS = "prompts"  # list of prompt names
TARGET = "target"  # a node id
KEYMAP = "keymap"  # {key: node id}
LANGMAP = "langmap"  # {key: language code}
INT = "int"
NUMBER = "number"
TEXT = "text"
VARIABLE = "variable"  # a variable written
VARIABLES = "variables"  # variables read
READ = "read"  # one variable read
BOOL = "bool"
SPEECH_KIND = "speech-kind"
SCHEDULE = "schedule"
DATES = "dates"  # list of ISO dates (YYYY-MM-DD)
BOX = "box"  # a voicemail box: general, queue:<name> or salesperson:<code>
FAX_DOCUMENT = "fax-document"
PARAMS = "params"  # {parameter: variable read}
#: the documents a fax node can send (appliance.fax.documents.build)
FAX_DOCUMENTS: Final = ("policy_summary", "rates", "claim_form", "procedures")
KEYSET = "keyset"  # a string of keys, possibly empty

#: per node type: field -> (kind, required)
NODE_FIELDS: Final[dict[str, dict[str, tuple[str, bool]]]] = {
    "play": {"prompts": (PROMPTS, True), "next": (TARGET, True),
             "interruptible": (BOOL, False), "recording": (READ, False)},
    "menu": {"prompt": (PROMPTS, True), "options": (KEYMAP, True), "retries": (INT, False),
             "timeout": (NUMBER, False), "on_invalid": (TARGET, True),
             "on_timeout": (TARGET, True), "invalid_prompt": (PROMPTS, False),
             "timeout_prompt": (PROMPTS, False)},
    "collect": {"prompt": (PROMPTS, True), "max_digits": (INT, True),
                "terminator": (KEYSET, False), "into": (VARIABLE, True),
                "timeout": (NUMBER, False), "inter_timeout": (NUMBER, False),
                "next": (TARGET, True), "on_timeout": (TARGET, True),
                "secret": (BOOL, False)},
    "language": {"prompt": (PROMPTS, True), "options": (LANGMAP, True),
                 "timeout": (NUMBER, False), "next": (TARGET, True)},
    "hours": {"schedule": (SCHEDULE, True), "holidays": (DATES, False),
              "open": (TARGET, True), "closed": (TARGET, True)},
    "lookup": {"function": (TEXT, True), "args": (VARIABLES, False), "into": (VARIABLE, True),
               "on_found": (TARGET, True), "on_not_found": (TARGET, True)},
    "speak": {"kind": (SPEECH_KIND, True), "variable": (READ, False), "value": (TEXT, False),
              "interruptible": (BOOL, False), "next": (TARGET, True)},
    "record": {"prompt": (PROMPTS, True), "into": (VARIABLE, True),
               "max_seconds": (NUMBER, False), "next": (TARGET, True)},
    "transfer": {"queue": (TEXT, True), "prompt": (PROMPTS, True), "next": (TARGET, True),
                 "priority": (INT, False)},
    "voicemail": {"box": (BOX, True), "prompt": (PROMPTS, False),
                  "max_seconds": (NUMBER, False), "policy": (READ, False),
                  "next": (TARGET, True)},
    "inbox": {"salesperson": (READ, True), "next": (TARGET, True)},
    "fax": {"document": (FAX_DOCUMENT, True), "params": (PARAMS, False), "to": (READ, False),
            "prompt": (PROMPTS, False), "next": (TARGET, True), "on_failed": (TARGET, False)},
    "conference": {"prompt": (PROMPTS, False), "next": (TARGET, True)},
    "goto": {"target": (TARGET, True)},
    "hangup": {"prompt": (PROMPTS, False)},
}

#: prompts a node plays when its document names none
DEFAULT_PROMPTS: Final[dict[str, dict[str, list[str]]]] = {
    "voicemail": {"prompt": ["leave_message"]},
}


@dataclass(frozen=True, slots=True)
class FlowError:
    """One thing wrong with a flow document: where (a node id, or ``"<flow>"``) and what."""

    node: str
    message: str

    def __str__(self) -> str:
        return f"{self.node}: {self.message}"


class FlowInvalid(ValueError):
    """A flow document failed validation; ``errors`` lists every problem found."""

    def __init__(self, name: str, errors: list[FlowError]) -> None:
        lines = "\n  ".join(str(e) for e in errors)
        super().__init__(f"flow {name!r} is invalid ({len(errors)} errors):\n  {lines}")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Flow:
    """A validated flow document."""

    name: str
    version: int
    languages: tuple[str, ...]
    start: str
    nodes: Mapping[str, Mapping[str, Any]]
    operator: str | None = None
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def node(self, node_id: str) -> Mapping[str, Any]:
        return self.nodes[node_id]

    def functions(self) -> set[str]:
        """The lookup functions the flow calls (the handler checks they are supplied)."""
        return {n["function"] for n in self.nodes.values() if n.get("type") == "lookup"}

    def has(self, node_type: str) -> bool:
        return any(n.get("type") == node_type for n in self.nodes.values())


FLOW = "<flow>"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, float)) and value >= 0  # type: ignore[operator]


def _prompt_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(p, str) and p for p in value)


def _schedule_problem(value: object) -> str | None:
    if not isinstance(value, list) or not value:
        return "must be a non-empty list of {days, from, to}"
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or set(entry) != {"days", "from", "to"}:
            return f"entry {i} must have exactly the fields days, from, to"
        days = entry["days"]
        if not isinstance(days, list) or not days or not all(d in WEEKDAYS for d in days):
            return f"entry {i}: days must be a non-empty list of {', '.join(WEEKDAYS)}"
        for end in ("from", "to"):
            if not isinstance(entry[end], str) or not _HHMM.fullmatch(entry[end]):
                return f"entry {i}: {end} {entry[end]!r} is not HH:MM (00:00 … 24:00)"
        if entry["from"] >= entry["to"]:
            return f"entry {i}: from {entry['from']} is not before to {entry['to']}"
    return None


def _is_date_list(value: object) -> bool:
    if not isinstance(value, list):
        return False
    for day in value:
        # fromisoformat alone would also take 20261001; the flow documents one spelling.
        if not isinstance(day, str) or not _DATE.fullmatch(day):
            return False
        try:
            dt.date.fromisoformat(day)
        except ValueError:
            return False
    return True


_SIMPLE_CHECKS: Final[dict[str, tuple[Callable[[object], bool], str]]] = {
    PROMPTS: (_prompt_list, "a list of prompt names"),
    TARGET: (lambda v: isinstance(v, str) and bool(v), "a node id"),
    INT: (lambda v: _is_int(v) and v >= 0, "an integer ≥ 0"),  # type: ignore[operator]
    NUMBER: (_is_number, "a number ≥ 0"),
    TEXT: (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    VARIABLE: (lambda v: isinstance(v, str) and bool(_NAME.fullmatch(v)), "a variable name"),
    READ: (lambda v: isinstance(v, str) and bool(_NAME.fullmatch(v)), "a variable name"),
    VARIABLES: (lambda v: isinstance(v, list) and all(isinstance(a, str) and _NAME.fullmatch(a)
                                                       for a in v), "a list of variable names"),
    BOOL: (lambda v: isinstance(v, bool), "true or false"),
    SPEECH_KIND: (lambda v: v in KINDS, f"one of {', '.join(KINDS)}"),
    KEYSET: (lambda v: isinstance(v, str) and set(v) <= KEYS, "a string of keys (may be empty)"),
    DATES: (_is_date_list, "a list of dates YYYY-MM-DD"),
    BOX: (lambda v: isinstance(v, str) and bool(_BOX.fullmatch(v)),
          "a voicemail box: general, queue:<name> or salesperson:<code>"),
    FAX_DOCUMENT: (lambda v: v in FAX_DOCUMENTS, f"one of {', '.join(FAX_DOCUMENTS)}"),
    PARAMS: (lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and k and isinstance(a, str) and _NAME.fullmatch(a)
        for k, a in v.items()), "an object {parameter: variable name}"),
}


class _Checker:
    def __init__(self, doc: Mapping[str, Any], prompts_root: Path) -> None:
        self.doc = doc
        self.root = Path(prompts_root)
        self.errors: list[FlowError] = []
        self.languages: list[str] = []
        self._files: dict[str, set[str]] = {}

    def error(self, node: str, message: str) -> None:
        self.errors.append(FlowError(node, message))

    def prompts_of(self, lang: str) -> set[str]:
        if lang not in self._files:
            folder = self.root / lang
            self._files[lang] = {p.stem for p in folder.glob("*.wav")} if folder.is_dir() else set()
        return self._files[lang]

    def run(self) -> list[FlowError]:
        doc = self.doc
        if not isinstance(doc, Mapping):
            self.error(FLOW, f"a flow must be a JSON object, got {type(doc).__name__}")
            return self.errors
        self.header()
        nodes = doc.get("nodes")
        if not isinstance(nodes, Mapping) or not nodes:
            self.error(FLOW, "nodes must be a non-empty object {id: node}")
            return self.errors
        ids = set(nodes)
        edges: dict[str, list[str]] = {}
        written = set(BUILTIN_VARIABLES)
        reads: list[tuple[str, str]] = []
        for node_id, node in nodes.items():
            edges[node_id] = self.node(node_id, node, ids, written, reads)
        for node_id, var in reads:
            if var not in written and var.split(".", 1)[0] not in written:
                self.error(node_id, f"reads variable {var!r} that no node sets "
                           f"(set: {', '.join(sorted(written))})")
        start = doc.get("start")
        operator = doc.get("operator")
        for what, target in (("start", start), ("operator", operator)):
            if target is None and what == "operator":
                continue
            if not isinstance(target, str) or target not in ids:
                self.error(FLOW, f"{what} {target!r} is not a node id")
        self.reachability(edges, start, operator)
        self.goto_cycles(nodes)
        return self.errors

    def header(self) -> None:
        doc = self.doc
        if not isinstance(doc.get("name"), str) or not doc.get("name"):
            self.error(FLOW, "name must be a non-empty string")
        if not _is_int(doc.get("version")) or doc["version"] < 1:
            self.error(FLOW, f"version must be an integer ≥ 1, got {doc.get('version')!r}")
        langs = doc.get("languages")
        if not isinstance(langs, list) or not langs:
            self.error(FLOW, f"languages must be a non-empty list of {', '.join(LANGUAGES)}")
            return
        for lang in langs:
            if lang not in LANGUAGES:
                self.error(FLOW, f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
            else:
                self.languages.append(lang)
        unknown = set(self.doc) - {"name", "version", "languages", "start", "nodes", "operator",
                                   "description"}
        if unknown:
            self.error(FLOW, f"unknown fields {', '.join(sorted(unknown))}")

    def node(self, node_id: str, node: object, ids: set[str], written: set[str],
             reads: list[tuple[str, str]]) -> list[str]:
        """Check one node; returns the node ids it leads to."""
        if not isinstance(node, Mapping):
            self.error(node_id, "a node must be an object with a type")
            return []
        kind = node.get("type")
        fields = NODE_FIELDS.get(kind) if isinstance(kind, str) else None
        if fields is None or not isinstance(kind, str):
            self.error(node_id, f"unknown node type {kind!r}: expected one of "
                       f"{', '.join(NODE_FIELDS)}")
            return []
        unknown = set(node) - set(fields) - {"type", "description"}
        if unknown:
            self.error(node_id, f"{kind} node has unknown fields {', '.join(sorted(unknown))} "
                       f"(allowed: {', '.join(fields)})")
        targets: list[str] = []
        for name, (fkind, required) in fields.items():
            if name not in node:
                if required:
                    self.error(node_id, f"{kind} node is missing {name!r}"
                               + (" (a dead end: only hangup ends a call)"
                                  if fkind == TARGET else ""))
                continue
            value = node[name]
            if fkind in (KEYMAP, LANGMAP):
                targets += self.mapping(node_id, name, value, fkind, ids)
            elif fkind == SCHEDULE:
                problem = _schedule_problem(value)
                if problem:
                    self.error(node_id, f"schedule {problem}")
            else:
                check, expected = _SIMPLE_CHECKS[fkind]
                if not check(value):
                    self.error(node_id, f"{name} must be {expected}, got {value!r}")
                    continue
                if fkind == TARGET:
                    if value not in ids:
                        self.error(node_id, f"{name} {value!r} is not a node id")
                    else:
                        targets.append(value)
                elif fkind == PROMPTS:
                    self.prompts(node_id, value)
                elif fkind == VARIABLE:
                    written.add(value)
                elif fkind == READ:
                    reads.append((node_id, value))
                elif fkind == VARIABLES:
                    reads += [(node_id, v) for v in value]
                elif fkind == PARAMS:
                    reads += [(node_id, v) for v in value.values()]
        for name, default in DEFAULT_PROMPTS.get(kind, {}).items():
            if name not in node:
                self.prompts(node_id, default)
        if kind == "speak":
            self.speak(node_id, node)
        if kind == "collect" and _is_int(node.get("max_digits")) and node["max_digits"] < 1:
            self.error(node_id, "max_digits must be at least 1")
        return targets

    def mapping(self, node_id: str, name: str, value: object, fkind: str,
                ids: set[str]) -> list[str]:
        if not isinstance(value, Mapping) or not value:
            self.error(node_id, f"{name} must be a non-empty object {{key: ...}}")
            return []
        targets = []
        for key, target in value.items():
            if key not in KEYS or len(key) != 1:
                self.error(node_id, f"{name} key {key!r} is not a phone key (0-9 * # A-D)")
            if fkind == LANGMAP:
                if target not in self.languages:
                    self.error(node_id, f"{name}[{key}] {target!r} is not one of the flow's "
                               f"languages ({', '.join(self.languages)})")
            elif not isinstance(target, str) or target not in ids:
                self.error(node_id, f"{name}[{key}] {target!r} is not a node id")
            else:
                targets.append(target)
        return targets

    def prompts(self, node_id: str, names: list[str]) -> None:
        for lang in self.languages:
            have = self.prompts_of(lang)
            for name in names:
                if name not in have:
                    self.error(node_id, f"prompt {name!r} is missing in language {lang!r} "
                               f"(no {self.root / lang / (name + '.wav')})")

    def speak(self, node_id: str, node: Mapping[str, Any]) -> None:
        if ("variable" in node) == ("value" in node):
            self.error(node_id, "speak needs exactly one of variable or value")
        kind = node.get("kind")
        for lang in self.languages:
            # Any value may need any segment, so all of the language's must be recorded.
            missing = sorted(grammar(lang).segments - self.prompts_of(lang))
            if missing:
                self.error(node_id, f"speech segments missing in language {lang!r}: "
                           f"{', '.join(missing)}")
            if isinstance(node.get("value"), str) and kind in KINDS:
                try:
                    say(lang, kind, node["value"])
                except ValueError as exc:
                    self.error(node_id, f"value cannot be spoken: {exc}")

    def reachability(self, edges: dict[str, list[str]], start: object,
                     operator: object) -> None:
        seen: set[str] = set()
        stack = [t for t in (start, operator) if isinstance(t, str) and t in edges]
        while stack:
            node_id = stack.pop()
            if node_id in seen:
                continue
            seen.add(node_id)
            stack += edges[node_id]
        for node_id in edges:
            if node_id not in seen:
                self.error(node_id, "unreachable from start")

    def goto_cycles(self, nodes: Mapping[str, Any]) -> None:
        # A ring of gotos would spin without ever awaiting the line: the call would hang.
        for node_id in nodes:
            seen: list[str] = []
            here: object = node_id
            while isinstance(here, str) and here in nodes and isinstance(nodes[here], Mapping) \
                    and nodes[here].get("type") == "goto":
                if here in seen:
                    if here == node_id:
                        self.error(node_id, "goto loop: " + " -> ".join([*seen, here]))
                    break
                seen.append(here)
                here = nodes[here].get("target")


def validate(doc: Mapping[str, Any], prompts_root: Path = DEFAULT_PROMPTS_DIR) -> list[FlowError]:
    """Every problem with ``doc`` (empty when it is a valid flow)."""
    return _Checker(doc, prompts_root).run()


def load_flow(source: Path | str | Mapping[str, Any],
              prompts_root: Path = DEFAULT_PROMPTS_DIR) -> Flow:
    """A flow from a JSON file or an already parsed document; raises FlowInvalid."""
    if isinstance(source, Mapping):
        doc = dict(source)
        label = str(doc.get("name", "<document>"))
    else:
        path = Path(source)
        label = str(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise FlowInvalid(label, [FlowError(FLOW, f"not JSON: {exc}")]) from None
    errors = validate(doc, prompts_root)
    if errors:
        raise FlowInvalid(label, errors)
    return Flow(name=doc["name"], version=doc["version"], languages=tuple(doc["languages"]),
                start=doc["start"], nodes=doc["nodes"], operator=doc.get("operator"),
                source=doc)


__all__ = ["FLOW", "NODE_FIELDS", "Flow", "FlowError", "FlowInvalid", "load_flow", "validate"]
