"""Reminder calls on the manual clock: a store with a few policies, holders' phones on the
simulated exchange (a person who answers, says hello and keys a choice as a real DTMF tone;
busy, unanswered or congested lines), and the dialer on a running engine whose local time
is a chosen moment moved on by the engine's clock."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from appliance.calls.engine import Engine
from appliance.demo.reminders import Holder
from appliance.media.prompts import PromptLibrary, concat
from appliance.reminders.dialer import ReminderDialer
from appliance.reminders.settings import ReminderSettings, save
from appliance.store.db import Store
from drivers.sim import SimExchange
from drivers.sim.exchange import Behaviour
from tests.rig import running_engine
from tests.voicemail.conftest import spoken

T = TypeVar("T")
LIB = PromptLibrary()
#: the box's local time when a test's engine starts: a Thursday morning
MORNING = dt.datetime(2026, 11, 26, 10, 0)
TODAY = MORNING.date()
HELLO = spoken("hello.wav").astype("<i2").tobytes()


def audio(lang: str, *names: str) -> bytes:
    return concat([LIB.get(name, lang) for name in names])


def add_policy(store: Store, number: str, phone: str, due: dt.date | None, *,
               status: str = "in_force", language: str | None = None,
               amount_fen: int = 123450, product: str = "TL20") -> None:
    """A holder with ``phone`` and their policy ``number`` due on ``due``."""

    def write(db: Database) -> None:
        db.execute("INSERT OR IGNORE INTO products (code, name_zh, name_en, kind, min_sum_fen,"
                   " max_sum_fen) VALUES (?, '安心定期寿险', 'Term life', 'term_life', 1, 10)",
                   [product])
        cur = db.execute("INSERT INTO customers (name, phone, id_salt, id_hash, id_masked,"
                         " id_last4, language) VALUES ('张三', ?, 's', 'h', '1101**********1234',"
                         " '1234', ?)", [phone, language])
        holder = cur.lastrowid
        db.execute("INSERT INTO policies (number, product_code, holder_id, insured_id, status,"
                   " sum_insured_fen, premium_fen, payment_mode, issued_on, next_due_date,"
                   " next_due_fen) VALUES (?, ?, ?, ?, ?, 10000000, ?, 'annual', '2024-01-01',"
                   " ?, ?)", [number, product, holder, holder, status, amount_fen,
                              due.isoformat() if due else None, amount_fen])

    store.write(write)


def set_settings(store: Store, **changes: Any) -> ReminderSettings:
    settings = ReminderSettings(**changes)
    store.write(lambda db: save(db, settings, by="test", at=0.0))
    return settings


def subscribe(ex: SimExchange, number: str, behaviour: Behaviour) -> None:
    ex.subscribe(number, None, behaviour=behaviour)


def holder(ex: SimExchange, number: str, *, lang: str = "zh", keys: str = "",
           hang_up_after: float | None = None) -> Holder:
    """A holder who answers, says hello and keys ``keys`` after each menu (see
    :class:`appliance.demo.reminders.Holder`)."""
    bot = Holder(ex, number, hello=HELLO, menu=audio(lang, "rem_menu"), keys=keys,
                 hang_up_after=hang_up_after)
    ex.subscribe(number, bot, answer_after=2.0)
    return bot


def run_dialer(tmp_path: Path, store: Store,
               scenario: Callable[[Engine, SimExchange, ReminderDialer], Awaitable[T]], *,
               start: dt.datetime = MORNING, trunks: int = 8, acd: Any = None,
               timeout: float = 120.0) -> T:
    """Run ``scenario`` with an engine, its exchange and a dialer on it; the box's local
    time is ``start`` plus the engine time passed."""

    async def main() -> T:
        async with running_engine(_idle, prompts=LIB, store=store,
                                  recordings=tmp_path / "recordings",
                                  trunks=trunks) as (engine, exchange):
            wall0 = engine.clock.wall()
            if acd is not None:
                acd.bind(engine)
            dialer = ReminderDialer(
                engine, exchange, store, acd=acd, ring_seconds=10.0,
                local_now=lambda: start + dt.timedelta(seconds=engine.clock.wall() - wall0))
            result = await asyncio.wait_for(scenario(engine, exchange, dialer), timeout)
            await engine.settle()
            store.submit(lambda db: None).result()
            return result

    return asyncio.run(main())


async def _idle(call: Any) -> None:
    await call.hangup()
