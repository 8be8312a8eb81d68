"""Deterministic demo data that looks like a branch office's book: products, rate tables,
customers, policies, salespeople and twelve months of their commissions.

Everything comes from one seeded :class:`random.Random`, so the same ``seed``, ``policies``
and ``today`` give the same rows (salts included), which keeps demos and tests repeatable.
Premiums are quoted through :class:`~appliance.insurance.quote.RateTable` from the rate
rows loaded here, so a demo policy's premium is what the IVR would quote. Loading is
idempotent: if the demo products are already there, :func:`load_demo_data` does nothing.
All rows go in with ``insert_all`` in one write transaction, so 100 000 policies load in a
few seconds and a failure leaves no half-loaded book.

Demo PINs are :func:`demo_pin` of the salesperson's code, so a demo caller can log in.
Full ID numbers are never written; the first few are returned in the load summary, in
memory only, so tests can check the file does not contain them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from appliance.insurance.hashing import PIN_ITERATIONS, hash_id_number, hash_pin, mask_id_number
from appliance.insurance.quote import Product, RateRow, RateTable, to_fen
from appliance.store.db import Store

DEMO_PRODUCT_CODES = ("TL20", "ACC1", "CI30", "MOT1")

BRANCHES = ("城东营业部", "城西营业部", "城南营业部", "城北营业部", "高新区营业部")

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯"
            "邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢")
GIVEN = ("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红建国志明海燕"
         "晓东文博浩然子涵欣怡宇轩梓萱俊杰雨桐思远佳怡")

# Real area codes (district level) for the first six digits of an ID number.
REGIONS = ("110101", "110105", "310104", "310115", "440305", "440106", "320102", "330106",
           "510107", "420106", "610113", "370202")

PHONE_PREFIXES = ("138", "139", "158", "159", "136", "186", "187", "188", "137", "150", "151",
                  "152", "189", "135", "177", "199")

STATUS_WEIGHTS = (("in_force", 75), ("lapsed", 10), ("surrendered", 5), ("pending", 10))

_TL_BANDS = ((18, 25), (26, 30), (31, 35), (36, 40), (41, 45), (46, 50), (51, 55), (56, 60))
# Term life, male, annual, 10-year term, per 1000 sum insured: rises with age as mortality
# does; women ×0.75; longer terms level the premium over more expensive years.
_TL_MALE = ("0.85", "1.05", "1.35", "1.90", "2.80", "4.20", "6.30", "9.40")
_TL_TERMS = {10: Decimal("1.00"), 20: Decimal("1.25"), 30: Decimal("1.55")}
_TL_MAX_AGE = {10: 60, 20: 55, 30: 45}  # the term must end by 65–75
_CI_BANDS = _TL_BANDS[:7]
_CI_MALE = ("6.50", "8.20", "10.60", "13.90", "18.40", "24.50", "32.00")
_CI_TERMS = {20: Decimal("1.00"), 30: Decimal("1.22")}
_CI_MAX_AGE = {20: 55, 30: 45}
_ACC_BANDS = ((18, 40, "1.20"), (41, 55, "1.50"), (56, 65, "2.40"))
# Motor: base premium plus a rate on the vehicle's value, by value band, times a factor for
# seats. The rate falls as the value rises, and each band's base is raised by what the
# lower rate saves at the band's edge, so the premium never drops as the value rises.
_MOT_VALUES = ((30_000, 100_000, "13.20"), (100_000, 200_000, "12.10"),
               (200_000, 500_000, "11.00"), (500_000, 2_000_000, "9.60"))
_MOT_BASE = Decimal(600)
_MOT_SEATS = ((1, 5, Decimal("1.00")), (6, 9, Decimal("1.20")), (10, 36, Decimal("1.80")))
MONTHLY_FACTOR = Decimal("0.09")  # 12 monthly payments cost 8% more than one annual one
SINGLE_FACTOR = Decimal("0.78")  # a single premium is discounted for money paid up front
_Q4 = Decimal("0.0001")


@dataclass
class DemoSummary:
    """What a load put in; empty (``loaded=False``) when the data was already there."""

    loaded: bool
    products: int = 0
    policies: int = 0
    customers: int = 0
    salespeople: int = 0
    # policy number → the holder's full ID number, for a few policies: memory only.
    sample_ids: dict[str, str] = field(default_factory=dict)
    policy_numbers: list[str] = field(default_factory=list)


def demo_pin(code: str) -> str:
    """The demo PIN of salesperson ``code`` (documented so demo callers can log in)."""
    return f"{int(code) * 37 % 10_000:04d}"


def id_checksum(first17: str) -> str:
    """The GB 11643 check character of an 18-character ID number."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c) * w for c, w in zip(first17, weights, strict=True))
    return "10X98765432"[total % 11]


def _products() -> list[dict[str, Any]]:
    return [
        dict(code="TL20", name_zh="安心定期寿险", name_en="Peace of Mind Term Life",
             kind="term_life", min_sum_fen=to_fen(Decimal(50_000)),
             max_sum_fen=to_fen(Decimal(3_000_000)),
             clauses_zh="被保险人于保险期间内身故或全残，本公司按基本保额给付保险金。"
                        "等待期90天；宽限期60天，逾期未缴费保单失效。",
             clauses_en="Pays the sum insured on death or total disability within the term. "
                        "90-day waiting period; 60-day grace period, after which the policy "
                        "lapses."),
        dict(code="ACC1", name_zh="综合意外伤害保险", name_en="Comprehensive Accident Cover",
             kind="accident", min_sum_fen=to_fen(Decimal(10_000)),
             max_sum_fen=to_fen(Decimal(1_000_000)),
             clauses_zh="因意外伤害导致身故、伤残或医疗费用，按条款约定给付。一年期，可续保。",
             clauses_en="Pays for death, disability or medical costs from an accident, as the "
                        "clauses set out. One-year term, renewable."),
        dict(code="CI30", name_zh="健康无忧重大疾病保险", name_en="Worry-Free Critical Illness",
             kind="critical_illness", min_sum_fen=to_fen(Decimal(50_000)),
             max_sum_fen=to_fen(Decimal(1_000_000)),
             clauses_zh="确诊合同约定的120种重大疾病之一，按基本保额给付重大疾病保险金。等待期180天。",
             clauses_en="Pays the sum insured on diagnosis of one of 120 listed critical "
                        "illnesses. 180-day waiting period."),
        dict(code="MOT1", name_zh="机动车商业保险", name_en="Motor Commercial Insurance",
             kind="motor", min_sum_fen=to_fen(Decimal(30_000)),
             max_sum_fen=to_fen(Decimal(2_000_000)),
             clauses_zh="承保车辆损失及第三者责任。保额按车辆实际价值确定，保险期间一年。",
             clauses_en="Covers damage to the vehicle and third-party liability. The sum "
                        "insured is the vehicle's actual value; one-year term."),
    ]


def _rate(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict(age_min=None, age_max=None, sex=None, term=None, payment_mode=None,
                               value_min_fen=None, value_max_fen=None, seats_min=None,
                               seats_max=None, base_fen=0)
    row.update(kw)
    row["rate_per_1000"] = str(Decimal(row["rate_per_1000"]).quantize(_Q4))
    return row


def _life_rates(code: str, bands: tuple[tuple[int, int], ...], male: tuple[str, ...],
                terms: dict[int, Decimal], max_age: dict[int, int], female: Decimal,
                single: bool) -> list[dict[str, Any]]:
    rows = []
    for (lo, hi), base in zip(bands, male, strict=True):
        for sex, sex_factor in (("M", Decimal(1)), ("F", female)):
            for term, term_factor in terms.items():
                if lo > max_age[term]:
                    continue
                annual = Decimal(base) * sex_factor * term_factor
                common = dict(product_code=code, age_min=lo, age_max=min(hi, max_age[term]),
                              sex=sex, term=term)
                rows.append(_rate(**common, payment_mode="annual", rate_per_1000=annual))
                rows.append(_rate(**common, payment_mode="monthly",
                                  rate_per_1000=annual * MONTHLY_FACTOR))
                if single:
                    rows.append(_rate(**common, payment_mode="single",
                                      rate_per_1000=annual * term * SINGLE_FACTOR))
    return rows


def demo_rates() -> list[dict[str, Any]]:
    rows = _life_rates("TL20", _TL_BANDS, _TL_MALE, _TL_TERMS, _TL_MAX_AGE, Decimal("0.75"),
                       single=True)
    rows += _life_rates("CI30", _CI_BANDS, _CI_MALE, _CI_TERMS, _CI_MAX_AGE, Decimal("0.90"),
                        single=False)
    for lo, hi, rate in _ACC_BANDS:
        for mode, factor in (("annual", Decimal(1)), ("monthly", MONTHLY_FACTOR)):
            rows.append(_rate(product_code="ACC1", age_min=lo, age_max=hi, term=1,
                              payment_mode=mode, rate_per_1000=Decimal(rate) * factor))
    base, prev_rate = _MOT_BASE, None
    for vlo, vhi, rate in _MOT_VALUES:
        if prev_rate is not None:
            base += Decimal(vlo) / 1000 * (prev_rate - Decimal(rate))
        prev_rate = Decimal(rate)
        for slo, shi, factor in _MOT_SEATS:
            # Bands share no fen: a value on the boundary belongs to the lower band.
            vmin = to_fen(Decimal(vlo)) + (0 if vlo == _MOT_VALUES[0][0] else 1)
            rows.append(_rate(product_code="MOT1", value_min_fen=vmin,
                              value_max_fen=to_fen(Decimal(vhi)), seats_min=slo, seats_max=shi,
                              term=1, payment_mode="annual", base_fen=to_fen(base * factor),
                              rate_per_1000=Decimal(rate) * factor))
    return rows


def _tables(products: list[dict[str, Any]], rates: list[dict[str, Any]]) -> dict[str, RateTable]:
    tables = {}
    for p in products:
        product = Product(p["code"], p["name_zh"], p["name_en"], p["kind"],
                          Decimal(p["min_sum_fen"]) / 100, Decimal(p["max_sum_fen"]) / 100)
        rows = [RateRow.from_db(r) for r in rates if r["product_code"] == p["code"]]
        tables[p["code"]] = RateTable(product, rows)
    return tables


def _name(rng: random.Random) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def _phone(rng: random.Random) -> str:
    return rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, min(d.day, 28))


class _Customers:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rows: list[dict[str, Any]] = []
        self.full_ids: list[str] = []

    def add(self, birthday: date, sex: str | None = None) -> int:
        rng = self.rng
        sex = sex or rng.choice("MF")
        seq = rng.randrange(0, 500) * 2 + (1 if sex == "M" else 0)  # odd for men
        first17 = f"{rng.choice(REGIONS)}{birthday:%Y%m%d}{seq:03d}"
        id_number = first17 + id_checksum(first17)
        salt, digest = hash_id_number(id_number, rng.randbytes(16))
        self.rows.append(dict(id=len(self.rows) + 1, name=_name(rng), sex=sex,
                              birthday=birthday.isoformat(), phone=_phone(rng), id_salt=salt,
                              id_hash=digest, id_masked=mask_id_number(id_number),
                              id_last4=id_number[-4:]))
        self.full_ids.append(id_number)
        return len(self.rows)


def build_demo_rows(policies: int, *, seed: int = 2026, today: date,
                    pin_iterations: int = PIN_ITERATIONS
                    ) -> tuple[dict[str, list[dict[str, Any]]], DemoSummary]:
    """All the demo rows by table (customer ids from 1), and the summary of them."""
    rng = random.Random(seed)
    products = _products()
    rates = demo_rates()
    tables = _tables(products, rates)

    salespeople = []
    for i in range(20):
        code = f"{310001 + i}"
        status = "expired" if i in (6, 13) else "suspended" if i == 17 else "valid"
        salespeople.append(dict(
            code=code, name=_name(rng), branch=BRANCHES[i % len(BRANCHES)],
            licence_no=f"0200013100{rng.randrange(10**6):06d}20{rng.randrange(10**8):08d}",
            licence_status=status, phone=_phone(rng),
            pin_hash=hash_pin(demo_pin(code), iterations=pin_iterations,
                              salt=rng.randbytes(16)),
            failed_pins=0, locked=0))

    customers = _Customers(rng)
    policy_rows = []
    statuses = [s for s, _ in STATUS_WEIGHTS]
    weights = [w for _, w in STATUS_WEIGHTS]
    start = date(2019, 1, 1)
    span = (today - start).days - 30
    summary = DemoSummary(loaded=True)
    for i in range(policies):
        status = rng.choices(statuses, weights)[0]
        # A pending policy was proposed in the last month and awaits its first premium.
        issued = (today - timedelta(days=rng.randrange(1, 30)) if status == "pending"
                  else start + timedelta(days=rng.randrange(span)))
        kind = rng.choices(DEMO_PRODUCT_CODES, (35, 25, 25, 15))[0]
        age = rng.randint(18, 55 if kind != "ACC1" else 65)
        # Exactly `age` on the issue date, as the rate table was read: born within the
        # year before the date `age` years before issue.
        try:
            anniversary = issued.replace(year=issued.year - age)
        except ValueError:  # issued on 29 February
            anniversary = issued.replace(year=issued.year - age, day=28)
        birthday = anniversary - timedelta(days=rng.randrange(365))
        # Mostly people insure themselves; otherwise a parent or spouse holds the policy.
        holder = customers.add(birthday if kind == "MOT1" or rng.random() < 0.8
                               else birthday - timedelta(days=rng.randrange(365 * 30)))
        insured = (holder if customers.rows[holder - 1]["birthday"] == birthday.isoformat()
                   else customers.add(birthday))
        sex = customers.rows[insured - 1]["sex"]
        seats = None
        if kind == "TL20":
            term = rng.choice([t for t, a in _TL_MAX_AGE.items() if age <= a])
            mode = rng.choices(("annual", "monthly", "single"), (70, 20, 10))[0]
            amount = Decimal(rng.randrange(2, 41) * 25_000)
        elif kind == "CI30":
            term = rng.choice([t for t, a in _CI_MAX_AGE.items() if age <= a])
            mode = rng.choices(("annual", "monthly"), (75, 25))[0]
            amount = Decimal(rng.randrange(1, 11) * 50_000)
        elif kind == "ACC1":
            term, mode = 1, rng.choices(("annual", "monthly"), (85, 15))[0]
            amount = Decimal(rng.randrange(1, 21) * 50_000)
        else:
            term, mode = 1, "annual"
            amount = Decimal(rng.randrange(300, 6000) * 100)
            seats = rng.choices((5, 7, 19), (85, 13, 2))[0]
        q = tables[kind].quote(amount, age=age, sex=sex, term=term, payment_mode=mode,
                               seats=seats)
        step = 1 if mode == "monthly" else 12
        due: date | None
        if status == "pending":
            due = issued + timedelta(days=30)  # the first premium, awaited at issue
        elif status == "surrendered" or mode == "single":
            due = None
        else:
            due = issued
            while due <= today:
                due = _add_months(due, step)
            if status == "lapsed":  # missed a payment and the grace period
                due = _add_months(due, -step * rng.randint(2, 4) if step == 1 else -step)
        branch = rng.randrange(len(BRANCHES))
        number = f"{issued.year}{branch + 1:02d}{i + 1:06d}"
        policy_rows.append(dict(
            number=number, product_code=kind, holder_id=holder, insured_id=insured,
            status=status, sum_insured_fen=to_fen(amount), premium_fen=to_fen(q.premium),
            payment_mode=mode, term=term, issued_on=issued.isoformat(),
            next_due_date=due.isoformat() if due else None,
            next_due_fen=to_fen(q.premium) if due else None,
            salesperson_code=salespeople[rng.randrange(len(salespeople))]["code"]))
        if i < 20:
            summary.sample_ids[number] = customers.full_ids[holder - 1]
        summary.policy_numbers.append(number)

    commissions = []
    for sp in salespeople:
        for back in range(12):
            month = _add_months(today.replace(day=1), -back)
            premium = rng.randrange(30_000, 400_000) * 100
            commissions.append(dict(
                salesperson_code=sp["code"], month=f"{month:%Y-%m}",
                premium_fen=premium, policies_sold=rng.randint(2, 30),
                commission_fen=premium * rng.randint(8, 25) // 100))
    summary.products = len(products)
    summary.policies = len(policy_rows)
    summary.customers = len(customers.rows)
    summary.salespeople = len(salespeople)
    rows = dict(products=products, rates=rates, salespeople=salespeople,
                customers=customers.rows, policies=policy_rows, commissions=commissions)
    return rows, summary


def demo_loaded(store: Store) -> bool:
    return bool(store.query("SELECT 1 FROM products WHERE code = ?", [DEMO_PRODUCT_CODES[0]]))


def load_demo_data(store: Store, policies: int = 2000, *, seed: int = 2026,
                   today: date | None = None,
                   pin_iterations: int = PIN_ITERATIONS) -> DemoSummary:
    """Load the demo book unless it is already there; return what was loaded."""
    if demo_loaded(store):
        return DemoSummary(loaded=False)
    rows, summary = build_demo_rows(policies, seed=seed, today=today or date.today(),
                                    pin_iterations=pin_iterations)

    def insert(db: Database) -> bool:
        # Checked again on the writer: two loads racing must not both insert.
        if db.execute("SELECT 1 FROM products WHERE code = ?",
                      [DEMO_PRODUCT_CODES[0]]).fetchone():
            return False
        # Customers may already exist (entered by staff): shift the demo ids past them.
        offset = db.execute("SELECT coalesce(max(id), 0) FROM customers").fetchone()[0]
        if offset:
            for c in rows["customers"]:
                c["id"] += offset
            for p in rows["policies"]:
                p["holder_id"] += offset
                p["insured_id"] += offset
        for table in ("products", "rates", "salespeople", "customers", "policies",
                      "commissions"):
            db[table].insert_all(rows[table], batch_size=2000)  # type: ignore[union-attr]
        return True

    if not store.write(insert):
        return DemoSummary(loaded=False)
    return summary
