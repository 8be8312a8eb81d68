"""Message rows: the envelope, their life from the first recorded frame, and start-up recovery.

A message's row is written *before* its first frame is recorded (``recording`` state), with
the envelope (caller, time, box, language, IVR path, policy number) and the path its raw
audio goes to. When the recording ends the row gets the measured length, the speech
length, the "empty" flag and the trimmed copy (``saved``). If the engine dies in between,
the crash-safe recorder leaves a ``.part`` that the engine repairs at start, and
:func:`recover_messages` (the engine's ``after_recover`` hook, see :func:`recovery_hook`)
completes every row still ``recording`` from that file (``recovered``), so the message is
listed in its box and playable. A row whose audio never reached the disk is ``lost``: kept
with its envelope (someone called), never listed as a message to hear. A message left in a
salesperson's box is delivered to them at once: assigned, with a notification.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from appliance.media.recorder import PART_SUFFIX, recover
from appliance.media.wavio import WavFormatError
from appliance.store.db import Store
from appliance.voicemail.assignment import assign_in
from appliance.voicemail.audio import Analysis, analyse_file, write_played_copy
from appliance.voicemail.audit import SYSTEM, audit
from appliance.voicemail.boxes import Box, BoxKind

log = logging.getLogger(__name__)

#: the end reason of a message finished by start-up recovery
CRASH_END = "engine-crash"


@dataclass(frozen=True, slots=True)
class Message:
    """One voicemail with its envelope and triage state (a row of ``voicemails``)."""

    id: int
    box_id: int
    call_id: str
    caller: str
    received_at: float
    lang: str
    ivr_path: list[Any]
    policy_number: str | None
    raw_path: Path
    play_path: Path | None
    recording: str  # recording | saved | recovered | lost
    end_reason: str | None
    seconds: float | None
    speech_seconds: float | None
    empty: bool | None
    status: str  # new | heard | assigned | done
    category: str | None
    assignee: str | None
    assigned_at: float | None
    assignee_heard_at: float | None
    done_at: float | None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Message:
        return cls(
            r["id"], r["box_id"], r["call_id"], r["caller"], r["received_at"], r["lang"],
            json.loads(r["ivr_path"]), r["policy_number"], Path(r["raw_path"]),
            Path(r["play_path"]) if r["play_path"] else None, r["recording"], r["end_reason"],
            r["seconds"], r["speech_seconds"], None if r["empty"] is None else bool(r["empty"]),
            r["status"], r["category"], r["assignee"], r["assigned_at"],
            r["assignee_heard_at"], r["done_at"],
        )

    @property
    def playable(self) -> Path:
        """The file to play: the trimmed copy, or the raw recording if the copy is missing."""
        if self.play_path is not None and self.play_path.is_file():
            return self.play_path
        return self.raw_path


def open_message(
    store: Store, box: Box, *, call_id: str, caller: str, received_at: float, lang: str,
    directory: Path, ivr_path: Sequence[Any] = (), policy_number: str | None = None,
) -> Future[tuple[int, Path]]:
    """Queue the row of a message about to be recorded; the Future gives its id and the path
    to record to (``<directory>/YYYY/MM/DD/<call id>.vm<id>.wav``: the engine's recovery
    indexes the file with its call)."""
    ivr_text = json.dumps(list(ivr_path), ensure_ascii=False, default=str)
    day = time.strftime("%Y/%m/%d", time.localtime(received_at))

    def insert(db: Database) -> tuple[int, Path]:
        cur = db.execute(
            "INSERT INTO voicemails (box_id, call_id, caller, received_at, lang, ivr_path,"
            " policy_number, raw_path) VALUES (?, ?, ?, ?, ?, ?, ?, '')",
            (box.id, call_id, caller, received_at, lang, ivr_text, policy_number),
        )
        message_id = cur.lastrowid
        assert message_id is not None
        path = directory / day / f"{call_id}.vm{message_id}.wav"
        db.execute("UPDATE voicemails SET raw_path = ? WHERE id = ?", (str(path), message_id))
        return message_id, path

    return store.submit(insert)


def drop_unrecorded(store: Store, message_id: int) -> Future[None]:
    """Remove the row of a message whose recording never started (the caller hung up on the
    greeting or the tone)."""

    def drop(db: Database) -> None:
        db.execute("DELETE FROM voicemails WHERE id = ? AND recording = 'recording'",
                   (message_id,))

    return store.submit(drop)


def finish_message(store: Store, message_id: int, raw: Path, end_reason: str, now: float, *,
                   recovered: bool = False) -> Message:
    """Measure the recorded file, write the trimmed copy and complete the row (blocking:
    run it off the engine's loop)."""
    analysis, samples = analyse_file(raw, ended_by_key=end_reason == "key")
    play = write_played_copy(samples, analysis, raw.with_name(raw.stem + ".play.wav"))
    store.write(lambda db: _complete(db, message_id, raw, play, analysis, end_reason, now,
                                     recovered))
    return get_message(store, message_id)


def _complete(db: Database, message_id: int, raw: Path, play: Path, analysis: Analysis,
              end_reason: str, now: float, recovered: bool) -> None:
    state = "recovered" if recovered else "saved"
    db.execute(
        "UPDATE voicemails SET raw_path = ?, play_path = ?, recording = ?, end_reason = ?,"
        " seconds = ?, speech_seconds = ?, empty = ? WHERE id = ?",
        (str(raw), str(play), state, end_reason, analysis.seconds,
         analysis.speech_seconds, int(analysis.empty), message_id),
    )
    audit(db, now, SYSTEM, state, voicemail_id=message_id, end=end_reason,
          seconds=analysis.seconds, speech_seconds=analysis.speech_seconds,
          empty=analysis.empty)
    row = next(iter(db.query(
        "SELECT b.kind, b.salesperson_code, v.assignee FROM voicemails v"
        " JOIN voicemail_boxes b ON b.id = v.box_id WHERE v.id = ?", [message_id])))
    if row["kind"] == BoxKind.SALESPERSON.value and row["assignee"] is None:
        # Left for a salesperson: it is theirs from the start, no triage step in between.
        assign_in(db, message_id, row["salesperson_code"], SYSTEM, now)


def recover_messages(store: Store, now: float, engine_folder: Path | None = None
                     ) -> list[int]:
    """Complete every message a crash left ``recording``; returns their ids.

    Runs at engine start, after the engine repaired the ``.part`` files under its recordings
    folder (``engine_folder``). A message kept elsewhere is repaired here; one still a
    ``.part`` under that folder is the engine's, which could not index it: it stays
    ``recording`` for the next start (repaired here, it would be in place unindexed). A
    message with no audio at all (the engine died before the recorder opened its file) is
    marked ``lost``.
    """
    done: list[int] = []
    for row in store.query("SELECT id, raw_path FROM voicemails WHERE recording = 'recording'"):
        raw = Path(row["raw_path"])
        part = raw.with_name(raw.name + PART_SUFFIX)
        if not raw.is_file() and part.is_file():
            if engine_folder is not None and part.resolve().is_relative_to(
                    engine_folder.resolve()):
                log.warning("message %d: %s is left for the next start to recover",
                            row["id"], part)
                continue
            recover(raw.parent)  # the day folder of messages: only message takes in it
        if raw.is_file():
            try:
                finish_message(store, row["id"], raw, CRASH_END, now, recovered=True)
            except WavFormatError as exc:
                log.error("message %d: recovered file unreadable: %s", row["id"], exc)
                _mark_lost(store, row["id"], now, str(exc))
                continue
            log.warning("recovered voicemail %d from %s", row["id"], raw)
            done.append(row["id"])
        else:
            _mark_lost(store, row["id"], now, f"no audio at {raw}")
    return done


def _mark_lost(store: Store, message_id: int, now: float, why: str) -> None:
    def lost(db: Database) -> None:
        db.execute("UPDATE voicemails SET recording = 'lost', end_reason = ? WHERE id = ?",
                   (CRASH_END, message_id))
        audit(db, now, SYSTEM, "lost", voicemail_id=message_id, reason=why)

    store.write(lost)


def recovery_hook(store: Store, now: Callable[[], float] = time.time, *,
                  engine_folder: Path | None = None) -> Callable[[list[Path]], None]:
    """The engine's ``after_recover`` hook for voicemail: ``Engine(...,
    recordings=folder, after_recover=[recovery_hook(store, engine_folder=folder)])``."""

    def hook(_recovered: list[Path]) -> None:
        recover_messages(store, now(), engine_folder)

    return hook


# ---------------------------------------------------------------------------- reading

LISTED = "recording IN ('saved', 'recovered')"


def get_message(store: Store, message_id: int) -> Message:
    rows = store.query("SELECT * FROM voicemails WHERE id = ?", [message_id])
    if not rows:
        raise LookupError(f"no voicemail {message_id}")
    return Message.from_row(rows[0])


def box_messages(store: Store, box: Box) -> list[Message]:
    """The messages of a box that can be heard, newest first."""
    return [Message.from_row(r) for r in store.query(
        f"SELECT * FROM voicemails WHERE box_id = ? AND {LISTED}"
        " ORDER BY received_at DESC, id DESC", [box.id])]
