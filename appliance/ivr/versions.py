"""Flow versions in the store: drafts, the one published version per flow, and roll-back.

An editor (the admin pages) saves drafts, which may be unfinished; publishing validates the
draft (prompts in every language, reachable nodes, ...) and makes it the version new calls
run, retiring the one before it, in one transaction so a flow never has two published
versions or none halfway. Rolling back publishes the version that was live before the
current one. Every version stays in the table, with who saved and published it and when.
:class:`PublishedFlow` is the engine's flow function: at each call's start it asks the store
which version is published, so a publish reaches the next caller without a restart while
calls already in the flow finish on the version they started with.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from appliance.calls.call import Call, FlowFn
from appliance.ivr.flow import Flow, FlowInvalid, load_flow
from appliance.media.prompts import DEFAULT_PROMPTS_DIR
from appliance.store.db import Store

log = logging.getLogger(__name__)

DRAFT, PUBLISHED, RETIRED = "draft", "published", "retired"


@dataclass(frozen=True, slots=True)
class FlowVersion:
    """One stored version of a flow (a row of ``flow_versions``)."""

    name: str
    version: int
    status: str
    document: dict[str, Any]
    created_at: float
    created_by: str
    published_at: float | None
    published_by: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FlowVersion:
        return cls(row["name"], row["version"], row["status"], json.loads(row["document"]),
                   row["created_at"], row["created_by"], row["published_at"],
                   row["published_by"])


class FlowVersionError(ValueError):
    """A version that does not exist, or an action its state does not allow."""


_COLUMNS = ("name, version, status, document, created_at, created_by, published_at, "
            "published_by")


def save_draft(store: Store, document: Mapping[str, Any], *, by: str, now: float) -> int:
    """Store ``document`` as the next version of its flow, as a draft; returns the version
    number (written into the stored document too). Only the name is required here: a
    draft may be unfinished, publishing is what checks it."""
    name = document.get("name")
    if not isinstance(name, str) or not name:
        raise FlowVersionError("a flow document needs a non-empty name")

    def write(db: Database) -> int:
        row = db.execute("SELECT COALESCE(MAX(version), 0) FROM flow_versions WHERE name = ?",
                         [name]).fetchone()
        version = int(row[0]) + 1
        doc = {**document, "version": version}
        db.execute("INSERT INTO flow_versions (name, version, status, document, created_at,"
                   " created_by) VALUES (?, ?, ?, ?, ?, ?)",
                   [name, version, DRAFT, json.dumps(doc, ensure_ascii=False), now, by])
        return version

    return store.write(write)


def publish(store: Store, name: str, version: int, *, by: str, now: float,
            prompts_root: Path = DEFAULT_PROMPTS_DIR) -> Flow:
    """Make ``version`` of ``name`` the one new calls run; raises FlowInvalid (naming each
    node at fault) if it does not validate, and FlowVersionError if there is no such
    version. The version live until now is retired."""
    stored = get_version(store, name, version)
    if stored is None:
        raise FlowVersionError(f"flow {name!r} has no version {version}")
    flow = load_flow(stored.document, prompts_root)  # raises FlowInvalid

    def write(db: Database) -> None:
        db.execute("UPDATE flow_versions SET status = ? WHERE name = ? AND status = ?",
                   [RETIRED, name, PUBLISHED])
        db.execute("UPDATE flow_versions SET status = ?, published_at = ?, published_by = ?"
                   " WHERE name = ? AND version = ?", [PUBLISHED, now, by, name, version])

    store.write(write)
    log.info("flow %s version %d published by %s", name, version, by)
    return flow


def roll_back(store: Store, name: str, *, by: str, now: float,
              prompts_root: Path = DEFAULT_PROMPTS_DIR) -> Flow:
    """Publish again the version that was live before the current one."""
    rows = store.query("SELECT version FROM flow_versions WHERE name = ? AND status = ?"
                       " AND published_at IS NOT NULL ORDER BY published_at DESC, version DESC"
                       " LIMIT 1", [name, RETIRED])
    if not rows:
        raise FlowVersionError(f"flow {name!r} has no earlier published version to go back to")
    return publish(store, name, rows[0]["version"], by=by, now=now, prompts_root=prompts_root)


def get_version(store: Store, name: str, version: int) -> FlowVersion | None:
    rows = store.query(f"SELECT {_COLUMNS} FROM flow_versions WHERE name = ? AND version = ?",
                       [name, version])
    return FlowVersion.from_row(rows[0]) if rows else None


def published_version(store: Store, name: str) -> FlowVersion | None:
    rows = store.query(f"SELECT {_COLUMNS} FROM flow_versions WHERE name = ? AND status = ?",
                       [name, PUBLISHED])
    return FlowVersion.from_row(rows[0]) if rows else None


def versions(store: Store, name: str) -> list[FlowVersion]:
    """Every version of ``name``, newest first."""
    return [FlowVersion.from_row(r) for r in store.query(
        f"SELECT {_COLUMNS} FROM flow_versions WHERE name = ? ORDER BY version DESC", [name])]


def seed(store: Store, path: Path, *, now: float,
         prompts_root: Path = DEFAULT_PROMPTS_DIR) -> FlowVersion:
    """The published version of the flow in ``path``. On a box that has none yet, the file
    is stored and published as its first version (by ``system``); when the file has changed
    since (a software update) and the live version is still the system's, the file is
    published as the next version. A version an admin published is never replaced."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    name = str(document.get("name", ""))
    live = published_version(store, name)
    if live is not None and (live.published_by != "system"
                             or _same(live.document, document)):
        return live
    version = save_draft(store, document, by="system", now=now)
    publish(store, name, version, by="system", now=now, prompts_root=prompts_root)
    live = published_version(store, name)
    assert live is not None
    return live


def _same(stored: Mapping[str, Any], document: Mapping[str, Any]) -> bool:
    """The same flow, whatever version number each carries."""
    return {**stored, "version": 0} == {**document, "version": 0}


class PublishedFlow:
    """The engine's flow function for flow ``name``: each call runs the version published
    when it starts. ``make_handler`` turns a :class:`Flow` into a handler (the interpreter's
    :func:`~appliance.ivr.interpreter.make_flow_handler` with the lookups and store bound);
    handlers are kept per version, so a call costs one small query."""

    def __init__(self, store: Store, name: str, make_handler: Callable[[Flow], FlowFn],
                 prompts_root: Path = DEFAULT_PROMPTS_DIR) -> None:
        self.store = store
        self.name = name
        self.make_handler = make_handler
        self.prompts_root = prompts_root
        self._handlers: dict[int, FlowFn] = {}

    def current(self) -> tuple[int, FlowFn]:
        # Only the number at each call; the document (tens of kilobytes) once per version.
        rows = self.store.query("SELECT version FROM flow_versions"
                                " WHERE name = ? AND status = ?", [self.name, PUBLISHED])
        if not rows:
            raise FlowVersionError(f"flow {self.name!r} has no published version")
        version = int(rows[0]["version"])
        handler = self._handlers.get(version)
        if handler is None:
            stored = get_version(self.store, self.name, version)
            if stored is None:  # replaced between the two reads: the next call sees it
                raise FlowVersionError(f"flow {self.name!r} version {version} is gone")
            try:
                flow = load_flow(stored.document, self.prompts_root)
            except FlowInvalid:
                # Published means validated; a prompt file deleted since then is the likely
                # cause. Logged with every error, and the call is refused below.
                log.exception("published flow %s version %d no longer validates", self.name,
                              version)
                raise
            handler = self._handlers[version] = self.make_handler(flow)
        return version, handler

    async def __call__(self, call: Call) -> None:
        _, handler = self.current()
        await handler(call)


__all__ = ["DRAFT", "PUBLISHED", "RETIRED", "FlowVersion", "FlowVersionError",
           "PublishedFlow", "get_version", "publish", "published_version", "roll_back",
           "save_draft", "seed", "versions"]
