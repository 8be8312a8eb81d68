"""Replacing a prompt's recording, the one way both the web upload and a recording made
over the phone go: the old file copied under the data folder (``prompt_history/<lang>/``),
the new one written beside it, fsynced and renamed into place, so the engine never reads
half a file and its prompt library (which watches the file) plays the new one from the next
call. Also the prompt numbers an admin keys on the phone: each prompt of the manifest gets
a number once, kept in ``prompt_numbers``, so adding prompts never renumbers the old ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlite_utils import Database

from appliance.store.db import Store

LANGUAGES: Final = ("zh", "yue", "en")
MAX_PROMPT_SECONDS: Final = 60


@dataclass(frozen=True, slots=True)
class Replaced:
    kept: Path  # the old recording, under the data folder
    old_sha256: str
    new_sha256: str


def replace_prompt(root: Path, data_dir: Path, lang: str, name: str, data: bytes) -> Replaced:
    """Put ``data`` (a checked 8 kHz 16-bit mono WAV) in place of ``root/lang/name.wav``,
    keeping the old file under ``data_dir/prompt_history/lang/``."""
    path = root / lang / f"{name}.wav"
    old = path.read_bytes()
    history = data_dir / "prompt_history" / lang
    history.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept = history / f"{name}-{stamp}.wav"
    n = 1
    while kept.exists():  # two replacements in one second keep both old versions
        n += 1
        kept = history / f"{name}-{stamp}-{n}.wav"
    shutil.copy2(path, kept)
    part = path.with_suffix(".wav.part")
    with open(part, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
    return Replaced(kept, hashlib.sha256(old).hexdigest(), hashlib.sha256(data).hexdigest())


def manifest_names(root: Path) -> list[str]:
    """Every prompt name in the manifest, each once: the first language's in its order,
    then those only other languages have."""
    try:
        data: dict[str, Any] = json.loads((root / "manifest.json").read_text("utf-8"))
    except FileNotFoundError:
        return []
    seen: dict[str, None] = {}
    for entry in data.values():
        for name in entry.get("prompts", {}):
            seen.setdefault(name, None)
    return list(seen)


def prompt_numbers(store: Store, root: Path) -> dict[str, int]:
    """Each manifest prompt's number; prompts not numbered yet get the next numbers (one
    write, only when the manifest has grown)."""
    names = manifest_names(root)
    have = {r["name"]: r["number"] for r in store.query("SELECT number, name FROM prompt_numbers")}
    missing = [n for n in names if n not in have]
    if missing:
        def number(db: Database) -> None:
            for name in missing:
                db.execute("INSERT OR IGNORE INTO prompt_numbers (number, name) VALUES "
                           "((SELECT COALESCE(MAX(number), 0) + 1 FROM prompt_numbers), ?)",
                           [name])

        store.write(number)
        have = {r["name"]: r["number"]
                for r in store.query("SELECT number, name FROM prompt_numbers")}
    return {n: have[n] for n in names}


def prompt_by_number(store: Store, root: Path, number: int) -> str | None:
    """The prompt numbered ``number``, or None."""
    for name, n in prompt_numbers(store, root).items():
        if n == number:
            return name
    return None


AUDIT_SQL: Final = ("INSERT INTO audit_log (at, username, role, address, action, target, "
                    "detail) VALUES (?, ?, ?, ?, ?, ?, ?)")


def audit(db: Database, *, at: float, username: str, role: str, address: str, action: str,
          target: str, **detail: Any) -> None:
    """An audit-log row written inside a write (the same table and columns as the web's)."""
    db.execute(AUDIT_SQL, [at, username, role, address, action, target,
                           json.dumps(detail, ensure_ascii=False, default=str)])
