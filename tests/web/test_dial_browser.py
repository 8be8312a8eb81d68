"""Click-to-dial in headless Chromium: an agent takes a call whose screen pop shows the
customer found by the policy keyed, ends it, and clicks the customer's number (masked, as
agents see it) in the pop. The agent's seat phone rings first and answers, then the
customer's simulated phone rings and answers; the page follows the dial by its events and
never holds the number. The hang-up's answer is held back until after the dial's, as a
busy box can send it: the page keeps the newer message."""

from __future__ import annotations

import pytest
from playwright.sync_api import APIResponse, Page, Route, expect

from appliance.store.db import Store
from tests.control.live import LiveEngine
from tests.web.test_browser import (  # noqa: F401 (the Chromium fixtures)
    CHROMIUM,
    base_url,
    browser_type_launch_args,
    log_in,
)
from tests.web.test_console_browser import (  # noqa: F401 (the fixture)
    served,
    take_seat,
)
from tests.web.test_listen_dial import customer_phone

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed (make install)")


def test_the_agent_dials_the_customer_from_the_screen_pop(
        page: Page, served: tuple[str, LiveEngine, Store]) -> None:  # noqa: F811
    url, live, store = served
    (customer,) = store.query(
        "SELECT p.number AS policy, c.name, c.phone FROM policies p"
        " JOIN customers c ON c.id = p.holder_id WHERE c.phone IS NOT NULL"
        " ORDER BY p.number LIMIT 1")
    number = customer["phone"]
    phone = customer_phone(live, number)
    log_in(page, url, "agent")
    take_seat(page, live)

    live.dial("13700003333", {"pol_no": customer["policy"]})
    pop = page.locator("#pop")
    expect(pop).to_contain_text(customer["name"])
    expect(page.locator("#seat-state")).to_have_attribute("data-state", "talking")
    held: list[tuple[Route, APIResponse]] = []

    def hold(route: Route) -> None:
        held.append((route, route.fetch()))  # the engine hangs up now; the page hears later

    page.route("**/console/hangup", hold)
    page.get_by_role("button", name="挂机").click()
    expect(page.locator("#seat-state")).to_have_attribute("data-state", "wrap-up")

    masked = f"{number[:3]}****{number[-4:]}"
    assert not phone.connected and live.seat_phones["s1"].line is not None
    message = page.locator("#console-message")
    page.get_by_role("button", name=f"拨打 {masked}").click()
    expect(message).to_contain_text("您的电话先振铃")
    # The hang-up's "call ended" comes after the dial's answer: old news, not shown.
    ((route, answer),) = held
    route.fulfill(response=answer)
    expect(message).to_have_attribute("data-replies", "2")
    expect(message).to_contain_text("您的电话先振铃")
    page.unroute("**/console/hangup")
    # The seat's phone answers by itself; then the customer's rings and answers.
    expect(pop).to_have_attribute("data-dial", "answered", timeout=15_000)
    expect(page.locator("#seat-state")).to_have_attribute("data-state", "talking")
    # (The seat phone's bot still holds the first call's hang-up: ask its new line.)
    seat_line = live.seat_phones["s1"].line
    assert phone.connected and seat_line is not None and seat_line.connected
    assert seat_line.state.value != "ended"
    assert number not in page.content()
    (dial,) = store.query("SELECT seat_id, agent, outcome FROM acd_dials")
    assert (dial["seat_id"], dial["agent"]) == ("s1", "agent")
    page.get_by_role("button", name="挂机").click()
    expect(page.locator("#seat-state")).to_have_attribute("data-state", "wrap-up")
