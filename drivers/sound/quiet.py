"""Silence the ALSA and JACK libraries before PortAudio starts.

``PyAudio()`` probes every ALSA device and tries to reach a JACK server; on a box with one
headset (or none) that prints a hundred lines of harmless complaints to stderr for every
initialisation, which buries the engine's own log. The libraries only stay quiet when a
handler that ignores their messages is installed through ctypes before PortAudio loads
them (``JACK_NO_START_SERVER`` does not help). Real failures still reach us: PortAudio
returns them as error codes, which the driver reports with the device's name.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

# The C callbacks must stay referenced for as long as the libraries may call them, i.e. for
# the life of the process; a module-level list is the one owner.
_KEEP: list[Any] = []

# void (*)(const char *file, int line, const char *function, int err, const char *fmt, ...)
_ALSA_HANDLER = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)
# void (*)(const char *msg)
_JACK_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p)


def _ignore(*_args: object) -> None:
    return None


def silence_audio_libraries() -> None:
    """Install do-nothing message handlers in libasound and libjack (once per process)."""
    if _KEEP:
        return
    alsa_handler = _ALSA_HANDLER(_ignore)
    jack_handler = _JACK_HANDLER(_ignore)
    _KEEP.extend([alsa_handler, jack_handler])
    for name in ("asound", "jack"):
        path = ctypes.util.find_library(name)
        if path is None:
            continue  # not installed: it cannot print either
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if name == "asound":
            lib.snd_lib_error_set_handler(alsa_handler)
        else:
            lib.jack_set_error_function(jack_handler)
            lib.jack_set_info_function(jack_handler)
