"""One IVR flow node as a form and back: which input each field gets (by the field kinds of
:data:`appliance.ivr.flow.NODE_FIELDS`) and the node a submitted form describes.

The form shows every field of the node's type: text and number inputs for scalars, a
select of the document's node ids for targets, a table of key → node for menus (a few
empty rows to add keys), prompt names separated by spaces, JSON for the opening-hours
schedule and fax parameters. Reading it back names every value that cannot be what its
field holds (not a number, not a phone key, not a node id...) so nothing half-made is
saved; whether the flow as a whole is sound (prompts recorded, every node reachable) is the
engine validator's job on the saved draft. An empty optional field is left out of the
node, so the engine's default applies.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from flask_babel import gettext as _

from appliance.ivr.flow import (
    BOOL,
    DATES,
    FAX_DOCUMENT,
    FAX_DOCUMENTS,
    INT,
    KEYMAP,
    KEYS,
    KEYSET,
    LANGMAP,
    NODE_FIELDS,
    NUMBER,
    PARAMS,
    PROMPTS,
    SCHEDULE,
    SPEECH_KIND,
    TARGET,
    VARIABLES,
)
from appliance.ivr.speech import KINDS

NODE_ID: Final = re.compile(r"[A-Za-z0-9_.-]{1,60}")
#: empty key rows a map's table offers for new keys
SPARE_ROWS: Final = 3
#: typed into a key-set field for "no key at all" (an empty input means the default)
NO_KEYS: Final = "-"


def widget(kind: str) -> str:
    """The input a field kind is edited with (the template switches on it)."""
    if kind in (KEYMAP, LANGMAP):
        return "map"
    if kind in (SCHEDULE, PARAMS):
        return "json"
    if kind in (INT, NUMBER):
        return "number"
    return {TARGET: "target", BOOL: "bool", SPEECH_KIND: "choice",
            FAX_DOCUMENT: "choice"}.get(kind, "text")


def choices(kind: str) -> tuple[str, ...]:
    return {SPEECH_KIND: KINDS, FAX_DOCUMENT: FAX_DOCUMENTS}.get(kind, ())


def shown(kind: str, value: Any) -> Any:
    """A stored value as the form shows it."""
    if value is None:
        return ""
    if kind in (PROMPTS, VARIABLES, DATES):
        return " ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if kind in (SCHEDULE, PARAMS):
        return json.dumps(value, ensure_ascii=False, indent=1)
    if kind == KEYSET:
        return NO_KEYS if value == "" else value
    if kind in (KEYMAP, LANGMAP):
        rows = list(value.items()) if isinstance(value, Mapping) else []
        return rows + [("", "")] * SPARE_ROWS
    if kind == BOOL:
        return "true" if value is True else "false" if value is False else ""
    return value


def _typed(form: Mapping[str, str], name: str, fkind: str) -> Any:
    """What was typed into a field, to show again beside what is wrong with it."""
    if fkind not in (KEYMAP, LANGMAP):
        return form.get(name, "")
    rows = []
    i = 0
    while f"{name}.key.{i}" in form:
        rows.append((form[f"{name}.key.{i}"], form.get(f"{name}.to.{i}", "")))
        i += 1
    return rows


def fields(kind: str, node: Mapping[str, Any],
           form: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The form's fields for a node of type ``kind``: name, widget, required, and the value
    shown (the node's, or what was typed into ``form`` when it is shown again)."""
    return [{"name": name, "kind": fkind, "widget": widget(fkind), "required": required,
             "choices": choices(fkind),
             "value": shown(fkind, node.get(name)) if form is None
             else _typed(form, name, fkind)}
            for name, (fkind, required) in NODE_FIELDS.get(kind, {}).items()]


def _number(text: str, whole: bool) -> int | float:
    value: int | float = int(text) if whole else float(text)
    if not whole and float(value).is_integer() and "." not in text:
        value = int(value)
    if value < 0 or not math.isfinite(value):
        raise ValueError(text)
    return value


def _map(form: Mapping[str, str], name: str, fkind: str, ids: set[str],
         languages: list[str], problem: Callable[[str], None]) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while f"{name}.key.{i}" in form:
        key = form[f"{name}.key.{i}"].strip()
        to = form.get(f"{name}.to.{i}", "").strip()
        i += 1
        if not key and not to:
            continue
        if len(key) != 1 or key not in KEYS:
            problem(_("%(field)s: %(key)s is not a phone key (0-9 * # A-D).", field=name,
                      key=repr(key)))
        elif key in out:
            problem(_("%(field)s: key %(key)s is given twice.", field=name, key=key))
        elif fkind == KEYMAP and to not in ids:
            problem(_("%(field)s: key %(key)s leads to %(to)s, which is not a node.",
                      field=name, key=key, to=repr(to)))
        elif fkind == LANGMAP and to not in languages:
            problem(_("%(field)s: key %(key)s chooses %(to)s, not one of the flow's "
                      "languages (%(langs)s).", field=name, key=key, to=repr(to),
                      langs=", ".join(languages)))
        else:
            out[key] = to
    return out


def read_node(kind: str, form: Mapping[str, str], ids: set[str], languages: list[str],
              old: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The node the submitted form describes, and every problem with its values (the node
    must not be saved unless that list is empty). ``old`` keeps the node's description."""
    problems: list[str] = []
    node: dict[str, Any] = {"type": kind}
    for name, (fkind, required) in NODE_FIELDS[kind].items():
        text = form.get(name, "").strip()
        before = len(problems)
        value: Any
        if fkind in (KEYMAP, LANGMAP):
            value = _map(form, name, fkind, ids, languages, problems.append) or None
        elif not text:
            value = None
        elif fkind == TARGET:
            value = text
            if text not in ids:
                problems.append(_("%(field)s: %(to)s is not a node.", field=name,
                                  to=repr(text)))
        elif fkind in (INT, NUMBER):
            try:
                value = _number(text, fkind == INT)
            except ValueError:
                value = None
                problems.append(_("%(field)s: %(value)s is not a number ≥ 0%(whole)s.",
                                  field=name, value=repr(text),
                                  whole=_(" (a whole number)") if fkind == INT else ""))
        elif fkind == BOOL:
            value = text == "true"
        elif fkind in (PROMPTS, VARIABLES, DATES):
            value = text.split()
        elif fkind in (SCHEDULE, PARAMS):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                value = None
                problems.append(_("%(field)s is not valid JSON: %(why)s", field=name,
                                  why=str(exc)))
        elif fkind == KEYSET:
            value = "" if text == NO_KEYS else text
            if not set(value) <= KEYS:
                problems.append(_("%(field)s: %(value)s is not a string of phone keys.",
                                  field=name, value=repr(text)))
        else:
            value = text
        if value is None:
            if required and len(problems) == before:  # not already named as wrong
                problems.append(_("%(field)s is required for a %(type)s node.", field=name,
                                  type=kind))
            continue
        node[name] = value
    if old is not None and "description" in old:
        node["description"] = old["description"]
    return node, problems
