"""G.711: bit-exact with audioop for every input, and round trips that hold."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from appliance.media import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL = np.arange(-32768, 32768, dtype=np.int16)
ALL_BYTES = ALL.astype("<i2").tobytes()


def test_alaw_encode_bit_exact_with_audioop_for_all_inputs() -> None:
    assert g711.alaw_encode(ALL) == audioop.lin2alaw(ALL_BYTES, 2)


def test_ulaw_encode_bit_exact_with_audioop_for_all_inputs() -> None:
    assert g711.ulaw_encode(ALL) == audioop.lin2ulaw(ALL_BYTES, 2)


def test_decoders_match_audioop_for_all_codes() -> None:
    codes = bytes(range(256))
    assert g711.alaw_decode(codes).astype("<i2").tobytes() == audioop.alaw2lin(codes, 2)
    assert g711.ulaw_decode(codes).astype("<i2").tobytes() == audioop.ulaw2lin(codes, 2)


def test_bytes_and_arrays_encode_the_same() -> None:
    assert g711.alaw_encode(ALL_BYTES) == g711.alaw_encode(ALL)


@given(st.binary(min_size=1, max_size=400))
def test_code_decode_encode_is_identity(codes: bytes) -> None:
    # Every code word decodes to a value that encodes back to the same code word (A-law
    # has no duplicate codes; µ-law's two zeros both decode to 0 and come back as 0xFF).
    assert g711.alaw_encode(g711.alaw_decode(codes)) == codes
    back = g711.ulaw_encode(g711.ulaw_decode(codes))
    assert back == codes.replace(b"\x7f", b"\xff")


@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=320))
def test_linear_round_trip_error_is_within_the_quantisation_step(values: list[int]) -> None:
    x = np.array(values, dtype=np.int16)
    for enc, dec in ((g711.alaw_encode, g711.alaw_decode), (g711.ulaw_encode, g711.ulaw_decode)):
        y = dec(enc(x)).astype(np.int32)
        err = np.abs(y - x.astype(np.int32))
        # Companding: the step grows with the magnitude, at most 1/16 of it plus 2 LSB of 13 bits.
        assert np.all(err <= np.abs(x.astype(np.int32)) // 16 + 33)
