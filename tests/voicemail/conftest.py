"""Voicemail on the real engine (manual clock, simulated exchange), with real speech.

The caller's speech is recorded English from asterisk-core-sounds-en-wav, laid over a
seeded line noise at -60 dBFS (a real line is never digitally silent while someone talks),
so the VAD and the energy gate work as they do on a trunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from appliance.calls.call import FlowFn
from appliance.media.prompts import Prompt, PromptLibrary, concat
from appliance.media.tones import beep
from appliance.media.wavio import read_slin
from appliance.store.db import Store
from tests.calls.conftest import Rig
from tests.rig import InlineExecutor, running_engine

T = TypeVar("T")

SOUNDS = Path("/usr/share/asterisk/sounds/en")
NOISE_DBFS = -60.0
SALESPEOPLE = ("S001", "S002", "S003")
BEEP = concat([Prompt.from_samples("beep", beep())])
#: store work at once, on the loop: the manual clock does not wait for a thread pool
INLINE = InlineExecutor()


def line_noise(seconds: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 32768 * 10 ** (NOISE_DBFS / 20), round(seconds * 8000))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def spoken(name: str, before: float = 0.5, after: float = 0.5, seed: int = 1) -> np.ndarray:
    """A recorded English prompt as a caller saying it: noise, the words (with the noise
    under them), noise."""
    words = read_slin(SOUNDS / name).astype(np.int32)
    pad_a, pad_b = round(before * 8000), round(after * 8000)
    noise = line_noise((pad_a + len(words) + pad_b) / 8000, seed).astype(np.int32)
    noise[pad_a: pad_a + len(words)] += words
    return np.clip(noise, -32768, 32767).astype(np.int16)


def seed_salespeople(store: Store) -> None:
    def add(db: Any) -> None:
        for i, code in enumerate(SALESPEOPLE, 1):
            db.execute(
                "INSERT INTO salespeople (code, name, branch, licence_no, licence_status, phone,"
                " pin_hash) VALUES (?, ?, ?, ?, 'valid', ?, 'not-a-pin')",
                (code, f"业务员{i}", f"B{i}", f"L{i:04d}", f"1390000000{i}"),
            )

    store.write(add)


@pytest.fixture(scope="session")
def prompts() -> PromptLibrary:
    return PromptLibrary()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "appliance.db")
    seed_salespeople(s)
    yield s
    s.close()


@pytest.fixture
def run_vm(tmp_path: Path, prompts: PromptLibrary, store: Store) -> Callable[..., Any]:
    """``run_vm(flow, scenario)``: the engine with ``flow`` on every call, and ``scenario``
    playing the callers; returns the scenario's result once every call is cleaned up."""

    def run(flow: FlowFn, scenario: Callable[[Rig], Awaitable[T]]) -> T:
        async def main() -> T:
            async with running_engine(flow, prompts=prompts, store=store,
                                      recordings=tmp_path / "recordings") as (engine, exchange):
                rig = Rig(engine, exchange, store, prompts, tmp_path)
                result = await asyncio.wait_for(scenario(rig), timeout=120)
                await engine.settle()
                return result

        return asyncio.run(main())

    return run


def make_message(store: Store, box: Any, directory: Path, *, caller: str = "13800000000",
                 received_at: float = 1_780_000_000.0, sound: str = "agent-pass.wav",
                 policy_number: str | None = None, seed: int = 1) -> Any:
    """A finished message as leave_message leaves it, without a call: the row, the caller's
    speech as its raw file, the trimmed copy."""
    from appliance.media.wavio import write_slin
    from appliance.voicemail.messages import finish_message, open_message

    message_id, path = open_message(
        store, box, call_id=f"call{seed}", caller=caller, received_at=received_at, lang="zh",
        directory=directory, policy_number=policy_number).result()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_slin(path, spoken(sound, seed=seed))
    return finish_message(store, message_id, path, "key", received_at + 10)
