"""The fields the admin defines for orders (F9), and the checks on them and on their values.

A field has a name (the key of its value in an order's ``field_values``, and a column name
in imports), a label in Chinese and English, a type (text, number, date, or a choice from a
list of options) and whether it is required. :func:`check_definition` checks a definition
as the admin's form sends it, :func:`check_value` one value of a field as a person or a
sheet gives it; both say what is wrong in words for the page, and neither writes anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _

from web.policy_import import parse_date

TYPES = ("text", "number", "date", "choice")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_LABEL = 40
MAX_OPTIONS = 50
MAX_OPTION = 40
MAX_TEXT = 500
MAX_NUMBER = Decimal(10) ** 12
#: the fixed columns of an order: no field may take their names or labels
FIXED = ("id", "customer_id", "kind", "status", "policy_number", "工单号", "客户编号",
         "类型", "状态", "保单号", "order", "customer", "type", "policy", "order number",
         "customer number")


@dataclass(frozen=True)
class FieldDef:
    name: str
    label_zh: str
    label_en: str
    type: str
    options: tuple[str, ...] = ()
    required: bool = False
    position: int = 0
    active: bool = True

    @property
    def label(self) -> str:
        return self.label_en if str(get_locale()) == "en" else self.label_zh

    @classmethod
    def from_db(cls, row: Mapping[str, Any]) -> FieldDef:
        return cls(row["name"], row["label_zh"], row["label_en"], row["type"],
                   tuple(json.loads(row["options"])), bool(row["required"]),
                   int(row["position"]), bool(row["active"]))

    def to_db(self) -> dict[str, Any]:
        return {"name": self.name, "label_zh": self.label_zh, "label_en": self.label_en,
                "type": self.type, "options": json.dumps(list(self.options),
                                                         ensure_ascii=False),
                "required": int(self.required), "position": self.position,
                "active": int(self.active)}


def type_name(kind: str) -> str:
    return {"text": _("Text"), "number": _("Number"), "date": _("Date"),
            "choice": _("Choice")}.get(kind, kind)


def split_options(text: str) -> list[str]:
    """Options as the admin types them: one a line, or separated by commas."""
    return [o.strip() for o in re.split(r"[\n,，、]", text) if o.strip()]


def check_definition(form: Mapping[str, str], others: Iterable[FieldDef],
                     existing: FieldDef | None = None
                     ) -> tuple[FieldDef | None, dict[str, str]]:
    """A field from the form (new, or ``existing`` changed: its name and type stay), and
    the problems by form field. ``others`` are the fields already defined."""
    errors: dict[str, str] = {}
    others = [o for o in others if existing is None or o.name != existing.name]
    name = existing.name if existing else form.get("name", "").strip().lower()
    kind = existing.type if existing else form.get("type", "").strip()
    if existing is None:
        if not NAME.match(name):
            errors["name"] = _("must start with a letter and have only small letters, "
                               "digits and _ (at most 32)")
        elif name in FIXED or any(o.name == name for o in others):
            errors["name"] = _("is taken")
        if kind not in TYPES:
            errors["type"] = _("Choose a type.")
    labels = {}
    for key in ("label_zh", "label_en"):
        label = form.get(key, "").strip()
        labels[key] = label
        if not label or len(label) > MAX_LABEL:
            errors[key] = _("is required (at most %(n)d characters)", n=MAX_LABEL)
        elif label.lower() in FIXED or any(
                label.lower() in (o.label_zh.lower(), o.label_en.lower(), o.name)
                for o in others):
            # Labels name the columns of an import: two fields with one label would be
            # one column.
            errors[key] = _("is the label of another field or column")
    options = split_options(form.get("options", ""))
    if kind == "choice":
        if not options:
            errors["options"] = _("A choice field needs at least one option.")
        elif len(options) > MAX_OPTIONS:
            errors["options"] = _("At most %(n)d options.", n=MAX_OPTIONS)
        elif any(len(o) > MAX_OPTION for o in options):
            errors["options"] = _("Each option has at most %(n)d characters.", n=MAX_OPTION)
        elif len(set(options)) != len(options):
            errors["options"] = _("An option is listed twice.")
    elif options:
        errors["options"] = _("Only a choice field has options.")
    position_text = form.get("position", "").strip() or "0"
    position = 0
    if not re.fullmatch(r"-?\d{1,4}", position_text):
        errors["position"] = _("must be a whole number")
    else:
        position = int(position_text)
    if errors:
        return None, errors
    active = existing is None or form.get("active") is not None
    return FieldDef(name, labels["label_zh"], labels["label_en"], kind, tuple(options),
                    form.get("required") is not None, position, active), {}


def check_value(field: FieldDef, text: str) -> tuple[str | None, str | None]:
    """``(value, problem)``: the value as stored (None when empty), or what is wrong."""
    t = text.strip()
    if not t:
        return None, (_("is required") if field.required else None)
    if field.type == "text":
        if len(t) > MAX_TEXT:
            return None, _("is longer than %(n)d characters", n=MAX_TEXT)
        return t, None
    if field.type == "number":
        try:
            number = Decimal(t.replace(",", "").replace("，", ""))
        except InvalidOperation:
            return None, _("is not a number")
        if not number.is_finite() or abs(number) >= MAX_NUMBER:
            return None, _("is not a number")
        return str(number), None
    if field.type == "date":
        return parse_date(t)
    if t not in field.options:
        return None, _("must be one of: %(values)s", values=", ".join(field.options))
    return t, None
