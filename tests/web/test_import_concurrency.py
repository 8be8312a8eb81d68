"""A bulk import is one transaction, and the engine's writes made meanwhile (from its own
process, on its own connection) wait for it and all land: no CDR row is lost to a lock."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from flask import Flask

from appliance.store import cdr
from appliance.store.db import Store
from web.bench import _import_rows
from web.policy_import import import_policies


def test_engine_writes_during_an_import_wait_and_land(app: Flask, store: Store,
                                                      data_dir: Path) -> None:
    rows = [[str(v) for v in r] for r in _import_rows(20_000, random.Random(3), "CON")]
    engine = Store(data_dir / "appliance.db")  # the engine's own connection and writer
    result = []

    def run_import() -> None:
        with app.test_request_context("/"):
            result.append(import_policies(store, rows[0], iter(rows[1:]), "x.csv"))

    try:
        importer = threading.Thread(target=run_import)
        importer.start()
        futures = []
        while importer.is_alive():
            n = len(futures)
            futures.append(cdr.cdr_start(engine, f"during-{n}", "sim-1", "sim", "in",
                                         "13800000000", "95500", time.time()))
            time.sleep(0.01)
        importer.join()
        for f in futures:
            f.result(timeout=60)  # raises if a write failed (e.g. database is locked)
    finally:
        engine.close()
    assert result[0].created == 20_000
    landed = store.query("SELECT count(*) AS n FROM calls WHERE call_id LIKE 'during-%'")
    assert landed[0]["n"] == len(futures) > 10


def test_a_policy_added_between_the_check_and_the_write_rolls_the_import_back(
        app: Flask, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.web.sheets import HEADER, policy_row
    from web.sheets import SheetError

    number = store.query("SELECT number FROM policies LIMIT 1")[0]["number"]
    original = store.write

    def racing_write(fn):  # type: ignore[no-untyped-def]
        # Someone else adds RACE2 after the import looked for it.
        original(lambda db: db.execute(
            "INSERT INTO policies SELECT 'RACE2', product_code, holder_id, insured_id,"
            " status, sum_insured_fen, premium_fen, payment_mode, term, issued_on,"
            " next_due_date, next_due_fen, salesperson_code FROM policies WHERE number = ?",
            [number]))
        return original(fn)

    before = store.query("SELECT count(*) AS n FROM customers")[0]["n"]
    monkeypatch.setattr(store, "write", racing_write)
    with app.test_request_context("/"), pytest.raises(SheetError, match="未导入任何数据"):
        import_policies(store, HEADER, iter([policy_row("RACE1"), policy_row("RACE2")]),
                        "race.csv")
    monkeypatch.undo()
    assert not store.query("SELECT 1 FROM policies WHERE number = 'RACE1'")
    assert store.query("SELECT count(*) AS n FROM customers")[0]["n"] == before
    assert not store.query("SELECT 1 FROM audit_log WHERE action = 'policy.import'")
