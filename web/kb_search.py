"""Full-text search of the knowledge base that works for Chinese.

Chinese has no spaces between words, so a word tokenizer would index whole sentences as
one token. The migration builds ``kb_fts`` with FTS5's trigram tokenizer (SQLite 3.34 or
later; this box's SQLite has it): every run of three characters is indexed, so any
substring of three or more characters is found through the index, ranked by bm25 with the
title weighted above the tags and the body. A term of one or two characters (理赔 is two)
cannot be looked up in a trigram index, so a query with one is answered with LIKE over the
same columns; so is every query on a SQLite built without the tokenizer (no ``kb_fts``).
Terms are separated by spaces and all must match. Every value goes in as a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.store.db import Store

MAX_QUERY = 100
MAX_TERMS = 8
TRIGRAM = 3


@dataclass(frozen=True)
class Search:
    sql: str
    params: list[Any]
    indexed: bool  # answered through the trigram index


def has_index(store: Store) -> bool:
    return bool(store.query("SELECT 1 FROM sqlite_master WHERE name = 'kb_fts'"))


def terms(q: str) -> list[str]:
    return q.strip()[:MAX_QUERY].split()[:MAX_TERMS]


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def build(q: str, *, indexed: bool, category: str = "", lang: str = "") -> Search:
    """The SELECT (of ``id, title, body, category, lang, tags, updated_at``) for a query,
    newest first when there is nothing to rank by; ends in ``LIMIT ? OFFSET ?``."""
    words = terms(q)
    where: list[str] = []
    params: list[Any] = []
    if category:
        where.append("a.category = ?")
        params.append(category)
    if lang:
        where.append("a.lang = ?")
        params.append(lang)
    use_index = indexed and bool(words) and all(len(w) >= TRIGRAM for w in words)
    if use_index:
        # Each term a quoted string (its quotes doubled): FTS5's query syntax cannot be
        # reached from the search box.
        match = " AND ".join('"' + w.replace('"', '""') + '"' for w in words)
        clause = " AND ".join(["kb_fts MATCH ?", *where])
        sql = ("SELECT a.id, a.title, a.body, a.category, a.lang, a.tags, a.updated_at"
               " FROM kb_fts JOIN kb_articles a ON a.id = kb_fts.rowid"
               f" WHERE {clause} ORDER BY bm25(kb_fts, 10.0, 1.0, 5.0), a.id DESC"
               " LIMIT ? OFFSET ?")
        return Search(sql, [match, *params], True)
    for w in words:
        where.append("(a.title LIKE ? ESCAPE '\\' OR a.body LIKE ? ESCAPE '\\'"
                     " OR a.tags LIKE ? ESCAPE '\\')")
        params += [_like(w)] * 3
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    order = "a.updated_at DESC, a.id DESC"
    if words:
        # Articles with the first term in the title first.
        order = "a.title LIKE ? ESCAPE '\\' DESC, " + order
        params_order = [_like(words[0])]
    else:
        params_order = []
    sql = ("SELECT a.id, a.title, a.body, a.category, a.lang, a.tags, a.updated_at"
           f" FROM kb_articles a {clause} ORDER BY {order} LIMIT ? OFFSET ?")
    return Search(sql, [*params, *params_order], False)


def search(store: Store, q: str, *, category: str = "", lang: str = "", limit: int = 20,
           offset: int = 0) -> tuple[list[dict[str, Any]], bool]:
    """The matching articles and whether the index answered."""
    s = build(q, indexed=has_index(store), category=category, lang=lang)
    return store.query(s.sql, [*s.params, limit, offset]), s.indexed


def excerpt(text: str, words: list[str], width: int = 90) -> str:
    """A piece of ``text`` around the first term found (or its start)."""
    lower = text.lower()
    at = min((i for i in (lower.find(w.lower()) for w in words) if i >= 0), default=0)
    start = max(0, at - width // 3)
    piece = text[start:start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")
