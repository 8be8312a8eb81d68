"""The recordings page in headless Chromium: after a real simulated call through the IVR
and a seat, a supervisor finds its recording by the policy number the caller keyed,
plays it in the page's audio element (the browser fetches and decodes the engine's WAV,
seeking by HTTP Range), and the administrator then sees that playback in the recording
access log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from appliance.store.db import Store
from tests.web.live import serving
from tests.web.test_browser import (  # noqa: F401 (the Chromium fixtures)
    CHROMIUM,
    base_url,
    browser_type_launch_args,
    log_in,
)
from tests.web.test_recordings_call import real_call
from web import create_app

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed (make install)")


@pytest.fixture
def served(data_dir: Path) -> Iterator[tuple[str, Store]]:
    store = Store(data_dir / "appliance.db")
    app = create_app(data_dir, store=store)
    try:
        with serving(app, threads=4) as url:
            yield url, store
    finally:
        store.close()


def _log_in(page: Page, url: str, username: str) -> None:
    log_in(page, url, username)
    expect(page.get_by_role("link", name="通话录音")).to_be_visible()


def test_a_supervisor_finds_a_recording_by_policy_plays_it_and_the_log_shows_it(
        page: Page, browser: Browser, served: tuple[str, Store], data_dir: Path) -> None:
    url, store = served
    call = real_call(store, data_dir, "13987650000")
    # Another call, so that the search has something to leave out.
    store.write(lambda db: db.execute(
        "INSERT INTO recordings (path, call_id, started_at, frames, seconds, indexed_at)"
        " VALUES (?, 'other', 1, 50, 1.0, 1)", [call["recording"] + ".other"]))

    _log_in(page, url, "supervisor")
    page.get_by_role("link", name="通话录音").click()
    expect(page.locator("#recordings tbody tr")).to_have_count(2)
    page.get_by_label("保单号").fill(call["policy"])
    page.get_by_role("button", name="查询").click()
    rows = page.locator("#recordings tbody tr")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_have_attribute("data-call", call["call_id"])
    expect(row.locator(".policy")).to_have_text(call["policy"])
    expect(row).to_contain_text("13987650000")  # a supervisor sees numbers in full

    audio = row.locator("audio")
    # Muted, so the browser's autoplay rule allows a play() that is not a click.
    audio.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function("a => a.readyState >= 2 && a.duration > 0 && a.currentTime > 0",
                           arg=audio.element_handle(), timeout=15000)
    duration = audio.evaluate("a => a.duration")
    assert duration == pytest.approx(store.query(
        "SELECT seconds FROM recordings WHERE call_id = ?", [call["call_id"]])[0]["seconds"],
        abs=0.1)
    # Seek near the end: the browser asks for a range and keeps playing from there.
    audio.evaluate("a => { a.currentTime = a.duration - 0.5; }")
    page.wait_for_function("a => !a.seeking && a.currentTime >= a.duration - 0.5",
                           arg=audio.element_handle(), timeout=15000)

    admin = browser.new_page()
    try:
        _log_in(admin, url, "admin")
        admin.goto(url + "/recordings/access")
        entries = admin.locator("#access tbody tr")
        expect(entries).to_have_count(1)  # one playback, however many ranges it took
        expect(entries.first).to_have_attribute("data-kind", "play")
        expect(entries.first).to_contain_text("supervisor")
        expect(entries.first).to_contain_text(call["call_id"])
        expect(entries.first).to_contain_text("已播放")
    finally:
        admin.close()
    (access,) = store.query("SELECT username, kind, call_id FROM recording_access")
    assert access == {"username": "supervisor", "kind": "play", "call_id": call["call_id"]}
