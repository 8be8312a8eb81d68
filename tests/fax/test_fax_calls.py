"""Whole fax calls on the simulated exchange: a spandsp fax machine at the far end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from appliance.calls.call import Call
from appliance.fax.machine import FaxMachine
from appliance.fax.render import FINE_HEIGHT, WIDTH
from appliance.fax.send import (
    CallbackResult,
    callback_fax,
    fax_document,
    resend,
    send_fax_on_call,
)
from appliance.fax.session import FaxResult
from appliance.media.spandsp import completion_text
from drivers.sim.exchange import Behaviour
from tests.fax.conftest import TODAY, FaxRig, logged_busy_fax, pixels

SERVICE = "95500"
CALLER = "13900139000"
FAX_NUMBER = "02112345678"


def same_call_flow(tiff: Path, results: list[FaxResult], *, poll: bool = False) -> Any:
    async def flow(call: Call) -> None:
        await call.answer()
        await call.silence(1.0)  # "press Start now": the prompt itself is the IVR's business
        results.append(await send_fax_on_call(call, tiff, poll=poll, document="test",
                                              params={"name": tiff.name}))
        await call.hangup()

    return flow


async def dial_and_start(rig: FaxRig, *, calling_party: bool) -> FaxResult | None:
    """The caller's machine dials the box and Start is pressed (to receive, or to poll)."""
    machine = FaxMachine(rig.exchange, CALLER, rig.root / "received.tiff")
    try:
        await machine.dial(SERVICE)
        machine.press_start(calling_party=calling_party)
        result = await machine.wait_fax(timeout=200)
        await machine.wait_hangup(timeout=10)
        return result
    finally:
        machine.close()


def machine_receives(*, calling_party: bool) -> Any:
    """The scenario: the caller's machine dials and receives; then the fax log."""
    async def scenario(rig: FaxRig) -> tuple[FaxResult | None, list[dict[str, Any]]]:
        return await dial_and_start(rig, calling_party=calling_party), rig.faxes()

    return scenario


def assert_same_pages(sent: Path, received: Path) -> None:
    want, got = pixels(sent), pixels(received)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(want, got, strict=True), start=1):
        assert a.shape == b.shape, f"page {i}: {b.shape} received, {a.shape} sent"
        assert np.array_equal(a, b), f"page {i}: {int((a != b).sum())} pixels differ"


def test_same_call_fax_reaches_the_callers_machine_pixel_for_pixel(
        run_fax: Callable[..., Any], pages_dir: Path, tmp_path: Path) -> None:
    tiff = pages_dir / "two_pages.tiff"
    box: list[FaxResult] = []

    far, rows = run_fax(machine_receives(calling_party=False), same_call_flow(tiff, box))
    assert far is not None and far.ok and far.pages == 2, far
    assert box[0].ok and box[0].pages == 2 and box[0].bit_rate == 14400 and box[0].ecm
    assert_same_pages(tiff, tmp_path / "received.tiff")
    (row,) = rows
    assert (row["mode"], row["result"], row["reason"], row["pages"], row["pages_in_file"],
            row["bit_rate"], row["ecm"], row["attempt"], row["destination"], row["document"]
            ) == ("same-call", "ok", "OK", 2, 2, 14400, 1, 1, CALLER, "test")
    assert 40 < row["duration"] < 100  # two dense pages of text at 14 400 bit/s


def test_a_polling_machine_is_served_by_the_box_answering(
        run_fax: Callable[..., Any], tmp_path: Path) -> None:
    box: list[FaxResult] = []
    params = {"product_code": "CI30", "sum_insured": 200000, "age": 41, "sex": "F",
              "term": 20, "payment_mode": "annual"}

    async def flow(call: Call) -> None:
        await call.answer()
        box.append(await fax_document(call, "rates", params, out_dir=tmp_path / "out",
                                      poll=True, today=lambda: TODAY))
        await call.hangup()

    far, rows = run_fax(machine_receives(calling_party=True), flow)
    assert far is not None and far.ok and far.pages == 1, far
    assert box[0].ok and box[0].pages == 1
    (row,) = rows
    assert (row["mode"], row["result"], row["document"]) == ("poll", "ok", "rates")
    assert json.loads(row["params"]) == params
    assert_same_pages(Path(row["tiff"]), tmp_path / "received.tiff")


def test_no_free_line_is_an_attempt_too(run_fax: Callable[..., Any], pages_dir: Path) -> None:
    async def scenario(rig: FaxRig) -> tuple[CallbackResult, list[dict[str, Any]]]:
        rig.exchange.trunks = 0  # every trunk taken by other calls
        out = await callback_fax(rig.engine, rig.exchange, FAX_NUMBER,
                                 pages_dir / "summary.tiff", tries=2, retry_seconds=60)
        return out, rig.faxes()

    out, rows = run_fax(scenario)
    assert out.results == ["no-line", "no-line"] and not out.ok
    assert [r["result"] for r in rows] == ["no-line", "no-line"]
    assert "trunk lines are busy" in rows[0]["reason"] and rows[0]["call_id"] is None


def test_both_ends_calling_fails_with_the_reason_logged(
        run_fax: Callable[..., Any], pages_dir: Path) -> None:
    # The caller's machine polls, but the IVR took it for a receive: both send CNG.
    box: list[FaxResult] = []

    far, rows = run_fax(machine_receives(calling_party=True),
                        same_call_flow(pages_dir / "summary.tiff", box))
    assert not box[0].ok and box[0].pages == 0
    assert far is not None and not far.ok and far.pages == 0
    (row,) = rows
    assert row["result"] == "failed" and row["pages"] == 0 and row["ok"] == 0
    # spandsp's words for its T0 timer (nothing ever came back), then what the box saw.
    assert row["completion_code"] == 2
    assert row["reason"].startswith(completion_text(2) + "; "), row["reason"]
    assert "both ends were calling" in row["reason"]


def test_callback_fax_to_an_answering_machine(
        run_fax: Callable[..., Any], pages_dir: Path, tmp_path: Path) -> None:
    tiff = pages_dir / "summary.tiff"

    async def scenario(rig: FaxRig) -> tuple[CallbackResult, FaxResult | None,
                                             list[dict[str, Any]]]:
        # An analog line: no answer signal, the engine hears the answer (the machine's CED
        # over the line's faint noise) after the ringback.
        machine = FaxMachine(rig.exchange, FAX_NUMBER, rig.root / "received.tiff",
                             noise_rms=3.0)
        rig.exchange.subscribe(FAX_NUMBER, machine, answer_after=6.0)
        try:
            out = await callback_fax(rig.engine, rig.exchange, FAX_NUMBER, tiff,
                                     document="policy_summary", params={"number": "x"})
            return out, await machine.wait_fax(timeout=10), rig.faxes()
        finally:
            machine.close()

    out, far, rows = run_fax(scenario)
    assert out.ok and out.results == ["ok"]
    assert out.fax is not None and out.fax.pages == 1 and out.fax.bit_rate == 14400
    assert far is not None and far.ok and far.pages == 1
    assert_same_pages(tiff, tmp_path / "received.tiff")
    (row,) = rows
    assert (row["mode"], row["attempt"], row["destination"], row["result"], row["pages"]) == (
        "callback", 1, FAX_NUMBER, "ok", 1)


def test_busy_then_answered_is_retried_five_minutes_later(
        run_fax: Callable[..., Any], pages_dir: Path, tmp_path: Path) -> None:
    tiff = pages_dir / "summary.tiff"

    async def scenario(rig: FaxRig) -> tuple[CallbackResult, list[dict[str, Any]]]:
        machine = FaxMachine(rig.exchange, FAX_NUMBER, rig.root / "received.tiff")
        rig.exchange.subscribe(FAX_NUMBER, machine, behaviour=Behaviour.BUSY)
        clock = rig.engine.clock

        async def wait(seconds: float) -> None:
            # The machine is free again by the next try.
            # A digital trunk (E1) this time: the exchange signals the answer.
            rig.exchange.subscribe(FAX_NUMBER, machine, answer_after=3.0, signal_answer=True)
            await clock.sleep_until(clock.now() + seconds)

        try:
            out = await callback_fax(rig.engine, rig.exchange, FAX_NUMBER, tiff, sleep=wait)
            return out, rig.faxes()
        finally:
            machine.close()

    out, rows = run_fax(scenario)
    assert out.results == ["busy", "ok"]
    assert [(r["attempt"], r["result"], r["pages"]) for r in rows] == [(1, "busy", 0),
                                                                      (2, "ok", 1)]
    assert rows[0]["reason"] == "the number was busy"
    assert rows[1]["started_at"] - rows[0]["started_at"] >= 300
    assert_same_pages(tiff, tmp_path / "received.tiff")


def test_no_answer_is_tried_three_times_and_each_try_logged(
        run_fax: Callable[..., Any], pages_dir: Path) -> None:
    async def scenario(rig: FaxRig) -> tuple[CallbackResult, list[dict[str, Any]]]:
        rig.exchange.subscribe(FAX_NUMBER, None, behaviour=Behaviour.NO_ANSWER)
        out = await callback_fax(rig.engine, rig.exchange, FAX_NUMBER,
                                 pages_dir / "summary.tiff", ring_seconds=30.0)
        return out, rig.faxes()

    out, rows = run_fax(scenario)
    assert not out.ok and out.results == ["no-answer"] * 3 and out.fax is None
    assert [(r["attempt"], r["result"], r["reason"]) for r in rows] == [
        (n, "no-answer", "nobody answered") for n in (1, 2, 3)]
    assert len({r["job"] for r in rows}) == 1
    gaps = np.diff([r["started_at"] for r in rows])
    assert all(gap >= 300 for gap in gaps), gaps


def test_a_tiff_without_dpi_is_fixed_and_arrives_at_its_own_height(
        run_fax: Callable[..., Any], tmp_path: Path) -> None:
    bare = tmp_path / "bare.tiff"
    page = Image.new("1", (WIDTH, FINE_HEIGHT), 1)
    page.paste(0, (200, 200, 1500, 260))
    page.paste(0, (200, FINE_HEIGHT - 300, 1500, FINE_HEIGHT - 200))
    # No dpi: spandsp would take it as standard resolution and send it twice as tall.
    page.save(bare, format="TIFF", compression="group4")
    box: list[FaxResult] = []

    async def scenario(rig: FaxRig) -> FaxResult | None:
        return await dial_and_start(rig, calling_party=False)

    far = run_fax(scenario, same_call_flow(bare, box))
    assert far is not None and far.ok and box[0].ok
    (got,) = pixels(tmp_path / "received.tiff")
    assert got.shape == (FINE_HEIGHT, WIDTH)  # not 2 × FINE_HEIGHT
    assert np.array_equal(got, np.array(page))


def test_resend_sends_a_logged_fax_again_rendering_it_if_the_file_is_gone(
        run_fax: Callable[..., Any], tmp_path: Path) -> None:
    async def scenario(rig: FaxRig) -> tuple[CallbackResult, list[dict[str, Any]]]:
        fax_id = await logged_busy_fax(rig, FAX_NUMBER)
        machine = FaxMachine(rig.exchange, FAX_NUMBER, rig.root / "received.tiff")
        rig.exchange.subscribe(FAX_NUMBER, machine, signal_answer=True)
        try:
            again = await resend(rig.engine, rig.exchange, fax_id,
                                 out_dir=rig.root / "resend", today=lambda: TODAY)
        finally:
            machine.close()
        return again, rig.faxes()

    again, rows = run_fax(scenario)
    assert again.ok
    assert [(r["attempt"], r["result"], r["document"]) for r in rows] == [
        (1, "busy", "policy_summary"), (1, "ok", "policy_summary")]
    assert rows[0]["job"] != rows[1]["job"]
    assert Path(rows[1]["tiff"]).name == f"resend-{rows[0]['id']}.tiff"
    assert_same_pages(Path(rows[1]["tiff"]), tmp_path / "received.tiff")


def test_a_hang_up_mid_fax_logs_the_pages_that_made_it(
        run_fax: Callable[..., Any], pages_dir: Path) -> None:
    box: list[FaxResult] = []

    async def scenario(rig: FaxRig) -> list[dict[str, Any]]:
        machine = FaxMachine(rig.exchange, CALLER, rig.root / "received.tiff")
        try:
            await machine.dial(SERVICE)
            machine.press_start()
            while machine.session is not None and machine.session.pages_done < 1:
                await machine.wait(0.1)
            await machine.wait(5.0)  # page 1 confirmed (MCF), page 2 on its way
            await machine.hangup()  # and then the paper ran out
            await machine.wait(0.5)  # the engine takes the hang-up on its next tick
            await rig.engine.settle()
        finally:
            machine.close()
        return rig.faxes()

    rows = run_fax(scenario, same_call_flow(pages_dir / "two_pages.tiff", box))
    assert not box[0].ok and box[0].pages == 1
    (row,) = rows
    assert (row["result"], row["pages"], row["pages_in_file"], row["completion_code"]) == (
        "failed", 1, 2, 49)
    assert row["reason"] == "The call dropped prematurely; the call ended (remote)"


def test_after_a_failed_transfer_the_callback_steps_down_to_v29(
        run_fax: Callable[..., Any], pages_dir: Path, tmp_path: Path) -> None:
    tiff = pages_dir / "summary.tiff"

    async def scenario(rig: FaxRig) -> tuple[CallbackResult, list[dict[str, Any]]]:
        machine = FaxMachine(rig.exchange, FAX_NUMBER, rig.root / "received.tiff")
        rig.exchange.subscribe(FAX_NUMBER, machine, signal_answer=True)

        async def pull_the_plug() -> None:
            # The first call drops 8 s into the fax, before any page got through.
            while machine.session is None:  # the engine's ticks run meanwhile
                await asyncio.sleep(0)
            await machine.wait(8.0)
            await machine.hangup()

        plug = asyncio.create_task(pull_the_plug())
        try:
            out = await callback_fax(rig.engine, rig.exchange, FAX_NUMBER, tiff)
            return out, rig.faxes()
        finally:
            await plug
            machine.close()

    out, rows = run_fax(scenario)
    assert out.results == ["failed", "ok"]
    assert [(r["attempt"], r["result"], r["pages"], r["bit_rate"]) for r in rows] == [
        (1, "failed", 0, 0), (2, "ok", 1, 9600)]
    assert rows[0]["reason"].startswith("The call dropped prematurely")
    assert_same_pages(tiff, tmp_path / "received.tiff")
