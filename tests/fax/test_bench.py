"""``appliance bench fax`` smoke run: two noisy calls, the answer as JSON on the last line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.fax.bench import run_fax_bench


def test_bench_fax_prints_its_figures_as_json() -> None:
    # The run is deterministic for a seed; with these two noise realizations both pages
    # arrive.
    res = CliRunner().invoke(main, ["bench", "fax", "--calls", "2", "--concurrent", "2",
                                    "--seed", "3"])
    assert res.exit_code == 0, res.output
    figures = json.loads(res.output.strip().splitlines()[-1])
    assert figures["calls"] == 2 and figures["pages_sent"] == 2
    # The clean page: 14 400 bit/s with ECM, received whole, within the 26 s target.
    assert figures["bit_rate"] == 14400 and figures["ecm"] and figures["page_ok"]
    assert 15 < figures["page_seconds"] <= 26
    # At 20 dB S/N the box measures the line and leaves V.17 out.
    assert figures["pages_failed"] == figures["calls_failed"] == figures["log_rows_failed"] == 0
    assert set(figures["noisy_bit_rates"]) <= {"9600", "7200"}
    assert abs(figures["signal_dbfs"] - figures["noise_dbfs"] - 20) < 0.2


def test_bench_fax_refuses_zero_calls() -> None:
    res = CliRunner().invoke(main, ["bench", "fax", "--calls", "0"])
    assert res.exit_code != 0 and "--calls" in res.output


@pytest.mark.parametrize("seed", [2, 39])
def test_a_page_whose_image_training_met_noise_arrives(seed: int) -> None:
    # The two calls of the default run (seed 1: calls n1 and n38) that lost their page,
    # each on its own: the V.29 signal began in the last milliseconds of a frame, the
    # squelch passed that frame's noise ahead of it, the receiving machine started its
    # training on the noise and took a jump of the noise's phase for the start of CDCD
    # ("Training failed", constellation mismatch near 760), and heard no image at all.
    figures = run_fax_bench(calls=1, seed=seed, concurrent=1)
    assert figures["pages_failed"] == figures["calls_failed"] == 0
    assert figures["noisy_bit_rates"] == {"9600": 1}
