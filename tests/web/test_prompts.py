"""The prompts page: listen, and replace a recording only with one the engine can play."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.media.prompts import DEFAULT_PROMPTS_DIR, PromptLibrary
from appliance.store.db import Store
from tests.web.conftest import login
from web import create_app


def _wav(rate: int = 8000, channels: int = 1, width: int = 2, seconds: float = 0.5) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x10\x00" * int(rate * seconds) * channels * (width // 2 or 1))
    return out.getvalue()


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    root = tmp_path / "prompts"
    (root / "zh").mkdir(parents=True)
    for name in ("welcome", "goodbye"):
        shutil.copy(DEFAULT_PROMPTS_DIR / "zh" / f"{name}.wav", root / "zh" / f"{name}.wav")
    manifest = json.loads((DEFAULT_PROMPTS_DIR / "manifest.json").read_text("utf-8"))
    (root / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
    return root


@pytest.fixture
def admin(data_dir: Path, prompts_dir: Path) -> Iterator[tuple[FlaskClient, str, Store]]:
    store = Store(data_dir / "appliance.db")
    app: Flask = create_app(data_dir, {"TESTING": True, "PROMPTS_DIR": str(prompts_dir)},
                            store=store)
    client = app.test_client()
    yield client, login(client, "admin"), store
    store.close()


def test_the_list_shows_each_prompt_with_its_text_and_audio(admin: Any) -> None:
    client, _, _ = admin
    html = client.get("/prompts/?lang=zh").get_data(as_text=True)
    assert "您好，欢迎致电保险服务热线。" in html and "/prompts/zh/welcome.wav" in html
    res = client.get("/prompts/zh/welcome.wav")
    assert res.status_code == 200 and res.data[:4] == b"RIFF"
    for bad in ("/prompts/zh/..%2Fmanifest.wav", "/prompts/xx/welcome.wav",
                "/prompts/zh/nothing.wav"):
        assert client.get(bad).status_code == 404, bad


@pytest.mark.parametrize(("data", "filename", "message"), [
    (b"", "new.wav", "请选择"),
    (b"ID3\x03\x00 not really an mp3", "new.mp3", "无法使用该录音"),
    (b"RIFF garbage", "new.wav", "无法使用该录音"),
    (_wav(rate=16000), "new.ogg", ".ogg"),
    (_wav(seconds=61), "new.wav", "超过 60 秒"),
    (_wav(rate=16000, seconds=61), "new.wav", "超过 60 秒"),
])
def test_a_recording_the_engine_cannot_play_is_refused(admin: Any, prompts_dir: Path,
                                                       data: bytes, filename: str,
                                                       message: str) -> None:
    client, token, _ = admin
    before = (prompts_dir / "zh" / "welcome.wav").read_bytes()
    res = client.post("/prompts/zh/welcome", data={
        "csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data", follow_redirects=True)
    assert message in res.get_data(as_text=True)
    assert (prompts_dir / "zh" / "welcome.wav").read_bytes() == before


def test_a_good_recording_replaces_the_prompt_and_the_old_one_is_kept(
        admin: Any, prompts_dir: Path, data_dir: Path) -> None:
    client, token, store = admin
    old = (prompts_dir / "zh" / "welcome.wav").read_bytes()
    new = _wav(seconds=1.0)
    res = client.post("/prompts/zh/welcome", data={
        "csrf_token": token, "file": (io.BytesIO(new), "new.wav")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "已替换" in res.get_data(as_text=True)
    assert (prompts_dir / "zh" / "welcome.wav").read_bytes() == new
    kept = list((data_dir / "prompt_history" / "zh").glob("welcome-*.wav"))
    assert len(kept) == 1 and kept[0].read_bytes() == old
    # What the engine loads at its next start is the new recording.
    assert PromptLibrary(prompts_dir).get("welcome", "zh").seconds == pytest.approx(1.0)
    entry = store.query("SELECT * FROM audit_log WHERE action = 'prompt.replace'")[0]
    assert entry["target"] == "zh/welcome" and entry["username"] == "admin"


def _encoded(tmp_path: Path, suffix: str, seconds: float = 1.5) -> bytes:
    """A 1 kHz tone at 44.1 kHz stereo, encoded by ffmpeg as a phone or PC would save it."""
    out = tmp_path / f"tone{suffix}"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    f"sine=frequency=1000:sample_rate=44100:duration={seconds}", "-ac", "2",
                    str(out)], check=True)
    return out.read_bytes()


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a"])
def test_wav_mp3_and_m4a_recordings_are_converted_to_8khz_mono(
        admin: Any, prompts_dir: Path, tmp_path: Path, suffix: str) -> None:
    client, token, _ = admin
    res = client.post("/prompts/zh/goodbye", data={
        "csrf_token": token, "file": (io.BytesIO(_encoded(tmp_path, suffix)), f"新{suffix}")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "已替换" in res.get_data(as_text=True)
    with wave.open(str(prompts_dir / "zh" / "goodbye.wav")) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert len(samples) / 8000 == pytest.approx(1.5, abs=0.1)  # codecs pad a little
    # Still the 1 kHz tone: the strongest frequency of the middle half second.
    middle = samples[4000:8000].astype(float)
    peak = np.argmax(np.abs(np.fft.rfft(middle))) * 8000 / len(middle)
    assert peak == pytest.approx(1000, abs=10)


def _pin_row(store: Store, username: str) -> dict[str, Any] | None:
    rows = store.query("SELECT p.* FROM staff_phone_pins p JOIN users u ON u.id = p.user_id "
                       "WHERE u.username = ?", [username])
    return rows[0] if rows else None


def test_the_list_numbers_each_prompt_and_tells_an_admin_how_to_record_by_phone(
        admin: Any) -> None:
    client, _, store = admin
    html = client.get("/prompts/?lang=zh").get_data(as_text=True)
    (user,) = store.query("SELECT id FROM users WHERE username = 'admin'")
    assert "95598" in html and f"员工号 {user['id']}" in html and "您还没有设置电话密码" in html
    numbers = {r["name"]: r["number"] for r in store.query("SELECT * FROM prompt_numbers")}
    assert f'<td class="num">{numbers["goodbye"]}</td><td>goodbye</td>' in html
    # Searching by the number finds the prompt.
    found = client.get(f"/prompts/?lang=zh&q={numbers['goodbye']}").get_data(as_text=True)
    assert "<td>goodbye</td>" in found and "<td>welcome</td>" not in found


def test_an_admin_sets_a_numeric_phone_pin_kept_only_hashed(admin: Any) -> None:
    client, token, store = admin
    res = client.post("/prompts/phone-pin", data={"csrf_token": token, "pin": "20261126",
                                                  "pin2": "20261126"}, follow_redirects=True)
    html = res.get_data(as_text=True)
    assert "电话密码已设置" in html and "您的电话密码已设置。" in html
    row = _pin_row(store, "admin")
    assert row is not None and "20261126" not in row["pin_hash"]
    assert (row["failed_pins"], row["locked"]) == (0, 0)
    (entry,) = store.query("SELECT * FROM audit_log WHERE action = 'phone_pin.set'")
    assert entry["username"] == "admin" and "20261126" not in entry["detail"]
    # A new PIN clears a lock.
    store.write(lambda db: db.execute("UPDATE staff_phone_pins SET locked = 1, failed_pins = 5"))
    assert "已锁定" in client.get("/prompts/").get_data(as_text=True)
    client.post("/prompts/phone-pin", data={"csrf_token": token, "pin": "4455",
                                            "pin2": "4455"})
    row = _pin_row(store, "admin")
    assert row is not None and (row["failed_pins"], row["locked"]) == (0, 0)


@pytest.mark.parametrize(("pin", "pin2", "message"), [
    ("12a4", "12a4", "必须是 4 到 8 位数字"),
    ("１２３４", "１２３４", "必须是 4 到 8 位数字"),  # full-width digits are not keys
    ("123", "123", "必须是 4 到 8 位数字"),
    ("123456789", "123456789", "必须是 4 到 8 位数字"),
    ("", "", "必须是 4 到 8 位数字"),
    ("1234", "1235", "两次输入的密码不一致"),
])
def test_a_bad_phone_pin_is_refused_and_nothing_is_written(admin: Any, pin: str, pin2: str,
                                                           message: str) -> None:
    client, token, store = admin
    res = client.post("/prompts/phone-pin", data={"csrf_token": token, "pin": pin,
                                                  "pin2": pin2}, follow_redirects=True)
    assert message in res.get_data(as_text=True)
    assert _pin_row(store, "admin") is None
    assert store.query("SELECT * FROM audit_log WHERE action = 'phone_pin.set'") == []


def test_the_phone_pin_form_needs_csrf_and_the_admin_role(
        data_dir: Path, prompts_dir: Path) -> None:
    store = Store(data_dir / "appliance.db")
    try:
        app = create_app(data_dir, {"TESTING": True, "PROMPTS_DIR": str(prompts_dir)},
                         store=store)
        client = app.test_client()
        login(client, "admin")
        res = client.post("/prompts/phone-pin", data={"pin": "1234", "pin2": "1234"})
        assert res.status_code == 400
        res = client.post("/prompts/phone-pin", data={"csrf_token": "forged", "pin": "1234",
                                                      "pin2": "1234"})
        assert res.status_code == 400
        for role in ("supervisor", "agent", "salesperson", "auditor"):
            other = app.test_client()
            token = login(other, role)
            res = other.post("/prompts/phone-pin", data={"csrf_token": token, "pin": "1234",
                                                         "pin2": "1234"})
            assert res.status_code == 403, role
            page = other.get("/prompts/")
            assert "95598" not in page.get_data(as_text=True) or page.status_code == 403
        assert store.query("SELECT * FROM staff_phone_pins") == []
    finally:
        store.close()
