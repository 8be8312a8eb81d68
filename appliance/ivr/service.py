"""The insurance IVR as the box runs it: the published version of the default flow, with
its lookups on the store, salespeople's names, voicemail and the fax desk wired in.

``appliance run`` (the simulated exchange) and ``appliance engine`` (Asterisk on the box)
both start calls through :func:`insurance_ivr`, so the two cannot drift apart. The ACD is
the caller's to build (its seats are the box's configuration) and is passed in.
"""

from __future__ import annotations

import time
from pathlib import Path

from appliance.fax.desk import FaxDesk
from appliance.ivr.insurance_lookups import InsuranceLookups
from appliance.ivr.interpreter import ConferenceRooms, QueueTransfer, make_flow_handler
from appliance.ivr.names import NameRecordings
from appliance.ivr.versions import FlowVersion, PublishedFlow, seed
from appliance.runtime import DataDirs
from appliance.store.db import Store
from drivers.base import Driver

DEFAULT_FLOW = Path(__file__).resolve().parent / "default_flow.json"


def insurance_ivr(store: Store, dirs: DataDirs, *, fax_driver: Driver | None = None,
                  acd: QueueTransfer | None = None,
                  conference: ConferenceRooms | None = None) -> tuple[PublishedFlow, FlowVersion]:
    """The engine's flow function and the version live now (its ``make_handler`` also
    serves the other flows an inbound route may name: :mod:`appliance.ivr.port_routes`).
    On a box with no published version yet, ``default_flow.json`` becomes version 1.
    Callback faxes are dialled on ``fax_driver`` (None: only faxes on the caller's own
    call); ``acd`` takes the callers a transfer node sends to a person (None: the node
    only says so); ``conference`` the rooms the menu's conference option leads to (None:
    the option returns to the menu)."""
    live = seed(store, DEFAULT_FLOW, now=time.time())
    lookups = InsuranceLookups(store, names=NameRecordings(dirs.root / "names"))
    desk = FaxDesk(store, dirs.root / "faxes", callback_driver=fax_driver)
    flow = PublishedFlow(store, live.name, lambda f: make_flow_handler(
        f, lookups.functions(), messages_dir=dirs.messages, store=store, fax=desk, acd=acd,
        conference=conference))
    return flow, live


__all__ = ["DEFAULT_FLOW", "insurance_ivr"]
