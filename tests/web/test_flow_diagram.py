"""The flow diagram's layout: every node placed once, every edge drawn, no box on another."""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

from web.flow_diagram import Box, columns, edges, layout, leading_to
from web.flows import DEFAULT_FLOW


def _default() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DEFAULT_FLOW.read_text("utf-8"))
    return doc


def _overlap(a: Box, b: Box) -> bool:
    return (a.x < b.x + b.width and b.x < a.x + a.width
            and a.y < b.y + b.height and b.y < a.y + a.height)


def test_the_default_flow_places_every_node_once_without_overlap() -> None:
    doc = _default()
    diagram = layout(doc)
    placed = [b.node for b in diagram.boxes]
    assert sorted(placed) == sorted(doc["nodes"]) and len(placed) == len(set(placed))
    assert not [(a.node, b.node) for a, b in combinations(diagram.boxes, 2) if _overlap(a, b)]
    for b in diagram.boxes:
        assert b.x >= 0 and b.x + b.width <= diagram.width
        assert b.y >= 0 and b.y + b.height <= diagram.height
    # The start alone in the first column; the main menu a step further than the greeting.
    first = [b for b in diagram.boxes if b.column == 0]
    assert [b.node for b in first] == [doc["start"]]
    column = {b.node: b.column for b in diagram.boxes}
    assert column["main"] > column["language"]


def test_every_key_and_outcome_is_a_line_with_its_label() -> None:
    doc = _default()
    diagram = layout(doc)
    expected = []
    for node_id, node in doc["nodes"].items():
        for key, target in (node.get("options") or {}).items() if node["type"] == "menu" else ():
            expected.append((node_id, target, key))
        for field in ("next", "on_timeout", "on_invalid", "on_found", "on_not_found", "open",
                      "closed", "target", "on_failed"):
            if field in node:
                expected.append((node_id, node[field], field))
    drawn = [(line.edge.source, line.edge.target, line.label) for line in diagram.lines]
    assert sorted(drawn) == sorted(expected) and not diagram.dangling
    assert ("main", "pol_number", "1") in drawn
    # Each line starts on its source's right edge and ends on its target's left edge.
    box = {b.node: b for b in diagram.boxes}
    for line in diagram.lines:
        a, b = box[line.edge.source], box[line.edge.target]
        x0, y0 = (int(v) for v in line.d.split()[0][1:].split(","))
        x3, y3 = (int(v) for v in line.d.split()[-1].split(","))
        assert x0 == a.x + a.width and a.y < y0 < a.y + a.height
        assert x3 == b.x and b.y < y3 < b.y + b.height
        assert line.back == (b.column <= a.column)
    # The main menu's eight keys leave it at eight different heights.
    starts = {line.d.split()[0] for line in diagram.lines
              if line.edge.source == "main" and line.edge.key}
    assert len(starts) == 8


def test_unreached_nodes_get_a_last_column_and_missing_targets_are_reported() -> None:
    doc = {"start": "a", "nodes": {
        "a": {"type": "menu", "options": {"1": "b", "2": "ghost"}, "on_invalid": "a",
              "on_timeout": "b"},
        "b": {"type": "hangup"},
        "island": {"type": "goto", "target": "b"}}}
    assert columns(doc) == [["a"], ["b"], ["island"]]
    diagram = layout(doc)
    assert [(e.source, e.target, e.key) for e in diagram.dangling] == [("a", "ghost", "2")]
    assert len(diagram.lines) == 4  # 1 → b, wrong key → a, no input → b, island → b
    assert leading_to(doc, "b") == ["a", "island"] and leading_to(doc, "a") == []
    assert len(edges(doc)) == 5
