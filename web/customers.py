"""Customers: search, one customer with their policies, export. Personal data throughout:
ID numbers only ever masked (the book has no other form), phone numbers in full only for
the roles with ``see_phone``, and every list, view and export written to the audit log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from appliance.insurance.cross_sell import Hint, Holding, PeerCache, hints, peer_counts
from web import audit, permissions
from web.db import mask_phone, prefix_range, store
from web.paging import page_number, read_page
from web.policy_import import PHONE, CustomerPlan, parse_id
from web.products import kind_name
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

bp = Blueprint("customers", __name__, url_prefix="/customers")


def _filters() -> tuple[str, list[Any], str]:
    q = request.args.get("q", "").strip()[:64]
    if not q:
        return "", [], q
    if q.isdigit() and len(q) >= 7:  # a phone number (or its start)
        lo, hi = prefix_range(q)
        return "WHERE phone >= ? AND phone < ?", [lo, hi], q
    if len(q) == 4 and (q[:3].isdigit() and (q[3].isdigit() or q[3] in "xX")):
        return "WHERE id_last4 = ?", [q.upper()], q  # the ID's last four, as the IVR asks
    lo, hi = prefix_range(q)
    return "WHERE name >= ? AND name < ?", [lo, hi], q


@bp.route("/", endpoint="list")
def customer_list() -> str:
    clause, params, q = _filters()
    number = page_number()
    page, rows = read_page(store(), f"SELECT 1 FROM customers {clause}",
                           f"SELECT id, name, sex, birthday, phone, id_masked FROM customers"
                           f" {clause} ORDER BY id LIMIT ? OFFSET ?", params, number)
    audit.log("customer.list", "", q=q, page=number, shown=len(rows))
    return render_template("customers/list.html", rows=rows, q=q, page=page,
                           see_phone=permissions.can(g.user.role, "see_phone"),
                           mask_phone=mask_phone, columns=COLUMNS, column_label=column_label)


@bp.route("/<int:customer_id>")
def detail(customer_id: int) -> str:
    rows = store().query("SELECT id, name, sex, birthday, phone, id_masked FROM customers"
                         " WHERE id = ?", [customer_id])
    if not rows:
        abort(404)
    policies = store().query(
        "SELECT p.number, p.product_code, pr.name_zh, pr.name_en, pr.kind, p.status,"
        " p.premium_fen,"
        " p.next_due_date, CASE WHEN p.holder_id = ? THEN 'holder' ELSE 'insured' END AS part"
        " FROM policies p JOIN products pr ON pr.code = p.product_code"
        " WHERE p.holder_id = ? OR p.insured_id = ? ORDER BY p.number",
        [customer_id, customer_id, customer_id])
    audit.log("customer.view", str(customer_id))
    return render_template("customers/detail.html", c=rows[0], policies=policies,
                           hints=_hints(rows[0], policies), hint_text=hint_text,
                           see_phone=permissions.can(g.user.role, "see_phone"),
                           mask_phone=mask_phone)


def _hints(customer: dict[str, Any], policies: list[dict[str, Any]]) -> list[Hint]:
    # The customer's own policies as holder; the first product of each kind is offered.
    products: dict[str, str] = {}
    for p in store().query("SELECT code, kind FROM products ORDER BY code"):
        products.setdefault(p["kind"], p["code"])
    held = [Holding(p["number"], p["kind"], p["status"],
                    date.fromisoformat(p["next_due_date"]) if p["next_due_date"] else None)
            for p in policies if p["part"] == "holder"]
    birthday = date.fromisoformat(customer["birthday"]) if customer["birthday"] else None
    today = datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()
    peers = peer_counts(store().query, customer_id=customer["id"], sex=customer["sex"],
                        birthday=birthday, today=today,
                        holding={h.kind for h in held if h.status == "in_force"},
                        cache=current_app.extensions.setdefault("peer_cache", PeerCache()))
    return hints(held, birthday=birthday, today=today, products_by_kind=products,
                 peers=peers)


def hint_text(hint: Hint) -> str:
    return {"lapsed": _("Policy %(number)s has lapsed: offer reinstatement.",
                        number=hint.policy_number),
            "due_soon": _("Policy %(number)s has a premium due within 30 days: remind the "
                          "customer.", number=hint.policy_number),
            "add_critical_illness": _("Life cover but no critical-illness cover: offer "
                                      "%(code)s.", code=hint.product_code),
            "add_accident": _("Motor cover but no accident cover: offer %(code)s.",
                              code=hint.product_code),
            "add_term_life": _("No life cover yet: offer %(code)s.", code=hint.product_code),
            "similar": _similar_text(hint) if hint.peers else "",
            }.get(hint.reason, hint.reason)


def _similar_text(hint: Hint) -> str:
    peers = hint.peers
    assert peers is not None
    who = _("%(sex)s aged %(lo)d–%(hi)d", sex=_("men") if peers.sex == "M" else _("women"),
            lo=peers.age_from, hi=peers.age_to)
    if peers.holding:
        who = _("%(who)s holding %(kinds)s", who=who,
                kinds=_(", ").join(kind_name(k) for k in peers.holding))
    return _("%(share)d%% of %(n)d similar customers (%(who)s) hold %(kind)s cover, which "
             "this customer does not: offer %(code)s.", share=round(hint.share * 100),
             n=peers.count, who=who, kind=kind_name(hint.kind), code=hint.product_code)


@bp.route("/export")
def export() -> Response:
    clause, params, q = _filters()
    fmt = request.args.get("format", "csv")
    see_phone = permissions.can(g.user.role, "see_phone")
    audit.log("customer.export", "", q=q, format=fmt)
    header = ("客户编号", "姓名", "性别", "出生日期", "手机", "身份证号（掩码）")

    db = store()  # the generator runs after the request context has gone

    def rows() -> Any:
        last = 0
        while True:
            key = "id > ?"
            where = f"{clause} AND {key}" if clause else f"WHERE {key}"
            chunk = db.query(f"SELECT id, name, sex, birthday, phone, id_masked FROM"
                                  f" customers {where} ORDER BY id LIMIT 5000", [*params, last])
            for r in chunk:
                yield (r["id"], r["name"], r["sex"] or "", r["birthday"] or "",
                       r["phone"] if see_phone else mask_phone(r["phone"]), r["id_masked"])
            if len(chunk) < 5000:
                return
            last = chunk[-1]["id"]

    return download(fmt, "customers", "客户", header, rows())


COLUMNS = (
    Column("name", "姓名", "Name"),
    Column("id_number", "身份证号", "ID number"),
    Column("phone", "手机", "Phone", required=False),
)


@bp.route("/template.xlsx")
def template() -> Response:
    return download("xlsx", "customers-template.xlsx", "客户", [c.zh for c in COLUMNS], [])


@bp.route("/import", methods=["POST"])
def import_upload() -> ResponseReturnValue:
    """Add customers, or give known ones (same name, same ID number) a new phone number;
    all rows or none, problems by row and column."""
    upload = request.files.get("file")
    report = Report()
    clean: list[tuple[str, str, str | None]] = []
    try:
        header, body = read_sheet(upload, ("客户", "customers", "Customers"))
        cols = Columns(header, COLUMNS)
        seen: dict[str, int] = {}
        for n, v in each_row(body, cols, report):
            bad = len(report.problems)
            if not v["name"]:
                report.add(n, cols.label["name"], _("is required"))
            elif len(v["name"]) > 50:
                report.add(n, cols.label["name"], _("is longer than 50 characters"))
            id_number, problem = parse_id(v["id_number"]) if v["id_number"] else (None, None)
            if not v["id_number"]:
                report.add(n, cols.label["id_number"], _("is required"))
            elif problem:
                report.add(n, cols.label["id_number"], problem)
            elif id_number in seen:
                report.add(n, cols.label["id_number"],
                           _("repeats row %(row)d", row=seen[id_number]))
            phone = v.get("phone", "")
            if phone and not PHONE.match(phone):
                report.add(n, cols.label["phone"], _("is not a phone number"))
            if len(report.problems) == bad and id_number:
                seen[id_number] = n
                clean.append((v["name"], id_number, phone or None))
    except SheetError as exc:
        return _list_page(error=str(exc)), 400
    if report.problems:
        return _list_page(report=report), 400
    people = CustomerPlan()

    def match(db: Any) -> None:
        for name, id_number, phone in clean:
            people.add(db, name, id_number, phone)

    store().read(match)
    entry = audit.audit_row("customer.import", (upload and upload.filename) or "",
                            rows=len(clean), created=len(people.new), matched=people.matched)

    def write(db: Any) -> None:
        people.insert(db)
        audit.insert(db, entry)

    store().write(write)
    flash(_("Imported %(rows)d rows: %(created)d new customers, %(matched)d already known.",
            rows=len(clean), created=len(people.new), matched=people.matched))
    return redirect(url_for("customers.list"))


def _list_page(**extra: Any) -> str:
    page, rows = read_page(store(), "SELECT 1 FROM customers",
                           "SELECT id, name, sex, birthday, phone, id_masked FROM customers"
                           " ORDER BY id LIMIT ? OFFSET ?", [], 1)
    audit.log("customer.list", "", q="", page=1, shown=len(rows))
    return render_template("customers/list.html", rows=rows, q="", page=page,
                           see_phone=permissions.can(g.user.role, "see_phone"),
                           mask_phone=mask_phone, columns=COLUMNS, column_label=column_label,
                           **extra)
