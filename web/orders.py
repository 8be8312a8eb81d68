"""Orders (F9): business records staff keep for a customer — a policy application, an
endorsement, a claim-document request — with a status and the fields the admin defines.

Staff create and edit orders; the list searches and filters them and exports the whole
result set; a sheet imports many at once (each row checked, then all in one transaction,
or nothing with a report by row and column). A row with an order number updates that
order, one without adds an order. Orders name customers, so every list, view and export
is in the audit log, and every change with its before and after.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from web import audit
from web.db import prefix_range, store
from web.order_fields import FieldDef, check_value
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

bp = Blueprint("orders", __name__, url_prefix="/orders")

KINDS = ("application", "endorsement", "claim_documents", "other")
STATUSES = ("open", "in_progress", "done", "cancelled")
OPEN = ("open", "in_progress")
MAX_QUERY = 64
SHEET_NAMES = ("工单", "orders", "Orders")
KIND_WORDS = {"application": "application", "投保申请": "application",
              "endorsement": "endorsement", "保全批改": "endorsement",
              "claim_documents": "claim_documents", "理赔资料": "claim_documents",
              "other": "other", "其他": "other"}
STATUS_WORDS = {"open": "open", "待处理": "open", "in_progress": "in_progress",
                "处理中": "in_progress", "done": "done", "已完成": "done",
                "cancelled": "cancelled", "已取消": "cancelled"}
FIXED_COLUMNS = (
    Column("id", "工单号", "Order number", required=False),
    Column("customer_id", "客户编号", "Customer number"),
    Column("kind", "类型", "Type"),
    Column("status", "状态", "Status"),
    Column("policy_number", "保单号", "Policy number", required=False),
)


def kind_name(kind: str) -> str:
    return {"application": _("Policy application"), "endorsement": _("Endorsement"),
            "claim_documents": _("Claim documents"), "other": _("Other")}.get(kind, kind)


def order_status_name(status: str) -> str:
    return {"open": _("Open"), "in_progress": _("In progress"), "done": _("Done"),
            "cancelled": _("Cancelled")}.get(status, status)


@bp.app_context_processor
def _names() -> dict[str, Any]:
    return dict(order_kind_name=kind_name, order_status_name=order_status_name)


def fields(active_only: bool = True) -> list[FieldDef]:
    where = "WHERE active = 1" if active_only else ""
    return [FieldDef.from_db(r) for r in store().query(
        f"SELECT * FROM order_fields {where} ORDER BY position, name")]


def _filters(args: Mapping[str, str]) -> tuple[str, list[Any], dict[str, str]]:
    """The list's WHERE clause from the query string (search, type, status, customer)."""
    q = args.get("q", "").strip()[:MAX_QUERY]
    kind = args.get("kind", "")
    status = args.get("status", "")
    customer = args.get("customer", "").strip()
    where, params = [], []
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        lo, hi = prefix_range(q)
        where.append("(o.id = ? OR o.policy_number = ? OR (c.name >= ? AND c.name < ?)"
                     " OR o.field_values LIKE ? ESCAPE '\\')")
        params += [int(q) if q.isdigit() and len(q) < 12 else -1, q, lo, hi,
                   # field values are JSON: non-ASCII text is stored as it is
                   like]
    if kind in KINDS:
        where.append("o.kind = ?")
        params.append(kind)
    if status == "open_any":
        where.append("o.status IN ('open', 'in_progress')")
    elif status in STATUSES:
        where.append("o.status = ?")
        params.append(status)
    if customer.isdigit() and len(customer) < 12:
        where.append("o.customer_id = ?")
        params.append(int(customer))
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    return clause, params, {"q": q, "kind": kind, "status": status, "customer": customer}


_SELECT = ("SELECT o.*, c.name AS customer_name FROM orders o"
           " JOIN customers c ON c.id = o.customer_id")


@bp.route("/", endpoint="list")
def order_list() -> ResponseReturnValue:
    return _list_page()


def _list_page(status: int = 200, **extra: Any) -> ResponseReturnValue:
    clause, params, shown = _filters(request.args)
    number = page_number()
    page, rows = read_page(store(), f"SELECT 1 FROM orders o JOIN customers c"
                           f" ON c.id = o.customer_id {clause}",
                           f"{_SELECT} {clause} ORDER BY o.id DESC LIMIT ? OFFSET ?", params,
                           number)
    audit.log("order.list", "", page=number, shown=len(rows), **shown)
    for r in rows:
        r["values"] = json.loads(r["field_values"])
    return render_template("orders/list.html", rows=rows, page=page, f=shown,
                           fields=fields(), kinds=KINDS, statuses=STATUSES,
                           columns=_columns(fields()), column_label=column_label,
                           **extra), status


def _order(order_id: int) -> dict[str, Any]:
    rows = store().query(f"{_SELECT} WHERE o.id = ?", [order_id])
    if not rows:
        abort(404)
    row = rows[0]
    row["values"] = json.loads(row["field_values"])
    return row


@bp.route("/<int:order_id>")
def detail(order_id: int) -> ResponseReturnValue:
    order = _order(order_id)
    audit.log("order.view", str(order_id), customer=order["customer_id"])
    defined = fields(active_only=False)
    return render_template("orders/detail.html", o=order,
                           fields=[f for f in defined if f.active or f.name in order["values"]])


def _customer(text: str) -> dict[str, Any] | None:
    if not text.strip().isdigit() or len(text.strip()) > 11:
        return None
    rows = store().query("SELECT id, name FROM customers WHERE id = ?", [int(text)])
    return rows[0] if rows else None


def _read_form(defined: list[FieldDef], customer_id: int
               ) -> tuple[dict[str, Any], dict[str, str]]:
    """The order's kind, status, policy number and field values from the form, and the
    problems by form field."""
    form = request.form
    errors: dict[str, str] = {}
    out: dict[str, Any] = {"kind": form.get("kind", ""), "status": form.get("status", ""),
                           "policy_number": form.get("policy_number", "").strip() or None,
                           "values": {}}
    if out["kind"] not in KINDS:
        errors["kind"] = _("Choose a type.")
    if out["status"] not in STATUSES:
        errors["status"] = _("Choose a status.")
    if out["policy_number"] and not store().query(
            "SELECT 1 FROM policies WHERE number = ? AND (holder_id = ? OR insured_id = ?)",
            [out["policy_number"][:32], customer_id, customer_id]):
        errors["policy_number"] = _("is not a policy of this customer")
    for f in defined:
        value, problem = check_value(f, form.get(f"field-{f.name}", ""))
        if problem:
            errors[f"field-{f.name}"] = problem
        elif value is not None:
            out["values"][f.name] = value
    return out, errors


@bp.route("/new", methods=["GET", "POST"])
def create() -> ResponseReturnValue:
    customer = _customer(request.values.get("customer", ""))
    defined = fields()
    errors: dict[str, str] = {}
    form: dict[str, Any] = {"kind": "application", "status": "open", "values": {}}
    if request.method == "POST":
        if customer is None:
            errors["customer"] = _("is not a customer number in the book")
        else:
            form, errors = _read_form(defined, customer["id"])
        if not errors and customer is not None:
            now, who = time.time(), audit.current_username()
            values = json.dumps(form["values"], ensure_ascii=False, sort_keys=True)
            entry = audit.audit_row("order.create", "", customer=customer["id"],
                                    kind=form["kind"], status=form["status"],
                                    policy=form["policy_number"], values=form["values"])

            def add(db: Database) -> int:
                cur = db.execute(
                    "INSERT INTO orders (customer_id, kind, status, policy_number,"
                    " field_values, created_at, created_by, updated_at, updated_by)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [customer["id"], form["kind"], form["status"], form["policy_number"],
                     values, now, who, now, who])
                entry[5] = str(cur.lastrowid)
                audit.insert(db, entry)
                return int(cur.lastrowid or 0)

            order_id = store().write(add)
            flash(_("Order %(id)d created.", id=order_id))
            return redirect(url_for("orders.detail", order_id=order_id))
    return render_template("orders/edit.html", o=None, form=form, errors=errors,
                           customer=customer, fields=defined, kinds=KINDS,
                           statuses=STATUSES), 400 if errors else 200


@bp.route("/<int:order_id>/edit", methods=["GET", "POST"])
def edit(order_id: int) -> ResponseReturnValue:
    order = _order(order_id)
    defined = fields()
    form: dict[str, Any] = order
    errors: dict[str, str] = {}
    if request.method == "POST":
        form, errors = _read_form(defined, order["customer_id"])
        if not errors:
            # Values of retired fields stay as they were: the form no longer shows them.
            kept = {k: v for k, v in order["values"].items()
                    if k not in {f.name for f in defined}}
            values = {**kept, **form["values"]}
            before = {"kind": order["kind"], "status": order["status"],
                      "policy": order["policy_number"], "values": order["values"]}
            after = {"kind": form["kind"], "status": form["status"],
                     "policy": form["policy_number"], "values": values}
            changed = [k for k in before if before[k] != after[k]]
            entry = audit.audit_row("order.edit", str(order_id),
                                    before={k: before[k] for k in changed},
                                    after={k: after[k] for k in changed})
            row = [form["kind"], form["status"], form["policy_number"],
                   json.dumps(values, ensure_ascii=False, sort_keys=True), time.time(),
                   audit.current_username(), order_id]

            def save(db: Database) -> None:
                db.execute("UPDATE orders SET kind = ?, status = ?, policy_number = ?,"
                           " field_values = ?, updated_at = ?, updated_by = ? WHERE id = ?",
                           row)
                audit.insert(db, entry)

            if changed:
                store().write(save)
            flash(_("Order %(id)d saved.", id=order_id))
            return redirect(url_for("orders.detail", order_id=order_id))
    customer = {"id": order["customer_id"], "name": order["customer_name"]}
    return render_template("orders/edit.html", o=order, form=form, errors=errors,
                           customer=customer, fields=defined, kinds=KINDS,
                           statuses=STATUSES), 400 if errors else 200


def _columns(defined: list[FieldDef]) -> list[Column]:
    return [*FIXED_COLUMNS, *(Column(f.name, f.label_zh, f.label_en, required=f.required)
                              for f in defined)]


@bp.route("/export.<fmt>")
def export(fmt: str) -> ResponseReturnValue:
    """Every order the list's search and filters match, not only the page shown."""
    if fmt not in ("csv", "xlsx"):
        abort(404)
    clause, params, shown = _filters(request.args)
    defined = fields(active_only=False)
    audit.log("order.export", "", format=fmt, **shown)
    header = ["工单号", "客户编号", "客户姓名", "类型", "状态", "保单号",
              *(f.label_zh for f in defined), "创建时间", "更新时间", "更新人"]
    db = store()  # the generator runs after the request context has gone
    tz = ZoneInfo(current_app.config["TIMEZONE"])

    def when(ts: float) -> str:
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")

    kinds = {k: z for z, k in KIND_WORDS.items() if not z.isascii()}
    statuses = {k: z for z, k in STATUS_WORDS.items() if not z.isascii()}

    def rows() -> Iterator[list[Any]]:
        last = 1 << 62
        while True:
            where = f"{clause} AND o.id < ?" if clause else "WHERE o.id < ?"
            chunk = db.query(f"{_SELECT} {where} ORDER BY o.id DESC LIMIT 2000",
                             [*params, last])
            for r in chunk:
                values = json.loads(r["field_values"])
                yield [r["id"], r["customer_id"], r["customer_name"], kinds[r["kind"]],
                       statuses[r["status"]], r["policy_number"] or "",
                       *(values.get(f.name, "") for f in defined),
                       when(r["created_at"]), when(r["updated_at"]),
                       r["updated_by"]]
            if len(chunk) < 2000:
                return
            last = chunk[-1]["id"]

    return download(fmt, "orders", "工单", header, rows())


@bp.route("/import/template.xlsx", endpoint="template")
def template() -> ResponseReturnValue:
    """An empty sheet for the import: the header row of the fixed columns and of every
    field the admin defines now (as the import reads them), and no rows."""
    return download("xlsx", "orders-template.xlsx", SHEET_NAMES[0],
                    [c.zh for c in _columns(fields())], [])


def _check_sheet(defined: list[FieldDef]) -> tuple[list[dict[str, Any]], Report]:
    """Every row of the uploaded sheet checked against the book; the clean rows and the
    report (raises SheetError when the sheet as a whole cannot be read)."""
    header, body = read_sheet(request.files.get("file"), SHEET_NAMES)
    cols = Columns(header, _columns(defined))
    label = cols.label
    report = Report()
    raw = list(each_row(body, cols, report))
    wanted_ids = {int(v["id"]) for _n, v in raw if v.get("id", "").isdigit()
                  and len(v["id"]) < 12}
    wanted_customers = {int(v["customer_id"]) for _n, v in raw
                        if v["customer_id"].isdigit() and len(v["customer_id"]) < 12}
    existing = _existing("orders", "id", wanted_ids)
    customers = _existing("customers", "id", wanted_customers)
    clean: list[dict[str, Any]] = []
    seen: dict[int, int] = {}
    for n, v in raw:
        bad = len(report.problems)
        out: dict[str, Any] = {"id": None, "values": {}}
        text = v.get("id", "")
        if text:
            if not text.isdigit() or int(text) not in existing:
                report.add(n, label["id"], _("%(value)s is not an order number in the book",
                                             value=text))
            elif int(text) in seen:
                report.add(n, label["id"], _("repeats row %(row)d", row=seen[int(text)]))
            else:
                out["id"] = seen[int(text)] = int(text)
        text = v["customer_id"]
        if not text:
            report.add(n, label["customer_id"], _("is required"))
        elif not text.isdigit() or int(text) not in customers:
            report.add(n, label["customer_id"],
                       _("%(value)s is not a customer number in the book", value=text))
        else:
            out["customer_id"] = int(text)
        for key, words, values in (("kind", KIND_WORDS, "投保申请, 保全批改, 理赔资料, 其他"),
                                   ("status", STATUS_WORDS, "待处理, 处理中, 已完成, 已取消")):
            text = v[key]
            out[key] = words.get(text.lower())
            if not text:
                report.add(n, label[key], _("is required"))
            elif out[key] is None:
                report.add(n, label[key], _("must be one of: %(values)s", values=values))
        out["policy_number"] = v.get("policy_number") or None
        if out["policy_number"] and len(out["policy_number"]) > 32:
            report.add(n, label["policy_number"], _("is not a policy of this customer"))
        for f in defined:
            if f.name not in cols.at:
                continue  # an optional field's column left out: kept as it is
            value, problem = check_value(f, v.get(f.name, ""))
            if problem:
                report.add(n, label[f.name], problem)
            elif value is not None:
                out["values"][f.name] = value
        out["row"] = n
        out["columns"] = {f.name for f in defined if f.name in cols.at}
        if len(report.problems) == bad:
            clean.append(out)
    # Policy numbers must be the customer's own (as holder or insured).
    pairs = {(r["policy_number"], r["customer_id"]) for r in clean if r["policy_number"]}
    owned = set()
    for number, customer_id in pairs:
        if store().query("SELECT 1 FROM policies WHERE number = ? AND (holder_id = ?"
                         " OR insured_id = ?)", [number, customer_id, customer_id]):
            owned.add((number, customer_id))
    for r in clean:
        if r["policy_number"] and (r["policy_number"], r["customer_id"]) not in owned:
            report.add(r["row"], label["policy_number"],
                       _("is not a policy of this customer"))
    report.problems.sort(key=lambda p: p.row)
    return clean, report


def _existing(table: str, key: str, wanted: set[int]) -> set[int]:
    found: set[int] = set()
    ids = sorted(wanted)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        found.update(r[key] for r in store().query(
            f"SELECT {key} FROM {table} WHERE {key} IN ({','.join('?' * len(chunk))})",
            chunk))
    return found


@bp.route("/import", methods=["POST"])
def import_upload() -> ResponseReturnValue:
    defined = fields()
    try:
        clean, report = _check_sheet(defined)
    except SheetError as exc:
        return _list_page(400, error=str(exc))
    if report.problems:
        return _list_page(400, report=report)
    filename = (request.files["file"].filename or "") if "file" in request.files else ""
    now, who = time.time(), audit.current_username()
    new = [r for r in clean if r["id"] is None]
    updates = [r for r in clean if r["id"] is not None]
    entry = audit.audit_row("order.import", filename, rows=len(clean), created=len(new),
                            updated=len(updates))

    def write(db: Database) -> None:
        db.conn.executemany(
            "INSERT INTO orders (customer_id, kind, status, policy_number, field_values,"
            " created_at, created_by, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r["customer_id"], r["kind"], r["status"], r["policy_number"],
              json.dumps(r["values"], ensure_ascii=False, sort_keys=True), now, who, now, who)
             for r in new])
        for r in updates:
            old = json.loads(db.execute("SELECT field_values FROM orders WHERE id = ?",
                                        [r["id"]]).fetchone()[0])
            # A field the sheet leaves empty is cleared; one it has no column for is kept.
            values = {k: v for k, v in old.items() if k not in r["columns"]} | r["values"]
            db.execute("UPDATE orders SET customer_id = ?, kind = ?, status = ?,"
                       " policy_number = ?, field_values = ?, updated_at = ?, updated_by = ?"
                       " WHERE id = ?",
                       [r["customer_id"], r["kind"], r["status"], r["policy_number"],
                        json.dumps(values, ensure_ascii=False, sort_keys=True), now, who,
                        r["id"]])
        audit.insert(db, entry)

    store().write(write)
    flash(_("Imported %(rows)d rows: %(created)d new orders, %(updated)d updated.",
            rows=len(clean), created=len(new), updated=len(updates)))
    return redirect(url_for("orders.list"))


__all__ = ["bp", "fields", "kind_name", "order_status_name"]
