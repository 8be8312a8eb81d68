"""``appliance bench web``: the admin's list and search pages on a full book, and a bulk
policy import.

Builds a throw-away database with the demo book (``policies`` policies) and ``calls`` CDR
rows spread over half a year, logs in through the app, then times requests in-process
through Flask's test client: the time is the server's (routing, the guard, the queries,
the audit-log write, the template), without a network or a browser. List pages are the
first and deep pages of the policy, customer and call lists; searches are by policy
number, holder name, status and product, salesperson, customer name, phone and ID digits,
call number and date range, and the recordings by policy number, number, agent and dates.
Every call is recorded (a row of the recordings index), most inbound ones reached a seat
and a third keyed a policy number. Then a CSV of ``import_rows`` new policies (new holders,
every row valid) goes through the import form as a browser would post it, timed from the
upload to the answer (``import_seconds``); then another as .xlsx (``import_xlsx_seconds``;
making the workbook is not timed).
"""

from __future__ import annotations

import csv
import io
import random
import re
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from appliance.insurance.demo_data import PHONE_PREFIXES, id_checksum, load_demo_data
from appliance.store.db import Store
from web import create_app
from web.accounts import hash_password
from web.policy_import import COLUMNS
from web.sheets import xlsx_bytes

PASSWORD = "Bench-Password-1"


AGENTS = 8


def _calls(db: Database, n: int, rng: random.Random, end: float) -> None:
    """``n`` calls over half a year, each recorded; a third of the inbound ones keyed a
    policy number in the IVR, and most reached one of the seats."""
    start = end - 183 * 86400
    policies = [r[0] for r in db.execute("SELECT number FROM policies")]
    rows, recordings, entries = [], [], []
    for i in range(n):
        t = start + (end - start) * i / n
        inbound = rng.random() < 0.8
        number = rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        call_id = f"bench-{i:07d}"
        ended = t + rng.uniform(20, 400)
        path = f"/var/lib/appliance/recordings/bench/{call_id}.wav"
        rows.append((call_id, f"dahdi-{rng.randrange(1, 31)}", "asterisk",
                     "in" if inbound else "out", number if inbound else "95500",
                     "95500" if inbound else number, t, t + 3, ended,
                     "caller", "1" if inbound else "", path,
                     rng.choice(policies) if inbound and policies and rng.random() < 0.3
                     else None))
        recordings.append((path, call_id, t, int((ended - t) * 50), ended - t, ended))
        if inbound and rng.random() < 0.7:
            seat = rng.randrange(1, AGENTS + 1)
            entries.append((f"e-{call_id}", call_id, number, t + 30, ended,
                            f"s{seat}", ended - t - 40, f"A{seat:03d}"))
    db.conn.executemany(
        "INSERT INTO calls (call_id, line, driver, direction, caller, callee, started_at,"
        " answered_at, ended_at, end_cause, keys, recording, policy_number)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.conn.executemany(
        "INSERT INTO recordings (path, call_id, started_at, frames, seconds, indexed_at)"
        " VALUES (?, ?, ?, ?, ?, ?)", recordings)
    db.conn.executemany(
        "INSERT INTO acd_seats (id, number, driver, name, updated_at) VALUES (?, ?, 'sim', ?, 0)",
        [(f"s{k}", f"80{k:02d}", f"坐席{k}") for k in range(1, AGENTS + 1)])
    db.conn.executemany(
        "INSERT INTO acd_entries (key, queue, call_id, caller, language, priority, joined_at,"
        " ended_at, outcome, waited_seconds, answered_by, talk_seconds, agent)"
        " VALUES (?, 'service', ?, ?, 'zh', 0, ?, ?, 'answered', 8, ?, ?, ?)", entries)


def _import_rows(n: int, rng: random.Random, prefix: str) -> list[list[Any]]:
    rows: list[list[Any]] = [[c.zh for c in COLUMNS]]
    for i in range(n):
        born = date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 40))
        first = f"310104{born:%Y%m%d}{rng.randrange(1000):03d}"
        rows.append([f"{prefix}{i:08d}", "TL20", f"导入{i}", first + id_checksum(first),
                     rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}", "", "",
                     "有效", "100000", "235.00", "年缴", "20", "2026-06-01", "2027-06-01",
                     f"{310001 + rng.randrange(20)}"])
    return rows


def _csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def _p95(times: list[float]) -> float:
    return round(statistics.quantiles(times, n=100)[94], 2)


def run_web_bench(policies: int = 100_000, calls: int = 500_000, rounds: int = 20,
                  import_rows: int = 100_000, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        store = Store(data / "appliance.db")
        try:
            t0 = time.perf_counter()
            load_demo_data(store, policies, today=date(2026, 11, 26), pin_iterations=1000)
            hashed = hash_password(PASSWORD)
            store.write(lambda db: db.execute(
                "INSERT INTO users (username, role, password_hash, must_change, created_at)"
                " VALUES ('bench', 'admin', ?, 0, ?)", [hashed, time.time()]))
            store.write(lambda db: _calls(db, calls, rng, time.time()))
            build_s = time.perf_counter() - t0

            app = create_app(data, store=store)
            client = app.test_client()
            page = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token, "no CSRF token on the login page"
            res = client.post("/login", data={"username": "bench", "password": PASSWORD,
                                              "csrf_token": token.group(1)})
            assert res.status_code == 302, "bench login failed"
            with client.session_transaction() as sess:
                csrf = str(sess["csrf"])

            sample = store.query("SELECT p.number, c.name, c.phone, c.id_last4"
                                 " FROM policies p JOIN customers c ON c.id = p.holder_id"
                                 " ORDER BY random() LIMIT ?", [rounds])
            callers = store.query("SELECT caller, policy_number FROM calls"
                                  " WHERE direction = 'in' AND policy_number IS NOT NULL"
                                  " ORDER BY random() LIMIT ?", [rounds])
            deep = max(1, policies // 50 // 2)
            lists = [("policies_first", "/policies/"),
                     ("policies_deep", f"/policies/?page={deep}"),
                     ("customers_first", "/customers/"),
                     ("customers_deep", "/customers/?page=500"),
                     ("calls_first", "/calls/"), ("calls_deep", "/calls/?page=200"),
                     ("recordings_first", "/recordings/"),
                     ("recordings_deep", "/recordings/?page=200"),
                     ("salespeople", "/salespeople/")]
            times: dict[str, list[float]] = {}

            def get(kind: str, url: str) -> None:
                t = time.perf_counter()
                r = client.get(url)
                times.setdefault(kind, []).append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {r.status_code}")

            for i in range(rounds):
                s, c = sample[i % len(sample)], callers[i % len(callers)]
                for kind, url in lists:
                    get(f"list_{kind}", url)
                    times.setdefault("list", []).append(times[f"list_{kind}"][-1])
                day = date(2026, 11, 26) - timedelta(days=rng.randrange(170))
                for kind, url in (
                        ("policy_number", f"/policies/?q={s['number'][:8]}"),
                        ("policy_holder", f"/policies/?q={s['name']}"),
                        ("policy_filters", "/policies/?status=lapsed&product=CI30"),
                        ("policy_salesperson", f"/policies/?salesperson={310001 + i % 20}"),
                        ("customer_name", f"/customers/?q={s['name'][:1]}"),
                        ("customer_phone", f"/customers/?q={s['phone']}"),
                        ("customer_id4", f"/customers/?q={s['id_last4']}"),
                        ("call_number", f"/calls/?number={c['caller']}"),
                        ("call_dates", f"/calls/?from={day}&to={day + timedelta(days=7)}"),
                        ("call_number_dates", f"/calls/?number={c['caller'][:7]}&from={day}"),
                        ("recording_policy", f"/recordings/?policy={c['policy_number']}"),
                        ("recording_number", f"/recordings/?number={c['caller']}"),
                        ("recording_agent",
                         f"/recordings/?agent=A{i % AGENTS + 1:03d}&from={day}"),
                        ("recording_dates",
                         f"/recordings/?from={day}&to={day + timedelta(days=7)}"),
                ):
                    get(kind, url)
                    times.setdefault("search", []).append(times[kind][-1])

            def post(body: bytes, name: str, prefix: str) -> float:
                t = time.perf_counter()
                res = client.post("/policies/import", data={
                    "csrf_token": csrf, "file": (io.BytesIO(body), name)},
                    content_type="multipart/form-data")
                seconds = time.perf_counter() - t
                done = store.query("SELECT count(*) AS n FROM policies WHERE number >= ?"
                                   " AND number < ?", [prefix, prefix + "~"])[0]["n"]
                if res.status_code != 200 or done != import_rows:
                    raise RuntimeError(f"{name} import failed: HTTP {res.status_code},"
                                       f" {done} rows")
                return seconds

            import_s = post(_csv(_import_rows(import_rows, rng, "IMC")), "policies.csv", "IMC")
            rows = _import_rows(import_rows, rng, "IMX")
            import_xlsx_s = post(xlsx_bytes("保单", rows[0], rows[1:]), "policies.xlsx", "IMX")
            counts = store.query("SELECT (SELECT count(*) FROM policies) AS p,"
                                 " (SELECT count(*) FROM calls) AS c")[0]
        finally:
            store.close()
    result: dict[str, Any] = {
        "policies": policies, "calls": counts["c"], "build_s": round(build_s, 1),
        "requests": sum(len(v) for k, v in times.items() if k not in ("list", "search")),
        "list_p95_ms": _p95(times["list"]), "search_p95_ms": _p95(times["search"]),
    }
    for kind, values in times.items():
        if kind not in ("list", "search"):
            result[f"{kind}_p95_ms"] = _p95(values)
    result.update(import_rows=import_rows, import_seconds=round(import_s, 2),
                  import_xlsx_seconds=round(import_xlsx_s, 2), policies_after_import=counts["p"])
    return result
