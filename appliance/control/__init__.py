"""The engine's control API: a small line-delimited JSON server inside the engine process
on 127.0.0.1, through which the web (its own process) logs seats in and out, sets their
states, lists seats and queues, hangs up a seat's call, stores wrap-up codes and follows
live events. See :mod:`appliance.control.protocol` for the requests and events."""

from appliance.control.client import ControlClient, ControlUnavailable
from appliance.control.protocol import (
    AGENT_REASONS,
    WRAP_UP_CODES,
    ControlError,
    read_address,
)
from appliance.control.server import ControlServer

__all__ = ["AGENT_REASONS", "WRAP_UP_CODES", "ControlClient", "ControlError", "ControlServer",
           "ControlUnavailable", "read_address"]
