"""Sending a fax: on the caller's own call, or by calling their fax number back.

Same call: the IVR tells the caller to press Start on their machine, then calls
:func:`send_fax_on_call`. A machine told to receive answers in T.30 terms (it sends DIS),
so the box takes the calling role (``calling_party=1``: CNG, then the document after the
DIS). A machine that polls sends CNG and then asks with DTC, so with ``poll=True`` the box
takes the answering role with the document ready to be polled. The wrong pairing (both
calling) fails after spandsp's T0 timer, logged with the reason in words.

Callback: :func:`callback_fax` dials the number the caller keyed on a free line through the
engine's ``originate``; busy, no answer and congestion are told from the line's audio by
the engine, and the fax is tried again (3 tries, 5 minutes apart by default) on the
engine's clock. Every attempt is a row in the fax log (:mod:`appliance.fax.log`);
:func:`resend` sends a logged fax again as a new callback job.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

from PIL import Image

from appliance.calls.call import Call, CallEnded
from appliance.calls.engine import Engine
from appliance.fax import documents
from appliance.fax import log as faxlog
from appliance.fax.render import check_tiff, render_pages, write_tiff
from appliance.fax.session import ALL_MODEMS, V17_FREE, FaxResult, FaxSession
from appliance.media.spandsp import T30_SUPPORT_V27TER
from appliance.store.db import Store
from drivers.base import Driver, LineError

log = logging.getLogger("appliance.fax")

TRIES: Final = 3
RETRY_SECONDS: Final = 300.0
RING_SECONDS: Final = 45.0
#: the modems each callback attempt offers, after a failed transfer the next
STEP_DOWN: Final = (ALL_MODEMS, V17_FREE, T30_SUPPORT_V27TER)


@dataclass(frozen=True)
class Prepared:
    """A TIFF checked for sending: the file spandsp gets and its page count."""

    path: Path
    pages: int


async def prepare_tiff(tiff: Path | Prepared) -> Prepared:
    """Check ``tiff`` for sending (a copy with resolution tags if it had none), off the
    loop: a TIFF of many pages takes a while to decode. An IVR prepares the document while
    it tells the caller to press Start, so the fax begins the moment they do."""
    if isinstance(tiff, Prepared):
        return tiff

    def check() -> Prepared:
        path = check_tiff(tiff, fix_to=tiff.with_name(tiff.stem + ".fixed.tiff"))
        with Image.open(path) as img:
            return Prepared(path, getattr(img, "n_frames", 1))

    return await asyncio.get_running_loop().run_in_executor(None, check)


async def fax_on_call(call: Call, tiff: Path, *, calling_party: bool, ecm: bool = True,
                      ident: str = "", modems: int = ALL_MODEMS) -> FaxResult:
    """Run one T.30 session on ``call`` until it ends or the call does (no logging)."""
    session = FaxSession(calling_party=calling_party, tx_file=tiff, ecm=ecm, ident=ident,
                         modems=modems)
    try:
        await call.exchange(session)
        result = session.result
        if result is None:  # the processor cannot stop before phase E; kept for safety
            result = session.abort("the session stopped without a result")
    except CallEnded as exc:
        result = session.abort(f"the call ended ({exc.cause})")
    finally:
        session.close()
    return result


async def send_fax_on_call(
    call: Call, tiff_path: Path | Prepared, *, poll: bool = False, ecm: bool = True,
    document: str = "file", params: dict[str, Any] | None = None, ident: str = "",
    store: Store | None = None,
) -> FaxResult:
    """Fax ``tiff_path`` to the machine on this call, after the caller pressed Start.

    ``poll``: the caller's machine polls (it sends DTC), so the box answers and serves the
    document. The attempt is logged in ``store`` (the engine's by default).
    """
    store = store if store is not None else call.engine.store
    started = call.engine.clock.wall()
    tiff = await prepare_tiff(tiff_path)
    result = await fax_on_call(call, tiff.path, calling_party=not poll, ecm=ecm, ident=ident)
    if store is not None:
        faxlog.record(store, faxlog.FaxRecord(
            job=uuid.uuid4().hex, attempt=1, mode="poll" if poll else "same-call",
            document=document, params=params or {}, tiff=str(tiff.path),
            destination=call.caller, started_at=started,
            result=faxlog.OK if result.ok else faxlog.FAILED, reason=result.reason,
            call_id=call.id, fax=result, pages_in_file=tiff.pages))
    if not result.ok:
        log.warning("call %s: fax to %s failed: %s", call.id, call.caller, result.reason)
    return result


async def fax_document(
    call: Call, kind: str, params: dict[str, Any], *, out_dir: Path, poll: bool = False,
    today: Callable[[], date] = date.today, store: Store | None = None,
    announce: Awaitable[Any] | None = None,
) -> FaxResult:
    """Render document ``kind`` (see :func:`appliance.fax.documents.build`) and fax it on
    this call: the step an IVR takes once the caller is ready to press Start. Rendering
    runs off the loop, while ``announce`` (telling the caller to press Start) plays, so
    T.30 begins as soon as it ends; the log row keeps the kind and parameters, so it can
    be resent."""
    store = store if store is not None else call.engine.store
    if store is None:
        raise ValueError("fax_document needs the store holding the insurance book")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{call.id}.{kind}.tiff"
    render = asyncio.get_running_loop().run_in_executor(
        None, lambda: render_document(store, kind, params, path, on=today()))
    try:
        if announce is not None:
            await announce
    finally:
        tiff = await render
    return await send_fax_on_call(call, tiff, poll=poll, document=kind, params=params,
                                  store=store)


@dataclass
class CallbackResult:
    job: str
    results: list[str] = field(default_factory=list)  # each attempt: ok, failed, busy, ...
    fax: FaxResult | None = None  # the last attempt that reached T.30

    @property
    def ok(self) -> bool:
        return bool(self.results) and self.results[-1] == faxlog.OK


async def callback_fax(
    engine: Engine, driver: Driver, number: str, tiff_path: Path | Prepared, *,
    document: str = "file", params: dict[str, Any] | None = None, tries: int = TRIES,
    retry_seconds: float = RETRY_SECONDS, ring_seconds: float = RING_SECONDS,
    caller: str = "", ecm: bool = True, ident: str = "", store: Store | None = None,
    job: str | None = None, sleep: Callable[[float], Awaitable[None]] | None = None,
) -> CallbackResult:
    """Dial ``number`` and fax ``tiff_path``; on busy, no answer, congestion, no free line
    or a failed transfer, wait ``retry_seconds`` and try again, up to ``tries`` attempts.
    Each attempt is logged. The wait is ``sleep(seconds)``, by default on the engine's
    clock (a manual clock jumps straight to the next attempt). After an attempt whose
    transfer failed, the next offers one modem fewer (V.17, V.29, V.27ter → V.29,
    V.27ter → V.27ter), as fax servers step down on a bad line."""
    if tries < 1:
        raise ValueError(f"tries must be at least 1, got {tries}")
    if not number or not all(c.isdigit() or c in "+*#" for c in number):
        raise ValueError(f"fax number {number!r} is not a dialable number")
    store = store if store is not None else engine.store
    tiff = await prepare_tiff(tiff_path)
    out = CallbackResult(job or uuid.uuid4().hex)
    steps = iter(STEP_DOWN)
    modems = next(steps)
    for attempt in range(1, tries + 1):
        started = engine.clock.wall()
        outcome, reason, fax, call_id = await _attempt(engine, driver, number, tiff.path,
                                                       caller, ring_seconds, ecm, ident,
                                                       modems)
        if outcome == faxlog.FAILED:
            modems = next(steps, modems)
        out.results.append(outcome)
        if fax is not None:
            out.fax = fax
        log.info("fax job %s to %s attempt %d/%d: %s%s", out.job, number, attempt, tries,
                 outcome, f" ({reason})" if reason and reason != outcome else "")
        if store is not None:
            faxlog.record(store, faxlog.FaxRecord(
                job=out.job, attempt=attempt, mode="callback", document=document,
                params=params or {}, tiff=str(tiff.path), destination=number,
                started_at=started, result=outcome, reason=reason, call_id=call_id, fax=fax,
                pages_in_file=tiff.pages))
        if outcome == faxlog.OK or attempt == tries:
            break
        if sleep is not None:
            await sleep(retry_seconds)
        else:
            await engine.clock.sleep_until(engine.clock.now() + retry_seconds)
    return out


async def _attempt(engine: Engine, driver: Driver, number: str, tiff: Path, caller: str,
                   ring_seconds: float, ecm: bool, ident: str, modems: int,
                   ) -> tuple[str, str, FaxResult | None, str | None]:
    """(outcome, reason, T.30 result if reached, call id) of one dialled attempt."""
    done: asyncio.Future[FaxResult] = asyncio.get_running_loop().create_future()

    async def flow(call: Call) -> None:
        await call.wait_answered()
        # The box dialled: it is the calling terminal, the answering machine sends DIS.
        done.set_result(await fax_on_call(call, tiff, calling_party=True, ecm=ecm,
                                          ident=ident, modems=modems))
        await call.hangup()

    try:
        call = await engine.originate(driver, number, flow, caller=caller,
                                      ring_timeout=ring_seconds)
    except LineError as exc:
        return "no-line", str(exc), None, None
    cause = await call.wait_ended()
    if not done.done():
        return cause, _CAUSE_WORDS.get(cause, f"the call ended ({cause})"), None, call.id
    fax = done.result()
    return (faxlog.OK if fax.ok else faxlog.FAILED), fax.reason, fax, call.id


_CAUSE_WORDS: Final = {
    "busy": "the number was busy",
    "no-answer": "nobody answered",
    "congestion": "the network was congested or the number does not exist",
}


def render_document(store: Store, kind: str, params: dict[str, Any], out: Path, *,
                    on: date) -> Path:
    """Build, lay out and save one document as a fax TIFF (blocking: run off the loop)."""
    return write_tiff(render_pages(documents.build(store, kind, params), on=on), out)


async def resend(
    engine: Engine, driver: Driver, fax_id: int, *, number: str | None = None,
    out_dir: Path, today: Callable[[], date] = date.today, store: Store | None = None,
    **kwargs: Any,
) -> CallbackResult:
    """Send a logged fax again, as a new callback job (to ``number`` or the same place).

    The logged TIFF is used if it is still there; otherwise the document is rendered again
    from its kind and parameters (a plain TIFF that is gone cannot be resent).
    """
    store = store if store is not None else engine.store
    if store is None:
        raise ValueError("resend needs the store holding the fax log")
    row = await asyncio.get_running_loop().run_in_executor(None, faxlog.get, store, fax_id)
    tiff = Path(row["tiff"])
    if not tiff.exists():
        if row["document"] == "file":
            raise FileNotFoundError(f"fax {fax_id}: {tiff} is gone and was not a document "
                                    "the box can render again")
        tiff = await asyncio.get_running_loop().run_in_executor(
            None, lambda: render_document(store, row["document"], row["params"],
                                          out_dir / f"resend-{fax_id}.tiff", on=today()))
    return await callback_fax(engine, driver, number or row["destination"], tiff,
                              document=row["document"], params=row["params"], store=store,
                              **kwargs)
