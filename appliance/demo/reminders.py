"""The demo's premium reminders: a few policies due today whose holders' phones are on the
simulated exchange with different habits, and every other holder of the demo book a
simulated person too, so that ``make run`` shows reminder calls happen.

The named demo holders: one busy, one who never answers, one who presses 1, one who
listens in Cantonese, one who asks for an agent in English. Each start sets their due
date to today if it has passed (as if they had paid and the next premium fell due), so
every day the demo is run brings them a new reminder; within one day a policy with a
final outcome is not called again. The rest of the book's holders answer and listen,
press 1 or 2, are busy or do not answer, by a fixed share each (the seeded phone number
decides).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import zlib
from dataclasses import dataclass
from typing import Final

from sqlite_utils import Database

from appliance.media.prompts import PromptLibrary, concat
from appliance.store.db import Store
from drivers.base import LineError
from drivers.sim import CallerBot, SimExchange
from drivers.sim.exchange import Behaviour


class Holder(CallerBot):
    """A policyholder's phone: on the answer they say ``hello`` (so the box's call-progress
    analysis hears a person), listen, and each time the key menu has been read out (its
    audio is ``menu``) key the next of ``keys`` as a DTMF tone; with ``hang_up_after`` they
    hang up that many seconds after answering instead."""

    def __init__(self, exchange: SimExchange, number: str, *, hello: bytes, menu: bytes,
                 keys: str = "", hang_up_after: float | None = None) -> None:
        super().__init__(exchange, number, name=f"holder {number}")
        self.hello = hello
        self.menu = menu
        self.keys = keys
        self.hang_up_after = hang_up_after
        self.script: asyncio.Task[None] | None = None
        self.calls = 0

    def on_answered(self) -> None:
        super().on_answered()
        self.calls += 1
        self.heard.clear()  # a new call: what this one hears
        self.script = asyncio.get_running_loop().create_task(self._talk())

    async def _talk(self) -> None:
        try:
            await self.send(self.hello)
            if self.hang_up_after is not None:
                await self.wait(self.hang_up_after)
                await self.hangup()
                return
            for key in self.keys:
                if not await self.wait_for(self.menu, timeout=90):
                    return
                await self.press(key)
        except LineError:
            return  # the box hung up first (the engine stopping): nothing more to say


@dataclass(frozen=True)
class DemoHolder:
    policy: str
    phone: str
    name: str
    language: str
    behaviour: Behaviour
    keys: str = ""


DEMO_HOLDERS: Final = (
    DemoHolder("2026990000001", "13900139001", "催缴甲", "zh", Behaviour.BUSY),
    DemoHolder("2026990000002", "13900139002", "催缴乙", "zh", Behaviour.NO_ANSWER),
    DemoHolder("2026990000003", "13900139003", "催缴丙", "zh", Behaviour.ANSWER, "1"),
    DemoHolder("2026990000004", "13900139004", "催缴丁", "yue", Behaviour.ANSWER),
    DemoHolder("2026990000005", "13900139005", "Reminder Five", "en", Behaviour.ANSWER, "2"),
)
#: the share of the other holders by habit, out of 20
_HABITS: Final = (("", 10), ("1", 3), ("2", 1), ("busy", 3), ("no-answer", 3))


def ensure_demo_policies(store: Store, today: dt.date) -> int:
    """Add the named demo holders and their policies (product TL20 of the demo book) if
    missing, and move a due date that has passed to today; returns the policies due today."""

    def write(db: Database) -> int:
        for h in DEMO_HOLDERS:
            if db.execute("SELECT 1 FROM policies WHERE number = ?", [h.policy]).fetchone():
                db.execute("UPDATE policies SET next_due_date = ? WHERE number = ? AND"
                           " next_due_date < ?", [today.isoformat(), h.policy, today.isoformat()])
                continue
            cur = db.execute(
                "INSERT INTO customers (name, sex, phone, id_salt, id_hash, id_masked, id_last4,"
                " language) VALUES (?, 'F', ?, 'demo', ?, '110101********0000', '0000', ?)",
                [h.name, h.phone, f"demo-{h.policy}", h.language])
            db.execute(
                "INSERT INTO policies (number, product_code, holder_id, insured_id, status,"
                " sum_insured_fen, premium_fen, payment_mode, term, issued_on, next_due_date,"
                " next_due_fen, salesperson_code) VALUES (?, 'TL20', ?, ?, 'in_force',"
                " 50000000, 368000, 'annual', 20, ?, ?, 368000, NULL)",
                [h.policy, cur.lastrowid, cur.lastrowid,
                 (today.replace(year=today.year - 1)).isoformat(), today.isoformat()])
        marks = ", ".join("?" * len(DEMO_HOLDERS))
        return int(db.execute(f"SELECT count(*) FROM policies WHERE next_due_date = ? AND"
                              f" number IN ({marks})",
                              [today.isoformat(), *(h.policy for h in DEMO_HOLDERS)]
                              ).fetchone()[0])

    return store.write(write)


def subscribe_holders(exchange: SimExchange, store: Store, prompts: PromptLibrary) -> int:
    """Every customer's phone on the simulated exchange; returns how many."""
    hello = concat([prompts.get("welcome", "zh")])  # a voice saying something: 喂…
    menus = {lang: concat([prompts.get("rem_menu", lang)]) for lang in ("zh", "yue", "en")}
    named = {h.phone: h for h in DEMO_HOLDERS}
    rows = store.query("SELECT DISTINCT phone, coalesce(language, 'zh') AS language"
                       " FROM customers WHERE phone IS NOT NULL AND phone != ''")
    for r in rows:
        phone, lang = r["phone"], r["language"] if r["language"] in menus else "zh"
        h = named.get(phone)
        if h is not None:
            habit = h.keys if h.behaviour is Behaviour.ANSWER else h.behaviour.value
        else:
            habit = _habit(phone)
        if habit in ("busy", "no-answer"):
            exchange.subscribe(phone, None, behaviour=Behaviour(habit))
        else:
            exchange.subscribe(phone, Holder(exchange, phone, hello=hello, menu=menus[lang],
                                             keys=habit), answer_after=4.0)
    return len(rows)


def _habit(phone: str) -> str:
    slot = zlib.crc32(phone.encode()) % sum(n for _, n in _HABITS)
    for habit, n in _HABITS:
        if slot < n:
            return habit
        slot -= n
    return ""


__all__ = ["DEMO_HOLDERS", "DemoHolder", "Holder", "ensure_demo_policies", "subscribe_holders"]
