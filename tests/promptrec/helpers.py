"""What the prompt-recording tests share: the default IVR, a prompts folder of their own
(the repository's files linked in, so a replacement renames a new file over the link and
the repository's prompts stay as they are), a distinctive tone to record, and finding it
in what a caller heard."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlite_utils import Database

from appliance.calls.call import FlowFn
from appliance.calls.clock import InlineExecutor
from appliance.ivr.flow import load_flow
from appliance.ivr.insurance_lookups import InsuranceLookups
from appliance.ivr.interpreter import make_flow_handler
from appliance.ivr.names import NameRecordings
from appliance.ivr.service import DEFAULT_FLOW
from appliance.media.prompts import DEFAULT_PROMPTS_DIR
from appliance.promptrec import pins
from appliance.store.db import Store

TONE_HZ = 1000.0
T = TypeVar("T")


def prompts_copy(tmp_path: Path) -> Path:
    root = tmp_path / "prompts"
    shutil.copytree(DEFAULT_PROMPTS_DIR, root, copy_function=os.symlink,
                    ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


def run_apart(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())`` on a thread of its own: the browser tests' Playwright leaves
    an event loop running on the main thread, and asyncio.run refuses to start under it."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def default_ivr(store: Store, tmp_path: Path) -> FlowFn:
    """The default insurance flow on ``store`` (it greets every caller with ``welcome``)."""
    lookups = InsuranceLookups(store, executor=InlineExecutor(),
                               names=NameRecordings(tmp_path / "names"))
    return make_flow_handler(load_flow(DEFAULT_FLOW), lookups.functions(),
                             messages_dir=tmp_path / "messages", store=store,
                             executor=InlineExecutor())


def tone(seconds: float = 1.5, hz: float = TONE_HZ) -> npt.NDArray[np.int16]:
    """A steady sine at -10 dBFS: nothing a prompt of the box says sounds like it."""
    t = np.arange(int(seconds * 8000)) / 8000
    return np.round(np.sin(2 * np.pi * hz * t) * 0.3 * 32767).astype(np.int16)


def peak_hz(samples: npt.NDArray[np.int16]) -> float:
    """The strongest frequency of ``samples`` (8 kHz)."""
    x = samples.astype(float) * np.hanning(len(samples))
    return float(np.argmax(np.abs(np.fft.rfft(x)))) * 8000 / len(samples)


def has_tone(pcm: bytes, hz: float = TONE_HZ, seconds: float = 1.0) -> bool:
    """Does ``pcm`` hold ``seconds`` of a steady ``hz`` tone (each 100 ms peaking there)?"""
    samples = np.frombuffer(pcm, dtype="<i2")
    block = 800
    run = 0
    for i in range(0, len(samples) - block + 1, block):
        chunk = samples[i:i + block]
        loud = float(np.sqrt(np.mean(chunk.astype(float) ** 2))) > 1000
        run = run + 1 if loud and abs(peak_hz(chunk) - hz) < 20 else 0
        if run * block >= seconds * 8000:
            return True
    return False


def add_admin(store: Store, pin: str | None, *, username: str = "boss", role: str = "admin",
              active: bool = True) -> int:
    """A staff account (the web's users table), with a phone PIN when ``pin`` is given."""
    def add(db: Database) -> int:
        cur = db.execute("INSERT INTO users (username, role, password_hash, must_change, "
                         "active, created_at) VALUES (?, ?, 'x', 0, ?, ?)",
                         [username, role, int(active), time.time()])
        user_id = int(cur.lastrowid or 0)
        if pin is not None:
            pins.set_pin(db, user_id, pin, time.time(), iterations=1000)
        return user_id

    return store.write(add)
