"""The rate table edited as a grid on the product page: each cell checked (a bad cell named
by its grid, row and column, and nothing saved), the changes saved in one transaction with
an audit row of old → new, a save over a table changed meanwhile refused, and the page's
quote calculator quoting from the new rate through the IVR's code."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from appliance.insurance.quote import quote
from appliance.store.db import Store


def _cell(store: Store) -> dict[str, Any]:
    """CI30's annual rate for a 35-year-old man on a 30-year term."""
    rows = store.query("SELECT * FROM rates WHERE product_code = 'CI30' AND sex = 'M'"
                       " AND term = 30 AND payment_mode = 'annual' AND age_min <= 35"
                       " AND age_max >= 35")
    assert len(rows) == 1
    return rows[0]


def _stamp(html: str) -> str:
    m = re.search(r'name="stamp" value="([0-9a-f]+)"', html)
    assert m
    return m.group(1)


def test_a_rate_edited_in_the_grid_is_saved_audited_and_quoted(as_role: Any,
                                                               store: Store) -> None:
    client, token = as_role("supervisor")
    cell = _cell(store)
    html = client.get("/products/CI30").get_data(as_text=True)
    assert f'name="rate-{cell["id"]}" value="{cell["rate_per_1000"]}"' in html
    assert 'aria-label="男 · 年缴 · 年龄' in html  # the cell named by grid and row
    res = client.post("/products/CI30/rates/grid", data={
        "csrf_token": token, "stamp": _stamp(html), f"rate-{cell['id']}": "3.5"})
    assert res.status_code == 302
    assert store.query("SELECT rate_per_1000 FROM rates WHERE id = ?",
                       [cell["id"]])[0]["rate_per_1000"] == "3.5000"
    entry = store.query("SELECT * FROM audit_log WHERE action = 'rates.edit'")[0]
    (change,) = json.loads(entry["detail"])["changes"]
    assert (change["old"], change["new"]) == (cell["rate_per_1000"], "3.5000")
    assert "30年" in change["cell"] and entry["username"] == "supervisor"
    # The IVR's quote and the page's calculator both quote from the new rate.
    assert quote(store, "CI30", 500_000, age=35, sex="M", term=30,
                 payment_mode="annual").premium == Decimal("1750.00")
    page = client.get("/products/CI30?sum_insured=500000&age=35&sex=M&term=30"
                      "&payment_mode=annual").get_data(as_text=True)
    assert "¥1,750.00" in page


def test_a_bad_cell_is_named_and_nothing_is_saved(as_role: Any, store: Store) -> None:
    client, token = as_role("admin")
    cell = _cell(store)
    other = store.query("SELECT * FROM rates WHERE product_code = 'CI30' AND id != ?"
                        " ORDER BY id LIMIT 1", [cell["id"]])[0]
    html = client.get("/products/CI30").get_data(as_text=True)
    for bad, message in (("-1", "必须是正数"), ("abc", "不是数字"), ("1.23456", "四位小数"),
                         ("", "必填")):
        res = client.post("/products/CI30/rates/grid", data={
            "csrf_token": token, "stamp": _stamp(html), f"rate-{other['id']}": "9.9",
            f"rate-{cell['id']}": bad})
        page = res.get_data(as_text=True)
        assert res.status_code == 400, bad
        assert "未保存" in page and message in page, bad
        assert re.search(r"男 · 年缴 · 年龄 \d+–\d+ × 30年", page)
        assert 'aria-invalid="true"' in page
        assert "9.9" in page  # what was typed is kept
    rates = {r["id"]: r["rate_per_1000"] for r in store.query(
        "SELECT id, rate_per_1000 FROM rates WHERE id IN (?, ?)", [cell["id"], other["id"]])}
    assert rates == {cell["id"]: cell["rate_per_1000"], other["id"]: other["rate_per_1000"]}
    assert not store.query("SELECT 1 FROM audit_log WHERE action = 'rates.edit'")


def test_a_save_over_a_table_changed_meanwhile_is_refused(as_role: Any, store: Store) -> None:
    client, token = as_role("admin")
    cell = _cell(store)
    html = client.get("/products/CI30").get_data(as_text=True)
    store.write(lambda db: db.execute("UPDATE rates SET rate_per_1000 = '2.0000' WHERE id = ?",
                                      [cell["id"]]))
    res = client.post("/products/CI30/rates/grid", data={
        "csrf_token": token, "stamp": _stamp(html), f"rate-{cell['id']}": "3.5"})
    assert res.status_code == 409
    assert "已被他人修改" in res.get_data(as_text=True)
    assert store.query("SELECT rate_per_1000 FROM rates WHERE id = ?",
                       [cell["id"]])[0]["rate_per_1000"] == "2.0000"


def test_the_grid_needs_csrf_and_a_manager(as_role: Any, store: Store) -> None:
    cell = _cell(store)
    client, token = as_role("agent")
    html = client.get("/products/CI30").get_data(as_text=True)
    assert "rate-grid" not in html  # no grid to edit for an agent
    assert client.post("/products/CI30/rates/grid", data={
        "csrf_token": token, f"rate-{cell['id']}": "3.5"}).status_code == 403
    client, token = as_role("admin")
    assert client.post("/products/CI30/rates/grid", data={
        f"rate-{cell['id']}": "3.5"}).status_code == 400
    assert store.query("SELECT rate_per_1000 FROM rates WHERE id = ?",
                       [cell["id"]])[0]["rate_per_1000"] == cell["rate_per_1000"]


def test_every_demo_product_lays_out_as_grids_of_one_cell_a_row(app: Any, store: Store) -> None:
    from web.rate_grid import build

    with app.test_request_context():
        for code in [r["code"] for r in store.query("SELECT code FROM products")]:
            rows = store.query("SELECT * FROM rates WHERE product_code = ?", [code])
            layout = build(rows)
            assert layout.fits, code
            cells = [c.id for g in layout.grids for r in g.cells.values() for c in r.values()]
            assert sorted(cells) == sorted(r["id"] for r in rows), code
            assert len(set(layout.where.values())) == len(rows), code  # each cell named once
        motor = build(store.query("SELECT * FROM rates WHERE product_code = 'MOT1'"))
        assert all(label.startswith("车价") for g in motor.grids for _k, label in g.rows)
        assert all("座位" in g.title for g in motor.grids) and len(motor.grids) == 3
