"""In headless Chromium against the running engine: an agent creates an order with an
admin-defined field for a customer, goes back to the seat console, and when that customer
calls (having keyed their policy number in the IVR) the screen pop shows the open order."""

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
from tests.web.test_console_browser import (  # noqa: F401 (engine + web)
    served,
    take_seat,
    wait_subscribed,
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed (make install)")


def test_an_order_made_by_the_agent_pops_up_when_the_customer_calls(
        page: Page, served: tuple[str, LiveEngine, Store]) -> None:  # noqa: F811
    url, live, store = served
    store.write(lambda db: db.execute(
        "INSERT INTO order_fields (name, label_zh, label_en, type, options, required)"
        " VALUES ('channel', '受理渠道', 'Channel', 'choice', '[\"电话\", \"柜面\"]', 1)"))
    (customer,) = store.query(
        "SELECT p.number, c.id, c.name FROM policies p JOIN customers c ON c.id = p.holder_id"
        " ORDER BY p.number LIMIT 1")
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, url, "agent")
    take_seat(page, live)

    # The customer's page, then a new order for them.
    page.goto(url + f"/customers/{customer['id']}")
    page.get_by_role("link", name="新建工单").click()
    page.get_by_label("类型").select_option("endorsement")
    page.get_by_label("保单号").fill(customer["number"])
    page.get_by_role("button", name="保存工单").click()
    expect(page.get_by_role("alert")).to_contain_text("工单未保存")  # the required field
    expect(page.get_by_text("受理渠道: 为必填项")).to_be_visible()
    page.get_by_label("受理渠道").select_option("电话")
    page.get_by_role("button", name="保存工单").click()
    expect(page.get_by_role("status")).to_contain_text("已创建")
    (order,) = store.query("SELECT id, status FROM orders")
    assert order["status"] == "open"

    page.get_by_role("link", name="坐席工作台").click()
    expect(page.locator("#seat-state")).to_have_attribute("data-state", "ready")
    wait_subscribed(live)
    live.dial("13700002222", {"pol_no": customer["number"]})
    pop = page.locator("#pop")
    expect(pop).to_contain_text(customer["name"])
    orders = pop.locator(".pop-orders")
    expect(orders).to_contain_text(f"工单 {order['id']}")
    expect(orders).to_contain_text("保全批改")
    expect(orders).to_contain_text("待处理")
