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
