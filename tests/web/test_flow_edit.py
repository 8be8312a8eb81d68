"""Every node of the box's flow survives its form unchanged: what the form shows reads back
as the same node, so saving one node cannot quietly change another field of it."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask

from web.flow_edit import fields, read_node
from web.flows import DEFAULT_FLOW


def _as_submitted(kind: str, node: dict[str, Any]) -> dict[str, str]:
    form: dict[str, str] = {}
    for f in fields(kind, node):
        if f["widget"] == "map":
            for i, (key, to) in enumerate(f["value"]):
                form[f"{f['name']}.key.{i}"] = key
                form[f"{f['name']}.to.{i}"] = to
        else:
            form[f["name"]] = str(f["value"])
    return form


def test_every_default_node_reads_back_as_itself(app: Flask) -> None:
    doc = json.loads(DEFAULT_FLOW.read_text("utf-8"))
    ids = set(doc["nodes"])
    with app.test_request_context():
        for node_id, node in doc["nodes"].items():
            back, problems = read_node(node["type"], _as_submitted(node["type"], node), ids,
                                       doc["languages"], node)
            assert problems == [], node_id
            assert back == node, node_id


def test_key_sets_schedules_and_flags_are_read_as_their_kinds(app: Flask) -> None:
    ids = {"a", "b"}
    with app.test_request_context():
        node, problems = read_node("collect", {
            "prompt": "enter_policy", "max_digits": "6", "terminator": "-", "into": "x",
            "timeout": "2.5", "next": "a", "on_timeout": "b", "secret": "true"}, ids, ["zh"])
        assert problems == []
        assert node == {"type": "collect", "prompt": ["enter_policy"], "max_digits": 6,
                        "terminator": "", "into": "x", "timeout": 2.5, "next": "a",
                        "on_timeout": "b", "secret": True}
        node, problems = read_node("hours", {"schedule": "[{bad", "open": "a",
                                             "closed": "a"}, ids, ["zh"])
        assert len(problems) == 1 and "schedule" in problems[0] and "JSON" in problems[0]
        _node, problems = read_node("collect", {
            "prompt": "p", "max_digits": "1.5", "terminator": "x", "into": "x",
            "timeout": "inf", "next": "a", "on_timeout": "a"}, ids, ["zh"])
        assert len(problems) == 3
        assert [p.split("：")[0] for p in problems] == ["max_digits", "terminator", "timeout"]
