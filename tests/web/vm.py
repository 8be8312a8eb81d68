"""Voicemail for the web tests: messages made as the service leaves them (the helper of
tests/voicemail), their recordings under the data folder's recordings, and salesperson
accounts whose usernames are salesperson codes of the test book."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from appliance.store.db import Store
from appliance.voicemail import Message, general_box, queue_box
from tests.voicemail.conftest import make_message

#: two salespeople of the demo book, each with an account named by their code
SELLERS = ("310001", "310002")


def add_seller_accounts(store: Store) -> None:
    """Accounts for :data:`SELLERS`, with the test password (the hash of the 'salesperson'
    account, so no new hash is made)."""
    hashed = store.query("SELECT password_hash FROM users WHERE username = 'salesperson'")[0][
        "password_hash"]

    def add(db: Any) -> None:
        for code in SELLERS:
            db.execute("INSERT INTO users (username, display_name, role, password_hash,"
                       " must_change, created_at) VALUES (?, ?, 'salesperson', ?, 0, ?)",
                       [code, code, hashed, time.time()])

    store.write(add)


def messages_dir(data_dir: Path) -> Path:
    return data_dir / "recordings" / "messages"


def general_message(store: Store, data_dir: Path, *, caller: str = "13812345678",
                    age_hours: float = 1.0, seed: int = 1) -> Message:
    return make_message(store, general_box(store), messages_dir(data_dir), caller=caller,
                        received_at=time.time() - age_hours * 3600, seed=seed)


def queue_message(store: Store, data_dir: Path, queue: str = "service", *,
                  caller: str = "13987654321", seed: int = 7) -> Message:
    return make_message(store, queue_box(store, queue), messages_dir(data_dir), caller=caller,
                        received_at=time.time() - 600, seed=seed)
