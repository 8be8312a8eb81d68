"""Pagination for list pages: page numbers from the query string, counts capped so that a
count over a large table never costs more than the page it describes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import request

from appliance.store.db import Store

COUNT_CAP = 10_000


@dataclass(frozen=True)
class Page:
    number: int
    size: int
    total: int  # capped at COUNT_CAP + 1: "more than COUNT_CAP"

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def capped(self) -> bool:
        return self.total > COUNT_CAP

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_next(self) -> bool:
        return self.number < self.last

    def args(self, number: int) -> dict[str, str]:
        out = {k: v for k, v in request.args.items() if k != "page"}
        out["page"] = str(number)
        return out


def page_number() -> int:
    try:
        n = int(request.args.get("page", "1"))
    except ValueError:
        return 1
    return min(max(n, 1), 100_000)


def capped_count_sql(sql: str) -> str:
    """Count the rows of ``sql`` (a SELECT) but stop at COUNT_CAP + 1."""
    return f"SELECT count(*) AS n FROM ({sql} LIMIT {COUNT_CAP + 1})"


def read_page(store: Store, count_sql: str, rows_sql: str, params: Sequence[Any],
              number: int, size: int = 50) -> tuple[Page, list[dict[str, Any]]]:
    """Page ``number`` of a list, in one read snapshot: ``count_sql`` selects the matching
    rows (counted up to the cap), ``rows_sql`` ends in ``LIMIT ? OFFSET ?``."""

    def fetch(db: Any) -> tuple[int, list[dict[str, Any]]]:
        total = db.execute(capped_count_sql(count_sql), params).fetchone()[0]
        rows = list(db.query(rows_sql, [*params, size, (number - 1) * size]))
        return total, rows

    total, rows = store.read(fetch)
    return Page(number, size, total), rows
