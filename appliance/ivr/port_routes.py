"""Inbound routes by port: where a call that arrives on one of the box's ports goes, as the
admin set it on the lines page (``line_ports.route_kind`` and ``route_target``).

``flow``: the named flow's published version runs instead of the default; ``queue``: the
caller goes straight into that ACD queue, with no IVR before it, as a transfer node puts
them there; ``number``: the call is handled as if it had been dialled to that number (the
box's own numbers, such as the conference or the prompt-recording line, or else the
default IVR), which is how an analog line that brings no called number reaches them;
``none``, a port with no row, or a line whose driver cannot say its port: the default.
The route is read at each call, one row on the store's reader run on an executor thread
(so is the named flow's published version), so the admin's change reaches the next call
without a restart and the engine's loop never waits on the database. A route whose target
is gone (the flow has no published version any more, the queue was removed) must not lose
the caller: a warning names the port and the target, and the default runs instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from sqlite_utils import Database

from appliance.box.settings import port_route
from appliance.calls.call import Call, FlowFn
from appliance.ivr.flow import Flow
from appliance.ivr.interpreter import QueueTransfer
from appliance.ivr.versions import PublishedFlow
from appliance.store.db import Store
from drivers.base import Direction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """What one inbound call runs, and why (for the log and the tests)."""

    kind: str  # flow / queue / number / none
    target: str = ""
    flow: FlowFn | None = None  # the named flow's handler, for a flow route


class PortRoutes:
    """The engine's flow function: each inbound call follows its port's route, and every
    other call (an unknown port, an outbound call placed without a flow of its own) runs
    ``default``. ``make_handler`` turns a published flow into a handler, as the default
    IVR's :class:`PublishedFlow` does, so a routed flow has the same lookups, fax desk,
    voicemail and ACD as the default one."""

    def __init__(self, store: Store, default: FlowFn, make_handler: Callable[[Flow], FlowFn],
                 *, acd: QueueTransfer | None = None,
                 executor: Executor | None = None) -> None:
        self.store = store
        self.default = default
        self.make_handler = make_handler
        self.acd = acd
        self.executor = executor
        self._flows: dict[str, PublishedFlow] = {}

    async def __call__(self, call: Call) -> None:
        route = await self.resolve(call)
        if route.kind == "flow" and route.flow is not None:
            await route.flow(call)
        elif route.kind == "queue" and self.acd is not None:
            await call.answer()
            outcome = await self.acd.transfer(call, route.target)
            log.info("call %s: port %s put it in queue %s: %s", call.id, call.line.port,
                     route.target, outcome)
        else:
            if route.kind == "number":
                call.callee = route.target
            await self.default(call)

    async def resolve(self, call: Call) -> Route:
        """The route ``call`` takes now (a dangling one already replaced by the default)."""
        port = call.line.port
        if port is None or call.line.direction is not Direction.INBOUND:
            return Route("none")
        found = await asyncio.get_running_loop().run_in_executor(
            self.executor, self.store.read, lambda db: self._read(db, port))
        if isinstance(found, str):
            log.warning("port %s routes to %s; calls on it get the default flow", port, found)
            return Route("none")
        if found.kind == "queue" and (self.acd is None or not self.acd.has_queue(found.target)):
            log.warning("port %s routes to queue %r, which %s; calls on it get the default"
                        " flow", port, found.target,
                        "the box does not have" if self.acd is not None else
                        "cannot be reached (no ACD runs)")
            return Route("none")
        return found

    def _read(self, db: Database, port: int) -> Route | str:
        """On the executor thread: the port's route, with a flow route's handler loaded;
        or a text saying which target is gone."""
        row = port_route(db, port)
        if row is None:
            return Route("none")
        kind, target = row
        if kind != "flow":
            return Route(kind, target)
        named = self._flows.get(target)
        if named is None:
            named = self._flows[target] = PublishedFlow(self.store, target, self.make_handler)
        try:
            _, handler = named.current()
        except ValueError as exc:  # no published version, or it no longer loads
            return f"flow {target!r} ({exc})"
        return Route(kind, target, handler)


__all__ = ["PortRoutes", "Route"]
