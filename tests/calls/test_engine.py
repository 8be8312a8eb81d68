"""Whole calls through the real engine on the manual clock: what the caller hears, the CDR
row and the recordings it leaves."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.calls.call import Call, CallEnded, FlowFn
from appliance.calls.clock import ManualClock
from appliance.calls.engine import Engine
from appliance.demo.flow import digit_prompts
from appliance.media.dtmf import detect_digits
from appliance.media.prompts import Prompt, PromptLibrary, concat
from appliance.media.recorder import wav_frames
from appliance.media.tones import beep, dtmf
from drivers.base import EventKind, Line, LineError, LineEvent
from drivers.sim import CallerBot
from drivers.sim.exchange import Behaviour
from tests.calls.conftest import Rig
from tests.rig import DiskFills

FRAME = 320


def stereo_channels(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    return data[:, 0], data[:, 1], len(data)


def cdr_row(root: Path, line_id: str) -> dict[str, Any]:
    """The CDR row of the call on a simulated line, read back from the database file."""
    from appliance.store.db import Store

    store = Store(root / "appliance.db")
    try:
        rows = store.query("SELECT * FROM calls WHERE line = ?", [line_id])
    finally:
        store.close()
    assert len(rows) == 1, rows
    return rows[0]


def speech(prompts: PromptLibrary) -> bytes:
    return concat([prompts.get("welcome", "en")])


def test_demo_call_end_to_end(run_calls: Any) -> None:
    async def scenario(rig: Rig) -> dict[str, Any]:
        bot = CallerBot(rig.exchange, "13800138000")
        await bot.dial("95500")
        await bot.listen(1.0)
        await bot.press("2024#")
        await bot.listen(5.0)
        said = speech(rig.prompts)
        await bot.send(said)
        cause = await bot.wait_hangup(40)
        call_id = bot.line.id if bot.line else ""
        rig.store.close()  # drains the writer: every CDR write is in
        return {"bot": bot, "cause": cause, "said": said, "call_id": call_id}

    out = run_calls(scenario)
    bot: CallerBot = out["bot"]
    heard = bytes(bot.heard)
    lib = PromptLibrary()
    welcome = concat([lib.get("welcome")])
    # The greeting started at once and the first key cut it short.
    assert heard.startswith(welcome[: 10 * FRAME])
    assert welcome not in heard
    # The keys were read back, prompt for prompt, byte for byte.
    readback = concat([lib.get(p) for p in ["you_entered", *digit_prompts("2024")]])
    assert readback in heard
    for name in ("leave_message", "message_saved", "goodbye"):
        assert concat([lib.get(name)]) in heard, name
    assert out["cause"] == "normal"


def test_cdr_row_and_stereo_recording(run_calls: Any, tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> str:
        bot = CallerBot(rig.exchange, "13800138001")
        await bot.dial("95500")
        await bot.listen(0.5)
        await bot.press("77#")
        assert await bot.wait_for(concat([Prompt.from_samples("beep", beep())]), timeout=20)
        await bot.send(speech(rig.prompts))
        await bot.wait_hangup(40)
        return bot.line.id if bot.line else ""

    line_id = run_calls(scenario)
    row = cdr_row(tmp_path, line_id)
    call_id = row["call_id"]
    assert (row["direction"], row["caller"], row["callee"]) == ("in", "13800138001", "95500")
    assert row["keys"] == "77#" and row["end_cause"] == "normal"
    assert row["started_at"] <= row["answered_at"] <= row["ended_at"]
    path = Path(row["recording"])
    assert path.is_file() and not list(tmp_path.rglob("*.part"))
    left, right, n = stereo_channels(path)
    # The recording lasts as long as the answered call did (±2 frames).
    assert abs(n / 8000 - (row["ended_at"] - row["answered_at"])) < 0.05
    # Left: the caller, whose keys decode from the recording; right: what the box said.
    assert detect_digits(left) == "77#"
    welcome = np.frombuffer(concat([PromptLibrary().get("welcome")]), "<i2")
    assert np.array_equal(right[:1600], welcome[:1600])
    # The message after the beep holds the caller's speech, byte for byte.
    message = tmp_path / "recordings" / "messages" / f"{call_id}.msg.wav"
    with wave.open(str(message)) as w:
        assert (w.getnchannels(), w.getframerate()) == (1, 8000)
        data = w.readframes(w.getnframes())
    said = concat([PromptLibrary().get("welcome", "en")])
    assert said[: len(said) - len(said) % FRAME] in data


async def hangs_up_after(rig: Rig, number: str, seconds: float) -> CallerBot:
    """A caller who dials the box, listens ``seconds`` and hangs up; returned once the
    hang-up has had a moment to go through."""
    bot = CallerBot(rig.exchange, number)
    await bot.dial("95500")
    await bot.listen(seconds)
    await bot.hangup()
    await bot.wait(0.3)
    return bot


def test_caller_hangs_up_mid_greeting(run_calls: Any, tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> str:
        bot = await hangs_up_after(rig, "13800138002", 1.2)
        return bot.line.id if bot.line else ""

    row = cdr_row(tmp_path, run_calls(scenario))
    assert row["end_cause"] == "remote"
    _, _, n = stereo_channels(Path(row["recording"]))
    assert abs(n / 8000 - 1.2) < 0.1


def test_a_step_of_the_wall_clock_mid_call_leaves_its_duration_whole(
        run_calls: Any, tmp_path: Path) -> None:
    # NTP setting the clock of a box that booted an hour ahead: a 6 s call showed -3594 s
    # of talk, and the day's report a negative total.
    async def scenario(rig: Rig) -> str:
        clock = rig.engine.clock
        assert isinstance(clock, ManualClock)
        bot = CallerBot(rig.exchange, "13800138013")
        await bot.dial("95500")
        await bot.listen(2.0)
        clock.step_wall(-3600.0)
        await bot.listen(4.0)
        await bot.hangup()
        await bot.wait(0.3)
        return bot.line.id if bot.line else ""

    row = cdr_row(tmp_path, run_calls(scenario))
    assert row["started_at"] <= row["answered_at"] <= row["ended_at"]
    assert 5.9 <= row["ended_at"] - row["answered_at"] <= 6.3


def test_a_caller_gone_before_the_next_tick_still_has_a_call_record(run_calls: Any,
                                                                   tmp_path: Path) -> None:
    # The line is offered and hung up within one tick: the call happened, so it has a row.
    async def scenario(rig: Rig) -> str:
        line = rig.exchange.dial_in(CallerBot(rig.exchange, "13800138009"), "95500")
        rig.exchange.far_hangup(line)
        for _ in range(3):
            await rig.exchange_tick()
        return line.id

    row = cdr_row(tmp_path, run_calls(scenario))
    assert (row["caller"], row["end_cause"]) == ("13800138009", "remote")
    assert row["ended_at"] is not None


def test_a_recording_that_cannot_start_costs_the_recording_not_the_call(
        run_calls: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def disk_full(path: Path, **kw: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("appliance.calls.engine.Recorder", disk_full)

    async def scenario(rig: Rig) -> CallerBot:
        return await hangs_up_after(rig, "13800138012", 1.0)

    bot = run_calls(scenario)
    assert bot.line is not None
    row = cdr_row(tmp_path, bot.line.id)
    assert row["answered_at"] is not None
    assert (row["end_cause"], row["recording"]) == ("remote", None)
    greeting = concat([PromptLibrary().get("welcome")])
    assert greeting[:8000] in bytes(bot.heard)  # the caller was served all the same
    assert "not recorded: cannot create" in caplog.text and "No space left" in caplog.text


def test_a_start_up_recovery_that_fails_wakes_whoever_waits_for_the_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async def flow(call: Call) -> None:
            await call.answer()

        engine = Engine(clock=ManualClock(), drivers=[], flow=flow)

        def unreadable() -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(engine, "_recover", unreadable)
        task = asyncio.create_task(engine.run())
        await asyncio.wait_for(engine.started.wait(), timeout=5)
        with pytest.raises(OSError, match="Input/output error"):
            await task

    asyncio.run(main())


def test_a_recording_cut_short_by_the_disk_is_indexed_as_long_as_the_file_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance.media.recorder import Recorder
    from appliance.store.db import Store

    async def main() -> list[dict[str, Any]]:
        async def flow(call: Call) -> None:
            await call.answer()

        store = Store(tmp_path / "appliance.db")
        try:
            engine = Engine(clock=ManualClock(), drivers=[], flow=flow, store=store,
                            recordings=tmp_path)
            rec = Recorder(tmp_path / "c1.wav", flush_frames=5)
            for _ in range(5):
                rec.write(bytes(FRAME))  # flushed: in the file

            with monkeypatch.context() as m:
                m.setattr(rec, "_file", DiskFills(rec._file, room=0))
                for _ in range(7):
                    rec.write(bytes(FRAME))  # accepted, never written
            await engine.close_recorder(rec, "c1")
            store.write(lambda db: None)
            return store.query("SELECT frames, seconds FROM recordings")
        finally:
            store.close()

    assert asyncio.run(main()) == [{"frames": 5, "seconds": 0.1}]


def test_a_call_whose_recording_cannot_be_read_back_still_gets_its_final_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The disk fails mid-call, and reading the cut recording back fails on it too: the
    # call's row is made final all the same, while the engine runs.
    import appliance.calls.engine as engine_module
    from appliance.store.db import Store
    from drivers.sim import CallerBot
    from tests.rig import running_engine

    def failing_disk(path: Path) -> int:
        raise OSError(5, "Input/output error", str(path))

    monkeypatch.setattr(engine_module, "wav_frames", failing_disk)

    async def flow(call: Call) -> None:
        await call.answer()
        await call.sleep(30)

    async def main() -> list[dict[str, Any]]:
        store = Store(tmp_path / "appliance.db")
        try:
            async with running_engine(flow, prompts=PromptLibrary(), store=store,
                                      recordings=tmp_path / "rec") as (engine, exchange):
                bot = CallerBot(exchange, "13800138000")
                await bot.dial("95500")
                await bot.listen(0.5)
                rec = engine.calls[0].recorder
                assert rec is not None
                monkeypatch.setattr(rec, "_file", DiskFills(rec._file, room=0))
                await bot.listen(1.5)
                assert rec.error is not None
                await bot.hangup()
                await bot.wait(0.2)  # the engine hears it, and ends the call
                await engine.settle()
                store.write(lambda db: None)
                return store.query("SELECT end_cause, recording FROM calls")
        finally:
            store.close()

    rows = asyncio.run(main())
    assert len(rows) == 1 and rows[0]["end_cause"] == "remote"
    assert rows[0]["recording"] and Path(rows[0]["recording"]).is_file()


def test_the_alive_mark_is_written_every_10_s_even_across_a_stall(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A 2 s stall (swap, a stopped VM) skips about 100 ticks; the mark due among them is
    # written at once after it, not 10 s later: a crash then ends its calls in time.
    from appliance.store import cdr
    from appliance.store.db import Store

    marks: list[float] = []
    write = cdr.alive

    def spy(store: Any, at: float) -> Any:
        marks.append(at - 1_780_000_000.0)
        return write(store, at)

    monkeypatch.setattr(cdr, "alive", spy)

    async def main() -> int:
        clock = ManualClock()
        stalled = False

        def hold() -> None:
            nonlocal stalled
            if not stalled and clock.now() >= 9.0:
                stalled = True
                clock.advance(2.0)

        clock.hold = hold
        store = Store(tmp_path / "appliance.db")
        try:
            engine = Engine(clock=clock, drivers=[], flow=lambda call: call.hangup(),
                            store=store)
            task = asyncio.create_task(engine.run())
            while clock.now() < 25.0:
                await asyncio.sleep(0)
            engine.stop()
            await task
            return engine.stats.skipped_ticks
        finally:
            store.close()

    assert asyncio.run(main()) >= 50
    assert marks[0] == 0.0
    assert max(b - a for a, b in itertools.pairwise(marks)) <= cdr.ALIVE_EVERY_S + 2.0


def start_and_stop(store: Any, recordings: Path) -> None:
    """An engine that starts (recovering what a crash left) and stops at once."""
    async def main() -> None:
        async def flow(call: Call) -> None:
            await call.answer()

        engine = Engine(clock=ManualClock(), drivers=[], flow=flow, store=store,
                        recordings=recordings)
        task = asyncio.create_task(engine.run())
        await engine.started.wait()
        engine.stop()
        await task

    asyncio.run(main())


def test_every_start_gives_a_crashed_call_its_finished_recording_whatever_else_was_kept(
        tmp_path: Path) -> None:
    # Three windows a crash (or a second crash during the start after it) could leave:
    # c1's row was closed by a start that then died, so no row is open now; c2's message
    # take was indexed, which hid its recording from the check; c3's recording was indexed
    # but the row never named it. Each call's recording must end up indexed and named.
    import time as _time

    from appliance.media.recorder import Recorder
    from appliance.store import cdr
    from appliance.store.db import Store

    answered = 1_780_000_100.0
    folder = tmp_path / "recordings" / _time.strftime("%Y/%m/%d", _time.localtime(answered))
    folder.mkdir(parents=True)

    def recording(name: str) -> Path:
        rec = Recorder(folder / name, channels=2)
        for _ in range(25):
            rec.write(bytes(2 * FRAME))
        return rec.close()

    store = Store(tmp_path / "appliance.db")
    for call_id in ("c1", "c2", "c3"):
        cdr.cdr_start(store, call_id, "L", "sim", "in", "1", "2", answered - 4)
        cdr.cdr_answer(store, call_id, answered)
    finals = {call_id: recording(f"{call_id}.wav") for call_id in ("c1", "c2", "c3")}
    take = recording("c2.msg.wav")
    cdr.index_recording(store, str(take), "c2", None, 25, False)
    cdr.index_recording(store, str(finals["c3"]), "c3", None, 25, False)
    cdr.close_unfinished(store, answered + 60).result()  # the start that died

    try:
        start_and_stop(store, tmp_path / "recordings")
        store.write(lambda db: None)
        indexed = {r["path"] for r in store.query("SELECT path FROM recordings")}
        named = {r["call_id"]: r["recording"] for r in store.query(
            "SELECT call_id, recording FROM calls")}
    finally:
        store.close()
    assert indexed == {str(p) for p in (*finals.values(), take)}
    assert named == {call_id: str(path) for call_id, path in finals.items()}


def test_a_recording_finished_but_not_indexed_before_a_crash_is_indexed_at_start(
        tmp_path: Path) -> None:
    # The engine renamed the recording into place and died before its index and CDR writes
    # were committed: the row is still open, the file is in its day folder.
    import time as _time

    from appliance.media.recorder import Recorder
    from appliance.store import cdr
    from appliance.store.db import Store

    answered = 1_780_000_100.0
    day = _time.strftime("%Y/%m/%d", _time.localtime(answered))
    (tmp_path / "recordings" / day).mkdir(parents=True)
    rec = Recorder(tmp_path / "recordings" / day / "c1.wav", channels=2)
    for _ in range(25):
        rec.write(bytes(2 * FRAME))
    final = rec.close()
    store = Store(tmp_path / "appliance.db")
    cdr.cdr_start(store, "c1", "L", "sim", "in", "1", "2", answered - 4)
    cdr.cdr_answer(store, "c1", answered)
    cdr.cdr_start(store, "c2", "L", "sim", "in", "1", "2", answered)  # never answered
    store.write(lambda db: None)

    try:
        start_and_stop(store, tmp_path / "recordings")
        store.write(lambda db: None)
        rows = store.query("SELECT path, call_id, frames, started_at FROM recordings")
        call = cdr.get_call(store, "c1")
    finally:
        store.close()
    assert rows == [{"path": str(final), "call_id": "c1", "frames": 25,
                     "started_at": answered}]
    assert call is not None
    assert (call["end_cause"], call["recording"]) == ("engine-crash", str(final))


def test_a_recording_whose_call_row_a_crash_lost_is_dated_by_its_file(tmp_path: Path) -> None:
    # The call's row never reached the disk (the database locked out, then kill -9): its
    # recording was indexed with no date, and no search by day found it.
    import os as _os

    from appliance.media.recorder import Recorder
    from appliance.store.db import Store

    (tmp_path / "recordings" / "2026" / "11" / "27").mkdir(parents=True)
    rec = Recorder(tmp_path / "recordings" / "2026" / "11" / "27" / "lost.wav", channels=2,
                   flush_frames=5)
    for _ in range(150):  # 3 s
        rec.write(bytes(2 * FRAME))
    rec.flush()
    rec._file.close()  # as a kill -9 leaves it: the .part, its header never patched
    ended = 1_780_000_300.0
    _os.utime(rec.part_path, (ended, ended))
    store = Store(tmp_path / "appliance.db")
    try:
        start_and_stop(store, tmp_path / "recordings")
        store.write(lambda db: None)
        rows = store.query("SELECT call_id, frames, started_at, recovered FROM recordings")
    finally:
        store.close()
    assert rows == [{"call_id": "lost", "frames": 150, "started_at": ended - 3.0,
                     "recovered": 1}]


def test_a_start_that_dies_while_recovering_leaves_no_take_unindexed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A crash mid-message, then the start after it killed once recover() had renamed the
    # .part files and before their index writes were committed: the third start found
    # the call's own recording by its row, but the message take (which no row names)
    # stayed unindexed for good, and the recording lost its "recovered" mark.
    from appliance.media.recorder import Recorder
    from appliance.store import cdr
    from appliance.store.db import Store

    day = tmp_path / "recordings" / "2026" / "11" / "27"
    day.mkdir(parents=True)
    for name, channels in (("c9.wav", 2), ("c9.msg.wav", 1)):
        rec = Recorder(day / name, channels=channels, flush_frames=5)
        for _ in range(50):
            rec.write(bytes(FRAME * channels))
        rec.flush()
        rec._file.close()  # as the crash left it
    store = Store(tmp_path / "appliance.db")
    cdr.cdr_start(store, "c9", "L", "sim", "in", "1", "2", 1_780_000_000.0)
    cdr.cdr_answer(store, "c9", 1_780_000_001.0)
    try:
        def dies(*args: Any, **kw: Any) -> None:
            raise OSError("the start was killed here")

        monkeypatch.setattr(cdr, "index_recording", dies)
        start_and_stop(store, tmp_path / "recordings")
        # Nothing was put in place unindexed: both are still there to recover.
        assert sorted(p.name for p in day.iterdir()) == ["c9.msg.wav.part", "c9.wav.part"]
        monkeypatch.undo()
        start_and_stop(store, tmp_path / "recordings")
        store.write(lambda db: None)
        rows = store.query("SELECT path, frames, recovered FROM recordings ORDER BY path")
        call = cdr.get_call(store, "c9")
    finally:
        store.close()
    assert rows == [{"path": str(day / "c9.msg.wav"), "frames": 50, "recovered": 1},
                    {"path": str(day / "c9.wav"), "frames": 50, "recovered": 1}]
    assert call is not None and call["recording"] == str(day / "c9.wav")


def test_a_finished_recording_is_found_after_the_time_zone_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Recorded (and the engine killed before indexing it) with the box on UTC-12, found
    # at the next start with the box on Shanghai time: the day folder is computed anew.
    import time as _time

    from appliance.media.recorder import Recorder
    from appliance.store import cdr
    from appliance.store.db import Store

    answered = 1_780_000_000.0  # 2026-05-28 20:26 UTC: the 28th at UTC-12, the 29th in Shanghai
    monkeypatch.setenv("TZ", "Etc/GMT+12")
    _time.tzset()
    try:
        day = tmp_path / "recordings" / _time.strftime("%Y/%m/%d", _time.localtime(answered))
        day.mkdir(parents=True)
        rec = Recorder(day / "c7.wav", channels=2)
        for _ in range(25):
            rec.write(bytes(2 * FRAME))
        final = rec.close()
        store = Store(tmp_path / "appliance.db")
        cdr.cdr_start(store, "c7", "L", "sim", "in", "1", "2", answered - 4)
        cdr.cdr_answer(store, "c7", answered)
        store.write(lambda db: None)
        monkeypatch.setenv("TZ", "Asia/Shanghai")
        _time.tzset()
        assert _time.strftime("%d", _time.localtime(answered)) != day.name
        try:
            start_and_stop(store, tmp_path / "recordings")
            store.write(lambda db: None)
            call = cdr.get_call(store, "c7")
            indexed = store.query("SELECT path FROM recordings")
        finally:
            store.close()
    finally:
        monkeypatch.undo()
        _time.tzset()
    assert call is not None and call["recording"] == str(final)
    assert indexed == [{"path": str(final)}]


def test_engine_stop_ends_calls_through_the_same_clean_up(run_calls: Any, tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> list[str]:
        bots = [CallerBot(rig.exchange, f"1390000000{i}") for i in range(3)]
        for bot in bots:
            await bot.dial("95500")
        await bots[0].listen(2.0)
        return [b.line.id for b in bots if b.line]

    rows = [cdr_row(tmp_path, i) for i in run_calls(scenario)]
    assert [r["end_cause"] for r in rows] == ["shutdown"] * 3
    for r in rows:
        assert Path(r["recording"]).is_file()
    assert not list(tmp_path.rglob("*.part"))


def test_a_stopping_engine_dials_nothing_more(run_calls: Any, tmp_path: Path) -> None:
    # A queue offering a caller to a seat as the box stops must not place a call that
    # would outlive the store recording it.
    async def scenario(rig: Rig) -> tuple[str, int]:
        bot = CallerBot(rig.exchange, "13900000001")
        await bot.dial("95500")
        await bot.listen(0.5)
        rig.engine.stop()
        with pytest.raises(LineError, match="stopping"):
            await rig.engine.originate(rig.exchange, "8001")
        assert bot.line is not None
        return bot.line.id, len(rig.engine.calls)

    line, calls = run_calls(scenario)
    assert calls == 1  # the caller's own call, being ended: nothing was dialled
    assert cdr_row(tmp_path, line)["end_cause"] == "shutdown"


def test_no_input_is_reprompted_and_silent_message_ends(run_calls: Any) -> None:
    async def scenario(rig: Rig) -> CallerBot:
        bot = CallerBot(rig.exchange, "13800138003")
        await bot.dial("95500")
        await bot.wait_hangup(60)
        return bot

    bot = run_calls(scenario)
    lib = PromptLibrary()
    heard = bytes(bot.heard)
    assert concat([lib.get("no_input")]) in heard
    assert concat([lib.get("goodbye")]) in heard


def collecting(keys: list[str], max_digits: int, inter_timeout: float) -> FlowFn:
    """A flow that answers, collects one entry (ended by '#') into ``keys`` and hangs up."""

    async def flow(call: Call) -> None:
        await call.answer()
        got = await call.collect(max_digits, terminator="#", first_timeout=5,
                                 inter_timeout=inter_timeout)
        keys.append(got.digits)
        await call.hangup()

    return flow


async def keying_caller(rig: Rig, number: str) -> tuple[CallerBot, Line]:
    """A caller through to the box, 0.2 s into the call, and its line."""
    bot = CallerBot(rig.exchange, number)
    await bot.dial("95500")
    await bot.wait(0.2)
    assert bot.line is not None
    return bot, bot.line


async def end_entry(bot: CallerBot, keys: str) -> None:
    """Key the rest of the entry and wait for the box to hang up (which it may do while
    the last tone still sounds)."""
    with contextlib.suppress(LineError):
        await bot.press(keys)
    await bot.wait_hangup(10)


def test_keys_typed_ahead_into_a_secret_entry_are_recorded_masked(
        run_calls: Any, tmp_path: Path) -> None:
    # A PIN keyed during the announcement before the secret entry reached the entry, but
    # the CDR and the key events had it in clear, recorded when it was typed.
    announcement = Prompt.from_samples("notice", np.full(8000 * 3, 500, np.int16))
    entries: list[str] = []
    events: list[str] = []

    async def flow(call: Call) -> None:
        await call.answer()
        await call.play("welcome", interruptible=True)  # "1" interrupts it, then is used
        entries.append(call.flush_keys())
        await call.play(announcement, interruptible=False)
        pin = await call.collect(4, secret=True, first_timeout=5)
        entries.append(pin.digits)
        await call.play(announcement, interruptible=False)  # "9" is never used
        await call.hangup()

    async def scenario(rig: Rig) -> str:
        rig.engine.on_event = lambda what, _call, info: (
            events.append(info["digit"]) if what == "key" else None)
        bot, line = await keying_caller(rig, "13800138013")
        await bot.press("1")
        await bot.wait(0.5)
        await bot.press("4711")  # during the announcement: typed ahead
        await bot.wait(3.5)
        with contextlib.suppress(LineError):
            await bot.press("9")
        await bot.wait_hangup(10)
        return line.id

    line = run_calls(scenario, flow=flow)
    assert entries == ["1", "4711"]
    assert cdr_row(tmp_path, line)["keys"] == "1xxxx9"
    assert events == ["1", "x", "x", "x", "x", "9"]


def test_keys_past_a_full_type_ahead_buffer_are_recorded_in_the_order_pressed(
        run_calls: Any, tmp_path: Path) -> None:
    # The buffer holds 32 keys; the ones after were recorded at once, ahead of the 32
    # still waiting to be used, so the CDR had the last keys first.
    pressed = "0123456789*#" * 3  # 36 keys
    flushed: list[str] = []

    async def flow(call: Call) -> None:
        await call.answer()
        await call.sleep(7.0)
        flushed.append(call.flush_keys())
        await call.hangup()

    async def scenario(rig: Rig) -> str:
        bot, line = await keying_caller(rig, "13800138014")
        await bot.press(pressed, on_ms=80, off_ms=80)
        await bot.wait_hangup(10)
        return line.id

    line = run_calls(scenario, flow=flow)
    assert flushed == [pressed[:32]]
    assert cdr_row(tmp_path, line)["keys"] == pressed


def test_key_reported_in_band_and_out_of_band_counts_once(run_calls: Any) -> None:
    keys: list[str] = []
    flow = collecting(keys, 4, inter_timeout=2)

    async def scenario(rig: Rig) -> None:
        bot, line = await keying_caller(rig, "13800138004")
        # Asterisk reports the key as a 0x03 message while the tone also plays in-band.
        line.push_event(LineEvent(EventKind.DTMF, digit="5"))
        await bot.press("5")
        await bot.wait(0.3)
        await end_entry(bot, "55#")

    run_calls(scenario, flow=flow)
    assert keys == ["555"]


@pytest.mark.parametrize("held_ms", [80, 400, 1500])
def test_a_key_held_down_counts_once_when_asterisk_reports_it_on_release(
        run_calls: Any, held_ms: int) -> None:
    # Asterisk sends kind 0x03 when the key is released; in-band detection reports it as
    # the tones start. A press longer than the merge window used to count twice.
    keys: list[str] = []
    flow = collecting(keys, 2, inter_timeout=3)

    async def scenario(rig: Rig) -> None:
        bot, line = await keying_caller(rig, "13800138011")
        await bot.press("5", on_ms=held_ms)
        await bot.wait(0.04)  # Asterisk's detector sees the release
        line.push_event(LineEvent(EventKind.DTMF, digit="5"))
        await bot.wait(0.3)
        await end_entry(bot, "#")

    run_calls(scenario, flow=flow)
    assert keys == ["5"]


@pytest.mark.parametrize(("digit", "deviation", "break_at_ms"), [
    ("5", 0.0, 500), ("D", 0.015, None), ("D", -0.015, None), ("7", 0.02, None)])
def test_a_long_press_with_a_break_or_tones_slightly_off_still_counts_once(
        run_calls: Any, digit: str, deviation: float, break_at_ms: int | None) -> None:
    # The in-band key's time followed its tones only while spandsp said it was in a key:
    # spandsp drops out for a frame or two at a 10 ms break (which Q.24 bridges into one
    # key) and never holds a tone 1.5 % off, so Asterisk's report at release came too late
    # to be matched and the key counted twice.
    keys: list[str] = []
    flow = collecting(keys, 2, inter_timeout=3)
    if break_at_ms is None:
        press = dtmf(digit, 2000, deviation=deviation)
    else:
        press = np.concatenate([dtmf(digit, break_at_ms), np.zeros(80, np.int16),
                                dtmf(digit, 2000 - break_at_ms - 10)])

    async def scenario(rig: Rig) -> None:
        bot, line = await keying_caller(rig, "13800138012")
        await bot.send(press)
        await bot.wait(0.04)  # Asterisk's detector sees the release
        line.push_event(LineEvent(EventKind.DTMF, digit=digit))
        await bot.wait(0.3)
        await end_entry(bot, "#")

    run_calls(scenario, flow=flow)
    assert keys == [digit]


def test_reply_to_a_key_starts_in_the_tick_the_key_is_detected(run_calls: Any) -> None:
    async def flow(call: Call) -> None:
        await call.answer()
        while True:
            key = await call.play("welcome")
            if key is not None:
                call.flush_keys()
                await call.play(f"digit_{key}", interruptible=False)

    async def scenario(rig: Rig) -> int:
        bot = CallerBot(rig.exchange, "13800138005")
        await bot.dial("95500")
        await bot.listen(0.5)
        start = len(bot.heard)  # the first tone frame goes out in the next tick
        await bot.press("3", on_ms=80, off_ms=0)
        await bot.listen(0.2)
        first = rig.prompts.get("digit_3").frames[0]
        at = bytes(bot.heard).find(first, start)
        await bot.hangup()
        return (at - start) // FRAME

    frames_until_reply = run_calls(scenario, flow=flow)
    # spandsp declares a key after ~25 ms of tone, i.e. in the second tone frame; the reply
    # goes out in that same tick.
    print("frames_until_reply", frames_until_reply)
    assert 0 <= frames_until_reply <= 2


def test_outbound_answer_busy_and_no_answer_from_the_line_audio(run_calls: Any) -> None:
    results: dict[str, tuple[str, str]] = {}

    async def flow(call: Call) -> None:
        try:
            await call.wait_answered()
            await call.play("goodbye", interruptible=False)
            await call.hangup()
        finally:
            results[call.callee] = (call.progress_outcome or "signalled", call.end_cause)

    async def scenario(rig: Rig) -> None:
        ex = rig.exchange
        person = CallerBot(ex, "13911112222")
        ex.subscribe("13911112222", person, answer_after=6.0)
        ex.subscribe("13933334444", None, behaviour=Behaviour.BUSY)
        ex.subscribe("13955556666", None, behaviour=Behaviour.NO_ANSWER)
        seat = CallerBot(ex, "8001")
        ex.add_seat("8001", seat, answer_after=2.0)
        calls = [await rig.engine.originate(ex, n, flow, ring_timeout=20.0)
                 for n in ("13911112222", "13933334444", "13955556666", "8001")]
        # The person says hello when they pick up, as people do.
        while not person.connected:
            await rig.exchange_tick()
        with contextlib.suppress(LineError):  # the box says goodbye and hangs up meanwhile
            await person.send(speech(rig.prompts))
        for c in calls:
            await c.wait_ended()

    run_calls(scenario, flow=flow)
    assert results["13911112222"] == ("voice", "normal")
    assert results["13933334444"] == ("busy", "busy")
    assert results["13955556666"][1] == "no-answer"
    assert results["8001"] == ("signalled", "normal")


@pytest.mark.parametrize("frames", [50, 12])  # a sentence; a word too short to be sure of
def test_an_outbound_call_answered_by_voice_is_recorded_from_the_callee_s_first_word(
        run_calls: Any, tmp_path: Path, frames: int) -> None:
    # Voice is judged on its first 300 ms or so (a single short word, on the quiet after
    # it), and the recording began only then: the callee's "hello" was cut from it.
    async def flow(call: Call) -> None:
        await call.wait_answered()
        await call.silence(2)
        await call.hangup()

    async def scenario(rig: Rig) -> tuple[str, bytes]:
        person = CallerBot(rig.exchange, "13911113333")
        rig.exchange.subscribe("13911113333", person, answer_after=1.0)
        call = await rig.engine.originate(rig.exchange, "13911113333", flow)
        while not person.connected:
            await rig.exchange_tick()
        said = speech(rig.prompts)[4 * FRAME: (4 + frames) * FRAME]
        with contextlib.suppress(LineError):
            await person.send(said)
        await call.wait_ended()
        await rig.engine.settle()
        return call.line.id, said

    line, said = run_calls(scenario, flow=flow)
    row = cdr_row(tmp_path, line)
    with wave.open(row["recording"]) as w:
        stereo = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert said in stereo[:, 0].tobytes()  # the whole of it, from its first frame


def test_bridged_calls_hear_each_other_and_a_muted_member_only_listens(run_calls: Any) -> None:
    calls: list[Call] = []

    async def flow(call: Call) -> None:
        await call.answer()
        calls.append(call)
        await call.wait_ended()

    async def scenario(rig: Rig) -> tuple[CallerBot, CallerBot, CallerBot, bytes, bytes]:
        a, b, c = (CallerBot(rig.exchange, f"1380000000{i}", name=n) for i, n in
                   enumerate(("a", "b", "c")))
        for bot in (a, b, c):
            await bot.dial("95500")
        while len(calls) < 3:
            await rig.exchange_tick()
        rig.engine.create_bridge(calls[0], calls[1]).add(calls[2], muted=True)
        await a.wait(0.1)
        said_a = concat([rig.prompts.get("welcome", "en")])[: 50 * FRAME]
        said_c = concat([rig.prompts.get("goodbye", "en")])[: 50 * FRAME]
        await asyncio.gather(a.send(said_a), c.send(said_c))
        await a.wait(0.2)
        await calls[0].hangup()
        await b.wait(0.2)
        for bot in (a, b, c):
            await bot.hangup()
        return a, b, c, said_a, said_c

    a, b, c, said_a, said_c = run_calls(scenario, flow=flow)
    # B hears A sample for sample (C is muted, B itself is silent); C listens in to A too.
    assert said_a in bytes(b.heard) and said_a in bytes(c.heard)
    # Nobody hears the muted listener, though C spoke at the same time as A: what B heard
    # is exactly A, not A + C.
    assert said_c[: 4 * FRAME] not in bytes(a.heard)
    # A never hears itself: all A heard while it spoke was silence (B said nothing).
    assert not np.frombuffer(bytes(a.heard), "<i2").any()


def test_caller_hears_congestion_when_every_trunk_is_taken(run_calls: Any) -> None:
    async def flow(call: Call) -> None:
        await call.answer()
        await call.wait_ended()

    async def scenario(rig: Rig) -> tuple[str, str]:
        rig.exchange.trunks = 1
        first = CallerBot(rig.exchange, "13800000001")
        await first.dial("95500")
        second = CallerBot(rig.exchange, "13800000002")
        with pytest.raises(LineError, match="congestion"):
            await second.dial("95500")
        await first.hangup()
        return second.heard_tone(), first.heard_tone()

    heard_by_second, heard_by_first = run_calls(scenario, flow=flow)
    assert heard_by_second == "congestion"
    assert heard_by_first == "silence"  # the box answered and said nothing


def test_hanging_up_while_leaving_a_message_keeps_the_message(run_calls: Any) -> None:
    async def scenario(rig: Rig) -> tuple[list[Path], list[Path], bytes]:
        bot = CallerBot(rig.exchange, "13800138009")
        await bot.dial("95500")
        await bot.press("8#")
        assert await bot.wait_for(concat([Prompt.from_samples("beep", beep())]), timeout=20)
        said = speech(rig.prompts)[: 100 * FRAME]
        await bot.send(said)
        await bot.hangup()  # the usual way to finish a message
        await rig.exchange_tick()  # the engine sees the hang-up on its next tick
        await rig.exchange_tick()
        await rig.engine.settle()
        return (list(rig.messages.glob("*.msg.wav")), list(rig.messages.glob("*.part")), said)

    done, unfinished, said = run_calls(scenario)
    assert len(done) == 1 and not unfinished  # closed at the hang-up, not left for recovery
    with wave.open(str(done[0])) as w:
        assert said in w.readframes(w.getnframes())


def test_a_hash_after_a_complete_entry_does_not_end_the_next_one(run_calls: Any) -> None:
    entries: list[str] = []

    async def flow(call: Call) -> None:
        await call.answer()
        for size in (2, 3, 3):
            entries.append((await call.collect(size, first_timeout=5, inter_timeout=3)).digits)
        await call.hangup()

    async def scenario(rig: Rig) -> None:
        bot = CallerBot(rig.exchange, "13800138010")
        await bot.dial("95500")
        await bot.press("12#")  # two digits fill the entry; the '#' is habit
        await bot.wait(0.3)
        await bot.press("345#")  # typed ahead in one go with the next entry too
        await end_entry(bot, "67#")

    run_calls(scenario, flow=flow)
    assert entries == ["12", "345", "67"]


def test_keys_in_the_same_tick_as_the_key_that_ends_an_entry_or_a_message_are_kept(
        run_calls: Any, tmp_path: Path) -> None:
    # Two keys can reach one tick (a burst of queued frames, two 0x03 messages in one
    # read); the second used to be logged in the call record and lost for the menu.
    results: list[tuple[str, str]] = []

    async def flow(call: Call) -> None:
        await call.answer()
        for size in (1, 1, 4, 1):
            got = await call.collect(size, first_timeout=2, inter_timeout=2)
            results.append((got.digits, got.end.value))
        taken = await call.record_message(tmp_path / "msg.wav", max_seconds=10)
        results.append(("message", taken.end.value))
        got = await call.collect(1, first_timeout=2)
        results.append((got.digits, got.end.value))
        await call.hangup()

    async def scenario(rig: Rig) -> None:
        bot, line = await keying_caller(rig, "13800138011")
        for keys in ("12", "34#5"):
            for digit in keys:
                line.push_event(LineEvent(EventKind.DTMF, digit=digit))
            await bot.wait(0.2)
        await bot.wait(0.3)  # recording
        for digit in "#7":
            line.push_event(LineEvent(EventKind.DTMF, digit=digit))
        await bot.wait_hangup(10)

    run_calls(scenario, flow=flow)
    assert results == [("1", "max-digits"), ("2", "max-digits"), ("34", "terminator"),
                       ("5", "max-digits"), ("message", "key"), ("7", "max-digits")]


def test_every_action_of_an_ended_call_raises_call_ended_at_once(run_calls: Any) -> None:
    # A sleeping flow slept on after the caller hung up, and a beep after the end waited
    # forever: both until the engine cancelled the flow 5 s later, skipping its clean-up.
    seen: list[str] = []
    late = asyncio.Event()

    async def flow(call: Call) -> None:
        await call.answer()
        try:
            await call.sleep(600)
        except CallEnded as exc:
            seen.append(f"sleep: {exc.cause}")
        await late.wait()  # say, a lookup that outlasts the call
        for name, action in (("sleep", lambda: call.sleep(1)), ("beep", call.beep)):
            try:
                await action()
            except CallEnded as exc:
                seen.append(f"{name}: {exc.cause}")

    async def scenario(rig: Rig) -> None:
        bot, _ = await keying_caller(rig, "13800138012")
        await bot.hangup()
        await rig.exchange_tick()
        await rig.exchange_tick()
        late.set()
        started = time.monotonic()
        await rig.engine.settle()
        assert time.monotonic() - started < 2  # not the 5 s grace period

    run_calls(scenario, flow=flow)
    assert seen == ["sleep: remote", "sleep: remote", "beep: remote"]


def test_hangup_after_the_caller_hung_up_returns_once_the_clean_up_is_done(
        run_calls: Any) -> None:
    rows: list[dict[str, Any]] = []
    parts: list[list[Path]] = []

    async def flow(call: Call) -> None:
        await call.answer()
        with contextlib.suppress(CallEnded):
            await call.silence(60)
        await call.hangup()  # returned at once, before the recording was closed
        assert call.engine.store is not None and call.engine.recordings is not None
        rows.extend(call.engine.store.query(
            "SELECT end_cause, recording FROM calls WHERE call_id = ?", [call.id]))
        parts.append(list(call.engine.recordings.rglob("*.part")))

    async def scenario(rig: Rig) -> None:
        bot, _ = await keying_caller(rig, "13800138013")
        await bot.wait(0.5)
        await bot.hangup()
        await bot.wait(0.2)
        await rig.engine.settle()

    run_calls(scenario, flow=flow)
    assert rows[0]["end_cause"] == "remote"
    assert rows[0]["recording"].endswith(".wav")
    assert parts == [[]]


def test_a_call_ended_by_the_box_after_its_line_ended_keeps_the_line_s_cause(
        run_calls: Any) -> None:
    calls: list[Call] = []

    async def flow(call: Call) -> None:
        await call.answer()
        calls.append(call)
        await call.wait_ended()

    async def scenario(rig: Rig) -> list[str]:
        bot_a, _ = await keying_caller(rig, "13800138014")
        _, line_b = await keying_caller(rig, "13800138015")
        # Before the engine's next tick takes the line's event, the flow hangs up.
        await bot_a.hangup()
        await calls[0].hangup()
        rig.exchange.trunk_down(line_b.trunk)
        await calls[1].hangup()
        return [c.end_cause for c in calls]

    assert run_calls(scenario, flow=flow) == ["remote", "line-dropped"]


def heard_until_hung_up(number: str) -> Callable[[Rig], Awaitable[bytes]]:
    """A scenario: ``number`` calls the box and listens until the box hangs up."""
    async def scenario(rig: Rig) -> bytes:
        bot = CallerBot(rig.exchange, number)
        await bot.dial("95500")
        await bot.wait_hangup(10)
        return bytes(bot.heard)

    return scenario


def test_a_sleep_or_a_collect_timeout_between_prompts_is_as_long_as_asked(
        run_calls: Any) -> None:
    # sleep() waking through asyncio.wait took one pass of the loop too many: the flow
    # missed the tick its timer fired in, and every sleep was a frame too long.
    a = Prompt.from_samples("A", np.full(1600, 1000, np.int16))  # 10 frames each
    b = Prompt.from_samples("B", np.full(1600, 2000, np.int16))

    async def flow(call: Call) -> None:
        await call.answer()
        await call.play(a)
        await call.sleep(0.2)
        await call.play(b)
        await call.collect(1, first_timeout=0.2)
        await call.play(a)
        await call.hangup()

    scenario = heard_until_hung_up("13800138016")
    firsts = np.frombuffer(run_calls(scenario, flow=flow), "<i2").reshape(-1, 160)[:, 0]
    runs = [(int(value), len(list(frames))) for value, frames in itertools.groupby(firsts)]
    start = runs.index((1000, 10))
    assert runs[start:start + 5] == [(1000, 10), (0, 10), (2000, 10), (0, 10), (1000, 10)]


def test_an_entry_started_by_a_key_typed_ahead_times_out_as_long_as_asked(
        run_calls: Any) -> None:
    # Keys typed ahead were timed from the tick the entry began in, the entry's own
    # timeout from the first frame not yet written: the inter-digit wait was a frame short.
    a = Prompt.from_samples("A", np.full(8000, 1000, np.int16))  # 1 s
    b = Prompt.from_samples("B", np.full(1600, 2000, np.int16))

    async def flow(call: Call) -> None:
        await call.answer()
        await call.play(a, interruptible=False)
        await call.collect(4, inter_timeout=0.2)
        await call.play(b)
        await call.hangup()

    async def scenario(rig: Rig) -> bytes:
        bot = CallerBot(rig.exchange, "13800138018")
        await bot.dial("95500")
        await bot.press("1")  # during A: typed ahead
        await bot.wait_hangup(10)
        return bytes(bot.heard)

    firsts = np.frombuffer(run_calls(scenario, flow=flow), "<i2").reshape(-1, 160)[:, 0]
    runs = [(int(value), len(list(frames))) for value, frames in itertools.groupby(firsts)]
    start = runs.index((1000, 50))
    assert runs[start:start + 3] == [(1000, 50), (0, 10), (2000, 10)]


def test_prompts_and_silences_in_a_row_follow_each_other_without_a_gap(
        run_calls: Any) -> None:
    # A source said it had finished only in the tick after its last frame, so every
    # play() after another left one silent frame, and silence(0.2) lasted 0.24 s.
    a = Prompt.from_samples("A", np.full(1600, 1000, np.int16))  # 10 frames each
    b = Prompt.from_samples("B", np.full(800, 2000, np.int16))  # 5 frames

    async def flow(call: Call) -> None:
        await call.answer()
        await call.play(a)
        await call.play(b)
        await call.silence(0.2)
        await call.play(a)
        await call.beep()
        await call.play(b)
        await call.hangup()

    scenario = heard_until_hung_up("13800138017")
    frames = np.frombuffer(run_calls(scenario, flow=flow), "<i2").reshape(-1, 160)
    firsts = frames[:, 0]
    runs = [(int(value), len(list(group))) for value, group in itertools.groupby(firsts)]
    start = runs.index((1000, 10))
    assert runs[start:start + 4] == [(1000, 10), (2000, 5), (0, 10), (1000, 10)]
    # The beep follows the prompt at once, and the last prompt follows the beep at once.
    after_a = sum(n for _, n in runs[:start + 4])
    beep_frames = len(beep()) // 160
    assert not np.all(frames[after_a] == 0) and firsts[after_a] != 1000
    assert list(firsts[after_a + beep_frames:after_a + beep_frames + 5]) == [2000] * 5


def test_a_failing_frame_processor_ends_its_own_call_and_no_other(run_calls: Any) -> None:
    # Raised out of the tick's writing loop, it left every later line without audio and
    # every recording stalled, tick after tick, and its own call up.
    class Broken:
        def rx(self, frame: bytes) -> None:
            pass

        def tx(self) -> bytes | None:
            raise RuntimeError("modem bug")

    async def flow(call: Call) -> None:
        await call.answer()
        if call.caller == "13800138021":
            await call.exchange(Broken())
        else:
            await call.play_tone("ringback", 5)

    async def scenario(rig: Rig) -> tuple[list[int], str | None, int, list[int]]:
        bots = [CallerBot(rig.exchange, f"1380013802{i}") for i in range(3)]
        for bot in bots:
            await bot.dial("95500")
        before = [len(bot.heard) for bot in bots]
        await bots[0].wait(1.0)
        heard = [len(bot.heard) - b for bot, b in zip(bots, before, strict=True)]
        recorded = [c.recorder.frames_written for c in rig.engine.calls if c.recorder]
        return heard, bots[1].hangup_cause, rig.engine.stats.failed_ticks, recorded

    heard, cause, failed, recorded = run_calls(scenario, flow=flow)
    # A second of ringback for the two others, all of it; nothing from the broken one.
    assert [n // 320 >= 50 for n in heard] == [True, False, True] and heard[1] == 0
    assert cause == "flow-error" and failed == 0
    assert len(recorded) == 2 and min(recorded) >= 50


def test_cancelled_actions_stop_their_audio_keep_their_message_and_spare_other_waiters(
        run_calls: Any) -> None:
    # A cancelled play went on sounding; a cancelled record_message left its message an
    # open .part; one cancelled wait_answered cancelled every other waiter's answer too.
    long = Prompt.from_samples("long", np.full(8000 * 10, 1000, np.int16))
    kept: list[Path] = []

    async def give_up(call: Call, action: Any, ticks: int) -> None:
        task = asyncio.ensure_future(action)
        await asyncio.wait({task, call.engine.wait_ticks(call, ticks)},
                           return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def flow(call: Call) -> None:
        await call.answer()
        await give_up(call, call.play(long), 25)
        await call.sleep(1.0)
        path = call.engine.recordings / "messages" / f"{call.id}.msg.wav"
        await give_up(call, call.record_message(path, max_seconds=60), 50)
        kept.append(path)
        await call.hangup()

    async def answered(call: Call) -> None:
        await call.wait_answered()
        await call.hangup()

    async def scenario(rig: Rig) -> tuple[int, str, str | None]:
        bot = CallerBot(rig.exchange, "13800138030")
        await bot.dial("95500")
        await bot.send(np.full(8000 * 2, 3000, np.int16))
        await bot.wait_hangup(10)
        rig.exchange.subscribe("8003", CallerBot(rig.exchange, "8003"), answer_after=2.0,
                               signal_answer=True)
        call = await rig.engine.originate(rig.exchange, "8003", answered)
        waiter = asyncio.ensure_future(call.wait_answered())  # a screen that gives up
        await rig.engine.wait_ticks(None, 50)
        waiter.cancel()
        await call.wait_ended()
        await rig.engine.settle()
        played = int(np.count_nonzero(bot.heard_samples().reshape(-1, 160)[:, 0] == 1000))
        return played, call.end_cause, None if call.answered_at is None else "answered"

    played, cause, answered_at = run_calls(scenario, flow=flow)
    assert 24 <= played <= 26  # half a second of the prompt, then silence
    (path,) = kept
    assert path.is_file() and not path.with_name(path.name + ".part").exists()
    assert 45 <= wav_frames(path) <= 51
    assert (cause, answered_at) == ("normal", "answered")


def test_an_ended_call_does_not_join_a_bridge(run_calls: Any) -> None:
    # A caller gone while the agent's phone rang, then bridged: the agent heard the
    # caller's last frame over and over, nothing ever taking it out of the bridge.
    outcome: list[str] = []

    async def flow(call: Call) -> None:
        await call.answer()
        await call.wait_ended()
        bridge = call.engine.create_bridge(call)
        outcome.append(f"members: {len(bridge)}, call's bridge: {call.bridge}")

    async def scenario(rig: Rig) -> None:
        bot = await hangs_up_after(rig, "13800138020", 0.5)
        assert bot.line is not None
        await rig.engine.settle()

    run_calls(scenario, flow=flow)
    assert outcome == ["members: 0, call's bridge: None"]


def test_a_menu_loop_over_a_key_it_leaves_buffered_still_lets_the_engine_tick(
        run_calls: Any) -> None:
    # play() returned a typed-ahead key without a tick: a menu replayed over a key the flow
    # never flushes spun forever, and no call on the box got another frame.
    ticks: list[int] = []

    async def flow(call: Call) -> None:
        await call.answer()
        if call.caller != "13800138021":
            await call.play("welcome")  # another caller, who must go on hearing it
            return
        key = await call.play("welcome")
        while key is not None and len(ticks) < 50:
            ticks.append(call.engine.tick_no)
            key = await call.play("welcome")  # replays it over the same buffered key

    async def scenario(rig: Rig) -> bytes:
        other = CallerBot(rig.exchange, "13800138022")
        await other.dial("95500")
        bot = CallerBot(rig.exchange, "13800138021")
        await bot.dial("95500")
        await bot.listen(0.3)
        await bot.press("9")
        before = len(other.heard)
        await bot.listen(1.5)
        return bytes(other.heard)[before:]

    heard = run_calls(scenario, flow=flow)
    assert len(ticks) == 50 and ticks == sorted(set(ticks))  # one replay a tick at most
    welcome = concat([PromptLibrary().get("welcome")])
    assert len(heard) >= 40 * FRAME and heard[:FRAME * 10] in welcome


def test_a_caller_gone_before_the_flow_answers_is_not_an_answered_call(
        run_calls: Any, tmp_path: Path) -> None:
    # The flow looked the route up off the tick; the caller hung up meanwhile, and the
    # hang-up was still waiting for the next tick when the flow answered.
    looked_up: list[asyncio.Future[None]] = []

    async def flow(call: Call) -> None:
        lookup = call.engine.loop.create_future()
        looked_up.append(lookup)
        await lookup
        await call.answer()
        await call.play("welcome")

    async def scenario(rig: Rig) -> str:
        bot = CallerBot(rig.exchange, "13800138023")
        dialling = asyncio.ensure_future(bot.dial("95500", timeout=5))
        while not looked_up:
            await asyncio.sleep(0)
        await bot.wait(0.5)
        line = bot.line
        assert line is not None
        after_tick = rig.exchange.after_tick

        def hang_up_then_answer(n: int) -> None:
            after_tick(n)
            if not looked_up[0].done():
                rig.exchange.far_hangup(line)
                looked_up[0].set_result(None)

        rig.exchange.after_tick = hang_up_then_answer  # type: ignore[method-assign]
        with contextlib.suppress(Exception):
            await dialling
        await bot.wait(0.3)
        await rig.engine.settle()
        return line.id

    row = cdr_row(tmp_path, run_calls(scenario, flow=flow))
    assert (row["answered_at"], row["end_cause"], row["recording"]) == (None, "remote", None)


def test_the_stop_wakes_a_flow_waiting_on_its_calls_timer(run_calls: Any) -> None:
    # The engine's stop waited its whole grace period (5 s) for a flow waiting on a timer
    # of a call already ended, and then cancelled it.
    seen: list[str] = []

    async def flow(call: Call) -> None:
        await call.answer()
        await call.engine.wait_ticks(call, 50 * 60)
        seen.append(f"woke, call ended: {call.ended}")

    async def scenario(rig: Rig) -> None:
        bot = CallerBot(rig.exchange, "13800138024")
        await bot.dial("95500")
        await bot.listen(0.2)

    started = time.monotonic()
    run_calls(scenario, flow=flow)
    assert seen == ["woke, call ended: True"]
    assert time.monotonic() - started < 3.0
