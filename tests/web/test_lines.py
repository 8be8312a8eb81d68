"""The lines page counts each line's calls from the CDR: open now, today, answered."""

from __future__ import annotations

import time
from typing import Any

from appliance.store.db import Store


def test_each_line_with_its_calls_now_and_today(as_role: Any, store: Store) -> None:
    now = time.time()
    rows = [("a", now - 60, None, None), ("b", now - 300, now - 290, now - 200),
            ("c", now - 13 * 3600, None, None)]  # left open by a crash, long ago

    def add(db: Any) -> None:
        for call_id, start, answered, ended in rows:
            db.execute("INSERT INTO calls (call_id, line, driver, direction, caller, callee,"
                       " started_at, answered_at, ended_at) VALUES"
                       " (?, 'dahdi-3', 'asterisk', 'in', '13800000000', '95500', ?, ?, ?)",
                       [call_id, start, answered, ended])

    store.write(add)
    client, _ = as_role("supervisor")
    html = client.get("/lines/").get_data(as_text=True)
    row = html[html.index("<td>dahdi-3</td>"):].split("</tr>")[0]
    cells = [c.split("</td>")[0] for c in row.split("<td")[1:]]
    # busy now (and one stale), calls today (the stale one may be yesterday's), answered
    assert cells[2].startswith(' class="num">1') and "1 条未结束" in cells[2]
    today = int(cells[3].split(">")[1])
    assert today in (2, 3)
    assert cells[5] == f' class="num">{round(100 / today)}%'
    assert "sim-1" in html  # the test book's line, no call today
    assert "13800000000" not in html
