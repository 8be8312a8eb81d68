"""The business-hours page: the flow's hours shown until the first save, a week saved and
audited, bad ranges and days refused with the day or field named and nothing written, the
CSV import all or nothing, CSRF and roles."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from appliance.ivr import hours as bh
from appliance.store.db import Store

WEEK = {"mon": "08:30-12:00, 13:30-17:30", "tue": "08:30-17:30", "wed": "08:30-17:30",
        "thu": "08:30-17:30", "fri": "08:30-17:00", "sat": "", "sun": ""}


def test_until_saved_the_page_shows_the_flows_hours(as_role: Any, store: Store) -> None:
    client, _ = as_role("admin")
    html = client.get("/settings/hours/").get_data(as_text=True)
    assert 'id="hours-source"' in html
    assert 'value="09:00-12:00"' in html  # Saturday, from the default flow
    assert "2026-10-07" in html
    assert bh.load_hours(store) is None


def test_a_saved_week_is_what_the_ivr_reads_and_is_audited(as_role: Any, store: Store) -> None:
    client, token = as_role("admin")
    res = client.post("/settings/hours/week", data={**WEEK, "csrf_token": token})
    assert res.status_code == 303
    saved = bh.load_hours(store)
    assert saved is not None
    assert [str(r) for r in saved.week["mon"]] == ["08:30-12:00", "13:30-17:30"]
    assert "sat" not in saved.week
    # The flow's holidays came along with the first save.
    assert dt.date(2026, 10, 7) in saved.days
    assert saved.state(dt.datetime(2026, 11, 23, 12, 30))[0] is False  # Monday lunch
    assert saved.state(dt.datetime(2026, 11, 28, 10, 0))[0] is False  # Saturday now closed
    row = store.query("SELECT * FROM audit_log WHERE action = 'hours.week'")
    assert len(row) == 1 and "13:30-17:30" in row[0]["detail"]


def test_bad_ranges_name_the_day_and_change_nothing(as_role: Any, store: Store) -> None:
    client, token = as_role("admin")
    bad = {**WEEK, "tue": "09:00-12:00, 11:00-13:00", "wed": "17:00-08:00", "thu": "8-12",
           "csrf_token": token}
    res = client.post("/settings/hours/week", data=bad)
    html = res.get_data(as_text=True)
    assert res.status_code == 400
    assert "overlap" in html and "not after it opens" in html and "not a time" in html
    assert html.count('role="alert"') >= 3
    assert 'value="8-12"' in html  # what was typed stays in the form
    assert bh.load_hours(store) is None
    assert not store.query("SELECT 1 FROM audit_log WHERE action LIKE 'hours.%'")


def test_a_holiday_today_and_a_make_up_day_then_removal(as_role: Any, store: Store) -> None:
    client, token = as_role("admin")
    res = client.post("/settings/hours/days", data={
        "date": "2026-12-26", "name": "调休", "kind": "workday", "works_as": "fri",
        "csrf_token": token})
    assert res.status_code == 303
    saved = bh.load_hours(store)
    assert saved is not None
    day = saved.days[dt.date(2026, 12, 26)]
    assert (day.kind, day.works_as) == ("workday", "fri")
    # A Saturday worked with Friday's hours: open at 16:00 (Saturdays close at 12:00).
    assert saved.state(dt.datetime(2026, 12, 26, 16, 0))[0] is True
    assert "调休" in client.get("/settings/hours/").get_data(as_text=True)
    res = client.post("/settings/hours/days/2026-12-26/delete", data={"csrf_token": token})
    assert res.status_code == 303
    saved = bh.load_hours(store)
    assert saved is not None and dt.date(2026, 12, 26) not in saved.days
    actions = [r["action"] for r in store.query("SELECT action FROM audit_log "
                                                "WHERE action LIKE 'hours.%' ORDER BY id")]
    assert actions == ["hours.day_save", "hours.day_delete"]


def test_a_bad_day_names_the_field(as_role: Any, store: Store) -> None:
    client, token = as_role("admin")
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    for form, said in (({"date": "2026-02-30", "name": "x", "kind": "holiday"}, "Date"),
                       ({"date": "2026-10-01", "name": "", "kind": "holiday"}, "Holiday name"),
                       ({"date": "2026-10-01", "name": "x", "kind": "holiday",
                         "works_as": "mon"}, "Works as")):
        res = client.post("/settings/hours/days", data={**form, "csrf_token": token})
        assert res.status_code == 400
        assert f"Not saved: {said}:" in res.get_data(as_text=True)
    assert bh.load_hours(store) is None


def test_csv_import_is_all_or_nothing(as_role: Any, store: Store) -> None:
    client, token = as_role("admin")
    bad = "date,name,kind\n2027-01-01,元旦,休\n2027-02-30,春节,休\n".encode()
    res = client.post("/settings/hours/import", data={
        "file": (io.BytesIO(bad), "2027.csv"), "csrf_token": token},
        content_type="multipart/form-data")
    assert res.status_code == 400
    assert "line 3" in res.get_data(as_text=True)
    assert bh.load_hours(store) is None
    good = ("date,name,kind,works_as\n2027-01-01,元旦,休,\n2027-02-06,春节调休,班,mon\n"
            "2027-02-08,春节,休,\n").encode()
    res = client.post("/settings/hours/import", data={
        "file": (io.BytesIO(good), "2027.csv"), "csrf_token": token},
        content_type="multipart/form-data")
    assert res.status_code == 303
    saved = bh.load_hours(store)
    assert saved is not None
    assert {dt.date(2027, 1, 1), dt.date(2027, 2, 6), dt.date(2027, 2, 8)} <= set(saved.days)


def test_no_csrf_no_change_and_only_the_admin_edits(as_role: Any, store: Store) -> None:
    client, _ = as_role("admin")
    assert client.post("/settings/hours/week", data=WEEK).status_code == 400
    sup, token = as_role("supervisor")
    assert sup.get("/settings/hours/").status_code == 200
    assert sup.post("/settings/hours/week", data={**WEEK, "csrf_token": token}
                    ).status_code == 403
    assert bh.load_hours(store) is None
