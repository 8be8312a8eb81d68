"""ctypes binding to libspandsp, pinned to the prototypes of Debian 12's libspandsp2 0.0.6.

The library is loaded once, on first use, and each feature (DTMF now, fax later) declares its
C prototypes in its own table that is applied to the shared handle, so adding ``fax_init`` and
friends means adding one table and one wrapper class here, not a second loader. spandsp's
state structs are opaque: every ``*_init`` is passed NULL and the library allocates, and
whoever holds a state must keep the CFUNCTYPE objects it registered alive until the state is
freed. Prototypes differ in newer spandsp (``dtmf_rx_parms`` takes floats there): ctypes
cannot see argument types, so :func:`load` only refuses a library missing a declared symbol
and the tests pin the behaviour against the installed 0.0.6. The wrappers are pure sample
engines in spandsp's own shape (init, rx/tx, free): no threads, no clock. The hot path in
:mod:`appliance.media.dtmf` calls ``dtmf_rx`` from :func:`load` directly, by raw addresses.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable
from ctypes import CFUNCTYPE, POINTER, c_char, c_char_p, c_int, c_void_p
from types import TracebackType
from typing import Any, Final

import numpy as np

from appliance.media.frame import Samples

LIBRARY_NAME: Final = "spandsp"

# Callback types (0.0.6): digits_rx_callback_t and tone_report_func_t.
DIGITS_RX_CB = CFUNCTYPE(None, c_void_p, POINTER(c_char), c_int)  # (user_data, digits, len)
# (user_data, code, level_dBm0, duration): code is the digit's ASCII value at onset and 0 at
# the end; duration is the number of samples since the previous report (or since the
# callback was set), which is what lets a caller place each report on the sample axis.
TONE_REPORT_CB = CFUNCTYPE(None, c_void_p, c_int, c_int, c_int)
NO_DIGITS_CB = DIGITS_RX_CB()  # NULL: digits are taken from the realtime report instead

_Proto = tuple[Any, list[Any]]  # (restype, argtypes)

# Buffers are declared c_void_p, not POINTER(c_int16): the hot path passes a numpy row's
# address as a plain int, which ctypes converts without building a pointer object.
DTMF_PROTOTYPES: Final[dict[str, _Proto]] = {
    "dtmf_rx_init": (c_void_p, [c_void_p, DIGITS_RX_CB, c_void_p]),
    "dtmf_rx": (c_int, [c_void_p, c_void_p, c_int]),
    "dtmf_rx_parms": (None, [c_void_p, c_int, c_int, c_int, c_int]),
    "dtmf_rx_set_realtime_callback": (None, [c_void_p, TONE_REPORT_CB, c_void_p]),
    "dtmf_rx_status": (c_int, [c_void_p]),
    "dtmf_rx_free": (c_int, [c_void_p]),
    "dtmf_tx_init": (c_void_p, [c_void_p]),
    "dtmf_tx_put": (c_int, [c_void_p, c_char_p, c_int]),
    "dtmf_tx_set_level": (None, [c_void_p, c_int, c_int]),
    "dtmf_tx_set_timing": (None, [c_void_p, c_int, c_int]),
    "dtmf_tx": (c_int, [c_void_p, c_void_p, c_int]),
    "dtmf_tx_free": (c_int, [c_void_p]),
}

# One table per feature; a fax binding adds FAX_PROTOTYPES and lists it here.
_FEATURE_TABLES: Final[tuple[dict[str, _Proto], ...]] = (DTMF_PROTOTYPES,)


class SpandspUnavailable(RuntimeError):
    """libspandsp is missing or is not the 0.0.6 ABI this binding declares."""


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


def load() -> ctypes.CDLL:
    """The shared library handle with every feature's prototypes applied (loaded once)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            _lib = _load_library()
    return _lib


def _load_library() -> ctypes.CDLL:
    name = ctypes.util.find_library(LIBRARY_NAME) or "libspandsp.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise SpandspUnavailable(
            f"cannot load libspandsp ({name}): {exc}; install the libspandsp2 package "
            "(Debian 12 ships 0.0.6, the ABI this binding is written for)"
        ) from exc
    for table in _FEATURE_TABLES:
        for symbol, (restype, argtypes) in table.items():
            try:
                fn = getattr(lib, symbol)
            except AttributeError as exc:
                raise SpandspUnavailable(
                    f"{name} has no {symbol}; expected the libspandsp 0.0.6 ABI"
                ) from exc
            fn.restype = restype
            fn.argtypes = argtypes
    return lib


def _checked_init(ptr: int | None, what: str) -> int:
    if not ptr:
        raise MemoryError(f"spandsp {what} returned NULL")
    return ptr


class DtmfRx:
    """One spandsp DTMF receiver reporting digit onsets and ends through a callback.

    ``on_tone(code, level_dbm0, duration)`` is spandsp's realtime report: ``code`` is the
    digit character's ASCII value at onset and 0 at the end of the digit. Without
    ``on_tone`` digits are only buffered inside spandsp, which this wrapper does not read.
    """

    def __init__(self, on_tone: Callable[[int, int, int], None] | None = None) -> None:
        self._lib = load()
        self._state: int | None = _checked_init(
            self._lib.dtmf_rx_init(None, NO_DIGITS_CB, None), "dtmf_rx_init"
        )
        self._cb: Any = None
        if on_tone is not None:
            handler = on_tone
            # Kept on self: spandsp holds only the C pointer of this thunk.
            self._cb = TONE_REPORT_CB(lambda _ud, code, level, dur: handler(code, level, dur))
            self._lib.dtmf_rx_set_realtime_callback(self._state, self._cb, None)

    @property
    def state(self) -> int:
        """Address of the C state (for hot paths that call ``dtmf_rx`` directly)."""
        if self._state is None:
            raise ValueError("DTMF receiver is closed")
        return self._state

    def parms(
        self,
        *,
        filter_dialtone: int = -1,
        twist: int = -1,
        reverse_twist: int = -1,
        threshold: int = -99,
    ) -> None:
        """spandsp's tuning, in dB/dBm0 integers; the defaults leave a setting unchanged."""
        self._lib.dtmf_rx_parms(self.state, filter_dialtone, twist, reverse_twist, threshold)

    def rx(self, samples: Samples) -> None:
        """Feed int16 samples (any length)."""
        buf = np.ascontiguousarray(samples, dtype=np.int16)
        self._lib.dtmf_rx(self.state, buf.ctypes.data, len(buf))

    def status(self) -> str:
        """The digit being received, ``"x"`` for a maybe, or ``""``."""
        code = self._lib.dtmf_rx_status(self.state)
        return chr(code) if code else ""

    def close(self) -> None:
        if self._state is not None:
            self._lib.dtmf_rx_free(self._state)
            self._state = None

    def __enter__(self) -> DtmfRx:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DtmfTx:
    """One spandsp DTMF generator (used by tests and for sending digits in-band)."""

    def __init__(
        self, *, level_dbm0: int = -10, twist_db: int = 0, on_ms: int = 50, off_ms: int = 55
    ) -> None:
        self._lib = load()
        self._state: int | None = _checked_init(self._lib.dtmf_tx_init(None), "dtmf_tx_init")
        self._lib.dtmf_tx_set_level(self._state, level_dbm0, twist_db)
        self._lib.dtmf_tx_set_timing(self._state, on_ms, off_ms)

    def put(self, digits: str) -> None:
        """Queue digits (0-9, *, #, A-D) for sending."""
        if self._state is None:
            raise ValueError("DTMF generator is closed")
        data = digits.encode("ascii")
        if self._lib.dtmf_tx_put(self._state, data, len(data)):
            raise ValueError(f"spandsp's DTMF queue cannot take {digits!r}")

    def tx(self, max_samples: int) -> Samples:
        """Up to ``max_samples`` of queued tones; shorter (possibly empty) when the queue ends."""
        if self._state is None:
            raise ValueError("DTMF generator is closed")
        buf = np.zeros(max_samples, dtype=np.int16)
        n = self._lib.dtmf_tx(self._state, buf.ctypes.data, max_samples)
        return buf[:n]

    def close(self) -> None:
        if self._state is not None:
            self._lib.dtmf_tx_free(self._state)
            self._state = None

    def __enter__(self) -> DtmfTx:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
