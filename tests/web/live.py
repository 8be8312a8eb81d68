"""The web app served by waitress on a free port in a thread, for the browser tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from waitress import create_server


@contextlib.contextmanager
def serving(app: Any, threads: int = 2) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL."""
    server = create_server(app, host="127.0.0.1", port=0, threads=threads)
    closing = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:
            # Closed under its select loop while a browser's connection (an event
            # stream, a keep-alive) was still open: EBADF, nothing wrong.
            if not closing.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    finally:
        closing.set()
        server.close()
        thread.join(5)
