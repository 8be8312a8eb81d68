"""The box's port and SMS modem settings in the store: read them, and write a checked change
in one transaction together with whatever the caller records with it (the web's audit
row), so a change and its record commit together or not at all."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from sqlite_utils import Database

from appliance.box.ports import Port, PortError
from appliance.store.db import Store

Extra = Callable[[Database], None]

#: the rates a GSM modem's serial port is commonly set to
BAUDS: Final = (9600, 19200, 38400, 57600, 115200)
#: serial devices only (a USB stick's ttyUSB/ttyACM, a udev link under serial/ or named
#: for the modem, a pseudo-terminal): never a disk or anything else under /dev
DEVICE_RE: Final = re.compile(r"/dev/(tty|serial/|pts/|gsm|modem)[A-Za-z0-9_./:-]{0,100}")
SMSC_RE: Final = re.compile(r"\+?[0-9]{3,20}")


def load_ports(store: Store) -> list[Port]:
    return [Port.from_row(r) for r in store.query("SELECT * FROM line_ports ORDER BY channel")]


def reserved_inbound_channels(store: Store) -> set[int]:
    """The trunks no outbound call may take (the simulated exchange numbers its trunks as
    DAHDI numbers channels, so the same rows apply to it)."""
    return {p.channel for p in load_ports(store) if p.trunk and p.reserved_inbound}


def port_route(db: Database, channel: int) -> tuple[str, str] | None:
    """The inbound route (kind, target) of the port on DAHDI ``channel``, None if the box
    has no such port. One row by its key: cheap enough to read at every call."""
    row = db.execute("SELECT route_kind, route_target FROM line_ports WHERE channel = ?",
                     [channel]).fetchone()
    return (str(row[0]), str(row[1])) if row is not None else None


def route_names(store: Store) -> tuple[list[str], list[str]]:
    """The IVR flows and the queues an inbound route may name."""
    flows = [r["name"] for r in store.query("SELECT DISTINCT name FROM flow_versions"
                                           " ORDER BY name")]
    queues = [r["name"] for r in store.query("SELECT name FROM acd_queues ORDER BY name")]
    return flows, queues


def live_targets(store: Store) -> tuple[set[str], set[str]]:
    """The flows with a published version and the queues the box has: the targets a call
    routed now can reach (a route to any other runs the default flow)."""
    flows = {r["name"] for r in store.query("SELECT name FROM flow_versions"
                                            " WHERE status = 'published'")}
    queues = {r["name"] for r in store.query("SELECT name FROM acd_queues")}
    return flows, queues


def _insert(db: Database, port: Port, at: float, by: str) -> None:
    row = dict(port.as_row(), updated_at=at, updated_by=by)
    db.execute(f"INSERT INTO line_ports ({', '.join(row)}) VALUES"
               f" ({', '.join('?' * len(row))})", list(row.values()))


def save_port(store: Store, port: Port, *, old_channel: int | None, by: str,
              extra: Extra | None = None) -> None:
    """Write ``port`` (replacing the row at ``old_channel`` when it is an edit)."""
    at = time.time()

    def write(db: Database) -> None:
        if old_channel is not None:
            db.execute("DELETE FROM line_ports WHERE channel = ?", [old_channel])
        _insert(db, port, at, by)
        if extra is not None:
            extra(db)

    store.write(write)


def add_ports(store: Store, ports: list[Port], *, by: str, extra: Extra | None = None) -> None:
    """Write several new ports in one transaction (an E1 span's channels): all or none."""
    at = time.time()

    def write(db: Database) -> None:
        for port in ports:
            _insert(db, port, at, by)
        if extra is not None:
            extra(db)

    store.write(write)


def delete_port(store: Store, channel: int, *, extra: Extra | None = None) -> bool:
    def write(db: Database) -> bool:
        gone = db.execute("DELETE FROM line_ports WHERE channel = ?", [channel]).rowcount > 0
        if gone and extra is not None:
            extra(db)
        return gone

    return store.write(write)


@dataclass(frozen=True, slots=True)
class ModemSettings:
    device: str = ""
    baud: int = 115200
    smsc: str = ""
    enabled: bool = False


def check_modem(form: Mapping[str, str]) -> ModemSettings:
    """The modem settings of the form; raises :class:`PortError` naming the field."""
    device = str(form.get("device", "")).strip()
    baud_text = str(form.get("baud", "")).strip()
    smsc = str(form.get("smsc", "")).replace(" ", "").strip()
    enabled = str(form.get("enabled", "")).lower() in ("1", "on", "true", "yes")
    if not device:
        raise PortError("device", "required")
    if not DEVICE_RE.fullmatch(device) or ".." in device:
        raise PortError("device", "device", value=device)
    if baud_text not in {str(b) for b in BAUDS}:
        raise PortError("baud", "choice", choices=", ".join(map(str, BAUDS)), value=baud_text)
    if smsc and not SMSC_RE.fullmatch(smsc):
        raise PortError("smsc", "smsc", value=smsc)
    return ModemSettings(device, int(baud_text), smsc, enabled)


def load_modem(store: Store) -> ModemSettings | None:
    rows = store.query("SELECT device, baud, smsc, enabled FROM sms_modem WHERE id = 1")
    if not rows:
        return None
    r = rows[0]
    return ModemSettings(r["device"], r["baud"], r["smsc"], bool(r["enabled"]))


def save_modem(store: Store, modem: ModemSettings, *, by: str,
               extra: Extra | None = None) -> None:
    row: dict[str, Any] = dict(asdict(modem), enabled=int(modem.enabled),
                               updated_at=time.time(), updated_by=by)

    def write(db: Database) -> None:
        db.execute("INSERT INTO sms_modem (id, device, baud, smsc, enabled, updated_at,"
                   " updated_by) VALUES (1, :device, :baud, :smsc, :enabled, :updated_at,"
                   " :updated_by) ON CONFLICT (id) DO UPDATE SET device = excluded.device,"
                   " baud = excluded.baud, smsc = excluded.smsc, enabled = excluded.enabled,"
                   " updated_at = excluded.updated_at, updated_by = excluded.updated_by", row)
        if extra is not None:
            extra(db)

    store.write(write)


__all__ = ["BAUDS", "ModemSettings", "add_ports", "check_modem", "delete_port",
           "live_targets", "load_modem", "load_ports", "port_route",
           "reserved_inbound_channels", "route_names", "save_modem", "save_port"]
