"""``python -m web``: the web admin in its own process, served by waitress.

On start it makes sure the box has a first administrator: while ``admin`` has never
logged in, each start gives it a fresh one-time password and prints it here, and the
first login must change it. SIGTERM and Ctrl-C stop the server and close the database.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from waitress import create_server

from web import create_app
from web.accounts import ensure_first_admin
from web.db import store
from web.restore import MAX_ARCHIVE_BYTES


def _within(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (a port past 65535
    would otherwise wrap around to another one)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not from {low} to {high}")
        return value

    return parse


def _stop_with_parent(parent: int) -> None:
    """Get SIGTERM when the process that started this one (``appliance run``) dies, however
    it dies (Linux's PR_SET_PDEATHSIG): a web admin left behind would keep its port and
    serve a box whose engine is gone."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit("web admin: the process that started it has already ended")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m web", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("var"),
                        help="folder of the appliance database (default: var)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_within(0, 65535), default=8080,
                        help="0: any free port")
    parser.add_argument("--threads", type=_within(1, 64), default=4)
    parser.add_argument("--parent", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parent:
        _stop_with_parent(args.parent)

    try:
        app = create_app(args.data)
    except sqlite3.DatabaseError as exc:  # damaged, from newer software, read-only
        sys.exit(f"web admin: could not open the database: {exc}")
    try:
        # The body limit is the restore page's (a backup archive with the recordings);
        # every other form is held to the app's own MAX_CONTENT_LENGTH.
        server = create_server(app, host=args.host, port=args.port, threads=args.threads,
                               ident="appliance-web", max_request_body_size=MAX_ARCHIVE_BYTES)
    except OSError as exc:
        with app.app_context():
            store().close()
        sys.exit(f"web admin: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
                 "choose another port (appliance run --web-port)")

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with app.app_context():
        password = ensure_first_admin(store())
    url = f"http://{args.host}:{server.effective_port}/"
    _tell(f"web admin at {url}")
    if password:
        _tell(f"web admin first login: user admin, password {password} "
              "(must be changed at the first login)")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        with app.app_context():
            store().close()
        _tell("web admin stopped")
    sys.exit(0)


def _tell(text: str) -> None:
    """A line on the console, if anyone still reads it: a pipe closed (``appliance run |
    head``) or a full log disk must not take the web admin down."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


if __name__ == "__main__":
    main()
