"""End to end in headless Chromium (Debian's, through Playwright) against the web admin
served by waitress: the first login and its forced password change, a policy sheet
imported through the file picker and found in the list, the quote calculator (its product
switch is the page's one script), a rate edited in a product's grid and quoted at once, and
the policy list on a phone-sized screen."""

from __future__ import annotations

import re
import wave
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from appliance.insurance.quote import quote
from appliance.store.db import Store
from tests.web.live import serving
from tests.web.sheets import HEADER, policy_row, xlsx
from web import create_app
from web.accounts import ensure_first_admin

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed (make install)")


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    return {"executable_path": str(CHROMIUM), "headless": True,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync"]}


@pytest.fixture
def live(data_dir: Path) -> Iterator[tuple[str, str, Store]]:
    store = Store(data_dir / "appliance.db")
    store.write(lambda db: db.execute("DELETE FROM users"))  # a box fresh from the factory
    first = ensure_first_admin(store)
    assert first
    app = create_app(data_dir, store=store)
    try:
        with serving(app) as url:
            yield url, first, store
    finally:
        store.close()


@pytest.fixture(scope="session")
def base_url() -> None:
    # The tests use absolute URLs of their own live server; overriding the plugin's
    # fixture also keeps its deprecated base_url option out of the run.
    return None


def test_first_login_import_list_and_quote(page: Page, live: tuple[str, str, Store],
                                           tmp_path: Path) -> None:
    url, first, store = live
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(url + "/")
    expect(page).to_have_url(url + "/login?next=/")
    page.get_by_label("用户名").fill("admin")
    page.get_by_label("密码").fill(first)
    page.get_by_role("button", name="登录").click()

    expect(page.get_by_text("这是您首次登录")).to_be_visible()
    page.get_by_label("当前密码").fill(first)
    page.get_by_label("新密码", exact=True).fill("Branch-Office-2026")
    page.get_by_label("再次输入新密码").fill("Branch-Office-2026")
    page.get_by_role("button", name="修改密码").click()
    expect(page.get_by_text("密码已修改")).to_be_visible()

    page.get_by_role("link", name="保单", exact=True).click()
    page.get_by_role("link", name="导入保单").click()
    sheet = tmp_path / "保单.xlsx"
    sheet.write_bytes(xlsx([HEADER, policy_row("E2E0000001", holder_name="赵浏览")]))
    page.get_by_label("电子表格").set_input_files(str(sheet))
    page.get_by_role("button", name="导入", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("新增保单 1 张")
    # A big sheet takes the server a while: the bar shows the upload, then how far the
    # server has checked (asked of it while the import runs), then the result.
    big = tmp_path / "big.csv"
    big.write_text("\n".join([",".join(HEADER)] + [
        ",".join(policy_row(f"E2F{i:07d}")) for i in range(20_000)]) + "\n",
        encoding="utf-8")
    page.get_by_label("电子表格").set_input_files(str(big))
    page.get_by_role("button", name="导入", exact=True).click()
    progress = page.locator(".import-progress")
    expect(progress.locator("progress")).to_be_visible()
    expect(progress.get_by_role("status")).to_have_text(
        re.compile(r"已检查 [\d,]+ / 20,000 行|所有行检查无误，正在写入 20,000 行"))
    expect(page.locator("p.flash")).to_contain_text("新增保单 20000 张", timeout=60_000)
    # A sheet with a bad row: the report names its row and column, nothing goes in.
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx([HEADER, policy_row("E2E0000002"),
                          policy_row("E2E0000003", premium="abc")]))
    page.get_by_label("电子表格").set_input_files(str(bad))
    page.get_by_role("button", name="导入", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("未导入任何数据")
    expect(page.get_by_role("row", name="3 保费")).to_contain_text("不是有效金额")
    assert not store.query("SELECT 1 FROM policies WHERE number = 'E2E0000002'")

    page.goto(url + "/policies/")
    page.get_by_label("保单号或投保人姓名").fill("赵浏览")
    page.get_by_role("button", name="查询").click()
    row = page.get_by_role("row", name="E2E0000001")
    expect(row).to_contain_text("赵浏览")
    expect(row).to_contain_text("1,234.50")

    page.get_by_role("link", name="险种与费率").click()
    page.get_by_role("link", name="保费试算").click()
    page.get_by_label("险种").select_option("CI30")  # the script reloads with its fields
    expect(page).to_have_url(url + "/products/quote?product=CI30")
    page.get_by_label("保额（元）").fill("500000")
    page.get_by_label("年龄").fill("35")
    page.get_by_label("性别").select_option("M")
    page.get_by_label("保险期间（年）").select_option("30")
    page.get_by_label("缴费方式").select_option("annual")
    page.get_by_role("button", name="试算").click()
    expected = quote(store, "CI30", Decimal(500_000), age=35, sex="M", term=30,
                     payment_mode="annual").premium
    expect(page.locator(".premium")).to_have_text(f"¥{expected:,.2f}")
    # The same page in English, one click away, and back.
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Quote calculator")).to_be_visible()
    expect(page.locator(".premium")).to_have_text(f"¥{expected:,.2f}")
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("heading", name="保费试算")).to_be_visible()

    # Edit a rate: the cell for a 35-year-old man, 30 years, annual, in CI30's grid; then
    # the calculator on the product's page quotes from the new rate.
    (cell,) = store.query("SELECT id, age_min, age_max FROM rates WHERE product_code = 'CI30'"
                          " AND sex = 'M' AND term = 30 AND payment_mode = 'annual'"
                          " AND age_min <= 35 AND age_max >= 35")
    page.goto(url + "/products/CI30")
    grid_cell = page.get_by_label(
        f"男 · 年缴 · 年龄 {cell['age_min']}–{cell['age_max']} × 30年", exact=True)
    grid_cell.fill("4.321")
    page.get_by_role("button", name="保存费率").click()
    expect(page.get_by_role("status")).to_contain_text("1 个费率已保存")
    expect(grid_cell).to_have_value("4.3210")
    quote_form = page.locator("#quote-form")
    quote_form.get_by_label("保额（元）").fill("500000")
    quote_form.get_by_label("年龄").fill("35")
    quote_form.get_by_label("性别").select_option("M")
    quote_form.get_by_label("保险期间（年）").select_option("30")
    quote_form.get_by_label("缴费方式").select_option("annual")
    quote_form.get_by_role("button", name="试算").click()
    # 500 000 / 1000 × 4.321, and the IVR's code says the same.
    expect(page.locator(".premium")).to_have_text("¥2,160.50")
    assert quote(store, "CI30", Decimal(500_000), age=35, sex="M", term=30,
                 payment_mode="annual").premium == Decimal("2160.50")


def test_the_policy_list_fits_a_phone_screen(page: Page, live: tuple[str, str, Store]) -> None:
    url, first, _ = live
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(url + "/login")
    page.get_by_label("用户名").fill("admin")
    page.get_by_label("密码").fill(first)
    page.get_by_role("button", name="登录").click()
    page.get_by_label("当前密码").fill(first)
    page.get_by_label("新密码", exact=True).fill("Branch-Office-2026")
    page.get_by_label("再次输入新密码").fill("Branch-Office-2026")
    page.get_by_role("button", name="修改密码").click()
    page.goto(url + "/policies/")
    # The wide table scrolls inside its box; the page itself does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.get_by_role("button", name="查询")).to_be_visible()


@pytest.fixture
def live_voicemail(data_dir: Path) -> Iterator[tuple[str, Store, int]]:
    """The web admin with the test accounts, two salesperson accounts and one message in
    the general box, recorded as the voicemail service leaves it."""
    from tests.web.vm import add_seller_accounts, general_message

    store = Store(data_dir / "appliance.db")
    add_seller_accounts(store)
    message = general_message(store, data_dir, caller="13812345678")
    app = create_app(data_dir, store=store)
    try:
        with serving(app) as url:
            yield url, store, message.id
    finally:
        store.close()


def log_in(page: Page, url: str, username: str) -> None:
    """Log in on the login page as ``username`` (the test password)."""
    from tests.web.conftest import PASSWORD

    page.goto(url + "/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


def test_a_supervisor_triages_a_message_and_the_salesperson_finds_it(
        page: Page, live_voicemail: tuple[str, Store, int]) -> None:
    from appliance.voicemail import audit_trail, get_message
    from tests.web.vm import SELLERS

    url, store, message_id = live_voicemail
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, url, "supervisor")
    page.get_by_role("link", name="留言", exact=True).click()
    page.get_by_role("link", name="综合信箱").click()
    expect(page.get_by_role("heading", name="综合信箱")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="13812345678")
    expect(row).to_contain_text("新留言")
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name=f"留言 {message_id}")).to_be_visible()

    # The audio element fetches the trimmed copy and plays it.
    audio = page.locator("audio")
    played = audio.evaluate("a => a.play().then(() => true, e => e.name)")
    assert played is True, played
    page.wait_for_function("document.querySelector('audio').readyState >= 2")
    duration = audio.evaluate("a => a.duration")
    expected = get_message(store, message_id)
    assert expected.play_path is not None
    with wave.open(str(expected.play_path)) as w:
        assert abs(duration - w.getnframes() / w.getframerate()) < 0.05

    page.locator("select[name=category]").select_option("complaint")
    page.get_by_role("button", name="设置分类").click()
    expect(page.locator("dl.fields")).to_contain_text("投诉")
    page.locator("select[name=salesperson]").select_option(SELLERS[0])
    page.get_by_label("给业务员的备注").fill("请今天回电")
    page.get_by_role("button", name="分配").click()
    expect(page.locator("dl.fields")).to_contain_text("已分配")
    expect(page.get_by_role("row").filter(has_text="请今天回电").first).to_be_visible()
    assert [e.action for e in audit_trail(store, message_id)] == [
        "saved", "heard", "categorise", "assign"]

    page.get_by_role("button", name="退出登录").click()
    log_in(page, url, SELLERS[0])
    page.get_by_role("link", name="我的留言").click()
    expect(page.get_by_role("heading", name="我的留言")).to_be_visible()
    mine = page.get_by_role("row").filter(has_text="138****5678").first
    expect(mine).to_contain_text("投诉")
    expect(page.get_by_role("row").filter(has_text="请今天回电")).to_be_visible()
    mine.get_by_role("link").click()
    expect(page.get_by_role("heading", name=f"留言 {message_id}")).to_be_visible()
    expect(page.locator("audio")).to_have_count(1)


def test_a_draft_flow_is_test_called_published_and_run_by_the_engine(
        page: Page, live: tuple[str, str, Store], tmp_path: Path) -> None:
    import json

    from appliance.ivr.insurance_lookups import InsuranceLookups
    from appliance.ivr.interpreter import make_flow_handler
    from appliance.ivr.versions import PublishedFlow
    from web.flows import DEFAULT_FLOW

    url, first, store = live
    page.goto(url + "/")
    page.get_by_label("用户名").fill("admin")
    page.get_by_label("密码").fill(first)
    page.get_by_role("button", name="登录").click()
    page.get_by_label("当前密码").fill(first)
    page.get_by_label("新密码", exact=True).fill("Branch-Office-2026")
    page.get_by_label("再次输入新密码").fill("Branch-Office-2026")
    page.get_by_role("button", name="修改密码").click()
    expect(page.get_by_text("密码已修改")).to_be_visible()

    # The box's flow as version 1, then a draft without the welcome greeting as version 2.
    for greeting in (["welcome", "lang_choice_zh", "lang_choice_yue", "lang_choice_en"],
                     ["lang_choice_zh", "lang_choice_yue", "lang_choice_en"]):
        doc = json.loads(DEFAULT_FLOW.read_text("utf-8"))
        doc["nodes"]["language"]["prompt"] = greeting
        upload = tmp_path / "flow.json"
        upload.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        page.goto(url + "/flows/")
        page.locator("form[action$='/flows/draft'] input[type=file]").set_input_files(
            str(upload))
        page.get_by_role("button", name="保存为草稿").click()
        expect(page.get_by_role("status")).to_contain_text("校验通过，可以发布")
    page.goto(url + "/flows/")
    page.get_by_role("row", name="1 草稿").get_by_role("button", name="发布").click()
    expect(page.get_by_role("status")).to_contain_text("版本 1 已发布")

    # A test call on the draft: an English caller asks for the information menu.
    page.goto(url + "/flows/?version=2")
    page.get_by_label("按键（每一步用空格分开）").fill("3 5")
    page.get_by_role("button", name="呼叫", exact=True).click()
    prompts = page.locator("#trial-prompts")
    expect(prompts).to_contain_text("en/info_menu")
    expect(prompts).not_to_contain_text("zh/welcome")
    audio = page.locator("audio")
    expect(audio).to_have_count(1)
    page.wait_for_function("document.querySelector('audio').readyState >= 1")
    assert page.evaluate("document.querySelector('audio').duration") > 3

    # Edit the draft node by node: from the diagram to the main menu's form, key 9 (which
    # repeated the menu) now leads to the information menu; that is a new draft, version 3.
    page.goto(url + "/flows/?version=2")
    page.locator("#box-main").click()
    expect(page.get_by_role("heading", name="节点 main")).to_be_visible()
    page.get_by_label("按 9", exact=True).select_option("info")
    page.get_by_role("button", name="保存为新草稿").click()
    expect(page.get_by_role("status")).to_contain_text("草稿版本 3")
    expect(page.locator("h1")).to_contain_text("版本 3")
    line = page.locator('#flow-diagram g.edge[data-from="main"][data-to="info"]')
    expect(line.filter(has_text="按 9")).to_have_count(1)
    expect(page.locator('#flow-diagram g.edge[data-from="main"][data-to="main"]')).to_have_count(0)

    page.goto(url + "/flows/")
    page.get_by_role("row", name="2 草稿").get_by_role("button", name="发布").click()
    expect(page.get_by_role("status")).to_contain_text("版本 2 已发布")
    # The engine's flow function takes the published version for its next call.
    lookups = InsuranceLookups(store).functions()
    live_flow = PublishedFlow(store, "default", lambda f: make_flow_handler(
        f, lookups, store=store, messages_dir=tmp_path))
    version, _ = live_flow.current()
    assert version == 2
