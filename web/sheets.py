"""Spreadsheets in and out, .xlsx (read with python-calamine, written with openpyxl) and
.csv, with errors that name the problem.

:func:`read_sheet` turns an upload into a header and rows of strings, refusing anything
that is not a readable .xlsx or .csv (by content, not only by name). A CSV may be UTF-8
(with or without the BOM Excel writes) or GB18030, which is what Excel on a Chinese
Windows saves. :func:`Columns` maps the header to the fields an import needs, accepting
each column's Chinese or English name. Exports stream, so a large one never sits in memory
as a whole page.
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import Response
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from web import import_progress

MAX_ROWS = 200_000
MAX_ERRORS_SHOWN = 200


class SheetError(ValueError):
    """The upload as a whole cannot be read (wrong type, wrong sheet, missing columns)."""


@dataclass(frozen=True)
class Column:
    field: str
    zh: str
    en: str
    required: bool = True


@dataclass
class Problem:
    row: int  # as the spreadsheet numbers it: the header is row 1
    column: str
    message: str


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    rows: int = 0

    def add(self, row: int, column: str, message: str) -> None:
        self.problems.append(Problem(row, column, message))

    @property
    def shown(self) -> list[Problem]:
        return self.problems[:MAX_ERRORS_SHOWN]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() \
            else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, timedelta):  # a time-only cell
        return str(value)
    return str(value).strip()


def read_sheet(upload: FileStorage | None, sheet_names: Sequence[str]) -> tuple[list[str],
                                                                              Iterator[list[str]]]:
    """The header and the rows of an uploaded .xlsx or .csv.

    For .xlsx the sheet is the first one named in ``sheet_names`` if the workbook has it,
    else the workbook's first sheet.
    """
    if upload is None or not upload.filename:
        raise SheetError(_("Choose a file to import."))
    name = upload.filename.lower()
    data = upload.read()
    if not data:
        raise SheetError(_("The file is empty."))
    if name.endswith(".xlsx"):
        return _read_xlsx(data, sheet_names)
    if name.endswith(".csv"):
        return _read_csv(data)
    raise SheetError(_("%(name)s is not a spreadsheet: upload an .xlsx or .csv file.",
                       name=upload.filename))


def _read_xlsx(data: bytes, sheet_names: Sequence[str]) -> tuple[list[str], Iterator[list[str]]]:
    # calamine (Rust) reads a 100 000-row sheet in under 2 s where openpyxl takes 18 s;
    # openpyxl still writes the exports.
    from python_calamine import CalamineError, CalamineWorkbook

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise SheetError(_("The file is not a readable .xlsx workbook."))
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
        name = next((n for n in sheet_names if n in wb.sheet_names), None)
        sheet = wb.get_sheet_by_name(name) if name else wb.get_sheet_by_index(0)
        rows = iter(sheet.iter_rows())
        first = next(rows, None)
        import_progress.sheet_rows(sheet.height - 1)
    except CalamineError:
        raise SheetError(_("The file is not a readable .xlsx workbook.")) from None
    if first is None:
        raise SheetError(_("The sheet %(sheet)s is empty.", sheet=sheet.name))
    header = [_cell(v) for v in first]

    def body() -> Iterator[list[str]]:
        try:
            for row in rows:
                yield [_cell(v) for v in row]
        except CalamineError as exc:
            raise SheetError(_("The file is not a readable .xlsx workbook.")) from exc

    return header, body()


def _read_csv(data: bytes) -> tuple[list[str], Iterator[list[str]]]:
    if b"\x00" in data[:4096]:
        raise SheetError(_("The file is not a text .csv file."))
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string without NULs
        raise SheetError(_("The file is not a text .csv file."))
    # Lines, not records (a quoted cell may hold a line break): near enough for the bar.
    import_progress.sheet_rows(text.rstrip("\r\n").count("\n"))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [c.strip() for c in next(reader)]
    except StopIteration:
        raise SheetError(_("The file is empty.")) from None
    except csv.Error:
        raise SheetError(_("The file is not a readable .csv file.")) from None

    def body() -> Iterator[list[str]]:
        try:
            for row in reader:
                yield [c.strip() for c in row]
        except csv.Error as exc:
            raise SheetError(_("The .csv file is damaged at line %(line)d.",
                               line=reader.line_num)) from exc

    return header, body()


def column_label(c: Column) -> str:
    """The column's name in the page's language (both names are accepted on import)."""
    return c.en if str(get_locale()) == "en" else c.zh  # zh_CN is Babel's zh_Hans_CN


class Columns:
    """Where each field is in a sheet, by header name (Chinese or English)."""

    def __init__(self, header: list[str], columns: Sequence[Column]) -> None:
        self.columns = columns
        index = {h.strip().lower(): i for i, h in enumerate(header) if h.strip()}
        self.at: dict[str, int] = {}
        missing = []
        for c in columns:
            for name in (c.zh, c.en.lower(), c.field):
                if name in index:
                    self.at[c.field] = index[name]
                    break
            else:
                if c.required:
                    missing.append(column_label(c))
        if missing:
            expected = ", ".join(column_label(c) for c in columns if c.required)
            raise SheetError(_("Missing columns: %(missing)s. The first row must name the "
                               "columns: %(expected)s.", missing=", ".join(missing),
                               expected=expected))
        self.label = {c.field: column_label(c) for c in columns}

    def values(self, row: list[str]) -> dict[str, str]:
        return {f: (row[i] if i < len(row) else "") for f, i in self.at.items()}


def blank(row: Iterable[str]) -> bool:
    return not any(row)


def each_row(body: Iterable[list[str]], cols: Columns,
             report: Report) -> Iterator[tuple[int, dict[str, str]]]:
    """``(row number, values by field)`` for each non-blank row, counted in ``report``;
    refuses a sheet of more than MAX_ROWS rows, or one with no rows at all."""
    for n, raw in enumerate(body, start=2):
        import_progress.checked(n - 1)
        if blank(raw):
            continue
        report.rows += 1
        if report.rows > MAX_ROWS:
            raise SheetError(_("The sheet has more than %(n)d rows; split it.", n=MAX_ROWS))
        yield n, cols.values(raw)
    if report.rows == 0 and not report.problems:
        raise SheetError(_("The sheet has no rows under its header."))
    if not report.problems:
        import_progress.writing(report.rows)


def csv_stream(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """A CSV export as text chunks, with the BOM Excel needs to read UTF-8 Chinese."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    writer.writerow(header)
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % 1000 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def xlsx_bytes(sheet: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(fmt: str, name: str, sheet: str, header: Sequence[str],
             rows: Iterable[Sequence[Any]]) -> Response:
    """An export as a download: ``name-<time>.xlsx`` (built whole: openpyxl writes a zip)
    or ``name-<time>.csv`` (streamed). ``name`` ending in ``.xlsx`` is used as it is."""
    if name.endswith(".xlsx"):
        filename, fmt = name, "xlsx"
    else:
        filename = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.{'xlsx' if fmt == 'xlsx' else 'csv'}"
    disposition = {"Content-Disposition": f"attachment; filename={filename}"}
    if fmt == "xlsx":
        return Response(xlsx_bytes(sheet, header, rows), mimetype=XLSX_TYPE,
                        headers=disposition)
    return Response(csv_stream(header, rows), mimetype="text/csv; charset=utf-8",
                    headers=disposition)
