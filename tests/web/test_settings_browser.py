"""The box's settings in headless Chromium, beside a running engine: an admin adds today
as a holiday (the IVR's hours then say closed) and shortens the service queue's ring
timeout, which the running ACD takes at once."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import Page, expect

from appliance.acd import records
from appliance.ivr import hours
from appliance.store.db import Store
from tests.control.live import LiveEngine
from tests.web.test_browser import (  # noqa: F401 (the Chromium fixtures)
    CHROMIUM,
    base_url,
    browser_type_launch_args,
    log_in,
)
from tests.web.test_console_browser import served  # noqa: F401 (web + live engine)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed (make install)")


def test_admin_adds_a_holiday_and_edits_a_ring_timeout(
        page: Page, served: tuple[str, LiveEngine, Store]) -> None:  # noqa: F811
    url, live, store = served
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, url, "admin")

    page.get_by_role("link", name="营业时间").click()
    expect(page.get_by_role("heading", name="营业时间与节假日")).to_be_visible()
    form = page.locator("#day-form")
    form.get_by_label("日期").fill("2026-12-31")
    form.get_by_label("名称").fill("年终盘点")
    form.get_by_label("类别").select_option("holiday")
    form.get_by_role("button", name="保存日期").click()
    expect(page.get_by_role("status")).to_contain_text("2026-12-31 年终盘点 已保存")
    expect(page.locator("#days").get_by_role("row", name="2026-12-31")).to_contain_text(
        "节假日（休息）")
    saved = hours.load_hours(store)
    assert saved is not None
    # A Thursday at 10:00, open by the week's hours, is closed for the holiday.
    assert saved.state(dt.datetime(2026, 12, 31, 10, 0))[0] is False
    assert saved.state(dt.datetime(2026, 12, 30, 10, 0))[0] is True

    page.get_by_role("link", name="队列与坐席").click()
    queue = page.locator("#queue-service")
    expect(queue.get_by_label("振铃超时（秒）")).to_have_value("20")
    queue.get_by_label("振铃超时（秒）").fill("7")
    queue.get_by_role("button", name="保存队列").click()
    expect(page.get_by_role("status")).to_contain_text("已保存并应用到运行中的引擎")
    expect(page.locator("#queue-service").get_by_label("振铃超时（秒）")).to_have_value("7")
    assert live.acd.queues["service"].config.ring_timeout == 7.0
    assert records.load_queues(store)[0].ring_timeout == 7.0
    # A bad value: refused with the field named, the engine keeps the good one.
    queue = page.locator("#queue-service")
    queue.get_by_label("振铃超时（秒）").fill("0")
    queue.get_by_role("button", name="保存队列").click()
    expect(page.get_by_role("alert")).to_contain_text("ring_timeout")
    assert live.acd.queues["service"].config.ring_timeout == 7.0
