"""Erlang C against published worked examples, against the textbook formula with exact
factorials, and its invariants: more agents never serve worse, the estimate is the least
that meets the target, traffic at or above the agents means every call waits."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.acd.erlang import (
    agents_needed,
    average_wait,
    erlang_b,
    erlang_c,
    service_level,
    traffic,
)


def test_the_call_centre_helper_worked_example() -> None:
    # 100 calls in 30 minutes, 180 s handle time: 10 Erlangs. The published table (Call
    # Centre Helper, "Erlang C formula made simple"): 11 agents wait 68.21 %, answer
    # 39.0 % within 20 s, average wait 122.8 s; 14 agents are the first to reach 80/20.
    a = traffic(100, 180, 1800)
    assert a == pytest.approx(10.0)
    assert erlang_c(11, a) == pytest.approx(0.6821, abs=5e-5)
    assert service_level(11, a, 180, 20) == pytest.approx(0.390, abs=5e-4)
    assert average_wait(11, a, 180) == pytest.approx(122.8, abs=0.05)
    assert service_level(13, a, 180, 20) == pytest.approx(0.7956, abs=5e-5)
    assert service_level(14, a, 180, 20) == pytest.approx(0.8884, abs=5e-5)
    assert agents_needed(a, 180, 20, 0.80) == 14


def test_the_westbay_example() -> None:
    # 360 calls a half hour of 4 minutes each (48 Erlangs), 55 agents, 15 s target.
    a = traffic(360, 240, 1800)
    assert a == pytest.approx(48.0)
    assert erlang_c(55, a) == pytest.approx(0.2387, abs=5e-5)
    assert average_wait(55, a, 240) == pytest.approx(8.2, abs=0.05)
    assert service_level(55, a, 240, 15) == pytest.approx(0.8459, abs=5e-5)


def test_the_delay_probability_table_for_20_erlangs() -> None:
    # 600 calls an hour of 120 s: 20 Erlangs; at most 15 % waiting needs 26 agents, and
    # 30 agents bring it to 2.5 %.
    a = traffic(600, 120, 3600)
    assert erlang_c(25, a) > 0.15 >= erlang_c(26, a)
    assert erlang_c(30, a) == pytest.approx(0.025, abs=5e-4)


def _textbook_c(n: int, a: Fraction) -> float:
    top = a ** n / math.factorial(n) * Fraction(n) / (n - a)
    return float(top / (sum(a ** k / math.factorial(k) for k in range(n)) + top))


@given(st.integers(1, 60), st.fractions(min_value=Fraction(1, 10), max_value=59,
                                         max_denominator=10))
def test_the_recurrence_agrees_with_the_factorial_formula(n: int, a: Fraction) -> None:
    if a >= n:
        assert erlang_c(n, float(a)) == 1.0
        return
    assert erlang_c(n, float(a)) == pytest.approx(_textbook_c(n, a), rel=1e-9, abs=1e-12)


def test_large_traffic_stays_finite_and_exact_enough() -> None:
    # 171! overflows a float; the recurrence does not care.
    c = erlang_c(1000, 950.0)
    assert 0 < c < 1
    assert 0 < erlang_b(5000, 4000.0) < 1
    n = agents_needed(950.0, 180, 20, 0.8)
    assert service_level(n, 950.0, 180, 20) >= 0.8 > service_level(n - 1, 950.0, 180, 20)


def test_traffic_at_or_above_the_agents_means_every_call_waits() -> None:
    assert erlang_c(10, 10.0) == 1.0 and erlang_c(5, 12.5) == 1.0
    assert service_level(10, 10.0, 180, 20) == 0.0 and service_level(3, 7.0, 180, 20) == 0.0
    assert average_wait(10, 10.0, 180) == math.inf
    # So the estimate always staffs above the traffic, however lax the target.
    assert agents_needed(10.0, 180, 600, 0.01) == 11
    assert agents_needed(0.0, 180, 20, 0.8) == 0
    assert service_level(0, 0.0, 180, 20) == 1.0


@pytest.mark.parametrize("bad", [
    lambda: traffic(-1, 180, 1800), lambda: traffic(10, 180, 0),
    lambda: erlang_c(-1, 2.0), lambda: erlang_c(2, -0.5),
    lambda: agents_needed(5.0, 180, 20, 1.0), lambda: agents_needed(5.0, 180, 20, 80),
    lambda: service_level(3, 1.0, 0, 20),
])
def test_impossible_input_is_refused_by_name(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]


erlangs = st.floats(min_value=0.01, max_value=200, allow_nan=False)


@given(erlangs, st.integers(1, 260), st.floats(1, 900), st.floats(0, 300))
def test_more_agents_never_lower_the_service_level(a: float, n: int, aht: float,
                                                    t: float) -> None:
    assert service_level(n + 1, a, aht, t) >= service_level(n, a, aht, t) - 1e-12
    assert erlang_c(n + 1, a) <= erlang_c(n, a) + 1e-12
    assert 0.0 <= service_level(n, a, aht, t) <= 1.0


@given(erlangs, st.floats(10, 900), st.floats(1, 120), st.floats(0.05, 0.99))
def test_the_estimate_is_the_least_that_meets_the_target(a: float, aht: float, t: float,
                                                         level: float) -> None:
    n = agents_needed(a, aht, t, level)
    assert n > a
    assert service_level(n, a, aht, t) >= level
    if n - 1 > a:
        assert service_level(n - 1, a, aht, t) < level
