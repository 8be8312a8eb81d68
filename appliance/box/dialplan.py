"""The Asterisk dialplan and AMI account the box writes beside its DAHDI configuration.

Asterisk is only the hardware bridge (DESIGN.md): every call on a port goes straight to
the engine over AudioSocket, and the engine follows the port's inbound route. The one
thing the dialplan adds is the link the AudioSocket connection cannot carry: before the
hand-over it sets ``APPLIANCE_CALL=<uuid>/<DAHDI channel>`` on the channel, which AMI
reports as a ``VarSet`` event with the channel's caller ID and extension, and the engine's
AMI client matches it to the AudioSocket call with that UUID
(:mod:`drivers.asterisk.channels`). Trunk ports (context ``from-pstn``, as
:func:`appliance.box.ports.chan_dahdi_conf` sets it) and seat phones (``seats``) both go
there; an analog line brings no number (extension ``s``), an E1 brings the number dialled.
``manager.conf`` opens AMI on loopback only, for one account with the read classes whose
events the engine uses (``call``: hang-ups; ``dialplan``: VarSet) and the write classes its
actions need (``originate``, ``call``). Pure: text out, nothing written here.
"""

from __future__ import annotations

import re
from typing import Final

from appliance.box.ports import HEADER

#: the channel variable the engine's AMI client reads (drivers.asterisk.channels has the
#: same name; the web imports this module and never a driver, so it is not imported here)
CALL_VARIABLE: Final = "APPLIANCE_CALL"
#: the contexts chan_dahdi.conf puts ports in, and what each is
CONTEXTS: Final = {"from-pstn": "trunk ports (FXO, E1)", "seats": "seat phones (FXS)"}
ENGINE_CONTEXT: Final = "engine"
#: extensions a call can arrive with: "s" (no number: an analog line), or digits
EXTENSIONS: Final = ("s", "_X", "_X.")
_ADDRESS = re.compile(r"[0-9A-Za-z.:-]+:\d{1,5}")
_SECRET = re.compile(r"[!-~]{8,64}")  # printable ASCII, no spaces
_USER = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def extensions_conf(audiosocket: str = "127.0.0.1:9092") -> str:
    """``/etc/asterisk/extensions.conf``: every call to the engine at ``audiosocket``."""
    if not _ADDRESS.fullmatch(audiosocket):
        raise ValueError(f"audiosocket: expected HOST:PORT, got {audiosocket!r}")
    lines = [f"; /etc/asterisk/extensions.conf: {HEADER}", "[general]", "static=yes",
             "writeprotect=yes", "clearglobalvars=no"]
    for context, what in CONTEXTS.items():
        lines += ["", f"[{context}]", f"; {what}: to the engine, with the number dialled"]
        lines += [f"exten => {ext},1,Goto({ENGINE_CONTEXT},${{EXTEN}},1)" for ext in EXTENSIONS]
    lines += ["", f"[{ENGINE_CONTEXT}]",
              f"; {CALL_VARIABLE} tells the engine's AMI client which channel the AudioSocket "
              "call with this UUID is"]
    for ext in EXTENSIONS:
        lines += [
            f"exten => {ext},1,Set({CALL_VARIABLE}=${{UUID()}}/${{CHANNEL(dahdi_channel)}})",
            " same => n,Answer()",
            f" same => n,AudioSocket(${{CUT({CALL_VARIABLE},/,1)}},{audiosocket})",
            " same => n,Hangup()",
        ]
    return "\n".join(lines) + "\n"


def manager_conf(username: str, secret: str, port: int = 5038) -> str:
    """``/etc/asterisk/manager.conf``: AMI on 127.0.0.1 for the engine's one account."""
    if not _USER.fullmatch(username):
        raise ValueError(f"username: lower-case letters, digits, _ or -, got {username!r}")
    if not _SECRET.fullmatch(secret):
        raise ValueError("secret: 8 to 64 printable characters without spaces")
    if not 0 < port < 65536:
        raise ValueError(f"port: 1 to 65535, got {port}")
    return "\n".join([
        f"; /etc/asterisk/manager.conf: {HEADER}",
        "[general]", "enabled=yes", f"port={port}", "bindaddr=127.0.0.1", "displayconnects=no",
        "", f"[{username}]", f"secret={secret}", "deny=0.0.0.0/0.0.0.0",
        "permit=127.0.0.1/255.255.255.255", "read=call,dialplan,dtmf,reporting",
        "write=call,originate,system",
    ]) + "\n"


__all__ = ["CONTEXTS", "ENGINE_CONTEXT", "extensions_conf", "manager_conf"]
