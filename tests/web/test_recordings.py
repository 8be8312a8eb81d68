"""The call recordings page: the list with each call's record, search by date, number,
agent and policy number (and refusing what is not one), numbers masked by role, an agent
seeing only the calls they answered, playback with HTTP Range, downloads, the access log
row for each, and files served only from the recordings folder."""

from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.store.db import Store

DAY = 1764115200.0  # 2025-11-26 08:00 in Shanghai
POLICY = "880012345678"


def _wav(path: Path, seconds: float = 2.0, seed: int = 0) -> bytes:
    """A stereo 8 kHz WAV like the engine's (caller left, agent right)."""
    rng = np.random.default_rng(seed)
    samples = rng.integers(-8000, 8000, size=(int(8000 * seconds), 2), dtype=np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.tobytes())
    return path.read_bytes()


def add_call(store: Store, call_id: str, caller: str, at: float, path: str, *,
             agent: str | None = None, policy: str | None = None,
             wrap: str | None = None) -> None:
    """A finished inbound call with its recording indexed, answered at s1 by ``agent``."""

    def write(db: Any) -> None:
        db.execute("INSERT INTO calls (call_id, line, driver, direction, caller, callee,"
                   " started_at, answered_at, ended_at, end_cause, recording, policy_number)"
                   " VALUES (?, 'sim-1', 'sim', 'in', ?, '95500', ?, ?, ?, 'caller', ?, ?)",
                   [call_id, caller, at, at + 1, at + 60, path, policy])
        db.execute("INSERT INTO recordings (path, call_id, started_at, frames, seconds,"
                   " recovered, indexed_at) VALUES (?, ?, ?, 3000, 60.0, 0, ?)",
                   [path, call_id, at, at + 61])
        if agent:
            db.execute("INSERT OR IGNORE INTO acd_seats (id, number, driver, name, updated_at)"
                       " VALUES ('s1', '8001', 'sim', '坐席一', 0)")
            db.execute("INSERT INTO acd_entries (key, queue, call_id, caller, language,"
                       " priority, joined_at, ended_at, outcome, waited_seconds, answered_by,"
                       " talk_seconds, agent) VALUES (?, 'service', ?, ?, 'zh', 0, ?, ?,"
                       " 'answered', 5, 's1', 40, ?)",
                       [f"e-{call_id}", call_id, caller, at + 10, at + 60, agent])
        if wrap:
            db.execute("INSERT INTO call_wrapups (call_id, seat_id, agent, code, note, at)"
                       " VALUES (?, 's1', ?, ?, '', ?)", [call_id, agent or "", wrap, at + 70])

    store.write(write)


@pytest.fixture
def seeded(store: Store, data_dir: Path) -> dict[str, Any]:
    rec = data_dir / "recordings"
    mine, other = rec / "rec-mine.wav", rec / "rec-other.wav"
    audio = _wav(mine)
    _wav(other, seed=1)
    add_call(store, "rec-mine", "13912345678", DAY, str(mine), agent="agent",
             policy=POLICY, wrap="claim")
    add_call(store, "rec-other", "13698765432", DAY + 3600, str(other), agent="spare")
    ids = {r["call_id"]: r["id"] for r in store.query(
        "SELECT rowid AS id, call_id FROM recordings")}
    return {"audio": audio, "ids": ids, "dir": rec}


def fetch(client: Any, url: str, **kw: Any) -> Any:
    """GET ``url`` and read the whole answer (a file's answer is closed after)."""
    res = client.get(url, **kw)
    res.get_data()
    res.close()
    return res


def access_rows(store: Store) -> list[dict[str, Any]]:
    return store.query("SELECT username, role, kind, call_id, address FROM recording_access"
                       " ORDER BY id")


def test_the_list_shows_each_call_s_record_and_masks_numbers_by_role(
        as_role: Any, seeded: dict[str, Any]) -> None:
    sup, _ = as_role("supervisor")
    html = sup.get("/recordings/").get_data(as_text=True)
    assert "13912345678" in html and "13698765432" in html
    assert POLICY in html and "理赔" in html and "坐席一" in html and "service" in html
    auditor, _ = as_role("auditor")
    html = auditor.get("/recordings/").get_data(as_text=True)
    assert "139****5678" in html and "13912345678" not in html
    assert "/download.wav" not in html  # auditors listen, they do not take copies
    # An agent: only the call they answered, the number masked.
    agent, _ = as_role("agent")
    html = agent.get("/recordings/").get_data(as_text=True)
    assert "139****5678" in html and "136****5432" not in html
    # Searching for another agent's calls finds none of them.
    html = agent.get("/recordings/?agent=spare").get_data(as_text=True)
    assert 'data-call="rec-' not in html
    html = agent.get("/recordings/?agent=agent&from=2025-11-26").get_data(as_text=True)
    assert 'data-call="rec-mine"' in html
    assert fetch(agent, f"/recordings/{seeded['ids']['rec-other']}/play.wav").status_code == 404
    assert fetch(agent, f"/recordings/{seeded['ids']['rec-mine']}/play.wav").status_code == 200
    sales, _ = as_role("salesperson")
    assert sales.get("/recordings/").status_code == 403


@pytest.mark.parametrize(("query", "found"), [
    (f"policy={POLICY}", ["rec-mine"]),
    (f"policy={POLICY[:6]}", ["rec-mine"]),
    ("number=1369876", ["rec-other"]),
    ("number=95500", ["rec-other", "rec-mine"]),
    ("agent=spare", ["rec-other"]),
    ("from=2025-11-26&to=2025-11-26", ["rec-other", "rec-mine"]),
    ("from=2025-11-27", []),
])
def test_search_by_policy_number_agent_and_date(as_role: Any, seeded: dict[str, Any],
                                                query: str, found: list[str]) -> None:
    sup, _ = as_role("supervisor")
    html = sup.get(f"/recordings/?{query}").get_data(as_text=True)
    assert [c for c in ("rec-other", "rec-mine") if f'data-call="{c}"' in html] == found


INJECTIONS = ["' OR '1'='1", "1; DROP TABLE recordings; --", "\" OR 1=1 --",
              "1' UNION SELECT path FROM recordings --", "%' OR 1=1 --", "\x00"]


@pytest.mark.parametrize("field", ["number", "policy", "agent", "from", "to"])
def test_sql_injection_strings_in_the_search_find_nothing_and_break_nothing(
        as_role: Any, seeded: dict[str, Any], store: Store, field: str) -> None:
    sup, _ = as_role("supervisor")
    for text in INJECTIONS:
        res = sup.get("/recordings/", query_string={field: text})
        html = res.get_data(as_text=True)
        assert res.status_code == 200, (field, text)
        assert 'data-call="rec-' not in html or field in ("from", "to"), (field, text)
        if field in ("number", "policy", "from", "to"):
            assert 'role="alert"' in html, (field, text)
    assert store.query("SELECT count(*) AS n FROM recordings")[0]["n"] == 2


def test_playback_serves_ranges_and_logs_one_play_per_playback(
        as_role: Any, seeded: dict[str, Any], store: Store) -> None:
    sup, _ = as_role("supervisor")
    url = f"/recordings/{seeded['ids']['rec-mine']}/play.wav"
    audio: bytes = seeded["audio"]
    res = fetch(sup, url, headers={"Range": "bytes=0-"})
    assert res.status_code == 206 and res.data == audio
    res = fetch(sup, url, headers={"Range": "bytes=1000-1999"})
    assert res.status_code == 206 and res.data == audio[1000:2000]
    assert res.headers["Content-Range"] == f"bytes 1000-1999/{len(audio)}"
    assert res.headers["Accept-Ranges"] == "bytes"
    # The player's seek is part of the playback already logged.
    assert access_rows(store) == [{"username": "supervisor", "role": "supervisor",
                                   "kind": "play", "call_id": "rec-mine",
                                   "address": "127.0.0.1"}]
    # Someone else's seek straight into the file is their playback, logged.
    auditor, _ = as_role("auditor")
    res = fetch(auditor, url, headers={"Range": "bytes=44-"})
    assert res.status_code == 206 and res.data == audio[44:]
    assert [r["username"] for r in access_rows(store)] == ["supervisor", "auditor"]
    audit = store.query("SELECT username, action, target FROM audit_log"
                        " WHERE action = 'recording.play' ORDER BY id")
    assert [a["username"] for a in audit] == ["supervisor", "auditor"]


def test_a_download_is_logged_with_who_took_it(as_role: Any, seeded: dict[str, Any],
                                                store: Store) -> None:
    admin, _ = as_role("admin")
    res = fetch(admin, f"/recordings/{seeded['ids']['rec-other']}/download.wav")
    assert res.status_code == 200 and res.data == (seeded["dir"] / "rec-other.wav").read_bytes()
    assert "attachment" in res.headers["Content-Disposition"]
    assert access_rows(store) == [{"username": "admin", "role": "admin", "kind": "download",
                                   "call_id": "rec-other", "address": "127.0.0.1"}]
    auditor, _ = as_role("auditor")
    assert fetch(auditor, f"/recordings/{seeded['ids']['rec-other']}/download.wav"
                       ).status_code == 403
    html = auditor.get("/recordings/access").get_data(as_text=True)
    assert 'data-kind="download"' in html and "rec-other" in html and "admin" in html
    with pytest.raises(Exception, match="append-only"):
        store.write(lambda db: db.execute("DELETE FROM recording_access"))


def test_a_stored_path_outside_the_recordings_folder_is_a_404(
        as_role: Any, seeded: dict[str, Any], store: Store, data_dir: Path) -> None:
    secret = data_dir / "web_secret"  # a file of the box that is not a recording
    outside = data_dir / "elsewhere.wav"
    _wav(outside)
    link = seeded["dir"] / "link.wav"
    os.symlink(outside, link)
    for n, path in enumerate([str(secret), str(seeded["dir"] / ".." / "elsewhere.wav"),
                              str(link), "/etc/passwd", str(seeded["dir"] / "missing.wav"),
                              str(seeded["dir"])]):
        add_call(store, f"bad-{n}", "13900000000", DAY, path)
    admin, _ = as_role("admin")
    for row in store.query("SELECT rowid AS id FROM recordings WHERE call_id LIKE 'bad-%'"):
        for kind in ("play", "download"):
            res = fetch(admin, f"/recordings/{row['id']}/{kind}.wav")
            assert res.status_code == 404, (row, kind)
    assert admin.get("/recordings/9999/play.wav").status_code == 404
    assert admin.get("/recordings/..%2F..%2Fetc%2Fpasswd/play.wav").status_code == 404
    assert access_rows(store) == []


def test_pages_run_newest_first_for_everyone_and_for_an_agent(
        as_role: Any, seeded: dict[str, Any], store: Store) -> None:
    import re

    for i in range(55):  # one a minute after the seeded two, all answered by "agent"
        add_call(store, f"many-{i:02d}", f"1370000{i:04d}", DAY + 7200 + 60 * i,
                 str(seeded["dir"] / f"many-{i:02d}.wav"), agent="agent")
    newest = [f"many-{i:02d}" for i in reversed(range(55))]

    def calls(client: Any, url: str) -> list[str]:
        return re.findall(r'<tr data-call="([^"]+)"', client.get(url).get_data(as_text=True))

    sup, _ = as_role("supervisor")
    assert calls(sup, "/recordings/") == newest[:50]
    assert calls(sup, "/recordings/?page=2") == [*newest[50:], "rec-other", "rec-mine"]
    assert calls(sup, "/recordings/?agent=agent&page=2") == [*newest[50:], "rec-mine"]
    agent, _ = as_role("agent")
    assert calls(agent, "/recordings/") == newest[:50]
    assert calls(agent, "/recordings/?page=2") == [*newest[50:], "rec-mine"]
    assert "56 条记录" in agent.get("/recordings/").get_data(as_text=True)
