"""Running the real engine on the manual clock with the simulated exchange."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from appliance.calls.call import FlowFn
from appliance.calls.engine import Engine
from appliance.demo.flow import make_demo_flow
from appliance.media.prompts import PromptLibrary
from appliance.store.db import Store
from drivers.sim import SimExchange
from tests.rig import running_engine

T = TypeVar("T")


@dataclass
class Rig:
    engine: Engine
    exchange: SimExchange
    store: Store
    prompts: PromptLibrary
    root: Path

    @property
    def recordings(self) -> Path:
        return self.root / "recordings"

    @property
    def messages(self) -> Path:
        return self.root / "recordings" / "messages"

    async def exchange_tick(self) -> None:
        """Wait for the exchange's next tick."""
        start = self.exchange.tick_no
        while self.exchange.tick_no == start:
            await asyncio.sleep(0)


Scenario = Callable[[Rig], Awaitable[T]]


@pytest.fixture(scope="session")
def prompts() -> PromptLibrary:
    lib = PromptLibrary()
    lib.preload("zh")
    return lib


@pytest.fixture
def run_calls(tmp_path: Path, prompts: PromptLibrary) -> Callable[..., Any]:
    """``run_calls(scenario, flow=None)``: run the scenario against a fresh engine."""

    def run(scenario: Scenario[T], flow: FlowFn | None = None, stop: bool = True) -> T:
        async def main() -> T:
            store = Store(tmp_path / "appliance.db")
            try:
                async with running_engine(
                    flow or make_demo_flow(tmp_path / "recordings" / "messages"),
                    prompts=prompts, store=store, recordings=tmp_path / "recordings",
                ) as (engine, exchange):
                    rig = Rig(engine, exchange, store, prompts, tmp_path)
                    return await asyncio.wait_for(scenario(rig), timeout=120)
            finally:
                store.close()

        return asyncio.run(main())

    return run
