"""Products (险种), their rate tables (export and import) and the quote calculator.

The calculator quotes through :mod:`appliance.insurance.quote`, the code the IVR speaks
premiums from, so a page quote and a phone quote are the same number. A rate-table import
replaces the product's whole table in one transaction, after every row and the table as a
whole (it must load as a :class:`~appliance.insurance.quote.RateTable`) have been checked.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from appliance.insurance.quote import (
    KINDS,
    PAYMENT_MODES,
    Quote,
    RateRow,
    RateTable,
    load_rate_table,
    product_from_row,
    quote,
    round_fen,
    to_fen,
)
from web import audit, rate_grid
from web.db import store
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

bp = Blueprint("products", __name__, url_prefix="/products")

RATE_COLUMNS = (
    Column("age_min", "最小年龄", "Age from", required=False),
    Column("age_max", "最大年龄", "Age to", required=False),
    Column("sex", "性别", "Sex", required=False),
    Column("term", "保险期间", "Term", required=False),
    Column("payment_mode", "缴费方式", "Payment mode", required=False),
    Column("value_min", "车价下限", "Vehicle value from", required=False),
    Column("value_max", "车价上限", "Vehicle value to", required=False),
    Column("seats_min", "座位数下限", "Seats from", required=False),
    Column("seats_max", "座位数上限", "Seats to", required=False),
    Column("rate_per_1000", "每千元费率", "Rate per 1000"),
    Column("base", "基础保费", "Base premium", required=False),
)
_MODE_WORDS = {"annual": "annual", "年缴": "annual", "monthly": "monthly", "月缴": "monthly",
               "single": "single", "趸缴": "single"}
_SEX_WORDS = {"m": "M", "男": "M", "f": "F", "女": "F"}


def _product(code: str) -> dict[str, Any]:
    rows = store().query("SELECT * FROM products WHERE code = ?", [code[:32]])
    if not rows:
        abort(404)
    return rows[0]


@bp.route("/", endpoint="list")
def product_list() -> ResponseReturnValue:
    rows = store().query("SELECT p.*, (SELECT count(*) FROM rates r WHERE r.product_code ="
                         " p.code) AS rate_rows FROM products p ORDER BY code")
    return render_template("products/list.html", rows=rows)


@bp.route("/<code>")
def detail(code: str) -> ResponseReturnValue:
    return _detail_page(_product(code))


def _detail_page(p: dict[str, Any], status: int = 200, **extra: Any) -> ResponseReturnValue:
    """The product page: clauses, the rate table (as grids to edit, for those who may) and
    the quote calculator, which quotes here from the ``sum_insured`` etc. in the query."""
    code = p["code"]
    rates = store().query("SELECT * FROM rates WHERE product_code = ? ORDER BY id", [code])
    table: RateTable | None = None
    if rates:
        try:
            table = RateTable(product_from_row(p), [RateRow.from_db(r) for r in rates])
        except ValueError:
            table = None
    result, error = _quote_from_args(code, table)
    return render_template("products/detail.html", p=p, rates=rates, columns=RATE_COLUMNS,
                           column_label=column_label, layout=rate_grid.build(rates),
                           table=table, result=result, quote_error=error, code=code,
                           args=request.args, **extra), status


@bp.route("/<code>/rates/grid", methods=["POST"])
def rates_grid(code: str) -> ResponseReturnValue:
    """Save the cells changed in the grid: every cell checked first, then all changes in one
    transaction with their audit row (old → new), or none."""
    p = _product(code)
    rates = store().query("SELECT * FROM rates WHERE product_code = ? ORDER BY id", [code])
    layout = rate_grid.build(rates)
    if request.form.get("stamp") != layout.stamp:
        return _stale(p)
    changes, problems = rate_grid.parse_edits(layout, rates, request.form)
    if problems:
        return _detail_page(p, 400, grid_problems=problems, sent=request.form)
    if not changes:
        flash(_("No rate was changed."))
        return redirect(url_for("products.detail", code=code))
    entry = audit.audit_row("rates.edit", code, changes=[
        {"id": c.id, "cell": c.where, "old": c.old, "new": c.new} for c in changes])
    seen = layout.stamp

    def save(db: Database) -> bool:
        now = list(db.query("SELECT id, rate_per_1000 FROM rates WHERE product_code = ?",
                            [code]))
        if rate_grid.stamp(now) != seen:
            return False  # changed between the read above and this write
        db.conn.executemany("UPDATE rates SET rate_per_1000 = ? WHERE id = ?",
                            [(c.new, c.id) for c in changes])
        audit.insert(db, entry)
        return True

    if not store().write(save):
        return _stale(p)
    flash(_("%(n)d rates of %(code)s saved. Quotes use them from now on, on this page and "
            "on the phone.", n=len(changes), code=code))
    return redirect(url_for("products.detail", code=code))


_CODE = re.compile(r"^[A-Z0-9]{2,16}$")


def _product_form(existing: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The product fields from the form, and the problems by field."""
    f: dict[str, Any] = {k: request.form.get(k, "").strip() for k in
         ("code", "name_zh", "name_en", "kind", "clauses_zh", "clauses_en", "min_sum",
          "max_sum")}
    errors: dict[str, str] = {}
    if existing is None:
        f["code"] = f["code"].upper()
        if not _CODE.match(f["code"]):
            errors["code"] = _("must be 2–16 capital letters or digits")
        elif store().query("SELECT 1 FROM products WHERE code = ?", [f["code"]]):
            errors["code"] = _("is taken")
    else:
        f["code"] = existing["code"]
        f["kind"] = existing["kind"]  # the rate table's shape depends on it
    for k in ("name_zh", "name_en"):
        if not f[k] or len(f[k]) > 60:
            errors[k] = _("is required (at most 60 characters)")
    if f["kind"] not in KINDS:
        errors["kind"] = _("Choose a kind.")
    for k in ("clauses_zh", "clauses_en"):
        if len(f[k]) > 5000:
            errors[k] = _("is longer than 5000 characters")
    for k in ("min_sum", "max_sum"):
        try:
            amount = Decimal(f[k].replace(",", ""))
            if not amount.is_finite() or amount <= 0 or amount != round_fen(amount):
                raise InvalidOperation
            f[k + "_fen"] = to_fen(amount)
        except InvalidOperation:
            errors[k] = _("must be a positive amount of at most two decimal places")
    if not errors and f["min_sum_fen"] > f["max_sum_fen"]:
        errors["max_sum"] = _("is below the lowest sum insured")
    return f, errors


_PRODUCT_FIELDS = ("name_zh", "name_en", "kind", "clauses_zh", "clauses_en", "min_sum_fen",
                   "max_sum_fen")


@bp.route("/new", methods=["GET", "POST"])
def create() -> ResponseReturnValue:
    form: dict[str, Any] = {"kind": "term_life"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form, errors = _product_form(None)
        if not errors:
            values = [form["code"], *(form[k] for k in _PRODUCT_FIELDS)]
            entry = audit.audit_row("product.create", form["code"],
                                    **{k: form[k] for k in _PRODUCT_FIELDS})

            def add(db: Database) -> None:
                db.execute("INSERT INTO products (code, name_zh, name_en, kind, clauses_zh,"
                           " clauses_en, min_sum_fen, max_sum_fen)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
                audit.insert(db, entry)

            store().write(add)
            flash(_("Product %(code)s created. Import its rate table before it can be "
                    "quoted.", code=form["code"]))
            return redirect(url_for("products.detail", code=form["code"]))
    return render_template("products/edit.html", form=form, errors=errors, new=True,
                           kinds=KINDS), 400 if errors else 200


@bp.route("/<code>/edit", methods=["GET", "POST"])
def edit(code: str) -> ResponseReturnValue:
    p = _product(code)
    form: dict[str, Any] = {**p, "min_sum": f"{p['min_sum_fen'] / 100:.2f}",
                            "max_sum": f"{p['max_sum_fen'] / 100:.2f}"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form, errors = _product_form(p)
        if not errors:
            before = {k: p[k] for k in _PRODUCT_FIELDS if p[k] != form[k]}
            after = {k: form[k] for k in before}
            entry = audit.audit_row("product.edit", code, before=before, after=after)
            values = [*(form[k] for k in _PRODUCT_FIELDS if k != "kind"), code]

            def save(db: Database) -> None:
                db.execute("UPDATE products SET name_zh = ?, name_en = ?, clauses_zh = ?,"
                           " clauses_en = ?, min_sum_fen = ?, max_sum_fen = ? WHERE code = ?",
                           values)
                audit.insert(db, entry)

            store().write(save)
            flash(_("Product %(code)s saved.", code=code))
            return redirect(url_for("products.detail", code=code))
    return render_template("products/edit.html", form=form, errors=errors, new=False,
                           kinds=KINDS), 400 if errors else 200


def _int(name: str) -> int | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(_("%(field)s must be a whole number", field=_field_name(name)))
    return int(text)


def _field_name(name: str) -> str:
    return {"age": _("Age"), "term": _("Term (years)"), "seats": _("Seats"),
            "sum_insured": _("Sum insured")}.get(name, name)


@bp.route("/quote")
def quote_view() -> ResponseReturnValue:
    products = store().query("SELECT code, name_zh, name_en FROM products ORDER BY code")
    code = request.args.get("product", "") or (products[0]["code"] if products else "")
    table: RateTable | None = None
    result: Quote | None = None
    error = None
    try:
        table = load_rate_table(store(), code) if code else None
    except ValueError:
        error = _("Choose a product that has a rate table.")
    if table is not None:
        result, error = _quote_from_args(code, table)
    return render_template("products/quote.html", products=products, code=code, table=table,
                           result=result, error=error, args=request.args)


def _stale(p: dict[str, Any]) -> ResponseReturnValue:
    """The grid's answer to a save over a table changed since the page was read."""
    return _detail_page(p, 409, grid_error=_(
        "The rate table was changed by someone else since you opened it; nothing was "
        "saved. Your values are kept below: check them against the new table."),
        sent=request.form)


def _quote_from_args(code: str, table: RateTable | None) -> tuple[Quote | None, str | None]:
    """The quote the query string asks for (none without a sum insured), through
    :func:`appliance.insurance.quote.quote`, which reads the table as the IVR does."""
    if table is None or not request.args.get("sum_insured"):
        return None, None
    try:
        return quote(store(), code, request.args.get("sum_insured", "").strip()
                     .replace(",", ""), age=_int("age"), sex=request.args.get("sex") or None,
                     term=_int("term"), payment_mode=request.args.get("payment_mode") or None,
                     seats=_int("seats")), None
    except ValueError as exc:
        return None, _quote_problem(str(exc))


def _quote_problem(message: str) -> str:
    """The quote module's English error, said in the page's language by the parameter it
    names (its messages start with the parameter's name)."""
    first = message.split(" ", 1)[0]
    if first in ("age", "sex", "term", "payment_mode", "seats"):
        name = {"age": _("Age"), "sex": _("Sex"), "term": _("Term (years)"),
                "payment_mode": _("Payment mode"), "seats": _("Seats")}[first]
        return _("%(field)s: not offered by this product's rate table, or missing.",
                 field=name)
    if first == "sum_insured":
        return _("Sum insured: must be an amount in yuan within the product's range.")
    if first.endswith("'s") or "rate table has no rate" in message:
        return _("The rate table has no rate for this combination of values.")
    return message  # ours, already translated (a whole number expected)


@bp.route("/<code>/rates.<fmt>")
def rates_export(code: str, fmt: str) -> ResponseReturnValue:
    _product(code)
    if fmt not in ("csv", "xlsx"):
        abort(404)
    header = [c.zh for c in RATE_COLUMNS]
    raw = [(r["age_min"], r["age_max"], r["sex"], r["term"], r["payment_mode"],
             None if r["value_min_fen"] is None else f"{r['value_min_fen'] / 100:.2f}",
             None if r["value_max_fen"] is None else f"{r['value_max_fen'] / 100:.2f}",
             r["seats_min"], r["seats_max"], r["rate_per_1000"], f"{r['base_fen'] / 100:.2f}")
            for r in store().query("SELECT * FROM rates WHERE product_code = ? ORDER BY id",
                                   [code])]
    rows = [tuple("" if v is None else v for v in r) for r in raw]
    audit.log("rates.export", code, format=fmt)
    return download(fmt, f"rates-{code}", code, header, rows)


def _parse_rate_row(n: int, v: dict[str, str], label: dict[str, str],
                    report: Report, code: str) -> dict[str, Any] | None:
    bad = len(report.problems)
    row: dict[str, Any] = {"product_code": code}
    for f in ("age_min", "age_max", "term", "seats_min", "seats_max"):
        text = v.get(f, "")
        if not text:
            row[f] = None
        elif not text.isdigit() or int(text) > 1000:
            report.add(n, label[f], _("must be a whole number"))
        else:
            row[f] = int(text)
    sex = v.get("sex", "")
    row["sex"] = _SEX_WORDS.get(sex.lower()) if sex else None
    if sex and row["sex"] is None:
        report.add(n, label["sex"], _("must be one of: %(values)s", values="男, 女, M, F"))
    mode = v.get("payment_mode", "")
    row["payment_mode"] = _MODE_WORDS.get(mode.lower()) if mode else None
    if mode and row["payment_mode"] is None:
        report.add(n, label["payment_mode"], _("must be one of: %(values)s",
                                               values="年缴, 月缴, 趸缴"))
    for f, key in (("value_min", "value_min_fen"), ("value_max", "value_max_fen"),
                   ("base", "base_fen")):
        text = v.get(f, "").replace(",", "")
        if not text:
            row[key] = 0 if f == "base" else None
            continue
        try:
            amount = Decimal(text)
            if not amount.is_finite() or amount < 0 or amount != round_fen(amount):
                raise InvalidOperation
            row[key] = to_fen(amount)
        except InvalidOperation:
            report.add(n, label[f], _("must be an amount of at most two decimal places"))
    try:
        rate = Decimal(v.get("rate_per_1000", ""))
        if not rate.is_finite() or rate <= 0 or rate != rate.quantize(Decimal("0.0001")):
            raise InvalidOperation
        row["rate_per_1000"] = str(rate.quantize(Decimal("0.0001")))
    except InvalidOperation:
        report.add(n, label["rate_per_1000"],
                   _("must be a positive rate of at most four decimal places"))
    for lo, hi in (("age_min", "age_max"), ("seats_min", "seats_max")):
        if row.get(lo) is not None and row.get(hi) is not None and row[lo] > row[hi]:
            report.add(n, label[hi], _("is below %(column)s", column=label[lo]))
    if (row.get("value_min_fen") is not None and row.get("value_max_fen") is not None
            and row["value_min_fen"] > row["value_max_fen"]):
        report.add(n, label["value_max"], _("is below %(column)s", column=label["value_min"]))
    return row if len(report.problems) == bad else None


@bp.route("/<code>/rates", methods=["POST"])
def rates_import(code: str) -> ResponseReturnValue:
    p = _product(code)
    upload = request.files.get("file")
    report = Report()
    rows: list[dict[str, Any]] = []
    error = None
    try:
        header, body = read_sheet(upload, (code, "费率表", "rates"))
        cols = Columns(header, RATE_COLUMNS)
        for n, v in each_row(body, cols, report):
            row = _parse_rate_row(n, v, cols.label, report, code)
            if row is not None:
                rows.append(row)
        if not report.problems:
            RateTable(product_from_row(p), [RateRow.from_db(r) for r in rows])
    except SheetError as exc:
        error = str(exc)
    except ValueError as exc:  # the table as a whole does not load
        error = str(exc)
    if error or report.problems:
        return _detail_page(p, 400, error=error, report=report if report.problems else None)
    filename = (upload and upload.filename) or ""
    audit_values = audit.audit_row("rates.import", code)

    def replace(db: Database) -> None:
        before = db.execute("SELECT count(*) FROM rates WHERE product_code = ?",
                            [code]).fetchone()[0]
        db.execute("DELETE FROM rates WHERE product_code = ?", [code])
        db["rates"].insert_all(rows)  # type: ignore[union-attr]
        audit_values[-1] = json.dumps({"rows": len(rows), "replaced": before,
                                       "file": filename}, ensure_ascii=False)
        db.execute(audit.AUDIT_SQL, audit_values)

    store().write(replace)
    flash(_("The rate table of %(code)s now has %(n)d rows.", code=code, n=len(rows)))
    return redirect(url_for("products.detail", code=code))


@bp.app_context_processor
def _modes() -> dict[str, Any]:
    return dict(PAYMENT_MODES=PAYMENT_MODES, kind_name=kind_name)


def kind_name(kind: str) -> str:
    return {"term_life": _("Term life"), "accident": _("Accident"),
            "critical_illness": _("Critical illness"), "motor": _("Motor")}.get(kind, kind)
