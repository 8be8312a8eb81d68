"""The prompts page: listen, and replace a recording only with one the engine can play."""

from __future__ import annotations

import io
import json
import shutil
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.mark.parametrize(("data", "message"), [
    (b"", "请选择"),
    (b"ID3\x03\x00 an mp3", "不是 PCM WAV"),
    (_wav(rate=16000), "16000 Hz"),
    (_wav(channels=2), "2 声道"),
    (_wav(seconds=61), "超过 60 秒"),
    (_wav(seconds=0), "为空"),
])
def test_a_recording_the_engine_cannot_play_is_refused(admin: Any, prompts_dir: Path,
                                                       data: bytes, message: str) -> None:
    client, token, _ = admin
    before = (prompts_dir / "zh" / "welcome.wav").read_bytes()
    res = client.post("/prompts/zh/welcome", data={
        "csrf_token": token, "file": (io.BytesIO(data), "new.wav")},
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
