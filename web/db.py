"""The web's handle on the appliance database, and small helpers its pages share."""

from __future__ import annotations

from flask import current_app

from appliance.store.db import Store


def store() -> Store:
    s: Store = current_app.extensions["appliance_store"]
    return s


def prefix_range(prefix: str) -> tuple[str, str]:
    """``(lo, hi)`` with ``lo <= x < hi`` exactly for strings starting with ``prefix``, so a
    prefix search uses an ordinary index (LIKE would need case-insensitive collation)."""
    return prefix, prefix + "\U0010ffff"


def mask_phone(phone: str | None) -> str:
    """138****5678: enough to recognise a number, not to dial it."""
    if not phone:
        return ""
    if len(phone) <= 7:
        return phone[:2] + "*" * (len(phone) - 2)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
