"""The fax part of the spandsp binding against the installed libspandsp2 0.0.6."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from appliance.media import spandsp


def test_transfer_statistics_are_the_15_ints_of_0_0_6() -> None:
    assert ctypes.sizeof(spandsp.T30Stats) == 60
    with spandsp.FaxEndpoint(calling_party=True) as end:
        stats = end.statistics()
        assert (stats.pages_tx, stats.pages_rx, stats.bad_rows) == (0, 0, 0)


def test_completion_codes_in_spandsps_words() -> None:
    assert spandsp.completion_text(0) == "OK"
    assert spandsp.completion_text(2) == "Timed out waiting for initial communication"
    assert spandsp.completion_text(49) == "The call dropped prematurely"


def test_transmit_on_idle_gives_whole_frames_and_the_caller_beeps_cng() -> None:
    with spandsp.FaxEndpoint(calling_party=True) as end:
        out = np.concatenate([end.tx(160) for _ in range(50)])  # 1 s
    assert len(out) == 8000
    # CNG: 0.5 s of 1100 Hz then 3 s off; the first second holds the tone.
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    assert abs(int(np.argmax(spectrum)) - 1100) <= 2


def test_the_answering_side_keeps_the_buffer_it_is_given() -> None:
    # fax_rx writes into its buffer; the binding hands it a copy.
    frame = np.full(160, 1000, dtype=np.int16)
    with spandsp.FaxEndpoint(calling_party=False) as end:
        for _ in range(20):
            end.rx(frame)
    assert (frame == 1000).all()


def test_a_closed_endpoint_refuses_work_and_long_paths_are_refused() -> None:
    end = spandsp.FaxEndpoint(calling_party=False)
    with pytest.raises(ValueError, match="cuts paths at 255"):
        end.set_rx_file("/tmp/" + "x" * 300 + ".tiff")
    end.close()
    end.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        end.tx(160)
