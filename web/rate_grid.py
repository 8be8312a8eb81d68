"""A product's rate table as grids to edit in the page: one grid per sex, payment mode and
seats band (the dimensions the table is keyed on), rows by age or vehicle-value band,
columns by term, each cell the rate per 1000 of one row of ``rates``.

:func:`build` lays the rows out; :func:`parse_edits` checks what the form sent for every
cell (a positive decimal of at most four places) and names each bad cell by its grid, row
and column. A table whose rows do not fit one cell each (two rows for the same band, sex,
mode and term) has no grid; it is edited by import. The grid carries a stamp of the table
as it was read, so a save over a table changed meanwhile (an import, another editor) is
refused instead of mixing the two.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext as _

from web.policies import mode_name

Q4 = Decimal("0.0001")
MAX_RATE = Decimal(1000)  # per 1000 of cover: a rate above the sum insured is a typo
_MODE_ORDER = {"annual": 0, "monthly": 1, "single": 2}


@dataclass
class Cell:
    id: int
    rate: str


@dataclass
class Grid:
    """One panel: ``cells[row_key][column_key]``."""
    key: tuple[Any, ...]
    title: str
    rows: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)
    columns: list[tuple[Any, str]] = field(default_factory=list)
    cells: dict[tuple[Any, ...], dict[Any, Cell]] = field(default_factory=dict)


@dataclass
class Layout:
    grids: list[Grid]
    stamp: str
    fits: bool  # every row has a cell of its own
    where: dict[int, str]  # rate id → "grid · row × column", for errors and the audit


@dataclass
class Change:
    id: int
    where: str
    old: str
    new: str


@dataclass
class Problem:
    id: int
    where: str
    value: str
    message: str


def stamp(rows: Iterable[Mapping[str, Any]]) -> str:
    """A digest of the table's ids and rates, to tell whether it changed since it was read."""
    h = hashlib.sha256()
    for r in sorted(rows, key=lambda r: int(r["id"])):
        h.update(f"{r['id']}:{r['rate_per_1000']};".encode())
    return h.hexdigest()[:32]


def _grid_title(sex: str | None, mode: str | None, seats: tuple[int | None, int | None]) -> str:
    parts = []
    if sex:
        parts.append(_("Male") if sex == "M" else _("Female"))
    if mode:
        parts.append(mode_name(mode))
    if seats[0] is not None:
        parts.append(_("Seats %(lo)s–%(hi)s", lo=seats[0], hi=seats[1] if seats[1] is not None
                       else "…"))
    return " · ".join(parts) or _("All")


def _row_label(r: Mapping[str, Any]) -> str:
    if r["age_min"] is not None:
        return _("Age %(lo)s–%(hi)s", lo=r["age_min"],
                 hi=r["age_max"] if r["age_max"] is not None else "…")
    if r["value_min_fen"] is not None:
        hi = r["value_max_fen"]
        return _("Vehicle value %(lo)s–%(hi)s", lo=f"{r['value_min_fen'] / 100:,.0f}",
                 hi=f"{hi / 100:,.0f}" if hi is not None else "…")
    return _("Every age")


def _column_label(term: int | None) -> str:
    return _("%(n)d years", n=term) if term is not None else _("Rate per 1000")


def build(rows: Sequence[Mapping[str, Any]]) -> Layout:
    grids: dict[tuple[Any, ...], Grid] = {}
    where: dict[int, str] = {}
    fits = True
    for r in rows:
        gkey = (r["sex"] or "", _MODE_ORDER.get(r["payment_mode"] or "", -1),
                r["seats_min"] if r["seats_min"] is not None else -1, r["seats_max"])
        grid = grids.get(gkey)
        if grid is None:
            grid = grids[gkey] = Grid(gkey, _grid_title(r["sex"], r["payment_mode"],
                                                        (r["seats_min"], r["seats_max"])))
        rkey = (r["age_min"] if r["age_min"] is not None else -1, r["age_max"],
                r["value_min_fen"] if r["value_min_fen"] is not None else -1,
                r["value_max_fen"])
        ckey = r["term"] if r["term"] is not None else -1
        if rkey not in grid.cells:
            grid.cells[rkey] = {}
            grid.rows.append((rkey, _row_label(r)))
        if ckey not in dict(grid.columns):
            grid.columns.append((ckey, _column_label(r["term"])))
        if ckey in grid.cells[rkey]:
            fits = False
        grid.cells[rkey][ckey] = Cell(int(r["id"]), str(r["rate_per_1000"]))
        where[int(r["id"])] = f"{grid.title} · {_row_label(r)} × {_column_label(r['term'])}"
    ordered = [grids[k] for k in sorted(grids, key=lambda k: (k[0], k[1], k[2]))]
    for g in ordered:
        g.rows.sort(key=lambda rk: (rk[0][0], rk[0][2]))
        g.columns.sort(key=lambda c: c[0])
    return Layout(ordered, stamp(rows), fits, where)


def parse_rate(text: str) -> tuple[str | None, str | None]:
    """``(rate, problem)``: the rate per 1000 as stored (four places), or what is wrong."""
    t = text.strip().replace(",", "").replace("，", "")
    if not t:
        return None, _("is required")
    try:
        rate = Decimal(t)
    except InvalidOperation:
        return None, _("is not a number")
    if not rate.is_finite() or rate <= 0:
        return None, _("must be a positive number")
    if rate != rate.quantize(Q4):
        return None, _("has more than four decimal places")
    if rate > MAX_RATE:
        return None, _("is more than %(max)s per 1000", max=MAX_RATE)
    return str(rate.quantize(Q4)), None


def parse_edits(layout: Layout, rows: Sequence[Mapping[str, Any]],
                form: Mapping[str, str]) -> tuple[list[Change], list[Problem]]:
    """The cells the form changed, and the problems of every cell it sent."""
    changes: list[Change] = []
    problems: list[Problem] = []
    for r in rows:
        rid = int(r["id"])
        sent = form.get(f"rate-{rid}")
        if sent is None:
            continue  # not in the form: unchanged
        rate, problem = parse_rate(sent)
        if problem:
            problems.append(Problem(rid, layout.where[rid], sent, problem))
        elif rate is not None and Decimal(rate) != Decimal(r["rate_per_1000"]):
            changes.append(Change(rid, layout.where[rid], str(r["rate_per_1000"]), rate))
    return changes, problems
