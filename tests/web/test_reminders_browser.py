"""Premium reminders in headless Chromium: an admin presses "run now" on the reminders
page, the running engine (real clock, its own thread) calls the holder of a policy due
today on the simulated exchange, the line is busy, and the attempt appears in the list
with its outcome when the admin looks again."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from appliance.reminders.dialer import ReminderDialer
from appliance.store.db import Store
from drivers.sim.exchange import Behaviour
from tests.control.live import LiveEngine
from tests.web.test_browser import (  # noqa: F401 (the Chromium fixtures)
    CHROMIUM,
    base_url,
    browser_type_launch_args,
    log_in,
)
from tests.web.test_console_browser import served  # noqa: F401 (the fixture)
from tests.web.test_reminders import due_today_all_day

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed (make install)")


def test_an_admin_runs_a_reminder_pass_and_sees_the_attempt(
        page: Page, served: tuple[str, LiveEngine, Store]) -> None:  # noqa: F811
    url, live, store = served
    policy = due_today_all_day(store)
    live.exchange.subscribe(policy["phone"], None, behaviour=Behaviour.BUSY)
    live.control.reminders = ReminderDialer(live.engine, live.exchange, live.store,
                                            acd=live.acd)

    log_in(page, url, "admin")
    page.get_by_role("link", name="续期缴费提醒").click()
    expect(page.locator("#attempts")).to_contain_text("没有符合条件的催缴拨打记录")
    page.get_by_role("button", name="立即开始一轮催缴拨打").click()
    expect(page.get_by_role("status")).to_contain_text("已开始催缴拨打：共 1 张保单待拨打")
    row = page.locator("#attempts tbody tr").filter(has_text=policy["number"])
    for _ in range(50):
        if row.filter(has_text="忙音").count():
            break
        page.wait_for_timeout(200)
        page.reload()
    expect(row).to_contain_text("忙音")
    expect(row).to_contain_text(policy["phone"])  # an admin sees the number in full
