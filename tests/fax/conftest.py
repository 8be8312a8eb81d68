"""Fax tests: a demo book, documents rendered from it, and whole calls on the manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pytest

from appliance.calls.call import FlowFn
from appliance.calls.engine import Engine
from appliance.fax import documents
from appliance.fax.render import Paragraph, read_pages, render_pages, write_tiff
from appliance.insurance.demo_data import load_demo_data
from appliance.media.prompts import PromptLibrary
from appliance.store.db import Store
from drivers.sim import SimExchange
from tests.rig import running_engine

T = TypeVar("T")
TODAY = date(2026, 11, 26)


@dataclass
class FaxRig:
    engine: Engine
    exchange: SimExchange
    store: Store
    root: Path

    def faxes(self) -> list[dict[str, Any]]:
        """The fax log, once every row already queued has been written."""
        self.store.write(lambda db: None)  # the writer runs in order: a barrier
        return self.store.query("SELECT * FROM faxes ORDER BY id")


@pytest.fixture(scope="session")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file holding a small demo book (copied for each test that writes)."""
    path = tmp_path_factory.mktemp("book") / "appliance.db"
    with Store(path) as store:
        load_demo_data(store, 60, today=TODAY, pin_iterations=1000)
    return path


@pytest.fixture(scope="session")
def pages_dir(tmp_path_factory: pytest.TempPathFactory, book: Path) -> Path:
    """Documents rendered once: a one-page policy summary and a two-page document."""
    out = tmp_path_factory.mktemp("docs")
    with Store(book) as store:
        number = store.query("SELECT number FROM policies ORDER BY number LIMIT 1")[0]["number"]
        write_tiff(render_pages(documents.policy_summary(store, number), on=TODAY),
                   out / "summary.tiff")
        long = documents.procedures(store, "TL20")
        long.blocks += [Paragraph(f"{i}. 附注 Note {i}: 以上流程如有变更，以本公司公告为准。"
                                  "Procedures may change; our notices prevail.")
                        for i in range(1, 40)]
        write_tiff(render_pages(long, on=TODAY), out / "two_pages.tiff")
    return out


async def logged_busy_fax(rig: FaxRig, number: str) -> int:
    """The log id of a policy summary whose one callback attempt to ``number`` found it
    busy; its TIFF removed, so a resend must render the document again."""
    from appliance.fax.send import callback_fax, render_document
    from drivers.sim.exchange import Behaviour

    policy = rig.store.query("SELECT number FROM policies LIMIT 1")[0]["number"]
    tiff = render_document(rig.store, "policy_summary", {"number": policy},
                           rig.root / "summary.tiff", on=TODAY)
    rig.exchange.subscribe(number, None, behaviour=Behaviour.BUSY)
    first = await callback_fax(rig.engine, rig.exchange, number, tiff, tries=1,
                               document="policy_summary", params={"number": policy})
    assert first.results == ["busy"]
    tiff.unlink()
    return int(rig.faxes()[0]["id"])


def pixels(path: Path) -> list[npt.NDArray[np.bool_]]:
    return [np.array(page) for page in read_pages(path)]


@pytest.fixture
def run_fax(tmp_path: Path, book: Path) -> Callable[..., Any]:
    """``run_fax(scenario, flow)``: the scenario against a fresh engine and a copy of the
    book, on the manual clock."""

    def run(scenario: Callable[[FaxRig], Awaitable[T]], flow: FlowFn | None = None) -> T:
        db = tmp_path / "appliance.db"
        db.write_bytes(book.read_bytes())

        async def idle(call: Any) -> None:
            await call.hangup()

        async def main() -> T:
            store = Store(db)
            try:
                async with running_engine(flow or idle, prompts=PromptLibrary(), store=store,
                                          recordings=None) as (engine, exchange):
                    rig = FaxRig(engine, exchange, store, tmp_path)
                    result = await asyncio.wait_for(scenario(rig), timeout=60)
                await engine.settle()
                return result
            finally:
                store.close()

        return asyncio.run(main())

    return run
