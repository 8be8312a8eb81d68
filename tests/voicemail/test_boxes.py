"""Boxes (one of each identity, made on first use) and their greetings: stored, refused,
cleared, and the default when a stored file is gone."""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import numpy as np
import pytest

from appliance.media.prompts import PromptLibrary, concat
from appliance.media.wavio import WavFormatError, write_slin
from appliance.store.db import Store
from appliance.voicemail import (
    BoxKind,
    box_for,
    clear_greeting,
    general_box,
    get_box,
    greeting,
    list_boxes,
    queue_box,
    salesperson_box,
    set_greeting,
)
from tests.voicemail.conftest import spoken

LIB = PromptLibrary()


def test_one_box_of_each_identity_made_on_first_use(store: Store) -> None:
    general = general_box(store)
    claims = queue_box(store, "claims")
    own = salesperson_box(store, "S002")
    assert general_box(store) == general and queue_box(store, " claims ") == claims
    assert box_for(store, "general") == general
    assert box_for(store, "queue:claims") == claims
    assert box_for(store, "salesperson:S002") == own
    assert (own.kind, own.salesperson_code, claims.kind, claims.queue) == (
        BoxKind.SALESPERSON, "S002", BoxKind.QUEUE, "claims")
    assert get_box(store, own.id) == own
    assert list_boxes(store) == [general, claims, own]
    with pytest.raises(ValueError, match="no salesperson with code 'S404'"):
        salesperson_box(store, "S404")
    with pytest.raises(ValueError, match="expected 'general', 'queue:<name>'"):
        box_for(store, "queue:")
    with pytest.raises(ValueError, match="empty string"):
        queue_box(store, "  ")
    with pytest.raises(LookupError, match="no voicemail box 99"):
        get_box(store, 99)
    assert len(list_boxes(store)) == 3


def test_greetings_stored_refused_cleared_and_falling_back(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = salesperson_box(store, "S001")
    folder = tmp_path / "greetings"
    default = [LIB.get("vm_greeting_salesperson", "yue"), LIB.get("leave_message", "yue")]
    assert greeting(store, box, "yue", LIB) == default

    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("a note about the greeting, not a recording of it\n" * 20)
    too_long = tmp_path / "long.wav"
    write_slin(too_long, np.zeros(61 * 8000, dtype=np.int16))
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(32000))
    for bad, reason in ((not_audio, "not a PCM WAV"), (too_long, "longer than the 60 s"),
                        (stereo, "2 channel")):
        with pytest.raises(WavFormatError, match=reason):
            set_greeting(store, box, "yue", bad, folder, actor="admin", now=1.0)
    with pytest.raises(ValueError, match="language 'fr'"):
        set_greeting(store, box, "fr", not_audio, folder, actor="admin", now=1.0)
    assert store.query("SELECT * FROM voicemail_greetings") == []
    assert greeting(store, box, "yue", LIB) == default

    own = spoken("vm-theperson.wav")
    source = tmp_path / "mine.wav"
    write_slin(source, own)
    stored = set_greeting(store, box, "yue", source, folder, actor="S001", now=2.0)
    assert stored.parent == folder and stored.read_bytes() == source.read_bytes()
    [played] = greeting(store, box, "yue", LIB)
    assert concat([played]).startswith(own.tobytes()[: len(own) // 160 * 320])
    assert greeting(store, box, "en", LIB)[0] == LIB.get("vm_greeting_salesperson", "en")

    stored.unlink()  # the file went missing: the caller still hears a greeting
    with caplog.at_level(logging.WARNING):
        assert greeting(store, box, "yue", LIB) == default
    assert "unusable" in caplog.text

    assert clear_greeting(store, box, "yue", actor="admin", now=3.0)
    assert not clear_greeting(store, box, "yue", actor="admin", now=4.0)
    assert greeting(store, box, "yue", LIB) == default
    trail = store.query("SELECT actor, action FROM voicemail_audit WHERE box_id = ? ORDER BY id",
                        [box.id])
    assert [(t["actor"], t["action"]) for t in trail] == [
        ("S001", "greeting-set"), ("admin", "greeting-cleared")]
