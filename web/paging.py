"""Pagination for list pages: page numbers from the query string, counts capped so that a
count over a large table never costs more than the page it describes."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request

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
