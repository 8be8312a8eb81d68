"""Voicemail boxes and their greetings.

There is one general box (after hours, queue overflow, "leave a message" in the IVR), one
box per queue and one per salesperson; each is created the first time it is asked for, so
the IVR and the queues need no set-up step. A box greets the caller in their language
(``zh``, ``yue``, ``en``) with the prompt set's greeting for its kind followed by "please
leave a message after the tone, then press #", unless the office stored a recording of its
own for that box and language, which then replaces both. These functions block on the
store: the web calls them directly, a call flow through ``run_in_executor``.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from appliance.media.prompts import Prompt, PromptLibrary
from appliance.media.wavio import WavFormatError, read_slin
from appliance.store.db import Store
from appliance.voicemail.audit import audit

log = logging.getLogger(__name__)

LANGUAGES = ("zh", "yue", "en")
#: a stored greeting longer than this is refused (a whole message uploaded by mistake)
MAX_GREETING_SECONDS = 60.0
#: the prompt after the greeting that tells the caller what to do
INSTRUCTION_PROMPT = "leave_message"


class BoxKind(enum.Enum):
    GENERAL = "general"
    QUEUE = "queue"
    SALESPERSON = "salesperson"


@dataclass(frozen=True, slots=True)
class Box:
    id: int
    kind: BoxKind
    queue: str | None = None
    salesperson_code: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Box:
        return cls(row["id"], BoxKind(row["kind"]), row["queue"], row["salesperson_code"])

    @property
    def default_greeting(self) -> str:
        return f"vm_greeting_{self.kind.value}"


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
    return lang


def _box(store: Store, kind: BoxKind, queue: str | None, code: str | None) -> Box:
    def get_or_create(db: Database) -> dict[str, Any]:
        if code is not None and not list(
            db.query("SELECT 1 FROM salespeople WHERE code = ?", [code])
        ):
            raise ValueError(f"no salesperson with code {code!r}: a box needs one")
        # OR IGNORE: the unique index on the box's identity makes a second request a no-op.
        db.execute(
            "INSERT OR IGNORE INTO voicemail_boxes (kind, queue, salesperson_code)"
            " VALUES (?, ?, ?)",
            (kind.value, queue, code),
        )
        return next(iter(db.query(
            "SELECT * FROM voicemail_boxes WHERE kind = ? AND COALESCE(queue, '') = ?"
            " AND COALESCE(salesperson_code, '') = ?",
            [kind.value, queue or "", code or ""],
        )))

    # Read first: boxes exist after their first message, and a read does not queue behind
    # the engine's writes.
    rows = store.query(
        "SELECT * FROM voicemail_boxes WHERE kind = ? AND COALESCE(queue, '') = ?"
        " AND COALESCE(salesperson_code, '') = ?",
        [kind.value, queue or "", code or ""],
    )
    return Box.from_row(rows[0] if rows else store.write(get_or_create))


def general_box(store: Store) -> Box:
    return _box(store, BoxKind.GENERAL, None, None)


def queue_box(store: Store, queue: str) -> Box:
    if not queue.strip():
        raise ValueError("a queue box needs the queue's name, got an empty string")
    return _box(store, BoxKind.QUEUE, queue.strip(), None)


def salesperson_box(store: Store, code: str) -> Box:
    return _box(store, BoxKind.SALESPERSON, None, code)


def box_for(store: Store, spec: str) -> Box:
    """The box an IVR flow document names: ``general``, ``queue:<name>`` or
    ``salesperson:<code>``."""
    kind, _, ref = spec.partition(":")
    if kind == BoxKind.GENERAL.value and not ref:
        return general_box(store)
    if kind == BoxKind.QUEUE.value and ref:
        return queue_box(store, ref)
    if kind == BoxKind.SALESPERSON.value and ref:
        return salesperson_box(store, ref)
    raise ValueError(f"voicemail box {spec!r}: expected 'general', 'queue:<name>' or "
                     "'salesperson:<code>'")


def get_box(store: Store, box_id: int) -> Box:
    rows = store.query("SELECT * FROM voicemail_boxes WHERE id = ?", [box_id])
    if not rows:
        raise LookupError(f"no voicemail box {box_id}")
    return Box.from_row(rows[0])


def list_boxes(store: Store) -> list[Box]:
    return [Box.from_row(r) for r in store.query("SELECT * FROM voicemail_boxes ORDER BY id")]


def set_greeting(store: Store, box: Box, lang: str, source: Path, greetings_dir: Path, *,
                 actor: str, now: float) -> Path:
    """Store ``source`` (8 kHz 16-bit mono WAV) as ``box``'s greeting in ``lang``.

    The file is checked before anything changes (a wrong format, an empty or over-long
    recording is refused with the reason), copied into ``greetings_dir`` and renamed into
    place, then recorded with an audit entry. Returns the stored file's path.
    """
    check_language(lang)
    samples = read_slin(source)  # WavFormatError names the file and what it is
    seconds = len(samples) / 8000
    if seconds < 0.5:
        raise WavFormatError(f"{source}: {seconds:.2f} s is too short for a greeting")
    if seconds > MAX_GREETING_SECONDS:
        raise WavFormatError(f"{source}: {seconds:.0f} s is longer than the "
                             f"{MAX_GREETING_SECONDS:.0f} s a greeting may last")
    greetings_dir.mkdir(parents=True, exist_ok=True)
    dest = greetings_dir / f"box{box.id}.{lang}.wav"
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)

    def record(db: Database) -> None:
        db.execute(
            "INSERT INTO voicemail_greetings (box_id, lang, path, set_at, set_by)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (box_id, lang) DO UPDATE SET"
            " path = excluded.path, set_at = excluded.set_at, set_by = excluded.set_by",
            (box.id, lang, str(dest), now, actor),
        )
        audit(db, now, actor, "greeting-set", box_id=box.id, lang=lang, seconds=seconds)

    store.write(record)
    return dest


def clear_greeting(store: Store, box: Box, lang: str, *, actor: str, now: float) -> bool:
    """Go back to the prompt set's greeting; True if a stored one was removed."""
    check_language(lang)

    def clear(db: Database) -> bool:
        gone = db.execute("DELETE FROM voicemail_greetings WHERE box_id = ? AND lang = ?",
                          (box.id, lang)).rowcount == 1
        if gone:
            audit(db, now, actor, "greeting-cleared", box_id=box.id, lang=lang)
        return gone

    return store.write(clear)


def greeting(store: Store, box: Box, lang: str, prompts: PromptLibrary) -> list[Prompt]:
    """What the caller hears before the tone: the stored greeting, or the default pair.

    A stored file that has gone missing or unreadable falls back to the default rather than
    leaving the caller in silence.
    """
    check_language(lang)
    rows = store.query("SELECT path FROM voicemail_greetings WHERE box_id = ? AND lang = ?",
                       [box.id, lang])
    if rows:
        try:
            return [Prompt.from_samples(f"greeting-box{box.id}", read_slin(rows[0]["path"]),
                                        lang)]
        except (OSError, WavFormatError) as exc:
            log.warning("box %d: stored %s greeting unusable (%s); playing the default",
                        box.id, lang, exc)
    return [prompts.get(box.default_greeting, lang), prompts.get(INSTRUCTION_PROMPT, lang)]
