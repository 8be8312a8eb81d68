"""In headless Chromium against the web admin, with the engine's SMS service running on the
simulated GSM modem (a real pseudo-terminal speaking AT in PDU mode): an agent opens a
customer, clicks 发短信, types a long Chinese text while the counter shows it going as two
messages, sends it, and sees it turn 已发送 on the list as the modem takes both parts; the
customer's reply arrives on the SIM and shows up under the customer's messages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from appliance.box.settings import ModemSettings, save_modem
from appliance.sms.service import SmsService
from appliance.store.db import Store
from drivers.gsm.simulated import SimulatedModem
from tests.drivers.gsm.test_sms import CHINESE_100
from tests.web.live import serving
from tests.web.test_browser import (  # noqa: F401 (the Chromium fixtures)
    CHROMIUM,
    base_url,
    browser_type_launch_args,
    log_in,
)
from web import create_app

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed (make install)")


@pytest.fixture
def with_modem(data_dir: Path) -> Iterator[tuple[str, SimulatedModem, Store]]:
    engine_store = Store(data_dir / "appliance.db")  # the engine's own, as on the box
    web_store = Store(data_dir / "appliance.db")
    modem = SimulatedModem()
    save_modem(engine_store, ModemSettings(modem.path, 115200, "", True), by="admin")
    service = SmsService(engine_store, poll=0.2, at_timeout=1.0, send_timeout=2.0)
    app = create_app(data_dir, store=web_store)
    try:
        with serving(app) as url:
            service.start()
            try:
                yield url, modem, web_store
            finally:
                service.stop()
    finally:
        modem.close()
        web_store.close()
        engine_store.close()


def test_an_agent_texts_a_customer_and_sees_it_sent_and_answered(
        page: Page, with_modem: tuple[str, SimulatedModem, Store]) -> None:
    url, modem, store = with_modem
    (c,) = store.query("SELECT id, name, phone FROM customers WHERE phone IS NOT NULL"
                       " ORDER BY id LIMIT 1")
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, url, "agent")
    page.goto(url + f"/customers/{c['id']}")
    page.get_by_role("link", name="发短信").click()
    expect(page.get_by_text(f"发给 {c['name']}")).to_be_visible()
    assert c["phone"] not in page.content()  # an agent sends without seeing the number
    text = page.get_by_label("内容")
    text.fill("您好")
    counter = page.locator("#sms-counter")
    expect(counter).to_have_text("2 个字，分 1 条发送")
    text.fill(CHINESE_100)
    expect(counter).to_have_text("100 个字，分 2 条发送")
    page.get_by_role("button", name="发送", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("已排队")
    row = page.locator("#sms-messages tbody tr").first
    expect(row).to_contain_text(c["name"])
    expect(row.locator(".status")).to_have_text("已发送", timeout=15_000)  # reloads itself
    assert "".join(s["text"] for s in modem.sent) == CHINESE_100
    assert len({s["udh"][0].reference for s in modem.sent}) == 1 and len(modem.sent) == 2

    modem.deliver("+86" + c["phone"], "收到，谢谢提醒！")
    page.goto(url + f"/sms/?customer={c['id']}")
    deadline = time.monotonic() + 10
    while "收到，谢谢提醒！" not in page.content() and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    incoming = page.get_by_role("row", name="收到，谢谢提醒！")
    expect(incoming).to_contain_text("已收到")
    expect(incoming).to_contain_text(c["name"])
    assert modem.sim == {}
