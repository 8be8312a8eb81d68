"""Flow versions: drafts, publishing (validated, one live version), roll-back, and the engine
running whatever is published when each call starts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from appliance.ivr.flow import FlowInvalid
from appliance.ivr.interpreter import make_flow_handler
from appliance.ivr.versions import (
    PUBLISHED,
    RETIRED,
    FlowVersionError,
    PublishedFlow,
    publish,
    published_version,
    roll_back,
    save_draft,
    seed,
    versions,
)
from appliance.media.prompts import PromptLibrary, concat
from appliance.store.db import Store
from drivers.sim import CallerBot
from tests.rig import running_engine

LIB = PromptLibrary()
DEFAULT = Path(__file__).parents[2] / "appliance" / "ivr" / "default_flow.json"


def doc(greeting: str) -> dict[str, Any]:
    return {"name": "line", "version": 1, "languages": ["zh"], "start": "hello",
            "nodes": {"hello": {"type": "play", "prompts": [greeting], "next": "bye"},
                      "bye": {"type": "hangup"}}}


def test_seed_publishes_the_file_once(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        first = seed(store, DEFAULT, now=1.0)
        assert (first.name, first.version, first.status) == ("default", 1, PUBLISHED)
        assert first.created_by == "system" and first.document["start"] == "language"
        again = seed(store, DEFAULT, now=2.0)
        assert again.version == 1 and len(versions(store, "default")) == 1


def test_an_updated_file_replaces_the_systems_version_but_never_an_admins(
        tmp_path: Path) -> None:
    flow_file = tmp_path / "line.json"
    flow_file.write_text(json.dumps(doc("welcome")), encoding="utf-8")
    with Store(tmp_path / "a.db") as store:
        assert seed(store, flow_file, now=1.0).version == 1
        flow_file.write_text(json.dumps(doc("goodbye")), encoding="utf-8")  # an update
        updated = seed(store, flow_file, now=2.0)
        assert updated.version == 2 and updated.document["nodes"]["hello"]["prompts"] == [
            "goodbye"]
        assert seed(store, flow_file, now=3.0).version == 2  # unchanged: nothing new
        own = save_draft(store, doc("welcome"), by="admin", now=4.0)
        publish(store, "line", own, by="admin", now=4.0)
        flow_file.write_text(json.dumps(doc("no_input")), encoding="utf-8")
        assert seed(store, flow_file, now=5.0).version == own  # the admin's stays live


def test_publish_validates_retires_the_old_and_rolls_back(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        v1 = save_draft(store, doc("welcome"), by="admin", now=10.0)
        publish(store, "line", v1, by="admin", now=11.0)
        broken = doc("welcome")
        broken["nodes"]["hello"]["type"] = "dance"
        v2 = save_draft(store, broken, by="editor", now=12.0)
        with pytest.raises(FlowInvalid, match="hello: unknown node type 'dance'"):
            publish(store, "line", v2, by="admin", now=13.0)
        live = published_version(store, "line")
        assert live is not None and live.version == v1  # the broken draft changed nothing
        v3 = save_draft(store, doc("goodbye"), by="editor", now=14.0)
        assert (v1, v2, v3) == (1, 2, 3)
        publish(store, "line", v3, by="supervisor", now=15.0)
        states = {v.version: v.status for v in versions(store, "line")}
        assert states == {1: RETIRED, 2: "draft", 3: PUBLISHED}
        live = published_version(store, "line")
        assert live is not None and live.published_by == "supervisor"
        assert live.document["version"] == 3
        roll_back(store, "line", by="admin", now=16.0)
        states = {v.version: v.status for v in versions(store, "line")}
        assert states == {1: PUBLISHED, 2: "draft", 3: RETIRED}
        with pytest.raises(FlowVersionError, match="no version 9"):
            publish(store, "line", 9, by="admin", now=17.0)
        with pytest.raises(FlowVersionError, match="needs a non-empty name"):
            save_draft(store, {"nodes": {}}, by="admin", now=18.0)
        with pytest.raises(FlowVersionError, match="no earlier published version"):
            roll_back(store, "other", by="admin", now=19.0)


def test_each_call_runs_the_version_published_when_it_starts(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    publish(store, "line", save_draft(store, doc("welcome"), by="admin", now=1.0), by="admin",
            now=1.0)
    flow = PublishedFlow(store, "line", lambda f: make_flow_handler(f, {}, store=store))
    welcome, goodbye = concat([LIB.get("welcome")]), concat([LIB.get("goodbye")])

    async def main() -> list[bytes]:
        heard = []
        async with running_engine(flow, prompts=LIB, store=store, recordings=None) as (_, ex):
            for greeting in ("welcome", "goodbye"):
                if greeting == "goodbye":  # published while the engine runs
                    version = save_draft(store, doc("goodbye"), by="admin", now=2.0)
                    publish(store, "line", version, by="admin", now=2.0)
                bot = CallerBot(ex, "13800138000")
                await bot.dial("95500")
                assert await bot.wait_hangup(30) == "normal"
                heard.append(bytes(bot.heard))
        return heard

    try:
        first, second = asyncio.run(main())
    finally:
        store.close()
    assert welcome in first and goodbye not in first
    assert goodbye in second and welcome not in second
    with Store(tmp_path / "a.db") as reopened:
        paths = [json.loads(r["ivr_path"]) for r in reopened.query(
            "SELECT ivr_path FROM calls ORDER BY started_at")]
    assert [p[0]["node"] for p in paths] == ["hello", "hello"]
