"""The supervisor page's figures over a chosen date range, and its Erlang C staffing
estimate from the four weeks before the range's last day."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from appliance.store.db import Store
from tests.acd.test_staffing import entries, spread

TZ = ZoneInfo("Asia/Shanghai")


def test_figures_for_a_date_range_and_the_staffing_estimate(store: Store,
                                                            as_role: Any) -> None:
    # Four Mondays at 09:00: 100 calls each of 180 s handle time (10 Erlangs).
    mondays = [datetime(2026, 11, 23, 9, 0, tzinfo=TZ) - timedelta(weeks=w) for w in range(4)]
    entries(store, [t for m in mondays for t in spread(m, 100)])
    # And two abandoned on Tuesday 24th.
    entries(store, spread(datetime(2026, 11, 24, 15, 0, tzinfo=TZ), 2), outcome="abandoned",
            talk=None, prefix="ab")
    boss, _ = as_role("supervisor")
    page = boss.get("/supervisor/?from=2026-11-23&to=2026-11-24&sl=20&target=80"
                    ).get_data(as_text=True)
    today = re.search(r'id="today">(.*?)</table>', page, re.S)
    assert today
    cells = re.findall(r'<td class="num">([^<]*)</td>', today.group(1))
    assert cells[0] == "102" and cells[1] == "100"  # offered, answered in the two days
    assert "2 (2 %)" in today.group(1)  # abandoned
    # Monday 09:00 needs 14 agents for 80 % in 20 s (13 reach 79.6 %).
    table = re.search(r'id="staffing-table">(.*?)</table>', page, re.S)
    assert table
    row = re.search(r"<th>09:00</th>(.*?)</tr>", table.group(1), re.S)
    assert row and re.findall(r">(\d*)</td>", row.group(1))[0] == "14"
    assert "<svg" in page.split('id="staffing"')[1]
    # One day only: the Monday before is outside it.
    page = boss.get("/supervisor/?from=2026-11-24&to=2026-11-24").get_data(as_text=True)
    today = re.search(r'id="today">(.*?)</table>', page, re.S)
    assert today and re.findall(r'<td class="num">([^<]*)</td>', today.group(1))[0] == "2"
    # A stricter target asks for more agents in the same half hour.
    page = boss.get("/supervisor/?to=2026-11-26&sl=10&target=95").get_data(as_text=True)
    row = re.search(r"<th>09:00</th>(.*?)</tr>", page.split('id="staffing-table"')[1], re.S)
    assert row and int(re.findall(r">(\d*)</td>", row.group(1))[0]) > 14


def test_a_date_that_is_not_one_says_so(as_role: Any) -> None:
    boss, _ = as_role("supervisor")
    for bad in ("2026-13-01", "'; DROP TABLE acd_entries; --", "yesterday"):
        res = boss.get("/supervisor/", query_string={"from": bad})
        html = res.get_data(as_text=True)
        assert res.status_code == 200 and '<p class="error" role="alert">日期格式应为' in html
        assert 'id="today"' in html  # today's figures, as without a date
    html = boss.get("/supervisor/?from=2020-01-01&to=2026-11-26").get_data(as_text=True)
    assert "已缩短查询范围" in html and 'name="from" value="2025-11-26"' in html
