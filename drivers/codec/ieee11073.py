"""IEEE 11073-20601 SFLOAT-Type (16 bit) and FLOAT-Type (32 bit) medical floats, exactly.

Both are ``mantissa * 10**exponent`` with a signed mantissa (12 / 24 bits) and a signed exponent
(4 / 8 bits), little-endian on the wire (Bluetooth GATT, "IEEE 11073-20601 FLOAT/SFLOAT"; IEEE
11073-20601 clause F.8). Two rules the GATT health profiles rely on and naive decoders break:

* **Special values** (NaN, NRes "not at this resolution", +INF, -INF and one reserved value) are
  whole raw words with exponent 0 and a mantissa at the top or bottom of its range. They are
  recognised on the *raw* value before it is split, never as numbers: 0x07FF is NaN, not
  2047. The reserved value is refused as a specific error.
* **Precision is data**: 2.0 (20e-1) and 2.00 (200e-2) are different readings (the device's
  resolution), so a value is kept as (mantissa, exponent) and only turned into a float or a
  ``Decimal`` when asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Special(StrEnum):
    """IEEE 11073-20601 special values (F.8.1), with their FHIR data-absent meaning."""

    NAN = "nan"  # not a number: the device could not measure
    NRES = "nres"  # not at this resolution: the value does not fit the representation
    POSITIVE_INFINITY = "+inf"  # above the measuring range
    NEGATIVE_INFINITY = "-inf"  # below the measuring range


class MedicalFloatError(ValueError):
    """A raw value that is not a usable medical float (the reserved special value)."""


# raw words of the specials: SFLOAT (16 bit) and FLOAT (32 bit)
_SFLOAT_SPECIAL = {
    0x07FF: Special.NAN,
    0x0800: Special.NRES,
    0x07FE: Special.POSITIVE_INFINITY,
    0x0802: Special.NEGATIVE_INFINITY,
}
_SFLOAT_RESERVED = 0x0801
_FLOAT_SPECIAL = {
    0x007FFFFF: Special.NAN,
    0x00800000: Special.NRES,
    0x007FFFFE: Special.POSITIVE_INFINITY,
    0x00800002: Special.NEGATIVE_INFINITY,
}
_FLOAT_RESERVED = 0x00800001


@dataclass(frozen=True, slots=True)
class MedicalFloat:
    """``mantissa * 10**exponent``, or a special value (then mantissa and exponent are 0)."""

    mantissa: int = 0
    exponent: int = 0
    special: Special | None = None

    @property
    def is_number(self) -> bool:
        return self.special is None

    def decimal(self) -> Decimal:
        """The exact value, its resolution kept (``Decimal('2.0') != str(Decimal('2.00'))``)."""
        if self.special is not None:
            raise MedicalFloatError(f"{self.special.value} has no numeric value")
        return Decimal(self.mantissa).scaleb(self.exponent)

    def value(self) -> float | None:
        """As a float (None for a special value)."""
        return None if self.special is not None else float(self.decimal())

    @property
    def decimals(self) -> int:
        """Digits after the decimal point the device reported (0 for integers)."""
        return max(0, -self.exponent)

    def __str__(self) -> str:
        return self.special.value if self.special is not None else str(self.decimal())

    @classmethod
    def of(cls, text: str) -> MedicalFloat:
        """From a decimal string, keeping its digits: ``of("2.00")`` is 200e-2."""
        sign, digits, exponent = Decimal(text).as_tuple()
        if not isinstance(exponent, int):
            raise MedicalFloatError(f"{text!r} is not a finite decimal")
        mantissa = int("".join(map(str, digits)) or "0")
        return cls(-mantissa if sign else mantissa, exponent)


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def _decode(raw: int, m_bits: int, e_bits: int, special: dict[int, Special], reserved: int,
            name: str) -> MedicalFloat:  # fmt: skip
    if raw in special:
        return MedicalFloat(special=special[raw])
    if raw == reserved:
        raise MedicalFloatError(f"{name} 0x{raw:0{(m_bits + e_bits) // 4}X} is the reserved value")
    mantissa = _signed(raw & ((1 << m_bits) - 1), m_bits)
    exponent = _signed(raw >> m_bits, e_bits)
    return MedicalFloat(mantissa, exponent)


def _encode(value: MedicalFloat, m_bits: int, e_bits: int, special: dict[int, Special],
            reserved: int, name: str) -> int:  # fmt: skip
    if value.special is not None:
        return next(raw for raw, s in special.items() if s is value.special)
    m_lo, m_hi = -(1 << (m_bits - 1)), (1 << (m_bits - 1)) - 1
    e_lo, e_hi = -(1 << (e_bits - 1)), (1 << (e_bits - 1)) - 1
    if not (m_lo <= value.mantissa <= m_hi and e_lo <= value.exponent <= e_hi):
        raise MedicalFloatError(
            f"{value.mantissa}e{value.exponent} does not fit an {name}"
            f" (mantissa {m_lo}..{m_hi}, exponent {e_lo}..{e_hi})"
        )
    raw = ((value.exponent & ((1 << e_bits) - 1)) << m_bits) | (
        value.mantissa & ((1 << m_bits) - 1)
    )
    # with exponent 0 the top and bottom mantissas are the special values (F.8.1): a number
    # there would be read back as NaN, NRes, +-INF or the reserved value
    if raw in special or raw == reserved:
        raise MedicalFloatError(f"{value.mantissa}e{value.exponent} is a special value's word")
    return raw


def decode_sfloat(raw: int) -> MedicalFloat:
    """A 16-bit SFLOAT word (already assembled from its two little-endian bytes)."""
    return _decode(raw, 12, 4, _SFLOAT_SPECIAL, _SFLOAT_RESERVED, "SFLOAT")


def encode_sfloat(value: MedicalFloat) -> int:
    return _encode(value, 12, 4, _SFLOAT_SPECIAL, _SFLOAT_RESERVED, "SFLOAT")


def decode_float(raw: int) -> MedicalFloat:
    """A 32-bit FLOAT word (already assembled from its four little-endian bytes)."""
    return _decode(raw, 24, 8, _FLOAT_SPECIAL, _FLOAT_RESERVED, "FLOAT")


def encode_float(value: MedicalFloat) -> int:
    return _encode(value, 24, 8, _FLOAT_SPECIAL, _FLOAT_RESERVED, "FLOAT")
