"""The reports page counts what the tables hold, by the box's local day and hour."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from appliance.store.db import Store
from appliance.voicemail.boxes import general_box


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


# 2025-11-27 08:00 in Shanghai: a day of its own, after the test book's calls.
DAY = datetime(2025, 11, 27, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


def _day_of_service(store: Store) -> None:
    """Five calls through the IVR, four of them queued and answered by two agents, with
    their rings, holds, hang-ups and scores; three voicemails of two categories."""
    box = general_box(store)

    def fill(db: Any) -> None:
        paths = [["language", "main", "pol_number", "pol_id", "pol_find"],
                 ["language", "main", "pol_number"],
                 ["language", "main", "quote_product"],
                 ["language", "main"],
                 ["language"]]
        for i, nodes in enumerate(paths):
            steps = [{"node": n, "type": "menu" if n == "main" else "x"} for n in nodes]
            db.execute("INSERT INTO calls (call_id, line, driver, direction, caller, callee,"
                       " started_at, answered_at, ended_at, ivr_path) VALUES"
                       " (?, 't1', 'sim', 'in', '13800000000', '95500', ?, ?, ?, ?)",
                       [f"R{i}", DAY + i * 60, DAY + i * 60, DAY + i * 60 + 50,
                        json.dumps(steps)])
        entries = [  # agent, waited, talk, ring, holds, hold s, first, score, status
            ("A1", 5, 100, 4.0, 1, 30, "agent", 5, "scored"),
            ("A1", 30, 200, 8.0, 0, 0, "caller", None, None),
            ("A2", 10, 60, 2.0, 2, 20, "agent", 3, "scored"),
            ("A2", 12, 90, 6.0, 0, 0, "agent", None, "no-score"),
        ]
        for i, (agent, waited, talk, ring, holds, hold_s, first, score, status) in \
                enumerate(entries):
            db.execute(
                "INSERT INTO acd_entries (key, queue, call_id, caller, language, priority,"
                " joined_at, ended_at, outcome, waited_seconds, answered_by, talk_seconds,"
                " agent, ring_seconds, rings, hung_up_first, hold_count, hold_seconds,"
                " survey_score, survey_status, survey_at) VALUES (?, 'service', ?, '1380',"
                " 'zh', 0, ?, ?, 'answered', ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                [f"E{i}", f"R{i}", DAY + i * 60, DAY + i * 60 + 50, waited,
                 "s1" if agent == "A1" else "s2", talk, agent, ring, first, holds, hold_s,
                 score, status, DAY + i * 60 + 50 if status else None])
        db.execute("INSERT INTO acd_entries (key, queue, call_id, caller, language, priority,"
                   " joined_at, ended_at, outcome, waited_seconds) VALUES ('E9', 'service',"
                   " 'R4', '1380', 'zh', 0, ?, ?, 'abandoned', 40)", [DAY, DAY + 40])
        for i, (category, done_after) in enumerate([("complaint", 3600.0),
                                                    ("complaint", None),
                                                    (None, 2 * 86400.0)]):
            db.execute("INSERT INTO voicemails (box_id, call_id, caller, received_at, lang,"
                       " raw_path, recording, status, category, done_at) VALUES"
                       " (?, ?, '1380', ?, 'zh', '/x.wav', 'saved', ?, ?, ?)",
                       [box.id, f"R{i}", DAY, "done" if done_after else "new", category,
                        DAY + done_after if done_after else None])

    store.write(fill)


def test_the_range_s_ivr_funnel_agents_surveys_and_voicemail_are_reported(
        as_role: Any, store: Store) -> None:
    _day_of_service(store)
    client, _ = as_role("supervisor")
    html = client.get("/reports/?from=2025-11-27&to=2025-11-27&sl=20").get_data(as_text=True)
    cells = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "共 5 通电话进入语音导航" in html
    # Step, kind, calls reaching it, share, ended there.
    assert "main menu 4 80.0% 1" in cells and "pol_number x 2 40.0% 1" in cells
    assert "language x 5 100.0% 1" in cells and "pol_find x 1 20.0% 1" in cells
    # Queues: 5 offered, 3 answered within 20 s (5, 10, 12), 1 abandoned.
    assert re.search(r"60\.0% 20 秒内接听", cells) and re.search(r"20\.0% 放弃率", cells)
    # Per agent: calls, within 3 rings, mean rings, mean talk, holds, longest hold (no
    # hold rows here), caller / agent hung up first, transfers (answered before leaving),
    # mean score (scores).
    assert "A1 2 2 1.0 150 1 0 1 1 0 (0) 5.00 (1)" in cells
    assert "A2 2 2 1.0 75 2 0 0 2 0 (0) 3.00 (1)" in cells
    assert "4.00 平均评分（1–5）" in cells and "2 / 3 已评分" in cells
    # Complaints (24 h): 2 received, 1 done in 1.0 h within target, 1 open past it;
    # uncategorised (24 h): done in 48 h, late.
    assert "投诉 24 2 1 1.0 1 1" in cells and "未分类 24 1 1 48.0 0 0" in cells
    # Every table of the range exports whole.
    res = client.get("/reports/export/agents.csv?from=2025-11-27&to=2025-11-27")
    rows = list(csv.reader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "坐席员" and [r[:6] for r in rows[1:]] == [
        ["A1", "2", "2", "1.0", "6.0", "150"], ["A2", "2", "2", "1.0", "4.0", "75"]]
    res = client.get("/reports/export/ivr.xlsx?from=2025-11-27&to=2025-11-27")
    sheet = load_workbook(io.BytesIO(res.data)).active
    assert sheet is not None and sheet.max_row == 1 + 6  # six steps reached
    res = client.get("/reports/export/surveys.csv?from=2025-11-27&to=2025-11-27")
    assert "5,1" in res.get_data(as_text=True) and "未评分,1" in res.get_data(as_text=True)
    res = client.get("/reports/export/voicemail.csv?from=2025-11-27&to=2025-11-27")
    assert "投诉,24.0,2,1,1.0,1,1" in res.get_data(as_text=True)
    assert client.get("/reports/export/nothing.csv").status_code == 404
    # The day before has none of it.
    html = client.get("/reports/?from=2025-11-26&to=2025-11-26").get_data(as_text=True)
    assert "此期间没有已接听的队列来电" in html and "此期间没有留言" in html
