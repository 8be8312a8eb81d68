"""ctypes binding to libspandsp, pinned to the prototypes of Debian 12's libspandsp2 0.0.6.

The library is loaded once, on first use, and each feature (DTMF, fax) declares its
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
from abc import ABC, abstractmethod
from collections.abc import Callable
from ctypes import CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_int, c_void_p
from types import TracebackType
from typing import Any, Final, Self

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

# T.30 phase handlers (0.0.6): (t30_state, user_data, result). B and D must return an int
# (T30_ERR_OK): declared with a None result, ctypes hands spandsp garbage and negotiation
# breaks. E reports the completion code.
PHASE_B_CB = CFUNCTYPE(c_int, c_void_p, c_void_p, c_int)
PHASE_D_CB = CFUNCTYPE(c_int, c_void_p, c_void_p, c_int)
PHASE_E_CB = CFUNCTYPE(None, c_void_p, c_void_p, c_int)
# span_log's message handler in 0.0.6: (level, text), no user data. Newer spandsp adds a
# leading user_data pointer; seen: declared that way here, the level arrives in it.
LOG_MESSAGE_CB = CFUNCTYPE(None, c_int, c_char_p)


class T30Stats(Structure):
    """``t30_stats_t`` as 0.0.6 lays it out: 15 ints (the RTP/RTN counters are ``#if 0``)."""

    _fields_ = [(name, c_int) for name in (
        "bit_rate", "error_correcting_mode", "pages_tx", "pages_rx", "pages_in_file",
        "x_resolution", "y_resolution", "width", "length", "image_size", "encoding",
        "bad_rows", "longest_bad_row_run", "error_correcting_mode_retries", "current_status",
    )]


FAX_PROTOTYPES: Final[dict[str, _Proto]] = {
    "fax_init": (c_void_p, [c_void_p, c_int]),
    "fax_rx": (c_int, [c_void_p, c_void_p, c_int]),
    "fax_tx": (c_int, [c_void_p, c_void_p, c_int]),
    "fax_set_transmit_on_idle": (None, [c_void_p, c_int]),
    "fax_get_t30_state": (c_void_p, [c_void_p]),
    "fax_free": (c_int, [c_void_p]),
    "t30_set_tx_file": (None, [c_void_p, c_char_p, c_int, c_int]),
    "t30_set_rx_file": (None, [c_void_p, c_char_p, c_int]),
    "t30_set_tx_ident": (c_int, [c_void_p, c_char_p]),
    "t30_get_rx_ident": (c_char_p, [c_void_p]),
    "t30_set_supported_modems": (c_int, [c_void_p, c_int]),
    "t30_set_supported_compressions": (c_int, [c_void_p, c_int]),
    "t30_set_ecm_capability": (c_int, [c_void_p, c_int]),
    "t30_set_phase_b_handler": (None, [c_void_p, PHASE_B_CB, c_void_p]),
    "t30_set_phase_d_handler": (None, [c_void_p, PHASE_D_CB, c_void_p]),
    "t30_set_phase_e_handler": (None, [c_void_p, PHASE_E_CB, c_void_p]),
    "t30_get_transfer_statistics": (None, [c_void_p, POINTER(T30Stats)]),
    "t30_completion_code_to_str": (c_char_p, [c_int]),
    "t30_terminate": (None, [c_void_p]),
    "fax_get_logging_state": (c_void_p, [c_void_p]),
    "t30_get_logging_state": (c_void_p, [c_void_p]),
    "span_log_set_level": (c_int, [c_void_p, c_int]),
    "span_log_set_message_handler": (None, [c_void_p, LOG_MESSAGE_CB]),
}

# t30.h constants this binding uses.
T30_SUPPORT_V27TER: Final = 0x01
T30_SUPPORT_V29: Final = 0x02
T30_SUPPORT_V17: Final = 0x04
T30_SUPPORT_T4_1D: Final = 0x02
T30_SUPPORT_T4_2D: Final = 0x04
T30_SUPPORT_T6: Final = 0x08
T30_ERR_OK: Final = 0
#: span_log levels (logging.h): protocol flow is what a fax trace wants
SPAN_LOG_FLOW: Final = 5
SPAN_LOG_SHOW_TAG: Final = 0x2000
#: spandsp cuts file names at this many characters (a longer path opens the wrong file)
MAX_PATH_CHARS: Final = 255

# One table per feature, all applied to the one handle.
_FEATURE_TABLES: Final[tuple[dict[str, _Proto], ...]] = (DTMF_PROTOTYPES, FAX_PROTOTYPES)


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


class Closable(ABC):
    """A context manager that frees the spandsp state on exit (``close`` is idempotent)."""

    @abstractmethod
    def close(self) -> None:
        """Free the spandsp state; calling it again does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _checked_init(ptr: int | None, what: str) -> int:
    if not ptr:
        raise MemoryError(f"spandsp {what} returned NULL")
    return ptr


class DtmfRx(Closable):
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


class DtmfTx(Closable):
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


def completion_text(code: int) -> str:
    """spandsp's own words for a T.30 completion code (``t30_completion_code_to_str``)."""
    text = load().t30_completion_code_to_str(code)
    return text.decode("ascii", "replace") if text else f"unknown completion code {code}"


class FaxEndpoint(Closable):
    """One spandsp fax terminal (``fax_state_t`` with its T.30 engine) in audio mode.

    ``calling_party`` 1 is the side that sends CNG and waits for the other's DIS; 0 answers
    with CED and DIS. Phase handlers are optional callables taking the result code; their
    thunks are kept on the object because spandsp only holds the C pointers.
    """

    def __init__(self, calling_party: bool) -> None:
        self._lib = load()
        self._state: int | None = _checked_init(
            self._lib.fax_init(None, 1 if calling_party else 0), "fax_init")
        # Idle periods are sent as silence of the full length asked for, so every outbound
        # frame is exactly 160 samples without padding here.
        self._lib.fax_set_transmit_on_idle(self._state, 1)
        self.t30: int = _checked_init(self._lib.fax_get_t30_state(self._state),
                                      "fax_get_t30_state")
        self._thunks: list[Any] = []

    @property
    def state(self) -> int:
        if self._state is None:
            raise ValueError("fax endpoint is closed")
        return self._state

    def set_tx_file(self, path: str) -> None:
        self._lib.t30_set_tx_file(self.t30, _c_path(path), -1, -1)

    def set_rx_file(self, path: str) -> None:
        self._lib.t30_set_rx_file(self.t30, _c_path(path), -1)

    def set_ident(self, ident: str) -> None:
        # T.30 identities are 20 characters of digits, space and '+'.
        self._lib.t30_set_tx_ident(self.t30, ident[:20].encode("ascii", "replace"))

    def far_ident(self) -> str:
        ident = self._lib.t30_get_rx_ident(self.t30)
        return ident.decode("ascii", "replace").strip() if ident else ""

    def set_modems(self, modems: int) -> None:
        """The modems offered; a calling terminal may narrow them until the far end's DIS
        arrives (the DCS is built from the set in force then)."""
        self._lib.t30_set_supported_modems(self.t30, modems)

    def configure(self, *, modems: int, compressions: int, ecm: bool) -> None:
        self.set_modems(modems)
        self._lib.t30_set_supported_compressions(self.t30, compressions)
        self._lib.t30_set_ecm_capability(self.t30, 1 if ecm else 0)

    def on_phases(self, phase_b: Callable[[int], None], phase_d: Callable[[int], None],
                  phase_e: Callable[[int], None]) -> None:
        def b(_s: int, _ud: int, result: int) -> int:
            phase_b(result)
            return T30_ERR_OK

        def d(_s: int, _ud: int, result: int) -> int:
            phase_d(result)
            return T30_ERR_OK

        thunks = (PHASE_B_CB(b), PHASE_D_CB(d), PHASE_E_CB(lambda _s, _ud, c: phase_e(c)))
        self._thunks.extend(thunks)
        self._lib.t30_set_phase_b_handler(self.t30, thunks[0], None)
        self._lib.t30_set_phase_d_handler(self.t30, thunks[1], None)
        self._lib.t30_set_phase_e_handler(self.t30, thunks[2], None)

    def trace(self, handler: Callable[[str], None], level: int = SPAN_LOG_FLOW) -> None:
        """Hand spandsp's own log lines of the fax layer and its T.30 engine (tagged "FAX"
        and "T.30") to ``handler``, up to ``level``. The modems log into their own states,
        which 0.0.6 does not expose through the fax terminal; T.30 reports their status
        changes ("HDLC signal status is Training failed ...")."""
        def message(_level: int, text: bytes | None) -> None:
            if text:
                handler(text.decode("ascii", "replace").rstrip("\n"))

        thunk = LOG_MESSAGE_CB(message)
        self._thunks.append(thunk)
        for log_state in (self._lib.fax_get_logging_state(self.state),
                          self._lib.t30_get_logging_state(self.t30)):
            self._lib.span_log_set_message_handler(log_state, thunk)
            self._lib.span_log_set_level(log_state, SPAN_LOG_SHOW_TAG | level)

    def rx(self, samples: Samples) -> None:
        # A copy: fax_rx takes a non-const buffer and may change it, and the caller's
        # array can be shared (a frame of the call, a block of zeros).
        buf = np.array(samples, dtype=np.int16, copy=True)
        self._lib.fax_rx(self.state, buf.ctypes.data, len(buf))

    def tx(self, n: int) -> Samples:
        """``n`` samples of line signal (silence while idle: transmit-on-idle is set)."""
        buf = np.zeros(n, dtype=np.int16)
        self._lib.fax_tx(self.state, buf.ctypes.data, n)
        return buf

    def statistics(self) -> T30Stats:
        stats = T30Stats()
        self._lib.t30_get_transfer_statistics(self.t30, ctypes.byref(stats))
        return stats

    def terminate(self) -> None:
        """Abort the T.30 session (the call dropped): spandsp closes the files and runs
        phase E with the current completion code."""
        self._lib.t30_terminate(self.t30)

    def close(self) -> None:
        if self._state is not None:
            self._lib.fax_free(self._state)
            self._state = None


def _c_path(path: str) -> bytes:
    data = path.encode()
    if len(data) > MAX_PATH_CHARS:
        raise ValueError(f"fax file path {path!r} is {len(data)} bytes; spandsp cuts paths at "
                         f"{MAX_PATH_CHARS}")
    return data
