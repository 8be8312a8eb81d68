"""Backup and restore from the staff page: a real archive made by the backup route comes
back after changes (database rows and recordings on disk, the previous copy kept, audited);
tampered archives (a path-traversal member, a link, a corrupt database, a cut-short file,
a recording with a lying header, a database from newer software) are refused with the
reason and nothing changes."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from appliance.media.wavio import write_slin
from appliance.runtime import DataDirs, DataFolderInUse
from appliance.store.db import Store

WAV = Path("2026/11/25/call-001.wav")


@pytest.fixture
def recordings(data_dir: Path) -> Path:
    """A stereo call recording and a voicemail message, as the engine leaves them."""
    root = data_dir / "recordings"
    (root / WAV).parent.mkdir(parents=True)
    write_slin(root / WAV, np.arange(1600, dtype=np.int16), channels=2)
    (root / "messages").mkdir()
    write_slin(root / "messages" / "vm-1.wav", np.ones(800, dtype=np.int16))
    return root


def download(client: FlaskClient) -> bytes:
    res = client.get("/staff/backup")
    assert res.status_code == 200 and res.data[:2] == b"\x1f\x8b"  # gzip
    data = bytes(res.data)
    res.close()
    return data


def upload(client: FlaskClient, token: str, data: bytes, name: str = "box.tar.gz") -> Any:
    return client.post("/staff/restore/", data={"archive": (io.BytesIO(data), name),
                                                "csrf_token": token},
                       content_type="multipart/form-data")


def policies(store: Store) -> int:
    return int(store.query("SELECT count(*) AS n FROM policies")[0]["n"])


def test_a_backup_comes_back_with_its_recordings(as_role: Any, store: Store, data_dir: Path,
                                                 recordings: Path) -> None:
    client, token = as_role("admin")
    archive = download(client)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
    assert {"manifest.json", "appliance.db", f"recordings/{WAV.as_posix()}",
            "recordings/messages/vm-1.wav"} <= set(names)
    # After the backup: a policy is deleted, a recording lost, a stray one added.
    store.write(lambda db: db.execute("DELETE FROM policies WHERE rowid IN "
                                      "(SELECT rowid FROM policies LIMIT 5)"))
    (recordings / WAV).unlink()
    write_slin(recordings / "stray.wav", np.zeros(160, dtype=np.int16))
    assert policies(store) == 295

    res = upload(client, token, archive)
    page = res.get_data(as_text=True)
    assert res.status_code == 200 and 'id="restore-confirm"' in page
    assert policies(store) == 295  # nothing replaced before the confirm
    restore_url = page.split('action="/staff/restore/')[1].split('"')[0]
    res = client.post(f"/staff/restore/{restore_url}", data={"csrf_token": token})
    assert res.status_code == 303
    assert policies(store) == 300
    assert (recordings / WAV).is_file() and not (recordings / "stray.wav").exists()
    assert (recordings / "messages" / "vm-1.wav").is_file()
    (kept,) = (data_dir / "previous").iterdir()
    assert (kept / "recordings" / "stray.wav").is_file()
    with sqlite3.connect(kept / "appliance.db") as db:
        assert db.execute("SELECT count(*) FROM policies").fetchone()[0] == 295
    assert not any((data_dir / "restore-staging").iterdir())
    # The restore is in the restored database's audit log, after the backup's own row.
    actions = [r["action"] for r in store.query("SELECT action FROM audit_log ORDER BY id")]
    assert actions[-1] == "backup.restore"
    assert store.query("PRAGMA integrity_check")[0]["integrity_check"] == "ok"
    # Still the engine's WAL database, written through the same open store.
    assert store.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    store.write(lambda db: db.execute("UPDATE policies SET status = status"))


def tampered(archive: bytes, add: tarfile.TarInfo | None = None, data: bytes = b"",
             replace: dict[str, bytes] | None = None) -> bytes:
    """The archive rebuilt with one member added or some replaced."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as src, \
            tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member in src:
            body = src.extractfile(member)
            content = (replace or {}).get(member.name, body.read() if body else b"")
            member.size = len(content)
            dst.addfile(member, io.BytesIO(content))
        if add is not None:
            add.size = len(data)
            dst.addfile(add, io.BytesIO(data))
    return out.getvalue()


def _corrupt(db: bytes) -> bytes:
    # Scramble the pages after the first: the header still says SQLite, the b-trees do not
    # hold together.
    return db[:4096] + bytes(b ^ 0x5A for b in db[4096:20480]) + db[20480:]


def _newer(db: bytes, tmp: Path) -> bytes:
    path = tmp / "newer.db"
    path.write_bytes(db)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                     "VALUES ('appliance', '0099_from_the_future', '2027-01-01')")
    conn.close()  # checkpoints the WAL into the file
    return path.read_bytes()


@pytest.mark.parametrize("how", ["traversal", "absolute", "symlink", "corrupt_db", "truncated",
                                 "bad_wav", "newer", "not_a_tar", "stranger"])
def test_a_tampered_archive_is_refused_and_nothing_changes(as_role: Any, store: Store,
                                                           data_dir: Path, recordings: Path,
                                                           tmp_path_factory: Any,
                                                           how: str) -> None:
    client, token = as_role("admin")
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    archive = download(client)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile("appliance.db")
        assert member is not None
        db = member.read()
    said = {"traversal": "'..'", "absolute": "absolute paths", "symlink": "is a link",
            "corrupt_db": "appliance.db", "truncated": "cannot be read to its end",
            "bad_wav": "header says", "newer": "newer software", "not_a_tar": "cannot be read",
            "stranger": "is not part of a backup"}[how]
    if how == "traversal":
        bad = tampered(archive, tarfile.TarInfo("recordings/../../evil.wav"), b"RIFF")
    elif how == "absolute":
        bad = tampered(archive, tarfile.TarInfo("/tmp/evil.wav"), b"RIFF")
    elif how == "symlink":
        link = tarfile.TarInfo("recordings/link.wav")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        bad = tampered(archive, link)
    elif how == "corrupt_db":
        bad = tampered(archive, replace={"appliance.db": _corrupt(db)})
    elif how == "truncated":
        bad = archive[: len(archive) * 2 // 3]
    elif how == "bad_wav":
        wav = (recordings / WAV).read_bytes()
        bad = tampered(archive, replace={f"recordings/{WAV.as_posix()}": wav[:-640]})
    elif how == "newer":
        bad = tampered(archive, replace={
            "appliance.db": _newer(db, tmp_path_factory.mktemp("newer"))})
    elif how == "not_a_tar":
        bad = b"PK\x03\x04 this is a zip, not a backup" * 10
    else:
        bad = tampered(archive, tarfile.TarInfo("notes.txt"), b"hello")
    before_db = (data_dir / "appliance.db").stat().st_mtime_ns
    before_files = sorted(p.relative_to(recordings) for p in recordings.rglob("*"))
    res = upload(client, token, bad)
    page = res.get_data(as_text=True)
    assert res.status_code == 400, page
    assert "nothing was changed" in page and said in page.replace("&#39;", "'")
    assert 'id="restore-confirm"' not in page
    assert policies(store) == 300
    assert sorted(p.relative_to(recordings) for p in recordings.rglob("*")) == before_files
    assert not (data_dir / "previous").exists()
    assert not (data_dir.parent / "evil.wav").exists() and not Path("/tmp/evil.wav").exists()
    assert not list((data_dir / "restore-staging").iterdir())
    assert (data_dir / "appliance.db").stat().st_mtime_ns >= before_db
    row = store.query("SELECT detail FROM audit_log WHERE action = 'backup.restore_refused'")
    assert len(row) == 1


def test_a_cancelled_restore_leaves_nothing(as_role: Any, store: Store, data_dir: Path,
                                            recordings: Path) -> None:
    client, token = as_role("admin")
    res = upload(client, token, download(client))
    key = res.get_data(as_text=True).split('action="/staff/restore/')[1].split('"')[0]
    assert client.post(f"/staff/restore/{key}/cancel", data={"csrf_token": token}
                       ).status_code == 303
    assert not list((data_dir / "restore-staging").iterdir())
    assert client.post(f"/staff/restore/{key}", data={"csrf_token": token}).status_code == 404


def test_only_the_admin_restores(as_role: Any, store: Store, recordings: Path) -> None:
    admin, _ = as_role("admin")
    archive = download(admin)
    sup, token = as_role("supervisor")
    assert sup.get("/staff/restore/").status_code == 403
    assert upload(sup, token, archive).status_code == 403
    assert admin.post("/staff/restore/", data={"archive": (io.BytesIO(archive), "a.tar.gz")},
                      content_type="multipart/form-data").status_code == 400  # no CSRF


def test_no_restore_while_an_engine_holds_the_data_folder(
        as_role: Any, store: Store, data_dir: Path, recordings: Path) -> None:
    # An engine in another process (the lock it takes at start): its calls in progress
    # would finish their recordings in previous/ and have no row in the restored database.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from appliance.runtime import DataDirs; DataDirs(Path(sys.argv[1])).claim(); "
         "print('held', flush=True); sys.stdin.read()", str(data_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        client, token = as_role("admin")
        archive = download(client)
        store.write(lambda db: db.execute("DELETE FROM policies WHERE rowid IN "
                                          "(SELECT rowid FROM policies LIMIT 5)"))
        page = upload(client, token, archive).get_data(as_text=True)
        assert 'id="restore-engine"' in page and "运行期间不能恢复" in page
        assert f"python -m web --data {data_dir}" in page
        restore_url = page.split('action="/staff/restore/')[1].split('"')[0]
        res = client.post(f"/staff/restore/{restore_url}", data={"csrf_token": token},
                          follow_redirects=True)
        assert "未恢复：引擎正在运行" in res.get_data(as_text=True)
        assert policies(store) == 295 and (recordings / WAV).is_file()
        assert not (data_dir / "previous").exists()
    finally:
        holder.communicate("", timeout=10)
    # The engine gone, the same archive restores.
    client, token = as_role("admin")
    page = upload(client, token, archive).get_data(as_text=True)
    assert 'id="restore-engine"' not in page
    restore_url = page.split('action="/staff/restore/')[1].split('"')[0]
    assert client.post(f"/staff/restore/{restore_url}",
                       data={"csrf_token": token}).status_code == 303
    assert policies(store) == 300


def test_an_engine_started_during_a_restore_is_told_what_holds_the_folder(
        data_dir: Path) -> None:
    # It named the pid of the last engine, long gone.
    dirs = DataDirs(data_dir)
    with dirs.held():
        assert dirs.in_use()
        with pytest.raises(DataFolderInUse,
                           match=rf"a restore \(process {os.getpid()}\) is using this data"):
            dirs.claim()
    assert not dirs.in_use()
