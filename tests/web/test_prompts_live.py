"""A prompt replaced on the web is heard by the engine's next call, without a restart: the
engine runs (manual clock, default IVR) on the same prompts folder and database as the web
app; a caller hears the old greeting, an admin uploads a 1 kHz tone for it, and once the
prompt library's once-a-second look has passed, the next caller hears the tone."""

from __future__ import annotations

import io
import wave
from pathlib import Path

from appliance.media.prompts import PromptLibrary, concat
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from tests.promptrec.helpers import default_ivr, has_tone, prompts_copy, run_apart, tone
from tests.rig import running_engine
from tests.web.conftest import login
from web import create_app


def _tone_wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(tone(2.0).tobytes())
    return out.getvalue()


async def _greeting(ex: SimExchange, number: str) -> bytes:
    bot = CallerBot(ex, number)
    await bot.dial("95500")
    await bot.listen(2.5)
    await bot.hangup()
    return bytes(bot.heard)


def test_a_prompt_uploaded_on_the_web_is_heard_by_the_next_call(data_dir: Path,
                                                                 tmp_path: Path) -> None:
    root = prompts_copy(tmp_path)
    store = Store(data_dir / "appliance.db")
    app = create_app(data_dir, {"TESTING": True, "PROMPTS_DIR": str(root)}, store=store)
    client = app.test_client()
    token = login(client, "admin")
    now = [0.0]
    prompts = PromptLibrary(root, now=lambda: now[0])
    old = concat([prompts.get("welcome", "zh")])
    new = _tone_wav()

    async def main() -> tuple[bytes, bytes, bytes]:
        async with running_engine(default_ivr(store, tmp_path), prompts=prompts, store=store,
                                  recordings=tmp_path / "recordings") as (_, ex):
            before = await _greeting(ex, "13800000001")
            res = client.post("/prompts/zh/welcome", data={
                "csrf_token": token, "file": (io.BytesIO(new), "tone.wav")},
                content_type="multipart/form-data", follow_redirects=True)
            assert "下一个来电即可听到" in res.get_data(as_text=True)
            soon = await _greeting(ex, "13800000002")  # within the second: still the old
            now[0] += 1.5
            after = await _greeting(ex, "13800000003")
            return before, soon, after

    try:
        before, soon, after = run_apart(main)
    finally:
        store.close()
    assert old[:8000] in before and not has_tone(before)
    assert old[:8000] in soon
    assert has_tone(after) and new[44:44 + 16000] in after and old[:8000] not in after
