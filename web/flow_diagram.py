"""The IVR flow drawn as a diagram: where each node sits and every line between nodes.

Every way a node leads on (a menu key, ``next``, a timeout or other outcome: the fields
:data:`appliance.ivr.flow.NODE_FIELDS` marks as targets or key maps) is one :class:`Edge`.
Nodes are laid out in columns by their distance from the start node (breadth first, so a
column holds the nodes a caller meets after that many steps), the operator node one step
from the start (any menu's 0 reaches it) and nodes nothing reaches in a last column of
their own. Boxes in a column are stacked without overlap in the order they were met; the
page turns the geometry into SVG (server side: the admin's CSP allows no inline script
and the box has no CDN). Pure functions of the document, so they are tested without Flask.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance.ivr.flow import KEYMAP, NODE_FIELDS, TARGET

BOX_WIDTH = 170
BOX_HEIGHT = 40
COLUMN_GAP = 130  # room for the lines and their labels between columns
ROW_GAP = 16
MARGIN = 10


@dataclass(frozen=True, slots=True)
class Edge:
    """One way ``source`` leads to ``target``: a menu ``key``, or an outcome ``field``."""

    source: str
    target: str
    field: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Box:
    node: str
    type: str
    column: int
    x: int
    y: int
    width: int = BOX_WIDTH
    height: int = BOX_HEIGHT


@dataclass(frozen=True, slots=True)
class Line:
    """An edge drawn: an SVG path ``d`` and where its label goes."""

    edge: Edge
    d: str
    label: str
    label_x: int
    label_y: int
    back: bool  # leads to the same or an earlier column (a loop back, e.g. "wrong key")


@dataclass(frozen=True, slots=True)
class Diagram:
    boxes: list[Box]
    lines: list[Line]
    dangling: list[Edge]  # edges to a node id the document does not have
    width: int
    height: int


def _nodes(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    nodes = doc.get("nodes")
    return nodes if isinstance(nodes, Mapping) else {}


def edges(doc: Mapping[str, Any]) -> list[Edge]:
    """Every way every node leads on, in document order (dangling ones included)."""
    out: list[Edge] = []
    for node_id, node in _nodes(doc).items():
        if not isinstance(node, Mapping):
            continue
        for field, (kind, _required) in NODE_FIELDS.get(node.get("type", ""), {}).items():
            value = node.get(field)
            if kind == TARGET and isinstance(value, str) and value:
                out.append(Edge(node_id, value, field))
            elif kind == KEYMAP and isinstance(value, Mapping):
                out += [Edge(node_id, target, field, str(key)) for key, target in value.items()
                        if isinstance(target, str)]
    return out


def leading_to(doc: Mapping[str, Any], node_id: str) -> list[str]:
    """The other nodes that lead to ``node_id`` (a node cannot be deleted while any do)."""
    return sorted({e.source for e in edges(doc) if e.target == node_id and e.source != node_id})


def columns(doc: Mapping[str, Any]) -> list[list[str]]:
    """Node ids by distance from the start, each column in the order a caller meets them;
    nodes the start does not reach come last, in a column of their own."""
    nodes = _nodes(doc)
    after: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in edges(doc):
        if edge.target in nodes:
            after[edge.source].append(edge.target)
    depth: dict[str, int] = {}
    queue: deque[tuple[str, int]] = deque()
    for seed, level in ((doc.get("start"), 0), (doc.get("operator"), 1)):
        if isinstance(seed, str) and seed in nodes:
            queue.append((seed, level))
    order: list[str] = []
    while queue:
        node_id, level = queue.popleft()
        if node_id in depth:
            continue
        depth[node_id] = level
        order.append(node_id)
        queue.extend((t, level + 1) for t in after[node_id] if t not in depth)
    cols: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node_id in order:
        cols[depth[node_id]].append(node_id)
    unreached = [n for n in nodes if n not in depth]
    if unreached:
        cols.append(unreached)
    return cols


def _bezier(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float],
            p3: tuple[float, float], t: float) -> tuple[float, float]:
    u = 1 - t
    return (u**3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t**3 * p3[0],
            u**3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t**3 * p3[1])


def default_label(edge: Edge) -> str:
    return edge.key if edge.key is not None else edge.field


def layout(doc: Mapping[str, Any], label: Callable[[Edge], str] = default_label) -> Diagram:
    """Where every node's box sits and the path of every edge between two boxes."""
    nodes = _nodes(doc)
    boxes: dict[str, Box] = {}
    cols = columns(doc)
    for c, ids in enumerate(cols):
        for r, node_id in enumerate(ids):
            node = nodes[node_id]
            kind = node.get("type", "") if isinstance(node, Mapping) else ""
            boxes[node_id] = Box(node_id, str(kind), c, MARGIN + c * (BOX_WIDTH + COLUMN_GAP),
                                 MARGIN + r * (BOX_HEIGHT + ROW_GAP))
    drawn = [e for e in edges(doc) if e.target in boxes]
    dangling = [e for e in edges(doc) if e.target not in boxes]
    # Each line leaves its source's right side and enters its target's left side at its
    # own height (a "port"), ordered by where the other end is so lines do not cross at
    # the box; its label goes at the end with fewer lines, where labels do not pile up.
    outs: dict[str, list[Edge]] = {}
    ins: dict[str, list[Edge]] = {}
    for edge in drawn:
        outs.setdefault(edge.source, []).append(edge)
        ins.setdefault(edge.target, []).append(edge)
    for group, other in ((outs, "target"), (ins, "source")):
        for lst in group.values():
            lst.sort(key=lambda e: (boxes[getattr(e, other)].y, boxes[getattr(e, other)].x))

    def port(box: Box, lst: list[Edge], edge: Edge) -> float:
        return box.y + box.height * (lst.index(edge) + 1) / (len(lst) + 1)

    lines: list[Line] = []
    for edge in drawn:
        a, b = boxes[edge.source], boxes[edge.target]
        p0 = (float(a.x + a.width), port(a, outs[edge.source], edge))
        p3 = (float(b.x), port(b, ins[edge.target], edge))
        back = b.column <= a.column
        # A line back to an earlier column swings out right and comes in from the left,
        # so it does not run through the boxes it passes.
        reach = 90 if back else COLUMN_GAP / 2
        p1, p2 = (p0[0] + reach, p0[1]), (p3[0] - reach, p3[1])
        near_source = len(outs[edge.source]) <= len(ins[edge.target])
        lx, ly = _bezier(p0, p1, p2, p3, 0.12 if near_source else 0.88)
        if not near_source:
            lx -= 34  # the label sits left of the arrow head, not on it
        d = (f"M{p0[0]:.0f},{p0[1]:.0f} C{p1[0]:.0f},{p1[1]:.0f} "
             f"{p2[0]:.0f},{p2[1]:.0f} {p3[0]:.0f},{p3[1]:.0f}")
        lines.append(Line(edge, d, label(edge), round(lx), round(ly) - 2, back))
    width = MARGIN * 2 + max(len(cols), 1) * (BOX_WIDTH + COLUMN_GAP)
    height = MARGIN * 2 + max((len(c) for c in cols), default=1) * (BOX_HEIGHT + ROW_GAP)
    return Diagram(list(boxes.values()), lines, dangling, width, height)
