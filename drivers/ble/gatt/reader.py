"""A cursor over a characteristic value that names the field and offset of every fault.

Bluetooth Core Specification Vol 3 Part G: attribute values are little-endian; the health
profiles' numbers are IEEE 11073-20601 SFLOAT / FLOAT (drivers/codec/ieee11073.py).
"""

from __future__ import annotations

from datetime import datetime

from drivers.codec.ieee11073 import (
    MedicalFloat,
    MedicalFloatError,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
)
from drivers.errors import DriverError

#: GSS Date Time: the first year of the Gregorian calendar, and the last
MIN_YEAR = 1582
MAX_YEAR = 9999


class GattParseError(DriverError, ValueError):
    """A characteristic value that cannot be decoded: truncated, inconsistent or reserved."""

    def __init__(self, characteristic: str, field: str, offset: int, reason: str) -> None:
        super().__init__(f"{characteristic}: {field} at byte {offset}: {reason}")
        self.characteristic = characteristic
        self.field = field
        self.offset = offset
        self.reason = reason


class Reader:
    """Reads fields in order; every error names ``characteristic``, the field and its offset."""

    def __init__(self, data: bytes, characteristic: str) -> None:
        self.data = bytes(data)
        self.characteristic = characteristic
        self.offset = 0

    def error(self, field: str, reason: str, offset: int | None = None) -> GattParseError:
        return GattParseError(
            self.characteristic, field, self.offset if offset is None else offset, reason
        )

    def take(self, n: int, field: str) -> bytes:
        if self.offset + n > len(self.data):
            raise self.error(
                field, f"truncated: needs {n} bytes, {len(self.data) - self.offset} left"
            )
        chunk = self.data[self.offset : self.offset + n]
        self.offset += n
        return chunk

    def uint(self, n: int, field: str) -> int:
        return int.from_bytes(self.take(n, field), "little")

    def u8(self, field: str) -> int:
        return self.uint(1, field)

    def u16(self, field: str) -> int:
        return self.uint(2, field)

    def s16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little", signed=True)

    def sfloat(self, field: str) -> MedicalFloat:
        start = self.offset
        raw = self.u16(field)
        try:
            return decode_sfloat(raw)
        except MedicalFloatError as exc:
            raise self.error(field, str(exc), start) from exc

    def float32(self, field: str) -> MedicalFloat:
        start = self.offset
        raw = self.uint(4, field)
        try:
            return decode_float(raw)
        except MedicalFloatError as exc:
            raise self.error(field, str(exc), start) from exc

    def date_time(self, field: str) -> datetime | None:
        """A Date Time field (0x2A08 layout, GATT Specification Supplement 3.70).

        Year (uint16), month, day, hours, minutes, seconds; a year, month or day of 0 means
        "not known" and gives None.
        """
        start = self.offset
        year = self.u16(f"{field}.year")
        parts = ("month", "day", "hours", "minutes", "seconds")
        month, day, hour, minute, second = (self.u8(f"{field}.{p}") for p in parts)
        if year == 0 or month == 0 or day == 0:
            return None
        if year < MIN_YEAR:  # Date Time years 1582..9999; earlier ones are reserved
            raise self.error(f"{field}.year", f"{year} is before {MIN_YEAR}", start)
        try:
            return datetime(year, month, day, hour, minute, second)
        except ValueError as exc:
            raise self.error(field, f"not a date and time: {exc}", start) from exc

    def end(self) -> None:
        """Trailing bytes are an inconsistency (the flags did not announce them)."""
        if self.offset != len(self.data):
            raise self.error("end", f"{len(self.data) - self.offset} unexpected trailing bytes")

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset


class Writer:
    """The encoder's mirror of :class:`Reader` (little-endian fields in order)."""

    def __init__(self) -> None:
        self.out = bytearray()

    def uint(self, value: int, n: int) -> Writer:
        self.out += value.to_bytes(n, "little")
        return self

    def u8(self, value: int) -> Writer:
        return self.uint(value, 1)

    def u16(self, value: int) -> Writer:
        return self.uint(value, 2)

    def s16(self, value: int) -> Writer:
        self.out += value.to_bytes(2, "little", signed=True)
        return self

    def sfloat(self, value: MedicalFloat) -> Writer:
        return self.u16(encode_sfloat(value))

    def float32(self, value: MedicalFloat) -> Writer:
        return self.uint(encode_float(value), 4)

    def date_time(self, value: datetime | None) -> Writer:
        if value is None:
            return self.u16(0).u8(0).u8(0).u8(0).u8(0).u8(0)
        self.u16(value.year).u8(value.month).u8(value.day)
        return self.u8(value.hour).u8(value.minute).u8(value.second)

    def bytes(self) -> bytes:
        return bytes(self.out)
