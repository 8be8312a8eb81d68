"""The progress of an import, as the import form's bar asks for it while the upload runs:
the rows checked against the rows in the sheet, then the write, then done; for the user
who uploaded only."""

from __future__ import annotations

import io
from typing import Any

from flask import Flask

from tests.web.sheets import HEADER, id_number, policy_row, xlsx
from web import import_progress

TOKEN = "0123456789abcdef" * 2


def _upload(client: Any, csrf: str, data: bytes, name: str, token: str = TOKEN) -> Any:
    return client.post("/policies/import", data={
        "csrf_token": csrf, "progress": token, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data")


def _sheet(n: int) -> list[list[Any]]:
    return [HEADER] + [policy_row(f"P{i:09d}", holder_id=id_number(seq=f"{i % 1000:03d}"))
                       for i in range(n)]


def test_an_import_reports_its_rows_checked_then_written_then_done(as_role: Any) -> None:
    client, csrf = as_role("supervisor")
    res = _upload(client, csrf, xlsx(_sheet(600)), "p.xlsx")
    assert "新增保单 600 张" in res.get_data(as_text=True)
    assert client.get(f"/imports/progress/{TOKEN}").get_json() == {
        "phase": "done", "rows": 600, "total": 600}
    # A .csv counts its lines; a sheet with a bad row stops at the check.
    rows = _sheet(300)
    rows[299][rows[0].index("保费")] = "abc"
    text = "\n".join(",".join(str(c) for c in r) for r in rows) + "\n"
    other = "f" * 32
    res = _upload(client, csrf, text.encode(), "p.csv", token=other)
    assert res.status_code == 400 and "未导入任何数据" in res.get_data(as_text=True)
    assert client.get(f"/imports/progress/{other}").get_json() == {
        "phase": "done", "rows": 250, "total": 300}


def test_progress_is_seen_while_the_rows_are_checked(app: Flask, as_role: Any) -> None:
    client, csrf = as_role("admin")
    seen: list[dict[str, Any]] = []
    checked = import_progress.checked

    def spy(rows: int) -> None:
        checked(rows)
        if rows == 500:  # mid-sheet, ask as the page would, from another client
            seen.append(client.get(f"/imports/progress/{TOKEN}").get_json())

    import_progress.checked = spy  # type: ignore[assignment]
    try:
        _upload(client, csrf, xlsx(_sheet(800)), "p.xlsx")
    finally:
        import_progress.checked = checked  # type: ignore[assignment]
    assert seen == [{"phase": "check", "rows": 500, "total": 800}]


def test_another_user_cannot_see_an_import_s_progress_nor_guess_one(as_role: Any) -> None:
    client, csrf = as_role("supervisor")
    _upload(client, csrf, xlsx(_sheet(3)), "p.xlsx")
    admin, _ = as_role("admin")
    assert admin.get(f"/imports/progress/{TOKEN}").status_code == 404
    assert client.get("/imports/progress/" + "e" * 32).status_code == 404
    # A token that is not 32 hex digits is ignored: no figures are kept for it.
    _upload(client, csrf, xlsx(_sheet(3)), "p.xlsx", token="../../etc")
    assert client.get("/imports/progress/..%2F..%2Fetc").status_code == 404
