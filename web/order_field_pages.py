"""The admin's page for the fields of orders (F9): list them, add one, change its labels,
options, order on the form and whether it is required, or retire it (its values stay on
the orders that have them). A field's name and type are fixed once made, since orders and
imports already hold values under that name in that type. Every change is audited."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from web import audit
from web.db import store
from web.order_fields import TYPES, FieldDef, check_definition, type_name
from web.orders import fields

bp = Blueprint("order_fields", __name__, url_prefix="/orders/fields")


@bp.app_context_processor
def _names() -> dict[str, Any]:
    return dict(field_type_name=type_name)


@bp.route("/", methods=["GET", "POST"], endpoint="list")
def field_list() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    form: dict[str, Any] = {}
    if request.method == "POST":
        form = request.form.to_dict()
        field, errors = check_definition(request.form, fields(active_only=False))
        if field is not None:
            row = field.to_db()
            entry = audit.audit_row("order_field.create", field.name, **row)

            def add(db: Database) -> None:
                db["order_fields"].insert(row)  # type: ignore[union-attr]
                audit.insert(db, entry)

            store().write(add)
            flash(_("Field %(name)s added to the order form.", name=field.label))
            return redirect(url_for("order_fields.list"))
    return render_template("orders/fields.html", fields=fields(active_only=False),
                           types=TYPES, errors=errors, form=form), 400 if errors else 200


@bp.route("/<name>", methods=["GET", "POST"])
def edit(name: str) -> ResponseReturnValue:
    defined = fields(active_only=False)
    existing = next((f for f in defined if f.name == name), None)
    if existing is None:
        abort(404)
    errors: dict[str, str] = {}
    form: dict[str, Any] = {**existing.to_db(), "options": "\n".join(existing.options),
                            "required": existing.required or None,
                            "active": existing.active or None}
    if request.method == "POST":
        form = request.form.to_dict()
        field, errors = check_definition(request.form, defined, existing)
        if field is not None:
            _save(existing, field)
            flash(_("Field %(name)s saved.", name=field.label))
            return redirect(url_for("order_fields.list"))
    return render_template("orders/field_edit.html", field=existing, form=form,
                           errors=errors), 400 if errors else 200


def _save(old: FieldDef, new: FieldDef) -> None:
    before, after = old.to_db(), new.to_db()
    changed = [k for k in after if before[k] != after[k]]
    entry = audit.audit_row("order_field.edit", old.name,
                            before={k: before[k] for k in changed},
                            after={k: after[k] for k in changed})

    def save(db: Database) -> None:
        db.execute("UPDATE order_fields SET label_zh = ?, label_en = ?, options = ?,"
                   " required = ?, position = ?, active = ? WHERE name = ?",
                   [after["label_zh"], after["label_en"], after["options"],
                    after["required"], after["position"], after["active"], old.name])
        audit.insert(db, entry)

    store().write(save)


__all__ = ["bp"]
