"""``python -m web``: a port already taken, or one that is no port, is a one-line error,
not a traceback, and nothing is served or written."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_a_port_in_use_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "web", "--data", str(tmp_path),
                              "--port", str(port)], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
    assert res.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(("args", "named"), [
    (["--port", "70000"], "argument --port: 70000 is not from 0 to 65535"),
    (["--port", "80x"], "argument --port: '80x' is not a whole number"),
    (["--threads", "0"], "argument --threads: 0 is not from 1 to 64"),
])
def test_a_port_or_thread_count_out_of_range_is_refused(tmp_path: Path, args: list[str],
                                                        named: str) -> None:
    # Port 70000 used to wrap around to 4464 and serve there.
    data = tmp_path / "box"
    res = subprocess.run([sys.executable, "-m", "web", "--data", str(data), *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert named in res.stderr
    assert "web admin at" not in res.stdout
    assert not data.exists()


def test_a_damaged_database_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    junk = bytes(range(256)) * 20
    (tmp_path / "appliance.db").write_bytes(junk)
    res = subprocess.run([sys.executable, "-m", "web", "--data", str(tmp_path), "--port", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr.strip() == (f"web admin: could not open the database: "
                                  f"{tmp_path / 'appliance.db'}: file is not a database")
    assert (tmp_path / "appliance.db").read_bytes() == junk
