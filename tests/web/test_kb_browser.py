"""In headless Chromium: an agent at the seat console, logged in to a seat of the running
engine, searches the knowledge base from the console's panel for 理赔 and reads the
article there, without leaving the console."""

from __future__ import annotations

import time

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
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed (make install)")


def test_an_agent_searches_the_knowledge_base_from_the_console(
        page: Page, served: tuple[str, LiveEngine, Store]) -> None:  # noqa: F811
    url, live, store = served
    now = time.time()
    store.write(lambda db: db.conn.executemany(
        "INSERT INTO kb_articles (title, body, category, lang, tags, created_at, updated_at,"
        " updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, 'admin')",
        [("理赔流程", "# 出险后怎么办\n1. 拨打 95500 报案\n2. 准备**诊断证明**", "理赔", "zh",
          "报案", now, now),
         ("保单复效", "失效两年内可申请复效。", "保单服务", "zh", "", now, now)]))
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, url, "agent")
    take_seat(page, live)

    panel = page.locator("#kb-panel")
    panel.get_by_label("搜索知识库").fill("理赔")
    panel.get_by_role("button", name="查询").click()
    results = panel.locator("#kb-results")
    expect(results).to_contain_text("理赔流程")
    expect(results).not_to_contain_text("保单复效")
    results.get_by_text("理赔流程").click()  # unfold the article beside the call
    expect(results.get_by_role("heading", name="出险后怎么办")).to_be_visible()
    expect(results.locator("strong", has_text="诊断证明")).to_be_visible()
    # Still the console, the seat still ready: the search did not navigate away.
    assert page.url.endswith("/console/")
    expect(page.locator("#seat-state")).to_have_attribute("data-state", "ready")
    assert len(page.context.pages) == 1
