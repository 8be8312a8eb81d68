"""Frames, prompt playback, digit collection and the bridge mixer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.media.collector import CollectEnd, DigitCollector
from appliance.media.frame import FRAME_BYTES, Frame, chunk_pcm, frames_from_pcm
from appliance.media.mixer import mix, mix_minus
from appliance.media.prompts import Prompt, PromptLibrary, PromptNotFound, PromptPlayer
from appliance.media.wavio import WavFormatError, read_slin, write_slin


def test_frame_checks_its_shape_and_round_trips_bytes() -> None:
    data = np.arange(160, dtype=np.int16).astype("<i2").tobytes()
    f = Frame.from_bytes(data, timestamp=480)
    assert f.to_bytes() == data and f.end == 640
    with pytest.raises(ValueError, match="320 bytes"):
        Frame.from_bytes(data[:-2])
    with pytest.raises(ValueError, match="160 int16"):
        Frame(np.zeros(80, dtype=np.int16))


def test_pcm_is_cut_into_padded_frames_with_timestamps() -> None:
    pcm = bytes(range(256)) * 3  # 768 bytes: 2 whole frames and a part
    frames = frames_from_pcm(pcm)
    assert [f.timestamp for f in frames] == [0, 160, 320]
    assert b"".join(chunk_pcm(pcm))[: len(pcm)] == pcm
    assert all(len(c) == FRAME_BYTES for c in chunk_pcm(pcm))


def test_prompts_are_loaded_once_and_shared(tmp_path: Path) -> None:
    (tmp_path / "zh").mkdir()
    write_slin(tmp_path / "zh" / "hello.wav", np.full(400, 7, dtype=np.int16))
    lib = PromptLibrary(tmp_path)
    a, b = lib.get("hello"), lib.get("hello", "zh")
    assert a is b and len(a.frames) == 3 and a.frames[2][160:] == bytes(160)
    with pytest.raises(PromptNotFound, match=r"'nope'.*'zh'"):
        lib.get("nope")


def test_wrong_format_prompt_is_refused_with_its_format(tmp_path: Path) -> None:
    import wave

    with wave.open(str(tmp_path / "x.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(64))
    with pytest.raises(WavFormatError, match=r"16000 Hz.*2 channel"):
        read_slin(tmp_path / "x.wav")
    (tmp_path / "y.wav").write_bytes(b"not a wav at all")
    with pytest.raises(WavFormatError, match="not a PCM WAV"):
        read_slin(tmp_path / "y.wav")


def test_player_plays_a_playlist_in_order_then_stops() -> None:
    p1 = Prompt("a", "zh", (b"1" * 320, b"2" * 320))
    p2 = Prompt("b", "zh", (b"3" * 320,))
    player = PromptPlayer([p1, Prompt("empty", "zh", ()), p2])
    out = [player.next_frame() for _ in range(5)]
    assert out == [b"1" * 320, b"2" * 320, b"3" * 320, None, None]
    assert player.done


def test_collector_ends_on_max_terminator_and_timeouts() -> None:
    c = DigitCollector(0, max_digits=3, first_timeout=1.0, inter_timeout=0.5)
    assert c.key("1", 10) is None and c.key("2", 20) is None
    assert c.key("3", 30) is not None and c.result is not None
    assert c.result.digits == "123" and c.result.end is CollectEnd.MAX_DIGITS

    c = DigitCollector(0, max_digits=8)
    c.key("4", 5)
    result = c.key("#", 6)
    assert result is not None and (result.digits, result.end) == ("4", CollectEnd.TERMINATOR)

    c = DigitCollector(100, max_digits=4, first_timeout=1.0, inter_timeout=0.5)
    assert c.tick(149) is None
    timed = c.tick(150)
    assert timed is not None and timed.end is CollectEnd.TIMEOUT and timed.timed_out

    c = DigitCollector(0, max_digits=4, first_timeout=1.0, inter_timeout=0.5)
    c.key("9", 40)
    assert c.tick(64) is None  # the inter-digit timeout restarts at every key
    late = c.tick(65)
    assert late is not None and (late.digits, late.end) == ("9", CollectEnd.INTER_DIGIT_TIMEOUT)


def test_mix_minus_gives_each_party_the_others_and_saturates() -> None:
    a = np.full(160, 1000, dtype="<i2").tobytes()
    b = np.full(160, 2000, dtype="<i2").tobytes()
    c = np.full(160, 30000, dtype="<i2").tobytes()
    out = [np.frombuffer(x, "<i2") for x in mix_minus([a, b, c])]
    assert out[0][0] == 32000 and out[1][0] == 31000 and out[2][0] == 3000
    loud = [np.frombuffer(x, "<i2") for x in mix_minus([c, c, c])]
    assert loud[0][0] == 32767  # clipped, not wrapped
    muted = [np.frombuffer(x, "<i2") for x in mix_minus([a, b], talking=[True, False])]
    assert muted[0][0] == 0 and muted[1][0] == 1000
    assert np.frombuffer(mix([a, b]), "<i2")[0] == 3000
    with pytest.raises(ValueError, match="party 1"):
        mix_minus([a, b"x"])
