"""The fax log page: filters by date and result, the document preview rendered again from
the log's kind and parameters, and resend queued for the engine (whose poller is tested
on the simulated exchange in tests/fax/test_requests.py)."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from flask import Flask
from PIL import Image

from appliance.fax import log as faxlog
from appliance.fax.render import WIDTH, preview_png
from appliance.fax.send import render_document
from appliance.fax.session import FaxResult
from appliance.store.db import Store

TZ = ZoneInfo("Asia/Shanghai")


def at(day: str, hour: int = 10) -> float:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=TZ).timestamp()


def logged(store: Store) -> dict[str, int]:
    """Three attempts on two days: a summary sent, a busy callback, a failed transfer."""
    number = store.query("SELECT number FROM policies ORDER BY number LIMIT 1")[0]["number"]
    ok = FaxResult(True, 0, "OK", 1, 14400, True, 21.5)
    bad = FaxResult(False, 49, "The call dropped prematurely", 0, 9600, False, 12.0)
    rows = {
        "sent": faxlog.FaxRecord("j1", 1, "same-call", "policy_summary", {"number": number},
                                 "/nowhere/j1.tiff", "13900139000", at("2026-11-20"),
                                 faxlog.OK, "OK", fax=ok, pages_in_file=1),
        "busy": faxlog.FaxRecord("j2", 1, "callback", "procedures", {"product_code": "TL20"},
                                 "/nowhere/j2.tiff", "02112345678", at("2026-11-24"), "busy",
                                 "the number was busy", pages_in_file=1),
        "failed": faxlog.FaxRecord("j2", 2, "callback", "procedures",
                                   {"product_code": "TL20"}, "/nowhere/j2.tiff",
                                   "02112345678", at("2026-11-24", 11), faxlog.FAILED,
                                   bad.reason, fax=bad, pages_in_file=1),
        "file": faxlog.FaxRecord("j3", 1, "same-call", "file", {}, "/nowhere/gone.tiff",
                                 "13900139001", at("2026-11-25"), faxlog.OK, "OK", fax=ok),
    }
    return {k: faxlog.record(store, r).result() for k, r in rows.items()}


def shown(html: str, ids: dict[str, int]) -> set[str]:
    return {k for k, i in ids.items() if f"/faxes/{i}/preview.png" in html}


def test_the_log_shows_each_attempt_and_filters_by_date_and_result(
        app: Flask, store: Store, as_role: Any) -> None:
    ids = logged(store)
    client, _ = as_role("supervisor")
    html = client.get("/faxes/").get_data(as_text=True)
    assert shown(html, ids) == set(ids)
    for words in ("保单摘要", "理赔与服务流程", "13900139000", "14,400", "21.5 秒", "忙音",
                  "the number was busy", "The call dropped prematurely", "第 2 次"):
        assert words in html, words
    assert shown(client.get("/faxes/?result=busy").get_data(as_text=True), ids) == {"busy"}
    assert shown(client.get("/faxes/?from=2026-11-24&to=2026-11-24").get_data(as_text=True),
                 ids) == {"busy", "failed"}
    assert shown(client.get("/faxes/?from=2026-11-21").get_data(as_text=True), ids) == {
        "busy", "failed", "file"}
    assert shown(client.get("/faxes/?to=2026-11-20&result=ok").get_data(as_text=True),
                 ids) == {"sent"}
    # Without see_phone the destinations are masked.
    agent, _ = as_role("agent")
    html = agent.get("/faxes/").get_data(as_text=True)
    assert "139****9000" in html and "13900139000" not in html


def test_the_preview_is_the_document_rendered_again_at_fax_width(
        app: Flask, store: Store, as_role: Any, data_dir: Path, tmp_path: Path) -> None:
    ids = logged(store)
    client, _ = as_role("auditor")
    res = client.get(f"/faxes/{ids['sent']}/preview.png")
    assert res.status_code == 200 and res.mimetype == "image/png"
    img = Image.open(io.BytesIO(res.data))
    img.load()
    assert img.width == WIDTH and img.height > 2000
    ink = np.asarray(img.convert("L")) < 128
    assert 0.005 < ink.mean() < 0.2  # a page with text on it, not blank or black
    # Exactly what the fax module renders for that kind and those parameters, dated the
    # day it was sent.
    number = store.query("SELECT number FROM policies ORDER BY number LIMIT 1")[0]["number"]
    tiff = render_document(store, "policy_summary", {"number": number},
                           tmp_path / "again.tiff", on=date(2026, 11, 20))
    want = Image.open(preview_png(tiff, tmp_path / "again.png", scale=1.0))
    assert np.array_equal(np.asarray(want), np.asarray(img))
    other = client.get(f"/faxes/{ids['busy']}/preview.png")
    assert other.status_code == 200 and other.data != res.data
    assert client.get(f"/faxes/{ids['busy']}/preview.png?page=2").status_code == 404
    assert client.get(f"/faxes/{ids['busy']}/preview.png?page=x").status_code == 404
    # A plain TIFF that is gone cannot be previewed; an unknown fax neither.
    assert client.get(f"/faxes/{ids['file']}/preview.png").status_code == 404
    assert client.get("/faxes/999/preview.png").status_code == 404
    # Cached: the second request is the same file.
    assert (data_dir / "fax_preview" / f"fax{ids['sent']}-p1.png").read_bytes() == \
        client.get(f"/faxes/{ids['sent']}/preview.png").data
    audited = store.query("SELECT target FROM audit_log WHERE action = 'fax.preview'")
    assert str(ids["sent"]) in {r["target"] for r in audited}


def test_resend_is_queued_for_the_engine(app: Flask, store: Store, as_role: Any) -> None:
    ids = logged(store)
    client, token = as_role("supervisor")
    res = client.post(f"/faxes/{ids['failed']}/resend", data={"csrf_token": token},
                      follow_redirects=True)
    assert "重发已排队" in res.get_data(as_text=True)
    res = client.post(f"/faxes/{ids['sent']}/resend",
                      data={"csrf_token": token, "number": "02187654321"})
    assert res.status_code == 303
    refused = client.post(f"/faxes/{ids['sent']}/resend",
                          data={"csrf_token": token, "number": "call me"}, follow_redirects=True)
    assert "未加入队列" in refused.get_data(as_text=True)
    gone = client.post(f"/faxes/{ids['file']}/resend", data={"csrf_token": token},
                       follow_redirects=True)
    assert "未加入队列" in gone.get_data(as_text=True)
    assert client.post("/faxes/999/resend", data={"csrf_token": token}).status_code == 404
    rows = store.query("SELECT fax_id, number, requested_by, status FROM fax_resend_requests"
                       " ORDER BY id")
    assert rows == [
        {"fax_id": ids["failed"], "number": None, "requested_by": "supervisor",
         "status": "queued"},
        {"fax_id": ids["sent"], "number": "02187654321", "requested_by": "supervisor",
         "status": "queued"}]
    audited = store.query("SELECT target FROM audit_log WHERE action = 'fax.resend'")
    assert [r["target"] for r in audited] == [str(ids["failed"]), str(ids["sent"])]
    page = client.get("/faxes/").get_data(as_text=True)
    assert page.count("已排队，等待主机发送") == 2
    # Agents read the log but do not dial out; no token, no request.
    agent, token = as_role("agent")
    assert agent.post(f"/faxes/{ids['sent']}/resend",
                      data={"csrf_token": token}).status_code == 403
    assert client.post(f"/faxes/{ids['sent']}/resend", data={}).status_code == 400
    assert len(store.query("SELECT 1 FROM fax_resend_requests")) == 2
