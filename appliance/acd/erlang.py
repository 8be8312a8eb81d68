"""Erlang C: how many agents a queue needs for a service level (O1's staffing estimate).

The queue is taken as M/M/N: calls arrive at random (Poisson), handle times are
exponential with mean ``aht`` seconds, ``agents`` serve them and callers wait (nobody hangs
up). Traffic is in Erlangs: calls × handle time ÷ the period. The probability that a call
waits is Erlang C, computed from Erlang B by its recurrence
``B(n) = A·B(n-1) / (n + A·B(n-1))``, ``C = N·B / (N - A·(1 - B))``: every step stays
between 0 and 1, so large traffic (hundreds of Erlangs) neither overflows nor loses
precision as ``A**N / N!`` would. With as many Erlangs as agents or more the queue grows
without end: every call waits (C = 1), the service level is 0 and the average wait has no
bound; :func:`agents_needed` therefore starts above the traffic.
"""

from __future__ import annotations

import math

#: beyond this many agents the estimate is not a staffing question any more
MAX_AGENTS = 10_000


def traffic(calls: float, aht: float, period: float) -> float:
    """Erlangs offered by ``calls`` calls of ``aht`` seconds each in ``period`` seconds."""
    if calls < 0 or aht < 0 or period <= 0:
        raise ValueError(f"traffic needs calls >= 0, aht >= 0, period > 0; got {calls}, "
                         f"{aht}, {period}")
    return calls * aht / period


def _check(agents: int, erlangs: float) -> None:
    if agents < 0 or erlangs < 0 or math.isnan(erlangs):
        raise ValueError(f"agents and traffic must be >= 0, got {agents} and {erlangs}")


def erlang_b(agents: int, erlangs: float) -> float:
    """The probability that a call finds every agent busy, were it turned away (Erlang B)."""
    _check(agents, erlangs)
    b = 1.0
    for n in range(1, agents + 1):
        b = erlangs * b / (n + erlangs * b)
    return b


def erlang_c(agents: int, erlangs: float) -> float:
    """The probability that a call has to wait (Erlang C); 1 when the traffic is at or above
    the agents (the queue never empties)."""
    _check(agents, erlangs)
    if erlangs == 0:
        return 0.0
    if agents <= erlangs:
        return 1.0
    b = erlang_b(agents, erlangs)
    return agents * b / (agents - erlangs * (1 - b))


def service_level(agents: int, erlangs: float, aht: float, target_seconds: float) -> float:
    """The share of calls answered within ``target_seconds``:
    ``1 - C·exp(-(N - A)·t / aht)``; 0 when the traffic is at or above the agents."""
    if aht <= 0 or target_seconds < 0:
        raise ValueError(f"aht must be > 0 and the target >= 0, got {aht} and {target_seconds}")
    if erlangs == 0:
        return 1.0
    if agents <= erlangs:
        return 0.0
    return 1.0 - erlang_c(agents, erlangs) * math.exp(-(agents - erlangs) * target_seconds / aht)


def average_wait(agents: int, erlangs: float, aht: float) -> float:
    """The mean wait over all calls (average speed of answer), seconds; infinite when the
    traffic is at or above the agents."""
    if agents <= erlangs:
        return math.inf if erlangs > 0 else 0.0
    return erlang_c(agents, erlangs) * aht / (agents - erlangs)


def agents_needed(erlangs: float, aht: float, target_seconds: float,
                  target_level: float) -> int:
    """The fewest agents that answer ``target_level`` (0–1) of calls within
    ``target_seconds``; 0 with no traffic."""
    if not 0 < target_level < 1:
        raise ValueError(f"the target service level is a share between 0 and 1 (0.8 for "
                         f"80 %), got {target_level}")
    _check(0, erlangs)
    if erlangs == 0:
        return 0
    agents = math.floor(erlangs) + 1  # the least that keeps the queue from growing
    while service_level(agents, erlangs, aht, target_seconds) < target_level:
        agents += 1
        if agents > MAX_AGENTS:
            raise ValueError(f"{erlangs:.1f} Erlangs need more than {MAX_AGENTS} agents")
    return agents


__all__ = ["MAX_AGENTS", "agents_needed", "average_wait", "erlang_b", "erlang_c",
           "service_level", "traffic"]
