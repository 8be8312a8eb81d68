"""Resend requests queued by the web and served by the engine's poller, on the simulated
exchange with the manual clock: the subscriber's fax machine gets the document again,
pixel for pixel, rendered from the log's kind and parameters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.fax.machine import FaxMachine
from appliance.fax.requests import INTERRUPTED, request_resend, serve_resend_requests
from tests.fax.conftest import TODAY, FaxRig, logged_busy_fax
from tests.fax.test_fax_calls import FAX_NUMBER, assert_same_pages

OTHER_NUMBER = "02187654321"


def test_a_queued_resend_is_served_by_the_poller_to_another_number(
        run_fax: Callable[..., Any], tmp_path: Path) -> None:
    async def scenario(rig: FaxRig) -> tuple[list[tuple[int, str, str]], Any,
                                             list[dict[str, Any]], list[dict[str, Any]]]:
        fax_id = await logged_busy_fax(rig, FAX_NUMBER)
        machine = FaxMachine(rig.exchange, OTHER_NUMBER, rig.root / "received.tiff")
        rig.exchange.subscribe(OTHER_NUMBER, machine, signal_answer=True)
        finished: list[tuple[int, str, str]] = []
        done = asyncio.Event()

        def on_finished(request_id: int, status: str, result: str) -> None:
            finished.append((request_id, status, result))
            done.set()

        request_id = request_resend(rig.store, fax_id, requested_by="supervisor",
                                    now=rig.engine.clock.wall(), number=OTHER_NUMBER)
        poller = asyncio.create_task(serve_resend_requests(
            rig.engine, rig.exchange, rig.store, 1.0, out_dir=rig.root / "resend",
            today=lambda: TODAY, on_finished=on_finished))
        try:
            await asyncio.wait_for(done.wait(), timeout=50)
            far = await machine.wait_fax(timeout=10)
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
            machine.close()
        assert finished[0][0] == request_id
        return finished, far, rig.faxes(), rig.store.query(
            "SELECT * FROM fax_resend_requests")

    finished, far, faxes, requests = run_fax(scenario)
    assert [(s, r) for _, s, r in finished] == [("sent", "ok")]
    assert far is not None and far.ok and far.pages == 1
    (req,) = requests
    assert (req["status"], req["result"], req["number"], req["requested_by"]) == (
        "sent", "ok", OTHER_NUMBER, "supervisor")
    assert req["picked_at"] is not None and req["finished_at"] >= req["picked_at"]
    assert [(f["destination"], f["result"], f["mode"]) for f in faxes] == [
        (FAX_NUMBER, "busy", "callback"), (OTHER_NUMBER, "ok", "callback")]
    assert req["job"] == faxes[1]["job"]
    assert Path(faxes[1]["tiff"]).name == f"resend-{faxes[0]['id']}.tiff"
    assert_same_pages(Path(faxes[1]["tiff"]), tmp_path / "received.tiff")


def test_requests_that_cannot_be_sent_are_refused_or_fail_with_the_reason(
        run_fax: Callable[..., Any]) -> None:
    async def scenario(rig: FaxRig) -> list[dict[str, Any]]:
        fax_id = await logged_busy_fax(rig, FAX_NUMBER)
        with pytest.raises(LookupError):
            request_resend(rig.store, 9999, requested_by="x", now=0.0)
        with pytest.raises(ValueError, match="not a dialable number"):
            request_resend(rig.store, fax_id, requested_by="x", now=0.0, number="12ab")
        # A row an earlier engine left half done, and one for a policy since removed.
        rig.store.write(lambda db: db.execute(
            "INSERT INTO fax_resend_requests (fax_id, requested_at, requested_by, status)"
            " VALUES (?, 0, 'x', 'sending')", (fax_id,)))
        rig.store.write(lambda db: db.execute(
            "UPDATE faxes SET params = '{\"number\": \"NOPE\"}' WHERE id = ?", (fax_id,)))
        request_resend(rig.store, fax_id, requested_by="x", now=0.0)
        done = asyncio.Event()
        poller = asyncio.create_task(serve_resend_requests(
            rig.engine, rig.exchange, rig.store, 1.0, out_dir=rig.root / "resend",
            today=lambda: TODAY, on_finished=lambda *_: done.set()))
        try:
            await asyncio.wait_for(done.wait(), timeout=20)
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        return rig.store.query("SELECT * FROM fax_resend_requests ORDER BY id")

    interrupted, bad = run_fax(scenario)
    assert (interrupted["status"], interrupted["result"]) == ("failed", INTERRUPTED)
    assert bad["status"] == "failed" and "NOPE" in bad["result"]


def test_the_poller_ends_with_the_engine_and_leaves_no_request_sending(
        run_fax: Callable[..., Any]) -> None:
    async def scenario(rig: FaxRig) -> tuple[list[dict[str, Any]], bool]:
        fax_id = await logged_busy_fax(rig, FAX_NUMBER)
        rig.exchange.subscribe(OTHER_NUMBER, None, answer_after=10_000.0)  # rings on
        request_resend(rig.store, fax_id, requested_by="x", now=0.0, number=OTHER_NUMBER)
        poller = asyncio.create_task(serve_resend_requests(
            rig.engine, rig.exchange, rig.store, 1.0, out_dir=rig.root / "resend",
            today=lambda: TODAY))
        for _ in range(10_000):  # until the poller has claimed it and the line rings
            await asyncio.sleep(0)
            if rig.store.query("SELECT 1 FROM fax_resend_requests WHERE status = 'sending'"):
                break
        rig.engine.stop()
        await asyncio.wait_for(poller, timeout=10)  # returns by itself
        return rig.store.query("SELECT * FROM fax_resend_requests"), poller.done()

    (req,), ended = run_fax(scenario)
    assert ended
    assert req["status"] == "failed" and req["finished_at"] is not None



def test_the_poller_on_the_real_clock_wakes_when_the_engine_stops() -> None:
    # Its 5 s sleep between polls ran on after the stop: `appliance engine` took seconds
    # longer to exit after Ctrl-C, in silence. The poller (and the reminder passes) pause
    # with Engine.pause.
    from appliance.calls.clock import MonotonicClock
    from appliance.calls.engine import Engine

    async def main() -> float:
        async def flow(call: Any) -> None:
            await call.hangup()

        engine = Engine(clock=MonotonicClock(), drivers=[], flow=flow)
        running = asyncio.create_task(engine.run())
        await engine.started.wait()
        loop = asyncio.get_running_loop()
        loop.call_later(0.1, engine.stop)
        started = loop.time()
        await engine.pause(30.0)
        waited = loop.time() - started
        await running
        return waited

    assert asyncio.run(main()) < 10.0
