"""Automatic call distribution: 1 to 8 seats, queues with ring strategies, skills,
penalties and caller priority, music on hold with announcements, maximum wait to voicemail
or a callback that keeps the caller's place, ring timeout with auto-pause, wrap-up, and
the control functions the seat console and supervisor page use. The IVR's ``transfer``
node calls :meth:`Acd.transfer`; the web calls :mod:`appliance.acd.control`."""

from appliance.acd.model import (
    MAX_SEATS,
    PRIORITY_CLAIM,
    PRIORITY_NORMAL,
    PRIORITY_VIP,
    REASONS,
    AgentState,
    ConfigError,
    Overflow,
    QueueConfig,
    SeatConfig,
    Strategy,
)
from appliance.acd.service import Acd, AcdError

__all__ = ["MAX_SEATS", "PRIORITY_CLAIM", "PRIORITY_NORMAL", "PRIORITY_VIP", "REASONS", "Acd",
           "AcdError", "AgentState", "ConfigError", "Overflow", "QueueConfig", "SeatConfig",
           "Strategy"]
