"""Backup archives of the box (the database and the call recordings) and their restore.

:func:`write_archive` makes a gzipped tar: ``manifest.json``, ``appliance.db`` (a
consistent copy made with SQLite's online backup, so the engine keeps writing meanwhile)
and every finished ``.wav`` under ``recordings/``. :func:`check_archive` takes an uploaded
archive apart into a staging folder and refuses it, with the reason, unless everything is
right: the archive reads to its end, its members are only those names (no absolute paths,
no ``..``, no links or devices, no name twice), the database passes ``PRAGMA
integrity_check`` and carries no migration this software does not know (a backup of newer
software), and every recording is an 8 kHz 16-bit PCM WAV whose header matches its data.
The staged database is then migrated to this software's level.

:func:`restore` replaces the live data only after that: it first copies the live database
and moves the live recordings folder aside into ``previous/<time>/``, then copies the
staged database into the live one with SQLite's backup API (one transaction: the engine's
and the web's open connections see the old database or the new one, never a mix; renaming
a file over a database that has open connections and a WAL would corrupt it), then renames
the staged recordings folder into place. If a step fails, what was done is undone from the
previous copy.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Final

from sqlite_utils import Database

from appliance.media.frame import SAMPLE_RATE
from appliance.store.migrations import MIGRATION_SET, MIGRATIONS, migrate, newer_software

FORMAT: Final = "appliance-backup"
FORMAT_VERSION: Final = 1
MANIFEST: Final = "manifest.json"
DATABASE: Final = "appliance.db"
RECORDINGS: Final = "recordings"
#: the most an archive may unpack to (a small gzip can expand without limit)
MAX_UNPACKED: Final = 8 * 1024**3
MAX_MANIFEST: Final = 64 * 1024
PREVIOUS: Final = "previous"
#: the migrations this software knows: a database with any other is from newer software
KNOWN: Final = tuple(step[0] for step in MIGRATIONS)


class BackupError(ValueError):
    """An archive refused, or a restore that could not be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Checked:
    """An archive that passed every check, unpacked in ``staging``."""

    staging: Path
    created_at: str
    migrations: int  # steps the backed-up database had (before it was brought up to date)
    recordings: int
    database_bytes: int
    recording_bytes: int
    counts: dict[str, int]  # rows in the main tables, to show what comes back

    @property
    def database(self) -> Path:
        return self.staging / DATABASE


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy of ``source`` as one self-contained file (no WAL beside it)."""
    src = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        src.close()
        dst.close()


def _applied(db_path: Path) -> list[str]:
    db = sqlite3.connect(db_path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = '_sqlite_migrations'"
                          ).fetchone():
            return []
        return [r[0] for r in db.execute("SELECT name FROM _sqlite_migrations "
                                          "WHERE migration_set = ? ORDER BY id",
                                          [MIGRATION_SET])]
    finally:
        db.close()


def write_archive(database: Path, recordings: Path, out: IO[bytes]) -> dict[str, int]:
    """Write the archive of ``database`` and the WAVs under ``recordings`` to ``out``."""
    fd, name = tempfile.mkstemp(prefix="backup-", suffix=".db", dir=database.parent)
    os.close(fd)
    copy = Path(name)
    try:
        _copy_database(database, copy)
        wavs = sorted(p for p in recordings.rglob("*.wav") if p.is_file()) \
            if recordings.is_dir() else []
        manifest = {"format": FORMAT, "version": FORMAT_VERSION,
                    "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "migrations": _applied(copy), "recordings": len(wavs)}
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
            tar.add(copy, arcname=DATABASE, recursive=False)
            for wav in wavs:
                tar.add(wav, arcname=f"{RECORDINGS}/{wav.relative_to(recordings).as_posix()}",
                        recursive=False)
        return {"database_bytes": copy.stat().st_size, "recordings": len(wavs)}
    finally:
        copy.unlink(missing_ok=True)


def _member_path(name: str) -> PurePosixPath:
    """The member's path if it is one this archive may hold, else BackupError."""
    path = PurePosixPath(name)
    if name.startswith("/") or "\\" in name or path.is_absolute():
        raise BackupError(f"member {name!r}: absolute paths are not allowed")
    if any(part in ("..", "") for part in name.split("/")) or name.startswith("./"):
        raise BackupError(f"member {name!r}: '..' or empty parts are not allowed")
    if name in (MANIFEST, DATABASE):
        return path
    if path.parts[0] == RECORDINGS and len(path.parts) > 1 and path.suffix == ".wav":
        return path
    raise BackupError(f"member {name!r} is not part of a backup (expected {MANIFEST}, "
                      f"{DATABASE} and {RECORDINGS}/….wav)")


def _dir_path(name: str) -> None:
    """A folder member: only recordings/ and folders under it, by the same path rules."""
    stripped = name.rstrip("/")
    if stripped != RECORDINGS:
        _member_path(f"{stripped}/folder.wav")


def _check_wav(path: Path, name: str) -> None:
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, nch, frames = (w.getframerate(), w.getsampwidth(), w.getnchannels(),
                                        w.getnframes())
            data = w.readframes(frames)
    except (wave.Error, EOFError) as exc:
        raise BackupError(f"recording {name}: not a valid PCM WAV file ({exc})") from None
    if (rate, width) != (SAMPLE_RATE, 2) or nch not in (1, 2):
        raise BackupError(f"recording {name}: {rate} Hz, {8 * width}-bit, {nch} channels; "
                          f"expected {SAMPLE_RATE} Hz 16-bit mono or stereo")
    if len(data) != frames * nch * width:
        raise BackupError(f"recording {name}: the header says {frames} frames but the file "
                          f"holds {len(data) // (nch * width)}")


def _check_database(path: Path, known: Sequence[str]) -> list[str]:
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            result = db.execute("PRAGMA integrity_check").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{DATABASE}: not a usable SQLite database ({exc})") from None
    if result != [("ok",)]:
        shown = "; ".join(str(r[0]) for r in result[:3])
        raise BackupError(f"{DATABASE}: fails the integrity check ({shown})")
    try:
        applied = _applied(path)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{DATABASE}: cannot read its migrations ({exc})") from None
    if not applied:
        raise BackupError(f"{DATABASE}: not an appliance database (no migrations recorded)")
    newer = newer_software(applied, known)
    if newer:
        raise BackupError(f"{DATABASE}: {newer}; update the box first")
    return applied


def check_archive(archive: Path, staging: Path, *,
                  known: Sequence[str] = KNOWN) -> Checked:
    """Unpack ``archive`` into the new folder ``staging`` and check all of it (see the
    module's text). On BackupError the staging folder is removed again."""
    staging.mkdir(parents=True)
    try:
        return _unpack_and_check(archive, staging, known)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _unpack_and_check(archive: Path, staging: Path, known: Sequence[str]) -> Checked:
    seen: set[str] = set()
    unpacked = 0
    wavs: list[tuple[Path, str]] = []
    manifest: dict[str, object] = {}
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                name = member.name
                if member.isdir():
                    _dir_path(name)
                    continue
                if not member.isfile():
                    kind = "a link" if member.issym() or member.islnk() else "not a file"
                    raise BackupError(f"member {name!r} is {kind}: a backup holds only files")
                path = _member_path(name)
                if name in seen:
                    raise BackupError(f"member {name!r} is in the archive twice")
                seen.add(name)
                unpacked += member.size
                if unpacked > MAX_UNPACKED:
                    raise BackupError(f"the archive unpacks to more than "
                                      f"{MAX_UNPACKED // 1024**3} GiB")
                if name == MANIFEST and member.size > MAX_MANIFEST:
                    raise BackupError(f"{MANIFEST} is too big ({member.size} bytes)")
                target = staging.joinpath(*path.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                with source, open(target, "xb") as f:
                    shutil.copyfileobj(source, f, 1024 * 1024)
                if target.stat().st_size != member.size:
                    raise BackupError(f"member {name!r} is cut short")
                if name == MANIFEST:
                    manifest = _read_manifest(target)
                elif path.parts[0] == RECORDINGS:
                    wavs.append((target, name))
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"the archive cannot be read to its end ({exc}): it is not a "
                          "backup made by this box, or it is damaged or cut short") from None
    for required in (MANIFEST, DATABASE):
        if required not in seen:
            raise BackupError(f"the archive has no {required}: not a backup made by this box")
    applied = _check_database(staging / DATABASE, known)
    for wav, name in wavs:
        _check_wav(wav, name)
    if manifest.get("recordings") != len(wavs):
        raise BackupError(f"{MANIFEST} lists {manifest.get('recordings')} recordings, the "
                          f"archive holds {len(wavs)}")
    # Bring an older backup up to this software's schema before it goes live.
    with Database(staging / DATABASE) as db:
        migrate(db)
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("calls", "policies", "customers", "users", "recordings")
                  if db[t].exists()}
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return Checked(staging, str(manifest.get("created_at", "")), len(applied), len(wavs),
                   (staging / DATABASE).stat().st_size,
                   sum(p.stat().st_size for p, _ in wavs), counts)


def _read_manifest(path: Path) -> dict[str, object]:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{MANIFEST}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BackupError(f"{MANIFEST}: not a backup of this box's kind")
    if doc.get("version") != FORMAT_VERSION:
        raise BackupError(f"{MANIFEST}: backup format {doc.get('version')!r}, this software "
                          f"reads {FORMAT_VERSION}")
    return doc


def restore(checked: Checked, database: Path, recordings: Path) -> Path:
    """Put the checked archive in place of the live database and recordings; return the
    folder that keeps the previous copy."""
    keep = database.parent / PREVIOUS / time.strftime("%Y%m%d-%H%M%S")
    keep.mkdir(parents=True)
    previous_db = keep / DATABASE
    _copy_database(database, previous_db)
    staged_recordings = checked.staging / RECORDINGS
    staged_recordings.mkdir(exist_ok=True)
    _copy_into(checked.database, database)
    try:
        if recordings.exists():
            recordings.rename(keep / RECORDINGS)
        staged_recordings.rename(recordings)
    except OSError as exc:
        _copy_into(previous_db, database)
        if not recordings.exists() and (keep / RECORDINGS).exists():
            (keep / RECORDINGS).rename(recordings)
        raise BackupError(f"the recordings could not be put in place ({exc}); the previous "
                          "database is back") from None
    (recordings / "messages").mkdir(exist_ok=True)
    shutil.rmtree(checked.staging, ignore_errors=True)
    return keep


def _copy_into(source: Path, live: Path) -> None:
    """Replace the live database's content with ``source`` in one SQLite transaction."""
    src = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)
    dst = sqlite3.connect(live, timeout=30)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


__all__ = ["DATABASE", "MANIFEST", "RECORDINGS", "BackupError", "Checked", "check_archive",
           "restore", "write_archive"]
