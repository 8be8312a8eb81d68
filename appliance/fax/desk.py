"""The fax desk the IVR's ``fax`` node uses: a document sent on the caller's own call, or to
a fax number the caller keyed, later, on a free line.

Same-call: the desk renders the document while the flow tells the caller to press Start,
then runs T.30 on the call (:func:`~appliance.fax.send.fax_document`). Callback: the
desk renders the document and hands it to :func:`~appliance.fax.send.callback_fax` as a
background job on the engine (three tries five minutes apart by default, each logged), so
the caller hears "we will fax it" at once and may hang up. Jobs still running when the box
stops are cancelled; the log shows the attempts made.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

from appliance.calls.call import Call
from appliance.fax.send import CallbackResult, callback_fax, fax_document, render_document
from appliance.fax.session import FaxResult
from appliance.store.db import Store
from drivers.base import Driver

log = logging.getLogger(__name__)


class FaxDesk:
    """``callback_driver`` is the driver callback faxes are dialled on (None: the box has no
    line to dial out on, and only same-call faxes are offered)."""

    def __init__(self, store: Store, out_dir: Path, *, callback_driver: Driver | None = None,
                 today: Callable[[], date] = date.today) -> None:
        self.store = store
        self.out_dir = out_dir
        self.callback_driver = callback_driver
        self.today = today
        self.jobs: set[asyncio.Task[CallbackResult | None]] = set()

    async def here(self, call: Call, kind: str, params: dict[str, Any],
                   announce: Awaitable[Any] | None = None) -> FaxResult:
        """Fax ``kind`` to the machine on ``call``; ``announce`` plays while it renders."""
        return await fax_document(call, kind, params, out_dir=self.out_dir, today=self.today,
                                  store=self.store, announce=announce)

    def later(self, call: Call, number: str, kind: str, params: dict[str, Any]) -> bool:
        """Queue ``kind`` for ``number`` on a free line; False when the box cannot dial out
        or ``number`` is not a dialable number (the flow then says it failed)."""
        if self.callback_driver is None or not number.isdigit() or len(number) < 5:
            return False
        task = call.engine.loop.create_task(self._callback(call, number, kind, params))
        self.jobs.add(task)
        task.add_done_callback(self.jobs.discard)
        return True

    async def _callback(self, call: Call, number: str, kind: str,
                        params: dict[str, Any]) -> CallbackResult | None:
        assert self.callback_driver is not None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{call.id}.{kind}.{uuid.uuid4().hex[:8]}.tiff"
        try:
            tiff = await asyncio.get_running_loop().run_in_executor(
                None, lambda: render_document(self.store, kind, params, path, on=self.today()))
            result = await callback_fax(call.engine, self.callback_driver, number, tiff,
                                        document=kind, params=params, caller=call.callee,
                                        store=self.store)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A document that cannot be rendered (the policy vanished) or a store error:
            # logged; the caller was told the fax would come, the log shows it did not.
            log.exception("callback fax of %s to %s (call %s) failed", kind, number, call.id)
            return None
        log.info("callback fax %s of %s to %s: %s", result.job, kind, number,
                 ", ".join(result.results))
        return result


__all__ = ["FaxDesk"]
