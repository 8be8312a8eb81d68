"""FaxSession on its own: two spandsp ends back to back in 160-sample steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.fax.session import V17_MIN_SNR_DB, FaxSession, Squelch
from tests.fax.conftest import pixels


def back_to_back(sender: FaxSession, receiver: FaxSession, noise_rms: float = 0.0,
                 seed: int = 0, max_seconds: float = 120.0) -> None:
    rng = np.random.default_rng(seed)

    def line(frame: bytes | None) -> bytes:
        x = np.frombuffer(frame or bytes(320), dtype="<i2").astype(np.float64)
        if noise_rms:
            x = x + rng.normal(0.0, noise_rms, len(x))
        return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()

    for _ in range(int(max_seconds * 50)):
        if sender.done and receiver.done:
            return
        a, b = line(sender.tx()), line(receiver.tx())
        receiver.rx(a)
        sender.rx(b)


def test_a_clean_line_runs_at_14400_with_ecm(pages_dir: Path, tmp_path: Path) -> None:
    with FaxSession(calling_party=True, tx_file=pages_dir / "summary.tiff") as tx, \
            FaxSession(calling_party=False, rx_file=tmp_path / "rx.tiff") as rx:
        back_to_back(tx, rx)
    assert tx.result is not None and rx.result is not None
    assert (tx.result.ok, tx.result.pages, tx.result.bit_rate, tx.result.ecm) == (
        True, 1, 14400, True)
    assert rx.result.pages == 1 and tx.result.reason == "OK"
    assert tx.result.line_snr_db == float("inf")  # nothing but the signals on the line
    assert np.array_equal(pixels(tmp_path / "rx.tiff")[0], pixels(pages_dir / "summary.tiff")[0])


def test_a_session_traces_spandsps_own_log_on_the_line_time(pages_dir: Path,
                                                            tmp_path: Path) -> None:
    lines: list[str] = []
    with FaxSession(calling_party=True, tx_file=pages_dir / "summary.tiff") as tx, \
            FaxSession(calling_party=False, rx_file=tmp_path / "rx.tiff", trace=lines.append) as rx:
        back_to_back(tx, rx)
    assert rx.result is not None and rx.result.ok
    trained = [line for line in lines if "HDLC signal status is Training succeeded" in line]
    assert trained  # the image modem's training, as T.30 hears of it
    seconds = float(trained[0].split()[0])  # each line starts with the session's line time
    assert 3.0 < seconds < rx.result.seconds
    assert any(line.split(maxsplit=1)[1].startswith("Rx final frame") for line in lines)


def test_a_noisy_line_is_measured_and_v17_left_out(pages_dir: Path, tmp_path: Path) -> None:
    # Noise 20 dB below the fax signal (about -20 dBFS): without the squelch spandsp's
    # receivers never see a carrier drop and the session hangs; with V.17 pages get lost.
    with FaxSession(calling_party=True, tx_file=pages_dir / "summary.tiff") as tx, \
            FaxSession(calling_party=False, rx_file=tmp_path / "rx.tiff") as rx:
        back_to_back(tx, rx, noise_rms=320.0, seed=3)
    assert tx.result is not None and tx.result.ok and tx.result.pages == 1
    assert tx.result.line_snr_db is not None and tx.result.line_snr_db < V17_MIN_SNR_DB
    assert tx.result.bit_rate in (9600, 7200)
    assert np.array_equal(pixels(tmp_path / "rx.tiff")[0], pixels(pages_dir / "summary.tiff")[0])


def test_the_squelch_silences_noise_and_passes_signal() -> None:
    rng = np.random.default_rng(1)
    squelch = Squelch()
    noise = [rng.normal(0, 300, 160).astype(np.int16) for _ in range(20)]
    for frame in noise:
        assert not squelch(frame).any()
    t = np.arange(160) / 8000
    tone = (3000 * np.sin(2 * np.pi * 1700 * t) + rng.normal(0, 300, 160)).astype(np.int16)
    assert np.array_equal(squelch(tone), tone)
    snr = squelch.snr_db()
    assert snr is None  # one signal frame is not enough to judge the line
    for _ in range(3):
        squelch(tone)
    snr = squelch.snr_db()
    assert snr is not None and 15 < snr < 22  # 3000/√2 against 300: 17 dB


def test_the_squelch_zeroes_the_noise_ahead_of_a_signal_within_its_first_frame() -> None:
    rng = np.random.default_rng(2)
    squelch = Squelch()
    for _ in range(20):
        squelch(rng.normal(0, 300, 160).astype(np.int16))
    t = np.arange(160) / 8000
    signal = 3000 * np.sin(2 * np.pi * 1700 * t)
    signal[:136] = 0  # the carrier starts 3 ms before the end of the frame
    frame = (signal + rng.normal(0, 300, 160)).astype(np.int16)
    out = squelch(frame)
    assert not out[:136].any()  # the noise before the carrier: silence, as a gap is
    assert np.array_equal(out[136:], frame[136:])
    # Later frames of the same signal pass whole, noise and all, even when quiet at first.
    frame = (3000 * np.sin(2 * np.pi * 1700 * (t + 0.02)) + rng.normal(0, 300, 160))
    frame[:40] = rng.normal(0, 300, 40)
    frame = frame.astype(np.int16)
    assert np.array_equal(squelch(frame), frame)


def test_a_session_needs_one_document_direction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one of tx_file and rx_file"):
        FaxSession(calling_party=True)
    with pytest.raises(FileNotFoundError, match=r"missing\.tiff"):
        FaxSession(calling_party=True, tx_file=tmp_path / "missing.tiff")
