"""IEEE 11073-20601 SFLOAT / FLOAT: specials on the raw word, exact values, round trips."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from drivers.codec.ieee11073 import (
    MedicalFloat,
    MedicalFloatError,
    Special,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
)


@pytest.mark.parametrize(
    ("raw", "special"),
    # IEEE 11073-20601 F.8.1 (as tabulated in the GATT Specification Supplement, SFLOAT)
    [(0x07FF, Special.NAN), (0x0800, Special.NRES), (0x07FE, Special.POSITIVE_INFINITY),
     (0x0802, Special.NEGATIVE_INFINITY)],
)  # fmt: skip
def test_sfloat_specials_are_recognised_on_the_raw_word(raw: int, special: Special) -> None:
    value = decode_sfloat(raw)
    assert (value.special, value.value()) == (special, None)
    assert encode_sfloat(value) == raw


def test_the_reserved_word_is_refused_and_numbers_keep_their_precision() -> None:
    with pytest.raises(MedicalFloatError, match="reserved"):
        decode_sfloat(0x0801)
    with pytest.raises(MedicalFloatError, match="reserved"):
        decode_float(0x00800001)
    # hand-computed: 0xF078 = exponent -1 (0xF), mantissa 120 -> 12.0; 0xE0C8 = 200e-2 -> 2.00
    assert str(decode_sfloat(0xF078)) == "12.0"
    assert str(decode_sfloat(0xE0C8)) == "2.00"
    assert decode_sfloat(0xE0C8) != MedicalFloat.of("2.0")
    assert decode_sfloat(0xE0C8).value() == 2.0
    # a number whose word would read back as NaN is refused, not silently changed
    with pytest.raises(MedicalFloatError, match="special value"):
        encode_sfloat(MedicalFloat(2047, 0))
    assert encode_sfloat(MedicalFloat(2047, 1)) == 0x17FF  # exponent 1: an ordinary number


@given(st.integers(0, 0xFFFF).filter(lambda r: r != 0x0801))
def test_every_sfloat_word_round_trips(raw: int) -> None:
    assert encode_sfloat(decode_sfloat(raw)) == raw


@given(st.integers(0, 0xFFFFFFFF).filter(lambda r: r != 0x00800001))
@example(0x00000801)  # the SFLOAT reserved word is an ordinary FLOAT (mantissa 2049): was refused
def test_every_float_word_round_trips(raw: int) -> None:
    assert encode_float(decode_float(raw)) == raw
