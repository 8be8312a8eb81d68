"""Bulk import of policies from a spreadsheet: validate every row, then write all or nothing.

Each row names the policy, its product, the policyholder (name and ID card number, which
is checked — length, date of birth, GB 11643 check character — then only hashed and
masked, never stored) and optionally a different insured person. A holder already in the
book (same name, same ID number) is reused; otherwise a customer is created. A policy
number already in the book is updated, a new one is inserted. Every problem found is
reported with its row and column and nothing is written; with none, all rows go in in one
transaction on the store's writer, with the audit row.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext as _
from sqlite_utils import Database

from appliance.insurance.demo_data import id_checksum
from appliance.insurance.hashing import hash_id_number, id_matches, mask_id_number
from appliance.insurance.quote import round_fen, to_fen
from appliance.store.db import Store
from web import audit
from web.sheets import Column, Columns, Report, SheetError, each_row

SHEET_NAMES = ("保单", "policies", "Policies")

COLUMNS = (
    Column("number", "保单号", "Policy number"),
    Column("product_code", "险种代码", "Product code"),
    Column("holder_name", "投保人", "Policyholder"),
    Column("holder_id", "投保人身份证号", "Policyholder ID number"),
    Column("holder_phone", "投保人手机", "Policyholder phone", required=False),
    Column("insured_name", "被保险人", "Insured", required=False),
    Column("insured_id", "被保险人身份证号", "Insured ID number", required=False),
    Column("status", "保单状态", "Status"),
    Column("sum_insured", "保额", "Sum insured"),
    Column("premium", "保费", "Premium"),
    Column("payment_mode", "缴费方式", "Payment mode"),
    Column("term", "保险期间", "Term", required=False),
    Column("issued_on", "承保日期", "Issue date"),
    Column("next_due_date", "应缴日", "Next due date", required=False),
    Column("salesperson_code", "业务员工号", "Salesperson code", required=False),
)

STATUSES = {"in_force": "in_force", "有效": "in_force", "lapsed": "lapsed", "失效": "lapsed",
            "surrendered": "surrendered", "退保": "surrendered", "pending": "pending",
            "待承保": "pending", "核保中": "pending"}
MODES = {"annual": "annual", "年缴": "annual", "monthly": "monthly", "月缴": "monthly",
         "single": "single", "趸缴": "single"}
_NUMBER = re.compile(r"^[A-Za-z0-9-]{1,32}$")
PHONE = re.compile(r"^\+?[0-9-]{7,20}$")
_ID = re.compile(r"^[0-9]{17}[0-9X]$")


@dataclass
class ImportResult:
    report: Report
    created: int = 0
    updated: int = 0
    customers_created: int = 0

    @property
    def ok(self) -> bool:
        return not self.report.problems


class CustomerPlan:
    """The people of an import, matched against the book before its transaction: an
    existing customer (same name, same ID number) by id, a new one by its place in
    :attr:`new` (given an id by :meth:`insert`, in the transaction). ID numbers are hashed
    here, off the store's writer."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[str, int]] = {}
        self.new: list[list[Any]] = []
        self.phones: list[tuple[str, int]] = []  # new phone numbers of known customers

    def add(self, db: Database, name: str, id_number: str, phone: str | None) -> None:
        """In a read: match or plan one person (the first row naming an ID number wins)."""
        if id_number in self.known:
            return
        for cid, salt, digest in db.execute(
                "SELECT id, id_salt, id_hash FROM customers WHERE id_last4 = ? AND name = ?",
                [id_number[-4:], name]):
            if id_matches(id_number, salt, digest):
                self.known[id_number] = ("old", cid)
                if phone:
                    self.phones.append((phone, cid))
                return
        salt, digest = hash_id_number(id_number)
        sex = "M" if int(id_number[16]) % 2 else "F"  # GB 11643: odd 17th digit for men
        birthday = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
        self.known[id_number] = ("new", len(self.new))
        self.new.append([0, name, sex, birthday, phone, salt, digest, mask_id_number(id_number),
                         id_number[-4:]])

    @property
    def matched(self) -> int:
        return sum(1 for kind, _ in self.known.values() if kind == "old")

    def insert(self, db: Database) -> Callable[[str], int]:
        """In the write: insert the new customers, update phones; return id_number → id."""
        first_id = db.execute("SELECT coalesce(max(id), 0) + 1 FROM customers").fetchone()[0]
        for i, c in enumerate(self.new):
            c[0] = first_id + i
        db.conn.executemany(
            "INSERT INTO customers (id, name, sex, birthday, phone, id_salt, id_hash,"
            " id_masked, id_last4) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self.new)
        db.conn.executemany("UPDATE customers SET phone = ? WHERE id = ?", self.phones)

        def customer_id(id_number: str) -> int:
            kind, value = self.known[id_number]
            return int(value if kind == "old" else first_id + value)

        return customer_id


def parse_id(text: str) -> tuple[str | None, str | None]:
    """``(id_number, problem)``: an 18-character mainland ID number, checked."""
    n = text.strip().upper()
    if not _ID.match(n):
        return None, _("must be 18 characters: 17 digits and a digit or X")
    try:
        born = date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    except ValueError:
        return None, _("has no valid date of birth in characters 7–14")
    if not date(1900, 1, 1) <= born <= date.today():
        return None, _("has no valid date of birth in characters 7–14")
    if id_checksum(n[:17]) != n[17]:
        return None, _("has a wrong check character (the last one)")
    return n, None


def parse_money(text: str) -> tuple[int | None, str | None]:
    try:
        amount = Decimal(text.replace(",", "").replace("，", ""))
    except InvalidOperation:
        return None, _("is not an amount")
    if not amount.is_finite() or amount <= 0:
        return None, _("must be a positive amount")
    if amount != round_fen(amount):
        return None, _("has more than two decimal places")
    if amount > Decimal(10) ** 12:
        return None, _("is too large")
    return to_fen(amount), None


def parse_date(text: str) -> tuple[str | None, str | None]:
    t = text.strip().replace("/", "-").replace(".", "-")
    if " " in t:
        t = t.split(" ")[0]
    try:
        return date.fromisoformat(t).isoformat(), None
    except ValueError:
        return None, _("is not a date like 2026-11-26")


def validate(header: list[str], rows: Iterator[list[str]], products: set[str],
             salespeople: set[str]) -> tuple[list[dict[str, Any]], Report]:
    """Every row checked; the clean rows, and the report of problems (row and column)."""
    cols = Columns(header, COLUMNS)
    label = cols.label
    report = Report()
    clean: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for n, v in each_row(rows, cols, report):
        bad = len(report.problems)

        def need(f: str, n: int = n, v: dict[str, str] = v) -> str:
            if not v.get(f):
                report.add(n, label[f], _("is required"))
            return v.get(f, "")

        out: dict[str, Any] = {"row": n}
        number = need("number")
        if number and not _NUMBER.match(number):
            report.add(n, label["number"], _("must be 1–32 letters, digits or hyphens"))
        elif number in seen:
            report.add(n, label["number"], _("repeats row %(row)d", row=seen[number]))
        elif number:
            seen[number] = n
        out["number"] = number
        product = need("product_code")
        if product and product not in products:
            report.add(n, label["product_code"], _("%(value)s is not a known product code",
                                                   value=product))
        out["product_code"] = product
        for who in ("holder", "insured"):
            name, id_text = v.get(f"{who}_name", ""), v.get(f"{who}_id", "")
            if who == "insured" and not name and not id_text:
                out["insured"] = None
                continue
            if not name:
                report.add(n, label[f"{who}_name"], _("is required"))
            elif len(name) > 50:
                report.add(n, label[f"{who}_name"], _("is longer than 50 characters"))
            if not id_text:
                report.add(n, label[f"{who}_id"], _("is required"))
                out[who] = None
                continue
            id_number, problem = parse_id(id_text)
            if problem:
                report.add(n, label[f"{who}_id"], problem)
            out[who] = (name, id_number)
        phone = v.get("holder_phone", "")
        if phone and not PHONE.match(phone):
            report.add(n, label["holder_phone"], _("is not a phone number"))
        out["phone"] = phone or None
        status = need("status")
        if status and status.lower() not in STATUSES:
            report.add(n, label["status"], _("must be one of: %(values)s",
                                             values="有效, 失效, 退保, 待承保"))
        out["status"] = STATUSES.get(status.lower())
        mode = need("payment_mode")
        if mode and mode.lower() not in MODES:
            report.add(n, label["payment_mode"], _("must be one of: %(values)s",
                                                   values="年缴, 月缴, 趸缴"))
        out["payment_mode"] = MODES.get(mode.lower())
        for f in ("sum_insured", "premium"):
            text = need(f)
            if text:
                fen, problem = parse_money(text)
                if problem:
                    report.add(n, label[f], problem)
                out[f] = fen
        term = v.get("term", "")
        out["term"] = None
        if term:
            if not term.isdigit() or not 1 <= int(term) <= 100:
                report.add(n, label["term"], _("must be a whole number of years, 1–100"))
            else:
                out["term"] = int(term)
        issued = need("issued_on")
        out["issued_on"] = None
        if issued:
            out["issued_on"], problem = parse_date(issued)
            if problem:
                report.add(n, label["issued_on"], problem)
        due = v.get("next_due_date", "")
        out["next_due_date"] = None
        if due:
            out["next_due_date"], problem = parse_date(due)
            if problem:
                report.add(n, label["next_due_date"], problem)
        sp = v.get("salesperson_code", "")
        if sp and sp not in salespeople:
            report.add(n, label["salesperson_code"],
                       _("%(value)s is not a known salesperson code", value=sp))
        out["salesperson_code"] = sp or None
        if len(report.problems) == bad:
            clean.append(out)
    return clean, report


def import_policies(store: Store, header: list[str], rows: Iterator[list[str]],
                    filename: str) -> ImportResult:
    """Validate, then (only if every row is clean) write every row in one transaction.

    The engine writes its call records to the same file, and waits at most the store's
    busy timeout for the write lock; so the work of an import (matching holders against
    the book, hashing ID numbers) is done first, on this thread, and the transaction only
    inserts prepared rows.
    """
    products = {r["code"] for r in store.query("SELECT code FROM products")}
    salespeople = {r["code"] for r in store.query("SELECT code FROM salespeople")}
    clean, report = validate(header, rows, products, salespeople)
    result = ImportResult(report)
    if report.problems:
        return result
    audit_values = audit.audit_row("policy.import", filename, rows=len(clean))

    people = CustomerPlan()

    def match(db: Database) -> None:
        for r in clean:
            name, id_number = r["holder"]
            people.add(db, name, id_number, r["phone"])
            if r["insured"] is not None:
                name, id_number = r["insured"]
                people.add(db, name, id_number, None)

    store.read(match)
    numbers = [r["number"] for r in clean]
    existing: set[str] = set()
    for i in range(0, len(numbers), 500):
        chunk = numbers[i:i + 500]
        existing.update(r["number"] for r in store.query(
            f"SELECT number FROM policies WHERE number IN ({','.join('?' * len(chunk))})",
            chunk))

    def write(db: Database) -> tuple[int, int, int]:
        customer_id = people.insert(db)
        policies = []
        for r in clean:
            holder = customer_id(r["holder"][1])
            insured = holder if r["insured"] is None else customer_id(r["insured"][1])
            due_fen = r["premium"] if r["next_due_date"] else None
            policies.append((r["number"], r["product_code"], holder, insured, r["status"],
                             r["sum_insured"], r["premium"], r["payment_mode"], r["term"],
                             r["issued_on"], r["next_due_date"], due_fen,
                             r["salesperson_code"]))
        # New numbers are plain inserts (a number added since the check above makes the
        # insert fail and the whole import roll back); known ones are updated.
        db.conn.executemany(
            "INSERT INTO policies (number, product_code, holder_id, insured_id, status,"
            " sum_insured_fen, premium_fen, payment_mode, term, issued_on, next_due_date,"
            " next_due_fen, salesperson_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [p for p in policies if p[0] not in existing])
        db.conn.executemany(
            "UPDATE policies SET product_code = ?, holder_id = ?, insured_id = ?, status = ?,"
            " sum_insured_fen = ?, premium_fen = ?, payment_mode = ?, term = ?, issued_on = ?,"
            " next_due_date = ?, next_due_fen = ?, salesperson_code = ? WHERE number = ?",
            [(*p[1:], p[0]) for p in policies if p[0] in existing])
        created = len(policies) - len(existing)
        # The audit row commits with the rows it reports.
        audit_values[-1] = json.dumps({"rows": len(policies), "created": created,
                                       "updated": len(existing),
                                       "customers_created": len(people.new)})
        db.execute(audit.AUDIT_SQL, audit_values)
        return created, len(existing), len(people.new)

    try:
        result.created, result.updated, result.customers_created = store.write(write)
    except sqlite3.IntegrityError:
        # Another import or an edit got in between the checks and the write: nothing was
        # written; the same sheet will go in when uploaded again.
        raise SheetError(_("The book changed while the sheet was being checked; nothing "
                           "was imported. Upload the sheet again.")) from None
    return result
