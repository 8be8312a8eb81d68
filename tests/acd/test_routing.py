"""Properties of the routing decisions, over any mix of seat states, skills, penalties,
priorities and strategies: only ready seats that serve the queue are offered, the balancing
strategies even the load out, priority then arrival decides who is next, and a caller who
books a callback keeps their place."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.acd.model import AgentState, QueueConfig, SeatConfig, SeatStatus, Strategy
from appliance.acd.routing import Entry, RoundRobinMemory, WaitingList, decide

STATES = list(AgentState)
SKILLS = ("motor", "life", "zh", "yue", "en")


def make_seats(states: list[AgentState], skills: list[frozenset[str]]) -> list[SeatStatus]:
    return [SeatStatus(SeatConfig(f"s{i}", f"80{i:02d}", skills={k: 1 for k in sk}), i,
                       state=state, idle_since=float(i))
            for i, (state, sk) in enumerate(zip(states, skills, strict=True))]


def entry(n: int, priority: int = 0, language: str = "zh") -> Entry:
    return Entry(key=f"e{n}", queue="q", caller=f"1380000{n:04d}", language=language,
                 priority=priority, joined_at=float(n))


@st.composite
def situations(draw: st.DrawFn) -> tuple[QueueConfig, list[SeatStatus], WaitingList]:
    n = draw(st.integers(1, 8))
    states = draw(st.lists(st.sampled_from(STATES), min_size=n, max_size=n))
    skills = draw(st.lists(st.frozensets(st.sampled_from(SKILLS)), min_size=n, max_size=n))
    seat_list = make_seats(states, skills)
    members = draw(st.dictionaries(st.sampled_from([s.id for s in seat_list]),
                                   st.integers(0, 3)))
    queue = QueueConfig("q", draw(st.sampled_from(list(Strategy))), members=members,
                        skills=tuple(draw(st.sets(st.sampled_from(SKILLS[:2]), max_size=1))),
                        language_skill=draw(st.booleans()))
    waiting = WaitingList(
        entry(i, draw(st.integers(0, 10)), draw(st.sampled_from(["zh", "yue", "en"])))
        for i in range(draw(st.integers(1, 50))))
    for e in waiting.entries:
        e.engaged = draw(st.booleans())
    return queue, seat_list, waiting


@settings(max_examples=300, deadline=None)
@given(situations())
def test_only_ready_eligible_seats_of_the_lowest_penalty_are_offered(
        s: tuple[QueueConfig, list[SeatStatus], WaitingList]) -> None:
    queue, seat_list, waiting = s
    offer = decide(queue, waiting, seat_list, RoundRobinMemory())
    if offer is None:
        # Nothing to offer means no free entry has any eligible ready seat.
        for e in waiting.entries:
            if e.engaged:
                continue
            need = queue.skills + ((e.language,) if queue.language_skill else ())
            assert not any(seat.state is AgentState.READY
                           and queue.penalty(seat.id) is not None and seat.has_skills(need)
                           for seat in seat_list)
        return
    assert not offer.entry.engaged
    need = queue.skills + ((offer.entry.language,) if queue.language_skill else ())
    for seat in offer.seats:
        assert seat.state is AgentState.READY
        assert queue.penalty(seat.id) is not None and seat.has_skills(need)
    tier = {queue.penalty(seat.id) for seat in offer.seats}
    eligible = [seat for seat in seat_list if seat.state is AgentState.READY
                and queue.penalty(seat.id) is not None and seat.has_skills(need)]
    assert len(tier) == 1 and tier.pop() == min(queue.penalty(x.id) or 0 for x in eligible)
    if queue.strategy is Strategy.RING_ALL:
        assert len(offer.seats) == len([x for x in eligible
                                        if queue.penalty(x.id) == queue.penalty(
                                            offer.seats[0].id)])
    else:
        assert len(offer.seats) == 1
    # No earlier free entry could have been served.
    for e in waiting.entries:
        if e is offer.entry:
            break
        if not e.engaged:
            need_e = queue.skills + ((e.language,) if queue.language_skill else ())
            assert not any(x.state is AgentState.READY and queue.penalty(x.id) is not None
                           and x.has_skills(need_e) for x in seat_list)


def serve(strategy: Strategy, seats: int, calls: int, talk: list[float]) -> list[SeatStatus]:
    """``calls`` callers, one after another, each answered by the seat the strategy picks,
    talking ``talk[i]`` seconds; every seat is ready again after each call."""
    seat_list = make_seats([AgentState.READY] * seats, [frozenset()] * seats)
    queue = QueueConfig("q", strategy)
    memory = RoundRobinMemory()
    now = 100.0
    for i in range(calls):
        waiting = WaitingList([entry(i)])
        offer = decide(queue, waiting, seat_list, memory)
        assert offer is not None
        seat = offer.seats[0]
        seat.calls += 1
        seat.talk_seconds += talk[i % len(talk)]
        now += talk[i % len(talk)]
        seat.idle_since = now
    return seat_list


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([Strategy.ROUND_ROBIN, Strategy.FEWEST_CALLS, Strategy.LONGEST_IDLE]),
       st.integers(1, 8), st.integers(0, 200),
       st.lists(st.floats(1, 600), min_size=1, max_size=20))
def test_calls_even_out_across_seats(strategy: Strategy, seats: int, calls: int,
                                     talk: list[float]) -> None:
    counts = [s.calls for s in serve(strategy, seats, calls, talk)]
    assert max(counts) - min(counts) <= 1


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8), st.integers(0, 200),
       st.lists(st.floats(1, 600), min_size=1, max_size=20))
def test_least_talk_keeps_talk_time_within_one_call_of_even(seats: int, calls: int,
                                                            talk: list[float]) -> None:
    times = [s.talk_seconds for s in serve(Strategy.LEAST_TALK, seats, calls, talk)]
    # The seat with least talk takes the next call, so no seat gets further ahead of the
    # least loaded than one (the longest) call.
    assert max(times) - min(times) <= max(talk) + 1e-6


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 8), st.lists(st.integers(0, 7), min_size=1, max_size=30))
def test_round_robin_remembers_where_it_was_when_seats_come_and_go(
        seats: int, away: list[int]) -> None:
    seat_list = make_seats([AgentState.READY] * seats, [frozenset()] * seats)
    queue = QueueConfig("q", Strategy.ROUND_ROBIN)
    memory = RoundRobinMemory()
    last = -1
    for i, gone in enumerate(away):
        absent = seat_list[gone % seats]
        absent.state = AgentState.NOT_READY
        offer = decide(queue, WaitingList([entry(i)]), seat_list, memory)
        absent.state = AgentState.READY
        assert offer is not None
        picked = offer.seats[0].index
        # The next ready seat after the one offered last, in seat order.
        expected = next(j % seats for j in range(last + 1, last + 1 + seats)
                        if j % seats != absent.index)
        assert picked == expected
        last = picked


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=1, max_size=50))
def test_priority_first_then_arrival(priorities: list[int]) -> None:
    waiting = WaitingList(entry(i, p) for i, p in enumerate(priorities))
    seat_list = make_seats([AgentState.READY], [frozenset()])
    queue = QueueConfig("q", Strategy.LONGEST_IDLE)
    served = []
    while len(waiting):
        offer = decide(queue, waiting, seat_list, RoundRobinMemory())
        assert offer is not None
        served.append(offer.entry)
        waiting.remove(offer.entry)
    assert [(-e.priority, e.joined_at) for e in served] == sorted(
        (-p, float(i)) for i, p in enumerate(priorities))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=1, max_size=50), st.data())
def test_a_callback_keeps_its_place(priorities: list[int], data: st.DataObject) -> None:
    entries = [entry(i, p) for i, p in enumerate(priorities)]
    waiting = WaitingList(entries)
    booked = data.draw(st.sampled_from(entries))
    place = waiting.position(booked)
    # Booking a callback: the entry gets the number to call and nobody on the line.
    booked.callback_number = "13900139000"
    # Callers who come later with no higher priority queue behind it.
    later = data.draw(st.lists(st.integers(0, booked.priority), max_size=10))
    for i, p in enumerate(later):
        waiting.add(entry(100 + i, p))
    assert waiting.position(booked) == place
    # And it is served in its turn: after exactly the callers that were ahead of it.
    seat_list = make_seats([AgentState.READY], [frozenset()])
    queue = QueueConfig("q", Strategy.FEWEST_CALLS)
    served = 0
    while True:
        offer = decide(queue, waiting, seat_list, RoundRobinMemory())
        assert offer is not None
        served += 1
        if offer.entry is booked:
            break
        waiting.remove(offer.entry)
    assert served == place
