"""Salespeople (业务员): list and search, edit licence and branch, PIN reset, import/export.

A PIN reset makes a new random six-digit PIN, shows it once to the admin, clears the lock
and the failure count; the audit log records that a reset happened, never the PIN. An
import adds or updates salespeople in one transaction; a new salesperson needs a PIN in
the sheet, an existing one keeps theirs unless the sheet gives one.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from appliance.insurance.hashing import hash_pin
from web import audit
from web.db import prefix_range, store
from web.paging import page_number, read_page
from web.sheets import (
    Column,
    Columns,
    Report,
    SheetError,
    column_label,
    download,
    each_row,
    read_sheet,
)

bp = Blueprint("salespeople", __name__, url_prefix="/salespeople")

LICENCE_STATUSES = ("valid", "expired", "suspended")
LICENCE_WORDS = {"valid": "valid", "有效": "valid", "expired": "expired", "过期": "expired",
                 "已过期": "expired", "suspended": "suspended", "暂停": "suspended"}
_CODE = re.compile(r"^[0-9A-Za-z]{2,16}$")
_PIN = re.compile(r"^[0-9]{4,8}$")
_PHONE = re.compile(r"^\+?[0-9-]{7,20}$")

COLUMNS = (
    Column("code", "业务员工号", "Salesperson code"),
    Column("name", "姓名", "Name"),
    Column("branch", "营业部", "Branch"),
    Column("licence_no", "执业证号", "Licence number"),
    Column("licence_status", "执业证状态", "Licence status"),
    Column("phone", "手机", "Phone", required=False),
    Column("pin", "密码", "PIN", required=False),
)


def licence_name(code: str) -> str:
    return {"valid": _("Valid"), "expired": _("Expired"),
            "suspended": _("Suspended")}.get(code, code)


@bp.app_context_processor
def _names() -> dict[str, Any]:
    return dict(licence_name=licence_name)


@bp.route("/", endpoint="list")
def salesperson_list() -> ResponseReturnValue:
    q = request.args.get("q", "").strip()[:64]
    where, params = "", []
    if q:
        lo, hi = prefix_range(q)
        where = "WHERE (code >= ? AND code < ?) OR (name >= ? AND name < ?) OR branch = ?"
        params = [lo, hi, lo, hi, q]
    return _render_list(q, where, params, page_number())


def _render_list(q: str, where: str, params: list[Any], number: int, **extra: Any) -> str:
    page, rows = read_page(store(), f"SELECT 1 FROM salespeople {where}",
                           f"SELECT code, name, branch, licence_no, licence_status, phone,"
                           f" locked, failed_pins FROM salespeople {where} ORDER BY code"
                           " LIMIT ? OFFSET ?", params, number)
    return render_template("salespeople/list.html", rows=rows, q=q, columns=COLUMNS,
                           column_label=column_label, page=page, **extra)


def _get(code: str) -> dict[str, Any]:
    rows = store().query("SELECT * FROM salespeople WHERE code = ?", [code[:16]])
    if not rows:
        abort(404)
    return rows[0]


@bp.route("/<code>", methods=["GET", "POST"])
def edit(code: str) -> ResponseReturnValue:
    sp = _get(code)
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = {k: request.form.get(k, "").strip() for k in
                ("name", "branch", "licence_no", "licence_status", "phone")}
        if not form["name"] or len(form["name"]) > 50:
            errors["name"] = _("is required (at most 50 characters)")
        if not form["branch"] or len(form["branch"]) > 50:
            errors["branch"] = _("is required (at most 50 characters)")
        if not form["licence_no"] or len(form["licence_no"]) > 40:
            errors["licence_no"] = _("is required (at most 40 characters)")
        if form["licence_status"] not in LICENCE_STATUSES:
            errors["licence_status"] = _("Choose a licence status.")
        if form["phone"] and not _PHONE.match(form["phone"]):
            errors["phone"] = _("is not a phone number")
        if not errors:
            before = {k: sp[k] for k in form}

            entry = audit.audit_row("salesperson.edit", code, before=before, after=form)

            def save(db: Database) -> None:
                db.execute("UPDATE salespeople SET name = ?, branch = ?, licence_no = ?,"
                           " licence_status = ?, phone = ? WHERE code = ?",
                           [form["name"], form["branch"], form["licence_no"],
                            form["licence_status"], form["phone"] or None, code])
                audit.insert(db, entry)

            store().write(save)
            flash(_("Salesperson %(code)s saved.", code=code))
            return redirect(url_for("salespeople.list"))
        sp = {**sp, **form}
    return render_template("salespeople/edit.html", sp=sp, errors=errors,
                           statuses=LICENCE_STATUSES), 400 if errors else 200


@bp.route("/<code>/pin", methods=["POST"])
def reset_pin(code: str) -> ResponseReturnValue:
    sp = _get(code)
    pin = f"{secrets.randbelow(10**6):06d}"
    pin_hash = hash_pin(pin)

    entry = audit.audit_row("salesperson.pin_reset", sp["code"], was_locked=sp["locked"])

    def reset(db: Database) -> None:
        db.execute("UPDATE salespeople SET pin_hash = ?, failed_pins = 0, locked = 0"
                   " WHERE code = ?", [pin_hash, sp["code"]])
        audit.insert(db, entry)

    store().write(reset)
    flash(_("New PIN for %(code)s: %(pin)s. Tell it to the salesperson; it is not shown "
            "again.", code=sp["code"], pin=pin))
    return redirect(url_for("salespeople.edit", code=sp["code"]))


EXPORT_HEADER = tuple(c.zh for c in COLUMNS[:6])


@bp.route("/export")
def export() -> ResponseReturnValue:
    fmt = request.args.get("format", "csv")
    rows = [(r["code"], r["name"], r["branch"], r["licence_no"], r["licence_status"],
             r["phone"] or "") for r in store().query(
        "SELECT code, name, branch, licence_no, licence_status, phone FROM salespeople"
        " ORDER BY code")]
    audit.log("salesperson.export", "", format=fmt, rows=len(rows))
    return download(fmt, "salespeople", "业务员", EXPORT_HEADER, rows)


@bp.route("/template.xlsx")
def template() -> ResponseReturnValue:
    return download("xlsx", "salespeople-template.xlsx", "业务员", [c.zh for c in COLUMNS],
                    [])


@bp.route("/import", methods=["POST"])
def import_upload() -> ResponseReturnValue:
    upload = request.files.get("file")
    report = Report()
    try:
        header, body = read_sheet(upload, ("业务员", "salespeople", "Salespeople"))
        cols = Columns(header, COLUMNS)
        existing = {r["code"] for r in store().query("SELECT code FROM salespeople")}
        clean: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for n, v in each_row(body, cols, report):
            bad = len(report.problems)
            label = cols.label
            if not _CODE.match(v["code"]):
                report.add(n, label["code"], _("must be 2–16 letters or digits"))
            elif v["code"] in seen:
                report.add(n, label["code"], _("repeats row %(row)d", row=seen[v["code"]]))
            else:
                seen[v["code"]] = n
            for f, most in (("name", 50), ("branch", 50), ("licence_no", 40)):
                if not v[f] or len(v[f]) > most:
                    report.add(n, label[f], _("is required (at most %(n)d characters)", n=most))
            status = LICENCE_WORDS.get(v["licence_status"].lower())
            if status is None:
                report.add(n, label["licence_status"], _("must be one of: %(values)s",
                                                          values="有效, 过期, 暂停"))
            if v.get("phone") and not _PHONE.match(v["phone"]):
                report.add(n, label["phone"], _("is not a phone number"))
            pin = v.get("pin", "")
            if pin and not _PIN.match(pin):
                report.add(n, label["pin"], _("must be 4–8 digits"))
            elif not pin and v["code"] not in existing:
                report.add(n, label["pin"], _("is required for a new salesperson"))
            if len(report.problems) == bad:
                clean.append({**v, "licence_status": status})
    except SheetError as exc:
        return _list_with(error=str(exc)), 400
    if report.problems:
        return _list_with(report=report), 400
    # Hash outside the writer: each PIN costs tens of milliseconds.
    hashes = {r["code"]: hash_pin(r["pin"]) for r in clean if r.get("pin")}
    audit_values = audit.audit_row("salesperson.import", (upload and upload.filename) or "",
                                   rows=len(clean))

    def write(db: Database) -> None:
        for r in clean:
            db.execute(
                "INSERT INTO salespeople (code, name, branch, licence_no, licence_status, phone,"
                " pin_hash) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO UPDATE SET"
                " name = excluded.name, branch = excluded.branch,"
                " licence_no = excluded.licence_no, licence_status = excluded.licence_status,"
                " phone = excluded.phone",
                [r["code"], r["name"], r["branch"], r["licence_no"], r["licence_status"],
                 r.get("phone") or None, hashes.get(r["code"], "")])
            if r["code"] in hashes:
                db.execute("UPDATE salespeople SET pin_hash = ?, failed_pins = 0, locked = 0"
                           " WHERE code = ?", [hashes[r["code"]], r["code"]])
        db.execute(audit.AUDIT_SQL, audit_values)

    store().write(write)
    flash(_("Imported %(n)d salespeople.", n=len(clean)))
    return redirect(url_for("salespeople.list"))


def _list_with(**extra: Any) -> str:
    return _render_list("", "", [], 1, **extra)
