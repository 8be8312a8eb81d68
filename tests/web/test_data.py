"""The data pages: policy import (all or nothing, problems by row and column), upload
abuse, SQL-injection strings in every search field, masking by role, the audit log, and
the quote calculator against the IVR's quote code."""

from __future__ import annotations

import io
import json
import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from appliance.insurance.quote import quote
from appliance.store.db import Store
from tests.web.sheets import HEADER, id_number, policy_row, xlsx


def _upload(client: Any, token: str, data: bytes, name: str = "policies.xlsx",
            url: str = "/policies/import") -> Any:
    return client.post(url, data={"csrf_token": token, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _count(store: Store, table: str = "policies") -> int:
    return int(store.query(f"SELECT count(*) AS n FROM {table}")[0]["n"])


def test_a_good_sheet_imports_every_row_and_the_policies_are_listed(as_role: Any,
                                                                    store: Store) -> None:
    client, token = as_role("supervisor")
    rows = [HEADER, policy_row("T2026000001"),
            policy_row("T2026000002", holder_name="李四", holder_id=id_number(seq="456"),
                       insured_name="李小四", insured_id=id_number(born="20100101", seq="457"),
                       payment_mode="月缴", product_code="CI30", term="20"),
            policy_row("T2026000003")]  # the same holder as the first: one customer
    customers = _count(store, "customers")
    res = _upload(client, token, xlsx(rows))
    assert res.status_code == 200, res.get_data(as_text=True)
    assert "新增保单 3 张" in res.get_data(as_text=True)
    assert _count(store, "customers") == customers + 3
    row = store.query("SELECT p.*, c.id_masked, c.name FROM policies p JOIN customers c"
                      " ON c.id = p.holder_id WHERE number = 'T2026000002'")[0]
    assert (row["name"], row["payment_mode"], row["premium_fen"]) == ("李四", "monthly", 123450)
    assert row["id_masked"] == "110***********" + id_number(seq="456")[-4:]
    # The full ID number is nowhere in the database.
    assert not store.query("SELECT 1 FROM customers WHERE id_masked = ? OR name = ?",
                           [id_number(), id_number()])
    html = client.get("/policies/?q=T2026").get_data(as_text=True)
    assert all(n in html for n in ("T2026000001", "T2026000002", "T2026000003"))
    # Importing again updates instead of duplicating.
    res = _upload(client, token, xlsx([HEADER, policy_row("T2026000001", status="失效")]))
    assert "更新 1 张" in res.get_data(as_text=True)
    assert store.query("SELECT status FROM policies WHERE number = 'T2026000001'"
                       )[0]["status"] == "lapsed"
    entry = store.query("SELECT * FROM audit_log WHERE action = 'policy.import'"
                        " ORDER BY id")[0]
    assert entry["username"] == "supervisor"
    assert json.loads(entry["detail"])["created"] == 3


def test_a_sheet_with_bad_rows_imports_nothing_and_names_each_row_and_column(
        as_role: Any, store: Store) -> None:
    client, token = as_role("admin")
    before = _count(store)
    rows = [HEADER, policy_row("T1"),
            policy_row("T2", holder_id="110101198503121230"),  # wrong check character
            policy_row("T3", product_code="NOPE", premium="-5"),
            policy_row("T1"),  # repeats row 2
            policy_row("T5", issued_on="2026-13-45", salesperson_code="999999")]
    res = _upload(client, token, xlsx(rows))
    assert res.status_code == 400
    html = res.get_data(as_text=True)
    problems = set(re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td>", html))
    assert problems == {("3", "投保人身份证号"), ("4", "险种代码"), ("4", "保费"),
                        ("5", "保单号"), ("6", "承保日期"), ("6", "业务员工号")}
    assert "未导入任何数据" in html
    assert _count(store) == before


@pytest.mark.parametrize(("name", "data", "message"), [
    ("virus.exe", b"MZ\x90\x00", "不是电子表格"),
    ("policies.xlsx", b"this is not a zip file at all", "不是可读取的 .xlsx"),
    ("policies.xlsx", b"PK\x03\x04" + b"\x00" * 100, "不是可读取的 .xlsx"),
    ("policies.csv", b"\x00\x01\x02binary", "不是文本 .csv"),
    ("policies.csv", b"", "文件为空"),
    ("policies.csv", "保单号,姓名\nT1,张三\n".encode(), "缺少列"),
    ("policies.xlsx", None, "缺少列"),  # an xlsx whose sheet has other columns
    ("policies.csv", ",".join(HEADER).encode() + b"\n", "没有数据"),
])
def test_uploads_that_are_not_a_policy_sheet_are_refused_with_a_reason(
        as_role: Any, store: Store, name: str, data: bytes | None, message: str) -> None:
    client, token = as_role("admin")
    if data is None:
        data = xlsx([["客户", "电话"], ["张三", "138"]], sheet="Sheet1")
    before = _count(store)
    res = _upload(client, token, data, name)
    assert res.status_code == 400
    assert message in res.get_data(as_text=True)
    assert _count(store) == before


def test_a_csv_saved_by_chinese_excel_in_gb18030_imports(as_role: Any, store: Store) -> None:
    client, token = as_role("admin")
    text = "\n".join(",".join(r) for r in [HEADER, policy_row("G1")])
    res = _upload(client, token, text.encode("gb18030"), "policies.csv")
    assert res.status_code == 200, res.get_data(as_text=True)
    assert store.query("SELECT c.name FROM policies p JOIN customers c ON c.id = p.holder_id"
                       " WHERE number = 'G1'")[0]["name"] == "测试人"


def test_an_upload_over_the_size_limit_is_refused(data_dir: Any) -> None:
    from tests.web.conftest import login
    from web import create_app

    store = Store(data_dir / "appliance.db")
    try:
        app = create_app(data_dir, {"TESTING": True, "MAX_CONTENT_LENGTH": 100_000},
                         store=store)
        client = app.test_client()
        token = login(client, "admin")
        res = _upload(client, token, b"x" * 200_000, "big.csv")
        assert res.status_code == 413
        assert "文件过大" in res.get_data(as_text=True)
    finally:
        store.close()


INJECTIONS = ["' OR '1'='1", "1' OR 1=1 --", "'; DROP TABLE policies; --",
              "%' UNION SELECT password_hash, 1, 1 FROM users --", "\" OR \"\"=\"",
              "王' OR name LIKE '%", "0x27 OR 1=1"]

# (page, field, what the page says when nothing matches, or None where the field is a
# choice or a date, which an unknown value leaves at its default)
NOTHING = "共 0 条记录"
SEARCHES = [("/policies/", "q", NOTHING), ("/policies/", "status", None),
            ("/policies/", "product", NOTHING), ("/policies/", "salesperson", NOTHING),
            ("/customers/", "q", NOTHING), ("/salespeople/", "q", NOTHING),
            ("/calls/", "number", NOTHING), ("/calls/", "from", None), ("/calls/", "to", None),
            ("/staff/audit", "user", NOTHING), ("/staff/audit", "action", NOTHING),
            ("/prompts/", "q", "没有符合条件的语音提示"), ("/prompts/", "lang", None),
            ("/flows/", "lang", None), ("/reports/", "from", None), ("/reports/", "to", None),
            ("/policies/export", "q", ""), ("/customers/export", "q", ""),
            ("/calls/export", "number", "")]


def test_sql_injection_strings_in_every_search_field_find_nothing_and_change_nothing(
        as_role: Any, store: Store) -> None:
    client, _ = as_role("admin")
    tables = {t: _count(store, t) for t in ("policies", "customers", "salespeople", "users")}
    for path, field, nothing in SEARCHES:
        for attack in INJECTIONS:
            res = client.get(path, query_string={field: attack})
            assert res.status_code == 200, (path, field, attack)
            body = res.get_data(as_text=True)
            assert "argon2" not in body
            if nothing == "":  # an export: the header line and no rows
                assert len(body.strip().splitlines()) <= 1, (path, field, attack)
            elif nothing is not None:  # the injected OR did not widen the filter
                assert nothing in body, (path, field, attack)
    assert {t: _count(store, t) for t in tables} == tables


def test_phone_numbers_show_in_full_only_to_roles_allowed(as_role: Any, store: Store) -> None:
    c = store.query("SELECT id, phone FROM customers WHERE phone IS NOT NULL LIMIT 1")[0]
    masked = c["phone"][:3] + "****" + c["phone"][-4:]
    for role, full in (("supervisor", True), ("admin", True), ("agent", False),
                       ("auditor", False)):
        client, _ = as_role(role)
        html = client.get(f"/customers/{c['id']}").get_data(as_text=True)
        assert (c["phone"] in html) == full, role
        assert (masked in html) != full, role
        csv_text = client.get("/calls/export").get_data(as_text=True)
        if role in ("supervisor", "admin", "auditor"):
            assert ("13800130000" in csv_text) == full, role


def test_every_view_of_personal_data_is_in_the_audit_log(as_role: Any, store: Store) -> None:
    client, _ = as_role("agent")
    number = store.query("SELECT number FROM policies LIMIT 1")[0]["number"]
    client.get("/customers/?q=王")
    client.get("/customers/7")
    client.get(f"/policies/{number}")
    client.get("/calls/?number=138")
    rows = store.query("SELECT action, target, detail, username, role FROM audit_log"
                       " WHERE username = 'agent' AND action != 'login' ORDER BY id")
    assert [(r["action"], r["target"]) for r in rows] == [
        ("customer.list", ""), ("customer.view", "7"), ("policy.view", number),
        ("call.list", "")]
    assert json.loads(rows[0]["detail"])["q"] == "王"
    assert all(r["role"] == "agent" for r in rows)
    # And the log cannot be edited from SQL either.
    with pytest.raises(Exception, match="append-only"):
        store.write(lambda db: db.execute("DELETE FROM audit_log"))


def test_a_pin_reset_unlocks_and_is_audited_without_the_pin(as_role: Any,
                                                           store: Store) -> None:
    from appliance.insurance.lookups import PinResult, check_pin

    store.write(lambda db: db.execute("UPDATE salespeople SET locked = 1, failed_pins = 5"
                                      " WHERE code = '310003'"))
    client, token = as_role("supervisor")
    res = client.post("/salespeople/310003/pin", data={"csrf_token": token},
                      follow_redirects=True)
    pin = re.search(r"新密码：(\d{6})", res.get_data(as_text=True))
    assert pin
    assert check_pin(store, "310003", pin.group(1)) is PinResult.OK
    entry = store.query("SELECT detail FROM audit_log WHERE action = 'salesperson.pin_reset'")[0]
    assert pin.group(1) not in entry["detail"]


def test_the_quote_calculator_gives_the_ivr_quote(as_role: Any, store: Store) -> None:
    client, _ = as_role("salesperson")
    params = {"product": "TL20", "sum_insured": "300000", "age": "42", "sex": "F",
              "term": "20", "payment_mode": "monthly"}
    html = client.get("/products/quote", query_string=params).get_data(as_text=True)
    expected = quote(store, "TL20", Decimal("300000"), age=42, sex="F", term=20,
                     payment_mode="monthly").premium
    assert f"¥{expected:,.2f}" in html
    # Outside the table: a reason in the page's language, no premium.
    html = client.get("/products/quote", query_string={**params, "age": "99"}
                      ).get_data(as_text=True)
    assert "年龄" in html and "premium" not in html.split("</form>")[1]


def test_a_rate_table_import_replaces_the_whole_table_or_nothing(as_role: Any,
                                                                 store: Store) -> None:
    client, token = as_role("admin")
    export = client.get("/products/ACC1/rates.csv").get_data(as_text=True)
    lines = export.lstrip("\ufeff").strip().splitlines()
    before = store.query("SELECT rate_per_1000 FROM rates WHERE product_code = 'ACC1'"
                         " ORDER BY id")
    broken = "\n".join([lines[0], lines[1].replace("1.2000", "abc"), *lines[2:]])
    res = _upload(client, token, broken.encode(), "rates.csv", "/products/ACC1/rates")
    assert res.status_code == 400 and "每千元费率" in res.get_data(as_text=True)
    assert store.query("SELECT rate_per_1000 FROM rates WHERE product_code = 'ACC1'"
                       " ORDER BY id") == before
    doubled = "\n".join([lines[0], *(ln.replace("1.2000", "2.4000") for ln in lines[1:])])
    res = _upload(client, token, doubled.encode(), "rates.csv", "/products/ACC1/rates")
    assert res.status_code == 302
    assert quote(store, "ACC1", Decimal(100_000), age=30, term=1,
                 payment_mode="annual").premium == Decimal("240.00")


def test_excel_typed_cells_dates_and_numbers_import_as_written(as_role: Any,
                                                              store: Store) -> None:
    from datetime import date as day

    client, token = as_role("admin")
    row = policy_row("X1", issued_on=day(2026, 1, 15), sum_insured=200000, premium=1234.5,
                     holder_phone=13900001111, term=20, next_due_date=day(2027, 1, 15))
    res = _upload(client, token, xlsx([HEADER, row]))
    assert res.status_code == 200, res.get_data(as_text=True)
    p = store.query("SELECT * FROM policies WHERE number = 'X1'")[0]
    assert (p["issued_on"], p["next_due_date"], p["sum_insured_fen"], p["premium_fen"],
            p["term"]) == ("2026-01-15", "2027-01-15", 20_000_000, 123_450, 20)


def test_a_customer_record_shows_service_and_cross_sell_hints(as_role: Any,
                                                              store: Store) -> None:
    row = store.query("SELECT p.number, p.holder_id FROM policies p JOIN products pr"
                      " ON pr.code = p.product_code WHERE pr.kind = 'motor'"
                      " AND p.status = 'lapsed' LIMIT 1")[0]
    client, _ = as_role("agent")
    html = client.get(f"/customers/{row['holder_id']}").get_data(as_text=True)
    assert f"保单 {row['number']} 已失效：可建议办理复效。" in html


def test_a_customer_record_offers_what_similar_customers_hold(as_role: Any,
                                                             store: Store) -> None:
    # A man in his thirties holding motor cover only; give twelve men of his age with
    # motor cover a critical-illness policy each, so most of his peers hold one.
    ci = store.query("SELECT code FROM products WHERE kind = 'critical_illness'")[0]["code"]
    motor = store.query("SELECT code FROM products WHERE kind = 'motor'")[0]["code"]

    def book(db: Any) -> None:
        for i in range(13):
            db.execute("INSERT INTO customers (id, name, sex, birthday, id_salt, id_hash,"
                       " id_masked, id_last4) VALUES (?, ?, 'M', ?, '', '', '', '')",
                       [900_000 + i, f"同龄客户{i}", f"19{88 + i % 8}-01-15"])
            kinds = [motor] + ([ci] if i else [])
            for j, code in enumerate(kinds):
                db.execute("INSERT INTO policies (number, product_code, holder_id, insured_id,"
                           " status, sum_insured_fen, premium_fen, payment_mode, issued_on)"
                           " VALUES (?, ?, ?, ?, 'in_force', 1, 1, 'annual', '2025-01-01')",
                           [f"SIM{i}-{j}", code, 900_000 + i, 900_000 + i])

    store.write(book)
    today = date.today()
    peers = store.query(
        "SELECT COUNT(*) AS n, SUM(EXISTS (SELECT 1 FROM policies q WHERE q.holder_id = c.id"
        " AND q.product_code = ? AND q.status = 'in_force')) AS ci FROM customers c"
        " WHERE c.id != 900000 AND c.sex = 'M' AND c.birthday > ? AND EXISTS"
        " (SELECT 1 FROM policies p WHERE p.holder_id = c.id AND p.product_code = ?"
        " AND p.status = 'in_force') AND c.birthday <= ?",
        [ci, today.replace(year=today.year - 40).isoformat(), motor,
         today.replace(year=today.year - 30).isoformat()])[0]
    client, _ = as_role("agent")
    html = client.get("/customers/900000").get_data(as_text=True)
    share = round(100 * peers["ci"] / peers["n"])
    said = f"{peers['n']} 位相似客户（持有机动车保险的30–39 岁男性）中 {share}% 持有重大疾病保险"
    assert said in html, html


def test_products_are_created_and_edited_with_their_fields_checked(as_role: Any,
                                                                   store: Store) -> None:
    client, token = as_role("supervisor")
    bad = client.post("/products/new", data={
        "csrf_token": token, "code": "tl20", "name_zh": "", "name_en": "X", "kind": "pets",
        "min_sum": "100", "max_sum": "50"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "已被使用" in html and "请选择类别" in html
    assert not store.query("SELECT 1 FROM products WHERE name_en = 'X'")
    res = client.post("/products/new", data={
        "csrf_token": token, "code": "hl1", "name_zh": "住院医疗保险",
        "name_en": "Hospital Cover", "kind": "accident", "clauses_zh": "住院费用按比例给付。",
        "clauses_en": "", "min_sum": "10000", "max_sum": "200000"})
    assert res.status_code == 302
    p = store.query("SELECT * FROM products WHERE code = 'HL1'")[0]
    assert (p["kind"], p["min_sum_fen"], p["max_sum_fen"]) == ("accident", 1_000_000, 20_000_000)
    res = client.post("/products/HL1/edit", data={
        "csrf_token": token, "name_zh": "住院医疗保险（升级版）", "name_en": "Hospital Cover",
        "kind": "motor", "clauses_zh": "", "clauses_en": "", "min_sum": "10000",
        "max_sum": "300000"})
    assert res.status_code == 302
    p = store.query("SELECT * FROM products WHERE code = 'HL1'")[0]
    assert (p["name_zh"], p["kind"], p["max_sum_fen"]) == ("住院医疗保险（升级版）", "accident",
                                                           30_000_000)
    entry = store.query("SELECT detail FROM audit_log WHERE action = 'product.edit'")[0]
    assert json.loads(entry["detail"])["before"]["max_sum_fen"] == 20_000_000


def test_a_customer_sheet_adds_new_people_and_updates_known_ones(as_role: Any,
                                                                 store: Store) -> None:
    client, token = as_role("supervisor")
    header = ["姓名", "身份证号", "手机"]
    first = [header, ["钱一", id_number(seq="601"), "13911112222"],
             ["孙二", id_number(seq="602"), ""]]
    text = "\n".join(",".join(r) for r in first).encode()
    before = _count(store, "customers")
    res = _upload(client, token, text, "customers.csv", "/customers/import")
    assert res.status_code == 302
    assert _count(store, "customers") == before + 2
    # Again with a new phone for 钱一 and a bad row: nothing changes.
    second = [header, ["钱一", id_number(seq="601"), "13933334444"],
              ["赵三", "110101198503126019", "12"]]
    res = _upload(client, token, "\n".join(",".join(r) for r in second).encode(),
                  "customers.csv", "/customers/import")
    html = res.get_data(as_text=True)
    assert res.status_code == 400
    assert set(re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td>", html)) == {
        ("3", "身份证号"), ("3", "手机")}
    assert store.query("SELECT phone FROM customers WHERE name = '钱一'")[0]["phone"] == \
        "13911112222"
    res = _upload(client, token, "\n".join(",".join(r) for r in second[:2]).encode(),
                  "customers.csv", "/customers/import")
    assert res.status_code == 302
    assert _count(store, "customers") == before + 2
    assert store.query("SELECT phone FROM customers WHERE name = '钱一'")[0]["phone"] == \
        "13933334444"
    entry = store.query("SELECT detail FROM audit_log WHERE action = 'customer.import'"
                        " ORDER BY id DESC LIMIT 1")[0]
    assert json.loads(entry["detail"]) == {"rows": 1, "created": 0, "matched": 1}


def test_codes_the_engine_records_are_shown_in_words(as_role: Any, store: Store) -> None:
    number = store.query("SELECT number FROM policies LIMIT 1")[0]["number"]
    store.write(lambda db: db.execute(
        "INSERT INTO claims (case_number, policy_number, reported_at, status)"
        " VALUES ('202611260001', ?, '2026-11-26T10:00:00', 'investigating')", [number]))
    client, _ = as_role("supervisor")
    assert "调查中" in client.get(f"/policies/{number}").get_data(as_text=True)
    html = client.get("/calls/").get_data(as_text=True)
    assert "来电者挂断" in html and ">caller<" not in html
