"""A supervisor's silent listen-in and whisper, heard by simulated phones on the manual clock.

Caller, agent and supervisor each send a tone of their own frequency; what each bot heard
is searched for each frequency, so "hears" and "does not hear" are about real audio through
the engine's bridge, in listen mode, in whisper mode, after switching back, after leaving,
and when the conversation ends under the supervisor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.acd import AcdError, AgentState, QueueConfig, control
from appliance.acd.listen import MONITOR_RING_SECONDS, monitor_log
from appliance.calls.engine import Engine
from appliance.media.wavio import read_slin
from drivers.sim import CallerBot, SimExchange
from drivers.sim.exchange import Behaviour
from tests.acd.helpers import flush, open_acd, queue_flow, run_calls, seat_bot, until

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ, WHISPER_HZ, LATE_HZ = 700, 1100, 1700, 1300, 500


def tone(hz: int, seconds: float = 0.6) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return (6000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def hears(heard: bytes | bytearray, hz: int) -> bool:
    """A strong ``hz`` component in some 0.2 s window of what was heard."""
    x = np.frombuffer(bytes(heard), "<i2").astype(np.float64)
    win, k = 1600, round(hz * 1600 / 8000)
    window = np.hanning(win)
    for i in range(0, len(x) - win, 800):
        spectrum = np.abs(np.fft.rfft(x[i:i + win] * window))
        if spectrum[k - 1:k + 2].max() > 300_000:  # a 6000-amplitude tone gives ~2.4e6
            return True
    return False


async def say_all(*pairs: tuple[CallerBot, int]) -> None:
    for bot, hz in pairs:
        await bot.send(tone(hz))
    await pairs[0][0].wait(1.0)


def test_listen_whisper_switch_leave_and_the_call_ending_ends_the_leg(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 3, QueueConfig("service", members={"s1": 0, "s2": 0}))
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> dict[str, object]:
        agent = seat_bot(ex, "8001")
        boss = seat_bot(ex, "8003", answer_after=2.0)
        acd.login("s1", "A001")
        acd.login("s3", "S001")  # the supervisor is logged in to seat s3 at the console
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95500")
        assert await until(engine, lambda: agent.connected, 10)
        with pytest.raises(AcdError, match="not in a conversation"):
            control.listen(acd, "s2", "s3", "listen", "boss")
        with pytest.raises(AcdError, match="mode"):
            control.listen(acd, "s1", "s3", "shout", "boss")
        view = control.listen(acd, "s1", "s3", "listen", "boss")
        key = str(view["monitor"])
        assert control.monitors(acd) == [view]
        # The supervisor's own phone rings; the seat takes no queue call meanwhile.
        assert await until(engine, lambda: acd.monitors[key].joined, 5)
        assert boss.connected
        with pytest.raises(AcdError, match="already listening"):
            control.listen(acd, "s1", "s3", "listen", "boss")

        mark = {b: len(b.heard) for b in (caller, agent, boss)}
        await say_all((caller, CALLER_HZ), (agent, AGENT_HZ), (boss, SUPERVISOR_HZ))
        listen = {b: bytes(b.heard[mark[b]:]) for b in (caller, agent, boss)}

        control.listen_mode(acd, key, "whisper")
        mark = {b: len(b.heard) for b in (caller, agent, boss)}
        await say_all((boss, WHISPER_HZ), (caller, CALLER_HZ))
        whisper = {b: bytes(b.heard[mark[b]:]) for b in (caller, agent, boss)}

        control.listen_mode(acd, key, "listen")
        mark = {b: len(b.heard) for b in (caller, agent, boss)}
        await say_all((boss, WHISPER_HZ), (agent, AGENT_HZ))
        back = {b: bytes(b.heard[mark[b]:]) for b in (caller, agent, boss)}

        control.listen_stop(acd, key)
        assert await boss.wait_hangup(3) is not None
        assert caller.connected and agent.connected
        assert not acd.monitors
        mark = {b: len(b.heard) for b in (caller, agent)}
        await say_all((caller, LATE_HZ))
        after = {b: bytes(b.heard[mark[b]:]) for b in (caller, agent)}

        # Again, in whisper mode, until the caller hangs up: the supervisor's leg ends too.
        again = str(control.listen(acd, "s1", "s3", "whisper", "boss")["monitor"])
        assert await until(engine, lambda: again in acd.monitors and
                           acd.monitors[again].joined, 5)
        await caller.hangup()
        assert await boss.wait_hangup(3) is not None
        assert await agent.wait_hangup(3) is not None
        assert await until(engine, lambda: acd.seats["s1"].state is AgentState.WRAP_UP, 2)
        flush(store)
        return {"listen": listen, "whisper": whisper, "back": back, "after": after,
                "bots": (caller, agent, boss), "keys": (key, again)}

    try:
        got = run_calls(tmp_path, store, acd, flow, scenario)
        caller, agent, boss = got["bots"]  # type: ignore[misc]
        key, again = got["keys"]  # type: ignore[misc]
        log = [(r["monitor"], r["action"], r["mode"], r["why"]) for r in monitor_log(store)]
        rows = monitor_log(store)
        (inbound,) = store.query("SELECT recording FROM calls WHERE direction = 'in'")
        legs = store.query("SELECT recording FROM calls WHERE callee = '8003'")
    finally:
        store.close()
    listen, whisper, back, after = (got[k] for k in ("listen", "whisper", "back", "after"))
    # Listen: the supervisor hears both sides; nobody hears the supervisor.
    assert hears(listen[boss], CALLER_HZ) and hears(listen[boss], AGENT_HZ)  # type: ignore[index]
    assert hears(listen[caller], AGENT_HZ) and hears(listen[agent], CALLER_HZ)  # type: ignore[index]
    assert not hears(listen[caller], SUPERVISOR_HZ)  # type: ignore[index]
    assert not hears(listen[agent], SUPERVISOR_HZ)  # type: ignore[index]
    # Whisper: the agent hears the supervisor, the caller does not (and still the agent).
    assert hears(whisper[agent], WHISPER_HZ) and hears(whisper[agent], CALLER_HZ)  # type: ignore[index]
    assert not hears(whisper[caller], WHISPER_HZ)  # type: ignore[index]
    assert hears(whisper[boss], CALLER_HZ)  # type: ignore[index]
    # Back to listen: the agent no longer hears the supervisor.
    assert not hears(back[agent], WHISPER_HZ) and not hears(back[caller], WHISPER_HZ)  # type: ignore[index]
    assert hears(back[caller], AGENT_HZ) and hears(back[boss], AGENT_HZ)  # type: ignore[index]
    # After leaving, the conversation goes on undisturbed.
    assert hears(after[agent], LATE_HZ)  # type: ignore[index]
    assert log == [(key, "start", "listen", ""), (key, "joined", "listen", ""),
                   (key, "mode", "whisper", ""), (key, "mode", "listen", ""),
                   (key, "stop", "listen", "left"),
                   (again, "start", "whisper", ""), (again, "joined", "whisper", ""),
                   (again, "stop", "whisper", "call-ended")]
    assert {(r["seat_id"], r["agent"], r["phone_seat"], r["supervisor"]) for r in rows} == {
        ("s1", "A001", "s3", "boss")}
    # The caller's recording (right: what the caller heard) has the agent, never the
    # supervisor; each of the supervisor's legs is recorded like any call.
    heard_by_caller = read_slin(inbound["recording"], channels=2).reshape(-1, 2)[:, 1]
    assert hears(heard_by_caller.tobytes(), AGENT_HZ)
    assert not hears(heard_by_caller.tobytes(), SUPERVISOR_HZ)
    assert not hears(heard_by_caller.tobytes(), WHISPER_HZ)
    assert len(legs) == 2 and all(Path(r["recording"]).exists() for r in legs)


def test_a_ready_seat_whose_phone_listens_in_is_offered_no_call_until_it_leaves(
        tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 3, QueueConfig("service", wrap_up=1.0))
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        agent = seat_bot(ex, "8001")
        boss = seat_bot(ex, "8003")
        acd.login("s1", "A001")
        first = CallerBot(ex, "13800000001")
        await first.dial("95500")
        assert await until(engine, lambda: agent.connected, 10)
        acd.login("s3", "S001")  # ready: it would take the next caller
        key = str(control.listen(acd, "s1", "s3", "listen", "boss")["monitor"])
        assert await until(engine, lambda: acd.monitors[key].joined, 5)
        second = CallerBot(ex, "13800000002")
        await second.dial("95500")
        await second.wait(5)
        assert acd.seats["s3"].state is AgentState.READY and acd.seats["s3"].offers == 0
        assert len(acd.queues["service"].waiting) == 1  # the second caller still waits
        control.listen_stop(acd, key)
        assert await boss.wait_hangup(3) is not None
        # Now free, the supervisor's seat is offered the waiting caller at once.
        assert await until(engine, lambda: acd.seats["s3"].state is AgentState.TALKING, 3)
        assert not acd.queues["service"].waiting
        await first.hangup()
        await second.hangup()

    try:
        run_calls(tmp_path, store, acd, flow, scenario)
    finally:
        store.close()


def test_a_seat_whose_phone_listens_in_cannot_be_removed_meanwhile(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 3, QueueConfig("service", members={"s1": 0}))
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        agent = seat_bot(ex, "8001")
        boss = seat_bot(ex, "8002")
        acd.login("s1", "A001")
        caller = CallerBot(ex, "13800000001")
        await caller.dial("95500")
        assert await until(engine, lambda: agent.connected, 10)
        # The supervisor rings a free seat's phone (s2, logged out) to listen from.
        key = str(control.listen(acd, "s1", "s2", "listen", "boss")["monitor"])
        assert await until(engine, lambda: acd.monitors[key].joined, 5)
        queues = [q.config for q in acd.queues.values()]
        without_s2 = [s.config for s in acd.seats.values() if s.id != "s2"]
        with pytest.raises(AcdError, match="listening in from its phone"):
            acd.reconfigure(without_s2, queues)
        assert "s2" in acd.seats and boss.connected
        control.listen_stop(acd, key)
        assert await boss.wait_hangup(3) is not None
        assert await until(engine, lambda: not acd.monitors, 3)
        acd.reconfigure(without_s2, queues)
        assert "s2" not in acd.seats
        await caller.hangup()

    try:
        run_calls(tmp_path, store, acd, flow, scenario)
    finally:
        store.close()


def test_a_supervisor_phone_that_does_not_answer_gives_the_listen_in_up(
        tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 2, QueueConfig("service", members={"s1": 0}))
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> str:
        agent = seat_bot(ex, "8001")
        ex.subscribe("8002", CallerBot(ex, "8002"), behaviour=Behaviour.NO_ANSWER,
                     signal_answer=True)
        acd.login("s1", "A001")
        caller = CallerBot(ex, "13800000001")
        await caller.dial("95500")
        assert await until(engine, lambda: agent.connected, 10)
        key = str(control.listen(acd, "s1", "s2", "whisper", "boss")["monitor"])
        assert await until(engine, lambda: not acd.monitors, MONITOR_RING_SECONDS + 2)
        assert caller.connected and agent.connected
        await caller.hangup()
        flush(store)
        return key

    try:
        key = run_calls(tmp_path, store, acd, flow, scenario)
        log = [(r["action"], r["why"]) for r in monitor_log(store, key)]
    finally:
        store.close()
    assert log == [("start", ""), ("stop", "no-answer")]
