"""Salespeople's names as recordings: synthesised once per language and name, a human
recording preferred, a renamed salesperson said right, nothing for what cannot be said."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from appliance.ivr.names import NameRecordings
from appliance.media.vad import frame_levels_dbfs
from appliance.media.wavio import read_slin, write_slin


def test_a_name_is_synthesised_once_and_a_recording_wins(tmp_path: Path) -> None:
    names = NameRecordings(tmp_path)
    first = names.get("310001", "王建国", "zh")
    assert first is not None and first.parent == tmp_path / "zh"
    samples = read_slin(first)
    assert 0.4 < len(samples) / 8000 < 3.0  # a spoken name, not silence or a sentence
    levels = frame_levels_dbfs(samples[: len(samples) // 160 * 160].reshape(-1, 160))
    assert float(np.max(levels)) > -30
    stamp = first.stat().st_mtime_ns
    assert names.get("310001", "王建国", "zh") == first and first.stat().st_mtime_ns == stamp
    # An English caller hears the Chinese name said in Mandarin, from its own file.
    english = names.get("310001", "王建国", "en")
    assert english is not None and english.parent == tmp_path / "en"
    assert np.array_equal(read_slin(english), samples)
    cantonese = names.get("310001", "王建国", "yue")
    assert cantonese is not None and not np.array_equal(read_slin(cantonese), samples)
    # Renamed: said anew, the old file gone.
    renamed = names.get("310001", "王建华", "zh")
    assert renamed is not None and renamed != first and not first.exists()
    # The person's own recording wins.
    own = names.recorded("310001", "zh")
    write_slin(own, np.zeros(8000, dtype=np.int16))
    assert names.get("310001", "王建华", "zh") == own


def test_nothing_for_what_cannot_be_said(tmp_path: Path) -> None:
    names = NameRecordings(tmp_path)
    assert names.get("310001", "  ", "zh") is None
    assert names.get("310001", "王建国", "fr") is None
    assert names.get("../etc", "王建国", "zh") is None
    assert not any(tmp_path.rglob("*.part.wav"))
