"""The knowledge base (F13): articles written by admins and supervisors and read by
everyone, the markup rendered without letting script through, full-text search that finds
Chinese (a two-character word such as 理赔 as well as longer ones through the trigram
index, and the LIKE fallback giving the same answers), SQL-injection and FTS-syntax
strings in the search, import all-or-nothing, export, and the console panel's results."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from flask import Flask

from appliance.store.db import Store
from tests.web.sheets import xlsx
from web import kb_search
from web.markup import plain, render

ARTICLES = [
    {"title": "理赔流程", "category": "理赔", "lang": "zh", "tags": "报案, 理赔资料",
     "body": "# 出险后怎么办\n1. 拨打 95500 报案\n2. 准备理赔资料：身份证、诊断证明\n\n"
             "**三十天内**提交。"},
    {"title": "保单复效", "category": "保单服务", "lang": "zh", "tags": "复效",
     "body": "保单失效后两年内可以申请复效，需补交保费和利息。"},
    {"title": "Claims in English", "category": "理赔", "lang": "en", "tags": "claims",
     "body": "Report a claim by phone; keep the hospital receipts."},
    {"title": "索偿程序", "category": "理赔", "lang": "yue", "tags": "",
     "body": "出咗事记得打电话报案，理赔要身份证同医院收据。"},
]


def _add(client: Any, token: str, **article: str) -> int:
    res = client.post("/kb/new", data={"csrf_token": token, **article})
    assert res.status_code == 302, res.get_data(as_text=True)
    return int(res.location.rsplit("/", 1)[1])


def _titles(store: Store, q: str, **kw: Any) -> tuple[list[str], bool]:
    rows, indexed = kb_search.search(store, q, **kw)
    return [r["title"] for r in rows], indexed


@pytest.fixture
def articles(as_role: Any, store: Store) -> list[int]:
    client, token = as_role("supervisor")
    return [_add(client, token, **a) for a in ARTICLES]


def test_the_markup_is_rendered_and_script_never_gets_through() -> None:
    html = str(render("# 标题\n- 一\n- 二\n\n**粗体** 和 [官网](https://example.com/a?b=1&c=2)"
                      "\n第二行"))
    assert "<h3>标题</h3>" in html and "<ul><li>一</li><li>二</li></ul>" in html
    assert "<strong>粗体</strong>" in html and "第二行" in html
    assert 'href="https://example.com/a?b=1&amp;c=2"' in html
    evil = str(render('<script>alert(1)</script>\n**<img src=x onerror=alert(1)>**\n'
                      '[点我](javascript:alert(1))\n[x](https://a.example/"onmouseover="x)'))
    assert "<script" not in evil and "<img" not in evil
    assert "&lt;script&gt;" in evil and 'href="javascript' not in evil
    assert 'onmouseover="' not in evil
    assert plain("# 标题\n- **一**\n[官网](https://e.cn)") == "标题 一 官网"


def test_the_system_sqlite_has_the_trigram_index(store: Store) -> None:
    # Debian 12's SQLite (3.40) has FTS5's trigram tokenizer; the migration built the index.
    assert kb_search.has_index(store)


def test_chinese_search_finds_two_character_words_and_longer_ones(
        store: Store, articles: list[int]) -> None:
    # 理赔 is two characters: below a trigram, so LIKE answers, over title, body and tags.
    titles, indexed = _titles(store, "理赔")
    assert not indexed
    assert set(titles) == {"理赔流程", "索偿程序"}  # the English one does not say 理赔
    assert titles[0] == "理赔流程"  # the title match first
    # Three characters or more: through the trigram index.
    assert _titles(store, "理赔资料") == (["理赔流程"], True)
    assert _titles(store, "补交保费") == (["保单复效"], True)
    assert _titles(store, "身份证 诊断证明") == (["理赔流程"], True)  # every term must match
    assert _titles(store, "身份证 补交保费") == ([], True)
    assert _titles(store, "HOSPITAL receipts")[0] == ["Claims in English"]  # any case
    assert _titles(store, "理赔", lang="yue")[0] == ["索偿程序"]
    assert _titles(store, "", category="保单服务")[0] == ["保单复效"]
    # A box whose SQLite has no trigram tokenizer answers the same with LIKE.
    for q in ("理赔资料", "补交保费", "身份证 诊断证明", "HOSPITAL receipts", "理赔"):
        s = kb_search.build(q, indexed=False)
        assert not s.indexed
        rows = store.query(s.sql, [*s.params, 20, 0])
        assert {r["title"] for r in rows} == set(_titles(store, q)[0]), q


def test_edits_and_deletes_reach_the_index(as_role: Any, store: Store,
                                           articles: list[int]) -> None:
    client, token = as_role("admin")
    res = client.post(f"/kb/{articles[1]}/edit", data={
        "csrf_token": token, **{**ARTICLES[1], "body": "失效两年内可申请恢复效力，补缴欠费。"}})
    assert res.status_code == 302
    assert _titles(store, "补交保费")[0] == []
    assert _titles(store, "恢复效力")[0] == ["保单复效"]
    detail = json.loads(store.query("SELECT detail FROM audit_log WHERE action = 'kb.edit'"
                                    )[0]["detail"])
    assert detail["before"]["body"].startswith("保单失效后") and list(detail["after"]) == ["body"]
    assert client.post(f"/kb/{articles[1]}/delete", data={"csrf_token": token}
                       ).status_code == 302
    assert _titles(store, "恢复效力")[0] == []
    assert client.get(f"/kb/{articles[1]}").status_code == 404


def test_an_article_body_cannot_carry_script(as_role: Any, store: Store) -> None:
    client, token = as_role("supervisor")
    article_id = _add(client, token, title="<b>标题</b>", category="常见问题", lang="zh",
                      tags="<i>", body="<script>alert('x')</script> 理赔 <img src=x "
                                       "onerror=alert(1)>")
    agent, _token = as_role("agent")
    for page in (f"/kb/{article_id}", "/kb/?q=理赔", "/kb/panel?q=理赔"):
        html = agent.get(page).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, page
        assert "&lt;script&gt;" in html or "&lt;img" in html, page
        assert "<b>标题</b>" not in html and "&lt;b&gt;标题&lt;/b&gt;" in html, page


def test_who_may_write_and_read_and_csrf(as_role: Any, store: Store,
                                         articles: list[int]) -> None:
    agent, token = as_role("agent")
    assert agent.post("/kb/new", data={"csrf_token": token, **ARTICLES[0]}).status_code == 403
    assert "理赔流程" in agent.get(f"/kb/{articles[0]}").get_data(as_text=True)
    seller, _token = as_role("salesperson")
    assert "保单复效" in seller.get("/kb/?q=复效").get_data(as_text=True)
    assert seller.get("/kb/panel?q=复效").status_code == 403
    admin, token = as_role("admin")
    assert admin.post("/kb/new", data=ARTICLES[0]).status_code == 400  # no CSRF token
    res = admin.post("/kb/new", data={"csrf_token": token, "title": "", "category": "x",
                                      "lang": "fr", "body": ""})
    body = res.get_data(as_text=True)
    assert res.status_code == 400 and "文章未保存" in body and "标题: 为必填项" in body
    assert store.query("SELECT count(*) AS n FROM kb_articles")[0]["n"] == len(ARTICLES)


ATTACKS = ["' OR '1'='1", "'; DROP TABLE kb_articles; --", '"', '" OR "', "理赔*",
           "NEAR(理赔 流程)", "title:理赔", "%", "_", "\\",
           "理赔' UNION SELECT password_hash FROM users --", "AND OR NOT", "^理赔", "{title}: x"]


def test_sql_and_fts_syntax_in_the_search_find_nothing_and_change_nothing(
        as_role: Any, store: Store, articles: list[int]) -> None:
    client, _token = as_role("admin")
    for attack in ATTACKS:
        for path in ("/kb/", "/kb/panel", "/kb/export.csv"):
            res = client.get(path, query_string={"q": attack, "category": attack,
                                                 "lang": attack})
            assert res.status_code == 200, (path, attack)
        assert "没有符合条件的文章" in client.get("/kb/", query_string={"q": attack}
                                            ).get_data(as_text=True), attack
    assert store.query("SELECT count(*) AS n FROM kb_articles")[0]["n"] == len(ARTICLES)


def test_import_is_all_or_nothing_and_export_has_every_match(
        as_role: Any, store: Store, articles: list[int]) -> None:
    client, token = as_role("supervisor")

    def upload(data: bytes, name: str = "kb.xlsx") -> Any:
        return client.post("/kb/import", data={"csrf_token": token,
                                               "file": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")

    header = ["编号", "标题", "分类", "语言", "标签", "正文"]
    good = [header, ["", "退保须知", "保单服务", "普通话", "退保", "犹豫期内退保全额退还保费。"],
            [articles[1], "保单复效（新）", "保单服务", "zh", "", "两年内可复效。"]]
    res = upload(xlsx(good, "知识库"))
    assert res.status_code == 302, res.get_data(as_text=True)
    assert _titles(store, "犹豫期")[0] == ["退保须知"]
    assert store.query("SELECT title FROM kb_articles WHERE id = ?",
                       [articles[1]])[0]["title"] == "保单复效（新）"
    count = store.query("SELECT count(*) AS n FROM kb_articles")[0]["n"]

    broken = [header, ["", "好的一行", "常见问题", "zh", "", "正文"],
              ["", "", "常见问题", "法语", "", ""], [99999, "x", "y", "en", "", "z"]]
    res = upload(xlsx(broken, "知识库"))
    body = res.get_data(as_text=True)
    assert res.status_code == 400 and "未导入任何数据" in body
    for row, column in (("3", "标题"), ("3", "语言"), ("3", "正文"), ("4", "编号")):
        assert f"<tr><td>{row}</td><td>{column}</td>" in body, (row, column)
    assert store.query("SELECT count(*) AS n FROM kb_articles")[0]["n"] == count
    for data, name, message in ((b"MZ\x90", "kb.exe", "不是电子表格"),
                                (xlsx([["a", "b"], [1, 2]], "Sheet1"), "kb.xlsx", "缺少列"),
                                (b"PK\x03\x04" + b"\x00" * 50, "kb.xlsx", "不是可读取的 .xlsx")):
        res = upload(data, name)
        assert res.status_code == 400 and message in res.get_data(as_text=True), name
    assert store.query("SELECT count(*) AS n FROM kb_articles")[0]["n"] == count

    res = client.get("/kb/export.csv?category=保单服务")
    table = list(csv.reader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))
    assert table[0] == header and {r[1] for r in table[1:]} == {"退保须知", "保单复效（新）"}
    # What was exported imports again unchanged (the round trip a backup needs).
    again = upload(res.get_data(as_text=True).encode("utf-8"), "kb.csv")
    assert again.status_code == 302
    assert store.query("SELECT count(*) AS n FROM kb_articles")[0]["n"] == count


def test_the_console_panel_returns_articles_to_unfold(app: Flask, as_role: Any,
                                                      articles: list[int]) -> None:
    client, _token = as_role("agent")
    html = client.get("/kb/panel?q=理赔").get_data(as_text=True)
    assert "<details>" in html and "理赔流程" in html and "<h3>出险后怎么办</h3>" in html
    assert "<html" not in html  # a fragment for the panel, not a page
    assert client.get("/kb/panel?q=").get_data(as_text=True).strip() == ""
