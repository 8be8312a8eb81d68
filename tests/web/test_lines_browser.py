"""The lines page end to end in headless Chromium: the admin adds a port (a wrong route is
refused, naming the field, then put right), sees it in the live line table, and the table
follows the running engine without a reload: a caller takes the trunk (in call), the
trunk's line goes down (alarm). The engine runs on the real clock in its own thread with
the simulated exchange; the web is served by waitress; they talk over the control API."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from appliance.store.db import Store
from tests.control.live import LiveEngine
from tests.web.test_browser import (  # noqa: F401 (the Chromium fixtures)
    CHROMIUM,
    base_url,
    browser_type_launch_args,
    log_in,
)
from tests.web.test_console_browser import served  # noqa: F401 (engine and web served)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed (make install)")


def test_admin_adds_a_port_and_watches_the_line_live(
        page: Page, served: tuple[str, LiveEngine, Store]) -> None:  # noqa: F811
    url, live, store = served
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, url, "admin")
    page.get_by_role("link", name="外线", exact=True).click()
    expect(page.get_by_role("heading", name="外线与设备")).to_be_visible()
    states = page.locator("#line-states")
    expect(states.locator('tr[data-port="1"]')).to_have_attribute("data-state", "idle")

    page.get_by_role("link", name="添加端口").click()
    form = page.locator("#port-form")  # the page also has the form for a whole E1 span
    form.get_by_label("通道", exact=True).fill("1")
    form.get_by_label("端口名称").fill("营业部外线")
    form.get_by_label("端口类型").select_option("fxo")
    form.get_by_label("信令").select_option("fxs_ks")
    form.get_by_label("来电显示").select_option("bell")
    form.get_by_label("呼入路由").select_option("queue")
    form.get_by_label("路由目标").fill("sales")  # no such queue
    form.get_by_role("button", name="保存").click()
    expect(page.get_by_role("alert")).to_have_text("路由目标: 没有队列“sales”")
    assert store.query("SELECT * FROM line_ports") == []
    form.get_by_label("呼入路由").select_option("number")
    form.get_by_label("路由目标").fill("8001")
    form.get_by_label("仅限呼入：从不用于呼出").check()
    form.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status")).to_contain_text("端口 1 已保存")
    expect(page.locator('#port-table tr[data-channel="1"]')).to_contain_text("号码: 8001")
    row = states.locator('tr[data-port="1"]')
    expect(row).to_contain_text("营业部外线")
    expect(row).to_contain_text("空闲")

    # The table follows the engine (server-sent events), no reload.
    live.dial("13800000001")
    expect(row).to_have_attribute("data-state", "in-call")
    expect(row).to_contain_text("通话中")
    live.loop.call_soon_threadsafe(live.exchange.trunk_down, 2, "红色告警")
    down = states.locator('tr[data-port="2"]')
    expect(down).to_have_attribute("data-state", "alarm")
    expect(down).to_contain_text("告警")

    page.get_by_role("link", name="这些端口的 DAHDI 配置").click()
    expect(page.locator("#system-conf")).to_contain_text("fxsks=1")
    expect(page.locator("#chan-dahdi-conf")).to_contain_text("cidsignalling=bell")
    expect(page.locator("#extensions-conf")).to_contain_text(
        "AudioSocket(${CUT(APPLIANCE_CALL,/,1)},127.0.0.1:9092)")
