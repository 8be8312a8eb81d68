"""The knowledge base (F13): articles on products, prices, policy services and common
questions that the seats read beside a call.

Admins and supervisors write them (title, body in the simple markup of
:mod:`web.markup`, category, language, tags), import and export them; everyone reads and
searches them (:mod:`web.kb_search`, which finds Chinese); the seat console has a panel
(:func:`panel`, a fragment its script puts beside the call). Every change is audited,
with the article before and after.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlite_utils import Database

from web import audit, kb_search
from web.db import store
from web.markup import plain, render
from web.paging import page_number
from web.sheets import (
    Column,
    Columns,
    Report,
    SheetError,
    column_label,
    download,
    each_row,
    read_sheet,
)

bp = Blueprint("kb", __name__, url_prefix="/kb")

LANGS = ("zh", "yue", "en")
LANG_WORDS = {"zh": "zh", "普通话": "zh", "中文": "zh", "yue": "yue", "粤语": "yue",
              "en": "en", "english": "en", "英语": "en", "英文": "en"}
SUGGESTED = ("产品", "价格", "保单服务", "理赔", "常见问题")
MAX_TITLE = 120
MAX_BODY = 20_000
MAX_CATEGORY = 40
MAX_TAGS = 200
PAGE = 50
PANEL = 10
COLUMNS = (
    Column("id", "编号", "Number", required=False),
    Column("title", "标题", "Title"),
    Column("category", "分类", "Category"),
    Column("lang", "语言", "Language"),
    Column("tags", "标签", "Tags", required=False),
    Column("body", "正文", "Body"),
)
FIELDS = ("title", "body", "category", "lang", "tags")


def lang_label(code: str) -> str:
    return {"zh": _("Mandarin"), "yue": _("Cantonese"), "en": _("English")}.get(code, code)


@bp.app_context_processor
def _names() -> dict[str, Any]:
    return dict(kb_lang_label=lang_label, kb_render=render)


def _categories() -> list[str]:
    return [r["category"] for r in store().query(
        "SELECT DISTINCT category FROM kb_articles ORDER BY category")]


def _query() -> dict[str, str]:
    lang = request.args.get("lang", "")
    return {"q": request.args.get("q", "").strip()[:kb_search.MAX_QUERY],
            "category": request.args.get("category", "").strip()[:MAX_CATEGORY],
            "lang": lang if lang in LANGS else ""}


def _results(f: Mapping[str, str], limit: int, offset: int = 0) -> list[dict[str, Any]]:
    rows, _indexed = kb_search.search(store(), f["q"], category=f["category"],
                                      lang=f["lang"], limit=limit, offset=offset)
    words = kb_search.terms(f["q"])
    for r in rows:
        r["excerpt"] = kb_search.excerpt(plain(r["body"]), words)
    return rows


@bp.route("/", endpoint="list")
def article_list() -> ResponseReturnValue:
    return _list_page()


def _list_page(status: int = 200, **extra: Any) -> ResponseReturnValue:
    f = _query()
    number = page_number()
    rows = _results(f, PAGE + 1, (number - 1) * PAGE)
    return render_template("kb/list.html", rows=rows[:PAGE], f=f, number=number,
                           has_next=len(rows) > PAGE, categories=_categories(), langs=LANGS,
                           columns=COLUMNS, column_label=column_label, **extra), status


@bp.route("/panel")
def panel() -> ResponseReturnValue:
    """The console panel's results: a fragment, each article's body ready to unfold."""
    f = _query()
    rows = _results(f, PANEL) if f["q"] else []
    return render_template("console/kb_results.html", rows=rows, f=f)


def _article(article_id: int) -> dict[str, Any]:
    rows = store().query("SELECT * FROM kb_articles WHERE id = ?", [article_id])
    if not rows:
        abort(404)
    return rows[0]


@bp.route("/<int:article_id>")
def article(article_id: int) -> ResponseReturnValue:
    return render_template("kb/article.html", a=_article(article_id))


def check(values: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """An article's fields, cleaned, and the problems by field (for the form and imports)."""
    a = {k: values.get(k, "").strip() for k in FIELDS}
    a["lang"] = LANG_WORDS.get(a["lang"].lower(), "") if a["lang"] else ""
    a["tags"] = ", ".join(t.strip() for t in a["tags"].replace("，", ",").split(",")
                          if t.strip())
    errors: dict[str, str] = {}
    for key, most in (("title", MAX_TITLE), ("category", MAX_CATEGORY), ("body", MAX_BODY)):
        if not a[key]:
            errors[key] = _("is required")
        elif len(a[key]) > most:
            errors[key] = _("is longer than %(n)d characters", n=most)
    if not a["lang"]:
        errors["lang"] = _("must be one of: %(values)s", values="普通话, 粤语, English")
    if len(a["tags"]) > MAX_TAGS:
        errors["tags"] = _("is longer than %(n)d characters", n=MAX_TAGS)
    return a, errors


@bp.route("/new", methods=["GET", "POST"])
def create() -> ResponseReturnValue:
    form: dict[str, str] = {"lang": "zh"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form, errors = check(request.form)
        if not errors:
            entry = audit.audit_row("kb.create", "", **form)
            now, who = time.time(), audit.current_username()

            def add(db: Database) -> int:
                cur = db.execute(
                    "INSERT INTO kb_articles (title, body, category, lang, tags, created_at,"
                    " updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [*(form[k] for k in FIELDS), now, now, who])
                entry[5] = str(cur.lastrowid)
                audit.insert(db, entry)
                return int(cur.lastrowid or 0)

            article_id = store().write(add)
            flash(_("Article saved."))
            return redirect(url_for("kb.article", article_id=article_id))
    return render_template("kb/edit.html", a=None, form=form, errors=errors, langs=LANGS,
                           suggested=_suggested()), 400 if errors else 200


def _suggested() -> list[str]:
    return sorted(set(SUGGESTED) | set(_categories()))


@bp.route("/<int:article_id>/edit", methods=["GET", "POST"])
def edit(article_id: int) -> ResponseReturnValue:
    old = _article(article_id)
    form: dict[str, Any] = old
    errors: dict[str, str] = {}
    if request.method == "POST":
        form, errors = check(request.form)
        if not errors:
            changed = [k for k in FIELDS if old[k] != form[k]]
            entry = audit.audit_row("kb.edit", str(article_id),
                                    before={k: old[k] for k in changed},
                                    after={k: form[k] for k in changed})
            values = [*(form[k] for k in FIELDS), time.time(), audit.current_username(),
                      article_id]

            def save(db: Database) -> None:
                db.execute("UPDATE kb_articles SET title = ?, body = ?, category = ?,"
                           " lang = ?, tags = ?, updated_at = ?, updated_by = ? WHERE id = ?",
                           values)
                audit.insert(db, entry)

            if changed:
                store().write(save)
            flash(_("Article saved."))
            return redirect(url_for("kb.article", article_id=article_id))
    return render_template("kb/edit.html", a=old, form=form, errors=errors, langs=LANGS,
                           suggested=_suggested()), 400 if errors else 200


@bp.route("/<int:article_id>/delete", methods=["POST"])
def delete(article_id: int) -> ResponseReturnValue:
    old = _article(article_id)
    entry = audit.audit_row("kb.delete", str(article_id),
                            before={k: old[k] for k in FIELDS})

    def remove(db: Database) -> None:
        db.execute("DELETE FROM kb_articles WHERE id = ?", [article_id])
        audit.insert(db, entry)

    store().write(remove)
    flash(_("Article %(title)s deleted.", title=old["title"]))
    return redirect(url_for("kb.list"))


@bp.route("/export.<fmt>")
def export(fmt: str) -> ResponseReturnValue:
    """Every article the search and filters match, in the import's columns."""
    if fmt not in ("csv", "xlsx"):
        abort(404)
    f = _query()
    audit.log("kb.export", "", format=fmt, **f)
    s = kb_search.build(f["q"], indexed=kb_search.has_index(store()),
                        category=f["category"], lang=f["lang"])
    db = store()  # the generator runs after the request context has gone

    def rows() -> Iterator[list[Any]]:
        offset = 0
        while True:
            chunk = db.query(s.sql, [*s.params, 1000, offset])
            for r in chunk:
                yield [r["id"], r["title"], r["category"], r["lang"], r["tags"], r["body"]]
            if len(chunk) < 1000:
                return
            offset += 1000

    return download(fmt, "knowledge-base", "知识库", [c.zh for c in COLUMNS], rows())


@bp.route("/import", methods=["POST"])
def import_upload() -> ResponseReturnValue:
    """Articles from a sheet: a row with a number replaces that article, one without adds
    one; every row checked first, then all in one transaction, or nothing."""
    report = Report()
    clean: list[tuple[int | None, dict[str, str]]] = []
    upload = request.files.get("file")
    try:
        header, body = read_sheet(upload, ("知识库", "articles", "Articles"))
        cols = Columns(header, COLUMNS)
        known = {r["id"] for r in store().query("SELECT id FROM kb_articles")}
        seen: dict[int, int] = {}
        for n, v in each_row(body, cols, report):
            bad = len(report.problems)
            article_id = None
            text = v.get("id", "")
            if text:
                if not text.isdigit() or int(text) not in known:
                    report.add(n, cols.label["id"],
                               _("%(value)s is not an article number in the base", value=text))
                elif int(text) in seen:
                    report.add(n, cols.label["id"], _("repeats row %(row)d",
                                                      row=seen[int(text)]))
                else:
                    article_id = seen[int(text)] = int(text)
            a, errors = check(v)
            for key, problem in errors.items():
                report.add(n, cols.label[key], problem)
            if len(report.problems) == bad:
                clean.append((article_id, a))
    except SheetError as exc:
        return _list_page(400, error=str(exc))
    if report.problems:
        return _list_page(400, report=report)
    new = [a for i, a in clean if i is None]
    replaced = [(i, a) for i, a in clean if i is not None]
    entry = audit.audit_row("kb.import", (upload and upload.filename) or "", rows=len(clean),
                            created=len(new), replaced=len(replaced))
    now, who = time.time(), audit.current_username()

    def write(db: Database) -> None:
        db.conn.executemany(
            "INSERT INTO kb_articles (title, body, category, lang, tags, created_at,"
            " updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(*(a[k] for k in FIELDS), now, now, who) for a in new])
        db.conn.executemany(
            "UPDATE kb_articles SET title = ?, body = ?, category = ?, lang = ?, tags = ?,"
            " updated_at = ?, updated_by = ? WHERE id = ?",
            [(*(a[k] for k in FIELDS), now, who, i) for i, a in replaced])
        audit.insert(db, entry)

    store().write(write)
    flash(_("Imported %(rows)d articles: %(created)d new, %(replaced)d replaced.",
            rows=len(clean), created=len(new), replaced=len(replaced)))
    return redirect(url_for("kb.list"))


__all__ = ["bp", "check", "lang_label"]
