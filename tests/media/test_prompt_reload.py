"""The prompt library notices a prompt file replaced on disk: the next ``get`` after the
once-a-second check gives the new recording, a player already going keeps the old frames
to their end, and a file that cannot be read leaves the loaded recording in use."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from appliance.media.prompts import PromptLibrary, PromptNotFound, PromptPlayer
from appliance.media.wavio import write_slin


def _replace(path: Path, samples: np.ndarray) -> None:
    """As the web and the phone do it: a new file renamed over the old one."""
    part = path.with_suffix(".wav.part")
    write_slin(part, samples)
    os.replace(part, path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "zh").mkdir()
    write_slin(tmp_path / "zh" / "hello.wav", np.full(1600, 100, dtype=np.int16))
    return tmp_path


def test_a_replaced_file_is_loaded_at_the_first_get_after_a_second(folder: Path) -> None:
    now = [0.0]
    lib = PromptLibrary(folder, now=lambda: now[0])
    old = lib.get("hello")
    assert len(old.frames) == 10
    _replace(folder / "zh" / "hello.wav", np.full(3200, 200, dtype=np.int16))
    now[0] = 0.5
    assert lib.get("hello") is old  # not looked at again within the second
    now[0] = 1.2
    new = lib.get("hello")
    assert len(new.frames) == 20 and new.frames[0][:2] == (200).to_bytes(2, "little")
    now[0] = 5.0
    assert lib.get("hello") is new  # unchanged file: the same object, nothing re-read


def test_a_player_already_going_finishes_the_old_recording(folder: Path) -> None:
    now = [0.0]
    lib = PromptLibrary(folder, now=lambda: now[0])
    player = PromptPlayer([lib.get("hello")])
    first = [player.next_frame() for _ in range(3)]
    _replace(folder / "zh" / "hello.wav", np.full(3200, 200, dtype=np.int16))
    now[0] = 2.0
    assert len(lib.get("hello").frames) == 20
    rest = []
    while (frame := player.next_frame()) is not None:
        rest.append(frame)
    heard = b"".join(f for f in first + rest if f is not None)
    assert heard == np.full(1600, 100, dtype="<i2").tobytes()


def test_forget_loads_the_file_at_the_next_get(folder: Path) -> None:
    lib = PromptLibrary(folder, now=lambda: 0.0)
    lib.get("hello")
    _replace(folder / "zh" / "hello.wav", np.full(800, 300, dtype=np.int16))
    lib.forget("hello", "zh")
    assert len(lib.get("hello").frames) == 5


def test_a_broken_or_missing_replacement_keeps_the_loaded_recording(folder: Path) -> None:
    now = [0.0]
    lib = PromptLibrary(folder, now=lambda: now[0])
    old = lib.get("hello")
    part = folder / "zh" / "hello.wav.part"
    part.write_bytes(b"RIFF not really")
    os.replace(part, folder / "zh" / "hello.wav")
    now[0] = 2.0
    assert lib.get("hello") is old
    (folder / "zh" / "hello.wav").unlink()
    now[0] = 4.0
    assert lib.get("hello") is old
    # Once a good file is back, it is loaded.
    _replace(folder / "zh" / "hello.wav", np.full(800, 300, dtype=np.int16))
    now[0] = 6.0
    assert len(lib.get("hello").frames) == 5
    # A prompt never loaded and not on disk is still an error that names it.
    with pytest.raises(PromptNotFound, match="'bye'"):
        lib.get("bye")


@pytest.mark.parametrize("keep_bytes", [0, 320])
def test_a_file_cut_short_keeps_the_loaded_recording(
        folder: Path, keep_bytes: int, caplog: pytest.LogCaptureFixture) -> None:
    # Read while a copy was under way, or left by one that died, a file whose header
    # declares more audio than it holds replaced the prompt: cut short, or silence.
    now = [0.0]
    lib = PromptLibrary(folder, now=lambda: now[0])
    old = lib.get("hello")
    path = folder / "zh" / "hello.wav"
    _replace(path, np.full(8000, 300, dtype=np.int16))
    with open(path, "r+b") as f:
        f.truncate(44 + keep_bytes)
    now[0] = 2.0
    assert lib.get("hello") is old
    assert "cut short" in caplog.text


def test_preload_skips_a_bad_file_and_loads_the_rest(
        folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The first bad file stopped preload, and with it the engine's start.
    import wave

    with wave.open(str(folder / "zh" / "a_stray.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(3200))
    write_slin(folder / "zh" / "z_menu.wav", np.full(1600, 5, dtype=np.int16))
    lib = PromptLibrary(folder)
    assert lib.preload("zh") == 2
    assert len(lib.get("z_menu").frames) == 10
    assert "a_stray" in caplog.text and "16000 Hz" in caplog.text
