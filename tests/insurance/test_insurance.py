"""The insurance book: schema, quotes, lookups, PIN lockout, claims and the demo data.

The demo book (2 000 policies) is loaded once per session into a file; each test opens a
copy of it, so tests that write (PIN failures, claims) do not see each other.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from appliance.cli import main
from appliance.insurance.demo_data import DemoSummary, demo_pin, id_checksum, load_demo_data
from appliance.insurance.hashing import id_matches
from appliance.insurance.lookups import (
    MAX_PIN_FAILURES,
    PinResult,
    PolicyLookup,
    PolicyOutcome,
    check_pin,
    find_salesperson,
    report_claim,
    salesperson_figures,
    unlock_salesperson,
)
from appliance.insurance.quote import RateTable, load_rate_table, quote
from appliance.store.db import Store

TODAY = date(2026, 11, 26)
INSURANCE_TABLES = {"products", "rates", "customers", "salespeople", "policies",
                    "commissions", "claims"}


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    with Store(path) as s:
        summary = load_demo_data(s, 2000, today=TODAY)
    # The store closes its read-only readers after the writer, so the last committed pages
    # can stay in the WAL; fold them into the file so that copying the file copies it all.
    with Database(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path, summary


@pytest.fixture
def store(demo: tuple[Path, DemoSummary], tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "app.db"
    shutil.copy(demo[0], path)
    s = Store(path)
    yield s
    s.close()


@pytest.fixture(scope="session")
def tables(demo: tuple[Path, DemoSummary]) -> dict[str, RateTable]:
    with Store(demo[0]) as s:
        return {code: load_rate_table(s, code) for code in ("TL20", "ACC1", "CI30", "MOT1")}


# -- schema -------------------------------------------------------------------------------

def test_migrations_apply_on_a_fresh_db(tmp_path: Path) -> None:
    with Store(tmp_path / "fresh.db") as s:
        assert "0003_insurance" in s.migrated
        names = {r["name"] for r in s.query("SELECT name FROM sqlite_master WHERE type='table'")}
        assert names >= INSURANCE_TABLES
    with Store(tmp_path / "fresh.db") as s:
        assert s.migrated == []


# -- quotes -------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "sum_insured", "params", "premium"), [
    # 1.05 (male 26–30) × 1.25 (20-year term) = 1.3125 per 1000 × 500
    ("TL20", "500000", dict(age=30, sex="M", term=20, payment_mode="annual"), "656.25"),
    # monthly: 1.3125 × 0.09 = 0.118125, stored 0.1181; × 500 = 59.05
    ("TL20", "500000", dict(age=30, sex="M", term=20, payment_mode="monthly"), "59.05"),
    # female 36–40: 1.90 × 0.75 = 1.425 × 1000
    ("TL20", "1000000", dict(age=40, sex="F", term=10, payment_mode="annual"), "1425.00"),
    # single: 0.85 × 10 years × 0.78 = 6.63 × 100
    ("TL20", "100000", dict(age=25, sex="M", term=10, payment_mode="single"), "663.00"),
    # rounding: 1.05 × 0.75 × 1.25 = 0.984375 → 0.9844; 123.45678 × 0.9844 = 121.5308…
    ("TL20", "123456.78", dict(age=30, sex="F", term=20, payment_mode="annual"), "121.53"),
    ("ACC1", "200000", dict(age=45, term=1, payment_mode="annual"), "300.00"),
    # critical illness male 31–35, 30-year term: 10.60 × 1.22 = 12.932 × 300
    ("CI30", "300000", dict(age=33, sex="M", term=30, payment_mode="annual"), "3879.60"),
    # motor: base 710 + 150 × 12.10 (100 000–200 000, up to 5 seats)
    ("MOT1", "150000", dict(seats=5, term=1, payment_mode="annual"), "2525.00"),
    # 7 seats: ×1.2 on both: 852 + 150 × 14.52
    ("MOT1", "150000", dict(seats=7, term=1, payment_mode="annual"), "3030.00"),
    # on the band edge: the lower band, 600 + 100 × 13.20
    ("MOT1", "100000", dict(seats=5, term=1, payment_mode="annual"), "1920.00"),
])
def test_quote_matches_hand_computed_rates(store: Store, code: str, sum_insured: str,
                                           params: dict, premium: str) -> None:
    q = quote(store, code, sum_insured, **params)
    assert q.premium == Decimal(premium)
    assert str(q.premium) == premium  # always two places


@pytest.mark.parametrize(("code", "sum_insured", "params", "message"), [
    ("XX99", "100000", {}, "product_code 'XX99' is not a known product"),
    ("TL20", "500000", dict(sex="M", term=20, payment_mode="annual"), "age is required"),
    ("TL20", "500000", dict(age=70, sex="M", term=20, payment_mode="annual"),
     "age 70 is outside"),
    ("TL20", "500000", dict(age=30, sex="X", term=20, payment_mode="annual"), "sex 'X'"),
    ("TL20", "500000", dict(age=30, sex="M", term=15, payment_mode="annual"),
     "term 15 is not offered"),
    ("TL20", "500000", dict(age=30, sex="M", term=20, payment_mode="weekly"),
     "payment_mode 'weekly'"),
    ("TL20", "500000", dict(age=30, sex="M", term=20), "payment_mode is required"),
    ("TL20", "-5", dict(age=30, sex="M", term=20, payment_mode="annual"), "sum_insured must be"),
    ("TL20", "abc", dict(age=30, sex="M", term=20, payment_mode="annual"),
     "sum_insured 'abc' is not an amount"),
    ("TL20", "9000000", dict(age=30, sex="M", term=20, payment_mode="annual"),
     "sum_insured 9000000 is outside"),
    ("TL20", "100000.001", dict(age=30, sex="M", term=20, payment_mode="annual"),
     "more places than fen"),
    # each valid alone, but no 30-year term at 50
    ("TL20", "500000", dict(age=50, sex="M", term=30, payment_mode="annual"), "has no rate"),
    ("MOT1", "150000", dict(term=1, payment_mode="annual"), "seats is required"),
])
def test_bad_quote_parameters_are_refused_clearly(store: Store, code: str, sum_insured: str,
                                                  params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        quote(store, code, sum_insured, **params)


_PARAMS: dict[str, list[dict[str, Any]]] = {
    "TL20": [dict(age=a, sex=s, term=t, payment_mode=m) for a in (18, 33, 44) for s in "MF"
             for t in (10, 20, 30) for m in ("annual", "monthly", "single")],
    "ACC1": [dict(age=a, term=1, payment_mode=m) for a in (20, 50, 60)
             for m in ("annual", "monthly")],
    "CI30": [dict(age=a, sex=s, term=t, payment_mode="annual") for a in (25, 40) for s in "MF"
             for t in (20, 30)],
    "MOT1": [dict(seats=n, term=1, payment_mode="annual") for n in (2, 7, 12)],
}


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_premium_is_monotonic_in_sum_insured(tables: dict[str, RateTable],
                                             data: st.DataObject) -> None:
    code = data.draw(st.sampled_from(sorted(_PARAMS)))
    params = data.draw(st.sampled_from(_PARAMS[code]))
    t = tables[code]
    lo, hi = int(t.product.min_sum * 100), int(t.product.max_sum * 100)
    a = data.draw(st.integers(lo, hi))
    b = data.draw(st.integers(a, hi))
    qa = t.quote(Decimal(a) / 100, **params)
    qb = t.quote(Decimal(b) / 100, **params)
    assert qa.premium <= qb.premium


# -- policy lookup ------------------------------------------------------------------------

def _holder_last4(store: Store, number: str) -> str:
    return store.query("SELECT c.id_last4 FROM policies p JOIN customers c "
                       "ON c.id = p.holder_id WHERE p.number = ?", [number])[0]["id_last4"]


def test_policy_lookup_with_the_right_id_digits(store: Store, demo: tuple[Path, DemoSummary]
                                                ) -> None:
    number = next(n for n in demo[1].policy_numbers
                  if store.query("SELECT status FROM policies WHERE number = ?",
                                 [n])[0]["status"] == "in_force")
    row = store.query("SELECT * FROM policies WHERE number = ?", [number])[0]
    answer = PolicyLookup(store).lookup(number, _holder_last4(store, number).replace("X", "*"))
    assert answer.outcome is PolicyOutcome.OK
    p = answer.policy
    assert p is not None
    assert p.status == "in_force"
    assert p.product_name_zh
    assert p.sum_insured == Decimal(row["sum_insured_fen"]) / 100
    assert p.premium == Decimal(row["premium_fen"]) / 100
    assert p.next_due_date == date.fromisoformat(row["next_due_date"])
    assert p.next_due_amount == p.premium


def test_wrong_id_digits_and_unknown_numbers_count_towards_a_person(
        store: Store, demo: tuple[Path, DemoSummary]) -> None:
    number = demo[1].policy_numbers[0]
    right = _holder_last4(store, number)
    wrong = "0000" if right != "0000" else "1111"
    session = PolicyLookup(store)
    first = session.lookup(number, wrong)
    assert (first.outcome, first.policy, first.tries) == (PolicyOutcome.WRONG, None, 1)
    # An unknown number is a wrong try too: a stranger learns nothing about which exist.
    second = session.lookup("999999999999", right)
    assert (second.outcome, second.tries) == (PolicyOutcome.WRONG, 2)
    # Right digits after a failure still answer.
    assert session.lookup(number, right).outcome is PolicyOutcome.OK
    third = session.lookup(number, wrong)
    assert (third.outcome, third.tries) == (PolicyOutcome.TO_PERSON, 3)
    # After three failures even the right digits go to a person.
    assert session.lookup(number, right).outcome is PolicyOutcome.TO_PERSON
    # A new call starts afresh.
    assert PolicyLookup(store).lookup(number, right).outcome is PolicyOutcome.OK


# -- salespeople --------------------------------------------------------------------------

def test_salesperson_lookup(store: Store) -> None:
    sp = find_salesperson(store, "310001")
    assert sp is not None
    assert sp.branch.endswith("营业部")
    assert sp.licence_status == "valid"
    assert sp.phone and len(sp.phone) == 11
    expired = find_salesperson(store, "310007")
    assert expired is not None
    assert expired.licence_status == "expired"
    assert find_salesperson(store, "999999") is None


def test_pin_lockout_after_five_and_locked_stays_locked(store: Store) -> None:
    code = "310002"
    right = demo_pin(code)
    wrong = f"{(int(right) + 1) % 10_000:04d}"
    assert check_pin(store, code, right) is PinResult.OK
    for _ in range(MAX_PIN_FAILURES - 1):
        assert check_pin(store, code, wrong) is PinResult.WRONG
    # A right PIN before the fifth failure resets the count.
    assert check_pin(store, code, right) is PinResult.OK
    for _ in range(MAX_PIN_FAILURES - 1):
        assert check_pin(store, code, wrong) is PinResult.WRONG
    assert check_pin(store, code, wrong) is PinResult.LOCKED
    assert check_pin(store, code, right) is PinResult.LOCKED
    assert store.query("SELECT locked FROM salespeople WHERE code = ?", [code]) == [{"locked": 1}]
    # Other codes are untouched.
    assert check_pin(store, "310003", demo_pin("310003")) is PinResult.OK
    assert check_pin(store, "999999", "1234") is PinResult.UNKNOWN
    unlock_salesperson(store, code)
    assert check_pin(store, code, right) is PinResult.OK


def test_pins_are_not_stored_in_clear(store: Store) -> None:
    for r in store.query("SELECT code, pin_hash FROM salespeople"):
        assert r["pin_hash"].startswith("pbkdf2_sha256$")
        assert demo_pin(r["code"]) not in r["pin_hash"].split("$")


def test_commission_figures_are_that_salespersons_only(store: Store) -> None:
    this, last = salesperson_figures(store, "310004", TODAY)
    assert (this.month, last.month) == ("2026-11", "2026-10")
    rows = {r["month"]: r for r in store.query(
        "SELECT * FROM commissions WHERE salesperson_code = '310004'")}
    assert len(rows) == 12
    assert this.commission == Decimal(rows["2026-11"]["commission_fen"]) / 100
    assert this.premium_written == Decimal(rows["2026-11"]["premium_fen"]) / 100
    assert last.policies_sold == rows["2026-10"]["policies_sold"]
    other, _ = salesperson_figures(store, "310005", TODAY)
    assert other != this
    # January's "last month" is December of the year before.
    _, dec = salesperson_figures(store, "310004", date(2026, 1, 5))
    assert dec.month == "2025-12"
    assert dec.commission == Decimal(rows["2025-12"]["commission_fen"]) / 100
    # No row (unknown code or a month outside the data): zeros, not someone else's.
    none, _ = salesperson_figures(store, "999999", TODAY)
    assert (none.commission, none.policies_sold) == (Decimal("0.00"), 0)


# -- claims -------------------------------------------------------------------------------

def test_claim_case_numbers_are_unique(store: Store, demo: tuple[Path, DemoSummary]) -> None:
    numbers = demo[1].policy_numbers[:5]
    now = datetime(2026, 11, 26, 9, 30)
    futures_cases = [report_claim(store, n, now=now, caller="13800138000",
                                  recording=f"claims/{i}.wav") for i, n in enumerate(numbers)]
    cases = [*futures_cases, report_claim(store, numbers[0], now=datetime(2026, 11, 27, 8, 0))]
    assert len(set(cases)) == len(cases)
    assert cases[0] == "202611260001"
    assert cases[4] == "202611260005"
    assert cases[5] == "202611270001"
    assert all(c.isdigit() for c in cases)
    row = store.query("SELECT * FROM claims WHERE case_number = ?", [cases[1]])[0]
    assert (row["policy_number"], row["status"], row["description_recording"]) == (
        numbers[1], "reported", "claims/1.wav")


def test_claim_on_unknown_policy_is_refused_and_writes_nothing(store: Store) -> None:
    with pytest.raises(ValueError, match="policy_number '000' is not a known policy"):
        report_claim(store, "000", now=datetime(2026, 11, 26))
    assert store.query("SELECT count(*) AS n FROM claims") == [{"n": 0}]


# -- ID numbers ---------------------------------------------------------------------------

def test_id_numbers_are_never_stored_in_clear(demo: tuple[Path, DemoSummary],
                                              tmp_path: Path) -> None:
    path, summary = demo
    assert summary.sample_ids
    data = path.read_bytes()
    for wal in path.parent.glob(path.name + "-*"):
        data += wal.read_bytes()
    with Database(path) as db:
        for number, id_number in summary.sample_ids.items():
            assert len(id_number) == 18
            assert id_number[-1] == id_checksum(id_number[:17])
            assert id_number.encode() not in data
            assert id_number[:17].encode() not in data
            c = next(db.query("SELECT c.* FROM policies p JOIN customers c "
                              "ON c.id = p.holder_id WHERE p.number = ?", [number]))
            assert c["id_masked"] == id_number[:3] + "*" * 11 + id_number[-4:]
            assert id_matches(id_number, c["id_salt"], c["id_hash"])
            assert not id_matches(id_number[:-1] + "0" if id_number[-1] != "0"
                                  else id_number[:-1] + "1", c["id_salt"], c["id_hash"])


# -- demo data ----------------------------------------------------------------------------

def test_demo_data_counts_and_statuses(store: Store) -> None:
    def count(sql: str) -> int:
        return int(store.query(sql)[0]["n"])

    assert count("SELECT count(*) AS n FROM policies") == 2000
    assert count("SELECT count(*) AS n FROM products") == 4
    assert count("SELECT count(*) AS n FROM salespeople") == 20
    assert count("SELECT count(*) AS n FROM commissions") == 20 * 12
    assert {r["kind"] for r in store.query("SELECT kind FROM products")} == {
        "term_life", "accident", "critical_illness", "motor"}
    statuses = {r["status"]: r["n"] for r in store.query(
        "SELECT status, count(*) AS n FROM policies GROUP BY status")}
    assert set(statuses) == {"in_force", "lapsed", "surrendered", "pending"}
    assert statuses["in_force"] > 1200
    assert count("SELECT count(*) AS n FROM policies WHERE status = 'surrendered' "
                 "AND next_due_date IS NOT NULL") == 0
    assert count("SELECT count(*) AS n FROM policies WHERE status = 'lapsed' "
                 "AND next_due_date >= '2026-11-26'") == 0
    assert count("SELECT count(*) AS n FROM policies WHERE status = 'in_force' "
                 "AND payment_mode != 'single' AND next_due_date <= '2026-11-26'") == 0
    assert count("SELECT count(DISTINCT branch) AS n FROM salespeople") == 5
    # Every premium is what the rate table quotes.
    for r in store.query("SELECT p.*, c.birthday, c.sex FROM policies p "
                         "JOIN customers c ON c.id = p.insured_id LIMIT 50"):
        if r["product_code"] == "MOT1":
            continue  # seats are not kept on the policy
        issued, born = date.fromisoformat(r["issued_on"]), date.fromisoformat(r["birthday"])
        age = issued.year - born.year - ((issued.month, issued.day) < (born.month, born.day))
        q = quote(store, r["product_code"], Decimal(r["sum_insured_fen"]) / 100, age=age,
                  sex=r["sex"], term=r["term"], payment_mode=r["payment_mode"])
        assert q.premium == Decimal(r["premium_fen"]) / 100, r["number"]


def test_demo_load_is_idempotent_and_deterministic(tmp_path: Path,
                                                   demo: tuple[Path, DemoSummary]) -> None:
    with Store(tmp_path / "a.db") as s:
        first = load_demo_data(s, 300, today=TODAY, pin_iterations=1000)
        assert first.loaded and first.policies == 300
        again = load_demo_data(s, 300, today=TODAY, pin_iterations=1000)
        assert not again.loaded
        assert s.query("SELECT count(*) AS n FROM policies") == [{"n": 300}]
        rows = s.query("SELECT * FROM policies ORDER BY number LIMIT 20")
    with Store(tmp_path / "b.db") as s:
        load_demo_data(s, 300, today=TODAY, pin_iterations=1000)
        assert s.query("SELECT * FROM policies ORDER BY number LIMIT 20") == rows


# -- bench --------------------------------------------------------------------------------

def test_bench_lookup_prints_its_figures_as_json() -> None:
    result = CliRunner().invoke(main, ["bench", "lookup", "--policies", "500",
                                       "--lookups", "200"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.splitlines()[-1])
    assert figures["policies"] == 500
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
