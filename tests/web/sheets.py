"""Spreadsheets for the import tests, made with openpyxl or as CSV text."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

from appliance.insurance.demo_data import id_checksum
from web.policy_import import COLUMNS


def xlsx(rows: Sequence[Sequence[Any]], sheet: str = "保单") -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    for row in rows:
        ws.append(list(row))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def id_number(region: str = "110101", born: str = "19850312", seq: str = "123") -> str:
    first = region + born + seq
    return first + id_checksum(first)


HEADER = [c.zh for c in COLUMNS]


def policy_row(number: str, **over: Any) -> list[Any]:
    row = {"number": number, "product_code": "TL20", "holder_name": "测试人",
           "holder_id": id_number(), "holder_phone": "13900001111", "insured_name": "",
           "insured_id": "", "status": "有效", "sum_insured": "200000", "premium": "1234.50",
           "payment_mode": "年缴", "term": "20", "issued_on": "2026-01-15",
           "next_due_date": "2027-01-15", "salesperson_code": "310001"}
    row.update(over)
    return [row[c.field] for c in COLUMNS]
