"""Orders with admin-defined fields (F9): the field definitions' checks, the admin's field
page, staff creating and editing orders (values checked by type, changes audited with
before and after), search and filters (SQL-injection strings find nothing and change
nothing), import all-or-nothing with upload abuse refused, export of the whole result set,
and open orders in the screen pop."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from flask import Flask

from appliance.store.db import Store
from tests.web.sheets import xlsx
from web import screenpop
from web.order_fields import FieldDef, check_definition, check_value

FIELDS = [
    {"name": "doc_list", "label_zh": "所需资料", "label_en": "Documents", "type": "text",
     "required": "1"},
    {"name": "channel", "label_zh": "受理渠道", "label_en": "Channel", "type": "choice",
     "options": "电话\n柜面\n业务员"},
    {"name": "due_on", "label_zh": "办结期限", "label_en": "Due", "type": "date"},
    {"name": "amount", "label_zh": "涉及金额", "label_en": "Amount", "type": "number"},
]
HEADER = ["工单号", "客户编号", "类型", "状态", "保单号", "所需资料", "受理渠道", "办结期限",
          "涉及金额"]


def _define(client: Any, token: str) -> None:
    for f in FIELDS:
        res = client.post("/orders/fields/", data={"csrf_token": token, **f})
        assert res.status_code == 302, res.get_data(as_text=True)


def _policy(store: Store) -> dict[str, Any]:
    return store.query("SELECT number, holder_id FROM policies ORDER BY number LIMIT 1")[0]


def _upload(client: Any, token: str, data: bytes, name: str = "orders.xlsx") -> Any:
    return client.post("/orders/import", data={"csrf_token": token,
                                               "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _count(store: Store) -> int:
    return int(store.query("SELECT count(*) AS n FROM orders")[0]["n"])


# --- the field definitions, on their own ---------------------------------------------

def test_a_field_definition_is_checked(app: Flask) -> None:
    with app.test_request_context():
        field, errors = check_definition(
            {"name": "channel", "label_zh": "受理渠道", "label_en": "Channel",
             "type": "choice", "options": "电话，柜面\n业务员", "required": "1"}, [])
        assert errors == {}
        assert field == FieldDef("channel", "受理渠道", "Channel", "choice",
                                 ("电话", "柜面", "业务员"), True, 0, True)
        for form, key in (
                ({"name": "Bad Name"}, "name"), ({"name": "1abc"}, "name"),
                ({"name": "status"}, "name"),  # a fixed column's name
                ({"name": "channel"}, "name"),  # taken
                ({"type": "picture"}, "type"),
                ({"type": "choice", "options": ""}, "options"),
                ({"type": "choice", "options": "a\na"}, "options"),
                ({"type": "text", "options": "a"}, "options"),
                ({"label_zh": ""}, "label_zh"), ({"label_en": "x" * 41}, "label_en"),
                ({"label_zh": "受理渠道"}, "label_zh"),  # another field's label
                ({"label_zh": "状态"}, "label_zh"),  # a fixed column's label
                ({"position": "first"}, "position")):
            base = {"name": "other", "label_zh": "其他", "label_en": "Other2",
                    "type": "text"}
            made, errors = check_definition({**base, **form}, [field])
            assert made is None and key in errors, (form, errors)
        # Editing keeps the name and type; its own labels do not clash with itself.
        same, errors = check_definition({"label_zh": "受理渠道", "label_en": "Channel",
                                         "options": "电话"}, [field], field)
        assert errors == {} and same is not None and same.options == ("电话",)
        assert same.active is False  # the "in use" box was not ticked


def test_a_field_value_is_checked_by_its_type(app: Flask) -> None:
    with app.test_request_context():
        text = FieldDef("doc", "资料", "Docs", "text", required=True)
        number = FieldDef("amount", "金额", "Amount", "number")
        day = FieldDef("due", "期限", "Due", "date")
        choice = FieldDef("ch", "渠道", "Channel", "choice", ("电话", "柜面"))
        assert check_value(text, " 身份证复印件 ") == ("身份证复印件", None)
        assert check_value(text, "") == (None, "为必填项")
        assert check_value(text, "x" * 501)[1] == "超过 500 个字符"
        assert check_value(number, "1,234.5") == ("1234.5", None)
        assert check_value(number, "") == (None, None)
        assert check_value(number, "abc")[1] == "不是数字"
        assert check_value(number, "Infinity")[1] == "不是数字"
        assert check_value(day, "2026/12/01") == ("2026-12-01", None)
        assert check_value(day, "2026-13-01")[0] is None
        assert check_value(choice, "柜面") == ("柜面", None)
        assert "电话, 柜面" in (check_value(choice, "邮寄")[1] or "")


# --- the pages ---------------------------------------------------------------------------

def test_the_admin_defines_fields_and_an_agent_keeps_an_order(as_role: Any,
                                                               store: Store) -> None:
    admin, token = as_role("admin")
    _define(admin, token)
    res = admin.post("/orders/fields/", data={"csrf_token": token, "name": "x y",
                                              "label_zh": "", "label_en": "X", "type": "text"})
    assert res.status_code == 400 and "字段未添加" in res.get_data(as_text=True)
    assert [r["name"] for r in store.query("SELECT name FROM order_fields ORDER BY name")] \
        == ["amount", "channel", "doc_list", "due_on"]

    agent, token = as_role("agent")
    policy = _policy(store)
    page = agent.get(f"/orders/new?customer={policy['holder_id']}").get_data(as_text=True)
    assert "所需资料" in page and ">柜面</option>" in page
    form = {"csrf_token": token, "customer": str(policy["holder_id"]), "kind": "endorsement",
            "status": "open", "policy_number": policy["number"], "field-doc_list": "",
            "field-channel": "邮寄", "field-due_on": "明天", "field-amount": "abc"}
    res = agent.post("/orders/new", data=form)
    body = res.get_data(as_text=True)
    assert res.status_code == 400 and "工单未保存" in body
    for problem in ("所需资料: 为必填项", "受理渠道: 须为以下之一", "办结期限:",
                    "涉及金额: 不是数字"):
        assert problem in body, problem
    assert _count(store) == 0
    form.update({"field-doc_list": "身份证复印件、变更申请书", "field-channel": "电话",
                 "field-due_on": "2026-12-01", "field-amount": "2000"})
    res = agent.post("/orders/new", data=form)
    assert res.status_code == 302
    (order,) = store.query("SELECT * FROM orders")
    assert (order["kind"], order["status"], order["created_by"]) == ("endorsement", "open",
                                                                     "agent")
    assert json.loads(order["field_values"]) == {
        "amount": "2000", "channel": "电话", "doc_list": "身份证复印件、变更申请书",
        "due_on": "2026-12-01"}
    # A policy the customer does not hold is refused.
    other = store.query("SELECT number FROM policies WHERE holder_id != ? AND insured_id != ?"
                        " LIMIT 1", [policy["holder_id"], policy["holder_id"]])[0]["number"]
    res = agent.post(f"/orders/{order['id']}/edit", data={**form, "policy_number": other})
    assert res.status_code == 400 and "不是该客户的保单" in res.get_data(as_text=True)

    res = agent.post(f"/orders/{order['id']}/edit", data={**form, "status": "in_progress",
                                                          "field-amount": "2500"})
    assert res.status_code == 302
    entry = store.query("SELECT * FROM audit_log WHERE action = 'order.edit'")[0]
    detail = json.loads(entry["detail"])
    assert detail["before"]["status"] == "open" and detail["after"]["status"] == "in_progress"
    assert detail["before"]["values"]["amount"] == "2000"
    assert detail["after"]["values"]["amount"] == "2500"
    page = agent.get(f"/orders/{order['id']}").get_data(as_text=True)
    assert "处理中" in page and "2500" in page
    assert store.query("SELECT 1 FROM audit_log WHERE action = 'order.view'")

    # Search by the customer's name (its start), a field's value (Chinese), filters.
    name = store.query("SELECT name FROM customers WHERE id = ?",
                       [policy["holder_id"]])[0]["name"]
    assert "共 1 条记录" in agent.get(f"/orders/?q={name[:2]}").get_data(as_text=True)
    assert "变更申请书" in agent.get("/orders/?q=变更申请书").get_data(as_text=True)
    assert "共 0 条记录" in agent.get("/orders/?q=变更申请书&status=done").get_data(
        as_text=True)
    assert "共 1 条记录" in agent.get("/orders/?status=open_any&kind=endorsement").get_data(
        as_text=True)

    # Retiring a field takes it off the form; the order keeps its value.
    res = admin.post("/orders/fields/amount", data={
        "csrf_token": as_role("admin")[1], "label_zh": "涉及金额", "label_en": "Amount",
        "options": "", "position": "0"})
    assert res.status_code == 302
    assert "涉及金额" not in agent.get("/orders/new?customer=1").get_data(as_text=True)
    agent.post(f"/orders/{order['id']}/edit", data={**form, "status": "done"})
    assert json.loads(store.query("SELECT field_values FROM orders")[0]["field_values"]
                      )["amount"] == "2500"


def test_order_forms_need_csrf_and_the_right_role(as_role: Any, store: Store) -> None:
    admin, token = as_role("admin")
    res = admin.post("/orders/fields/", data={**FIELDS[0]})
    assert res.status_code == 400
    assert not store.query("SELECT 1 FROM order_fields")
    agent, token = as_role("agent")
    assert agent.post("/orders/fields/", data={"csrf_token": token, **FIELDS[0]}
                      ).status_code == 403
    auditor, token = as_role("auditor")
    assert auditor.post("/orders/new", data={"csrf_token": token, "customer": "1",
                                             "kind": "other", "status": "open"}
                        ).status_code == 403
    assert _count(store) == 0


INJECTIONS = ["' OR '1'='1", "1' OR 1=1 --", "'; DROP TABLE orders; --",
              "%' UNION SELECT password_hash, 1, 1 FROM users --", "%", "_", "\\"]


def test_sql_injection_strings_in_the_order_search_find_nothing(as_role: Any,
                                                               store: Store) -> None:
    client, token = as_role("supervisor")
    rows = [["客户编号", "类型", "状态"], [1, "其他", "待处理"]]
    assert _upload(client, token, xlsx(rows, "工单")).status_code == 302
    for attack in INJECTIONS:
        for field in ("q", "kind", "status", "customer"):
            res = client.get("/orders/", query_string={field: attack})
            assert res.status_code == 200, (field, attack)
            if field == "q":
                assert "共 0 条记录" in res.get_data(as_text=True), attack
        res = client.get("/orders/export.csv", query_string={"q": attack})
        assert res.status_code == 200 and len(res.get_data(as_text=True).splitlines()) == 1
    assert _count(store) == 1 and store.query("SELECT count(*) AS n FROM users")[0]["n"] > 0


# --- import and export -------------------------------------------------------------------

def test_an_order_sheet_imports_all_rows_or_none(as_role: Any, store: Store) -> None:
    client, token = as_role("admin")
    _define(client, token)
    policy = _policy(store)
    good = [HEADER,
            ["", policy["holder_id"], "理赔资料", "待处理", policy["number"], "诊断证明", "柜面",
             "2026-12-10", "5000"],
            ["", 2, "投保申请", "处理中", "", "投保单", "", "", ""]]
    res = _upload(client, token, xlsx(good, "工单"))
    assert res.status_code == 302, res.get_data(as_text=True)
    assert _count(store) == 2
    entry = store.query("SELECT * FROM audit_log WHERE action = 'order.import'")[0]
    assert json.loads(entry["detail"])["created"] == 2
    first = store.query("SELECT * FROM orders ORDER BY id")[0]
    assert json.loads(first["field_values"]) == {"amount": "5000", "channel": "柜面",
                                                 "doc_list": "诊断证明", "due_on": "2026-12-10"}

    # One broken row: the report names its row and column, nothing changes.
    broken = [HEADER,
              [first["id"], policy["holder_id"], "理赔资料", "已完成", policy["number"],
               "诊断证明", "柜面", "", ""],
              ["", 999999, "投保申请", "待处理", "", "投保单", "", "", ""],
              ["", 2, "退保", "待处理", "", "", "传真", "下周", "很多"]]
    res = _upload(client, token, xlsx(broken, "工单"))
    body = res.get_data(as_text=True)
    assert res.status_code == 400 and "未导入任何数据" in body
    for row, column in (("3", "客户编号"), ("4", "类型"), ("4", "所需资料"), ("4", "受理渠道"),
                        ("4", "办结期限"), ("4", "涉及金额")):
        assert f"<tr><td>{row}</td><td>{column}</td>" in body, (row, column)
    assert _count(store) == 2
    assert store.query("SELECT status FROM orders WHERE id = ?", [first["id"]])[0][
        "status"] == "open"

    # With the order number: that order is updated.
    res = _upload(client, token, xlsx(broken[:2], "工单"))
    assert res.status_code == 302
    updated = store.query("SELECT * FROM orders WHERE id = ?", [first["id"]])[0]
    assert updated["status"] == "done" and _count(store) == 2
    assert "amount" not in json.loads(updated["field_values"])  # emptied in the sheet


def test_the_empty_template_has_every_column_and_imports_back_when_filled(
        as_role: Any, store: Store) -> None:
    from openpyxl import load_workbook

    client, token = as_role("admin")
    _define(client, token)
    page = client.get("/orders/").get_data(as_text=True)
    assert 'href="/orders/import/template.xlsx"' in page
    res = client.get("/orders/import/template.xlsx")
    assert res.status_code == 200
    assert "orders-template.xlsx" in res.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(res.data))
    sheet = book.active
    assert sheet is not None and sheet.title == "工单"
    (header,) = [list(r) for r in sheet.iter_rows(values_only=True)]  # the header alone
    assert header[:5] == HEADER[:5] and sorted(header[5:]) == sorted(HEADER[5:])
    # Filled in as a person would, under the template's own headings; saved; imported.
    policy = _policy(store)
    for row in [("", policy["holder_id"], "保全批改", "待处理", policy["number"],
                  "身份证复印件", "电话", "2026-12-20", "120.5"),
                ("", 2, "其他", "已完成", "", "回访记录", "", "", "")]:
        by_heading = dict(zip(HEADER, row, strict=True))
        sheet.append([by_heading[h] for h in header])
    filled = io.BytesIO()
    book.save(filled)
    res = _upload(client, token, filled.getvalue(), "orders-template.xlsx")
    assert res.status_code == 302, res.get_data(as_text=True)
    rows = store.query("SELECT customer_id, kind, status, policy_number, field_values"
                       " FROM orders ORDER BY id")
    assert [(r["customer_id"], r["kind"], r["status"], r["policy_number"]) for r in rows] == [
        (policy["holder_id"], "endorsement", "open", policy["number"]),
        (2, "other", "done", None)]
    assert json.loads(rows[0]["field_values"]) == {
        "amount": "120.5", "channel": "电话", "doc_list": "身份证复印件", "due_on": "2026-12-20"}
    # An agent may not import, so gets no template either.
    agent, _ = as_role("agent")
    assert agent.get("/orders/import/template.xlsx").status_code == 403


@pytest.mark.parametrize(("name", "data", "message"), [
    ("orders.exe", b"MZ\x90\x00", "不是电子表格"),
    ("orders.xlsx", b"PK\x03\x04" + b"\x00" * 100, "不是可读取的 .xlsx"),
    ("orders.csv", b"\x00\x01\x02binary", "不是文本 .csv"),
    ("orders.xlsx", None, "缺少列"),  # a workbook whose sheet is something else
    ("orders.csv", "客户编号,类型,状态\n".encode(), "没有数据"),
])
def test_uploads_that_are_not_an_order_sheet_are_refused(as_role: Any, store: Store,
                                                         name: str, data: bytes | None,
                                                         message: str) -> None:
    client, token = as_role("supervisor")
    if data is None:
        data = xlsx([["保单号", "保费"], ["P1", "100"]], sheet="保单")
    res = _upload(client, token, data, name)
    assert res.status_code == 400
    assert message in res.get_data(as_text=True)
    assert _count(store) == 0


def test_an_order_upload_over_the_size_limit_is_refused(data_dir: Any) -> None:
    from tests.web.conftest import login
    from web import create_app

    store = Store(data_dir / "appliance.db")
    try:
        app = create_app(data_dir, {"TESTING": True, "MAX_CONTENT_LENGTH": 100_000},
                         store=store)
        client = app.test_client()
        token = login(client, "admin")
        res = _upload(client, token, b"x" * 200_000, "big.csv")
        assert res.status_code == 413 and "文件过大" in res.get_data(as_text=True)
        assert _count(store) == 0
    finally:
        store.close()


def test_export_has_every_matching_order_not_just_the_page(as_role: Any,
                                                           store: Store) -> None:
    _define(*as_role("admin"))
    client, token = as_role("supervisor")
    rows = [["客户编号", "类型", "状态", "所需资料", "涉及金额", "办结期限"]] + [
        [1 + i % 5, "其他", "待处理" if i % 2 else "已完成", f"资料{i}", str(i * 10.5),
         "2026-12-31"] for i in range(130)]
    assert _upload(client, token, xlsx(rows, "工单")).status_code == 302
    assert "共 130 条记录" in client.get("/orders/").get_data(as_text=True)
    res = client.get("/orders/export.csv?status=open")
    table = list(csv.reader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))
    assert table[0][:5] == ["工单号", "客户编号", "客户姓名", "类型", "状态"]
    assert len(table) == 1 + 65 and {r[4] for r in table[1:]} == {"待处理"}
    # The fields by position, then name (all at 0 here).
    assert table[0][6:10] == ["涉及金额", "受理渠道", "所需资料", "办结期限"]
    assert table[1][6:10] == ["1354.5", "", "资料129", "2026-12-31"]
    res = client.get("/orders/export.xlsx")
    assert res.mimetype.endswith("spreadsheetml.sheet")
    assert store.query("SELECT 1 FROM audit_log WHERE action = 'order.export'")
    # The export imports again as it is: every row updates its own order, none is added.
    before = store.query("SELECT id, customer_id, kind, status, field_values FROM orders"
                         " ORDER BY id")
    again = _upload(client, token, res.get_data(), "orders.xlsx")
    assert again.status_code == 302, again.get_data(as_text=True)
    assert store.query("SELECT id, customer_id, kind, status, field_values FROM orders"
                       " ORDER BY id") == before


def test_open_orders_show_in_the_screen_pop(as_role: Any, store: Store) -> None:
    client, token = as_role("supervisor")
    policy = _policy(store)
    rows = [["客户编号", "类型", "状态"], [policy["holder_id"], "理赔资料", "处理中"],
            [policy["holder_id"], "投保申请", "已完成"]]
    assert _upload(client, token, xlsx(rows, "工单")).status_code == 302
    found = screenpop.find(store, "", policy["number"])
    assert [(o["kind"], o["status"]) for o in found["orders"]] == [
        ("claim_documents", "in_progress")]
    with client.application.test_request_context():
        from flask import g, render_template

        from web.accounts import get_user

        g.user = get_user(store, 1)
        html = render_template("console/pop.html", offer={"call": "c1", "caller": ""},
                               **found)
    assert "未完成工单" in html and "理赔资料" in html and "已完成" not in html
    assert f'/orders/new?customer={policy["holder_id"]}' in html  # a new order for the caller
