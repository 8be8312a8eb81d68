"""The reports page counts what the tables hold, by the box's local day and hour."""

from __future__ import annotations

import re
from typing import Any

from appliance.store.db import Store


def test_calls_are_counted_by_local_day_and_hour(as_role: Any, store: Store) -> None:
    client, _ = as_role("supervisor")
    # The test book's 30 calls start at 2025-11-26 00:00 UTC, a minute apart: 08:00–08:29
    # in Shanghai.
    html = client.get("/reports/?from=2025-11-26&to=2025-11-26").get_data(as_text=True)
    assert re.search(r'<span class="figure">30</span><span>通话量', html)
    assert "100.0%" in html
    assert "<title>08: 30</title>" in html and "<title>07: 0</title>" in html
    assert "<td>2025-11-26</td><td class=\"num\">30</td><td class=\"num\">30</td>" \
           "<td class=\"num\">29</td>" in html
    html = client.get("/reports/?from=2025-11-25&to=2025-11-25").get_data(as_text=True)
    assert re.search(r'<span class="figure">0</span><span>通话量', html)


def test_the_book_by_status_matches_the_policies(as_role: Any, store: Store) -> None:
    client, _ = as_role("auditor")
    html = client.get("/reports/").get_data(as_text=True)
    for row in store.query("SELECT status, count(*) AS n FROM policies GROUP BY status"):
        name = {"in_force": "有效", "lapsed": "失效", "surrendered": "退保",
                "pending": "待承保"}[row["status"]]
        assert f'<td>{name}</td><td class="num">{row["n"]:,}</td>' in html


def test_a_range_over_a_year_is_shortened_with_a_notice(as_role: Any) -> None:
    client, _ = as_role("admin")
    html = client.get("/reports/?from=2020-01-01&to=2026-11-26").get_data(as_text=True)
    assert "已缩短查询范围" in html
    assert html.count("<rect") == 366 + 24


def test_an_export_holds_every_day_of_the_range(as_role: Any) -> None:
    import csv
    import io

    from openpyxl import load_workbook

    client, _ = as_role("auditor")
    page = client.get("/reports/?from=2025-11-20&to=2025-11-26").get_data(as_text=True)
    assert "/reports/export/days.csv?from=2025-11-20&amp;to=2025-11-26" in page
    res = client.get("/reports/export/days.csv?from=2025-11-20&to=2025-11-26")
    rows = list(csv.reader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:2] == ["日期", "通话量"] and len(rows) == 1 + 7
    assert rows[1][:2] == ["2025-11-20", "0"] and rows[-1][:3] == ["2025-11-26", "30", "30"]
    # A year of days, more than any page shows, all in the workbook.
    res = client.get("/reports/export/days.xlsx?from=2025-01-01&to=2025-12-31")
    sheet = load_workbook(io.BytesIO(res.data)).active
    assert sheet is not None and sheet.max_row == 1 + 365
    res = client.get("/reports/export/hours.csv?from=2025-11-26&to=2025-11-26")
    hours = list(csv.reader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(hours) == 25 and hours[9] == ["08:00", "30"]
    assert client.get("/reports/export/policies.csv").status_code == 404
    agent, _ = as_role("agent")
    assert agent.get("/reports/export/days.csv").status_code == 403
