"""Temperature Measurement (0x2A1C) of the Health Thermometer Service.

Implements the Bluetooth "GATT Specification Supplement" (GSS; section numbers as in GSS v8),
for the Health Thermometer Service 1.0 (HTS):

* GSS 3.216 Temperature Measurement: Flags (uint8: bit 0 Fahrenheit instead of Celsius, bit 1
  Time Stamp present, bit 2 Temperature Type present; bits 3..7 RFU), the temperature as an IEEE
  11073-20601 32-bit FLOAT (clause F.8: specials NaN, NRes, +/-INF on the raw word), then the
  optional Time Stamp (Date Time, clock.py) and Temperature Type (uint8).
* GSS 3.219 Temperature Type: 1 armpit .. 9 tympanum (ISO/IEEE 11073-10408 body sites); 0 and
  10..255 are RFU.

Decisions, where the specifications leave room:

* RFU flag bits are ignored on receipt and written as 0, the Bluetooth Core Specification's
  "reserved for future use" convention (Vol 1, Part E).
* An RFU Temperature Type code is kept as the bare int: refusing it would lose a valid temperature
  over a body-site code, and mapping it to "absent" would hide it. Encoders refuse it (a sender
  shall not use reserved values).
* A Time Stamp that is present but "not known" (year, month or day 0) becomes ``None``, as when
  it is absent (see clock.py); re-encoding then omits it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Literal

from drivers.ble.gatt.clock import write_date_time
from drivers.ble.gatt.reader import Reader, Writer
from drivers.codec.ieee11073 import MedicalFloat

TemperatureUnit = Literal["Cel", "[degF]"]  # UCUM codes

_FAHRENHEIT, _TIME_STAMP, _TEMPERATURE_TYPE = 1, 2, 4  # Flags bits, GSS 3.216

TEMPERATURE_MEASUREMENT = "Temperature Measurement"


class TemperatureType(IntEnum):
    """GSS 3.219 Temperature Type: where the temperature was taken."""

    ARMPIT = 1
    BODY = 2  # general
    EAR = 3  # usually ear lobe
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9  # ear drum


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """A body temperature; ``temperature_type`` is a bare int for an RFU code."""

    unit: TemperatureUnit
    temperature: MedicalFloat
    time_stamp: datetime | None = None
    temperature_type: TemperatureType | int | None = None


def _temperature_type(raw: int) -> TemperatureType | int:
    return (
        TemperatureType(raw) if TemperatureType.ARMPIT <= raw <= TemperatureType.TYMPANUM else raw
    )


def parse_temperature_measurement(data: bytes) -> TemperatureMeasurement:
    r = Reader(data, TEMPERATURE_MEASUREMENT)
    flags = r.u8("flags")  # bits 3..7 RFU: ignored
    temperature = r.float32("temperature")
    time_stamp = r.date_time("time_stamp") if flags & _TIME_STAMP else None
    kind = _temperature_type(r.u8("temperature_type")) if flags & _TEMPERATURE_TYPE else None
    r.end()
    unit: TemperatureUnit = "[degF]" if flags & _FAHRENHEIT else "Cel"
    return TemperatureMeasurement(unit, temperature, time_stamp, kind)


def encode_temperature_measurement(value: TemperatureMeasurement) -> bytes:
    if value.unit not in ("Cel", "[degF]"):
        raise ValueError(
            f"{TEMPERATURE_MEASUREMENT}: unit {value.unit!r} is neither Cel nor [degF]"
        )
    kind = value.temperature_type
    if kind is not None and not TemperatureType.ARMPIT <= kind <= TemperatureType.TYMPANUM:
        raise ValueError(f"{TEMPERATURE_MEASUREMENT}: temperature type {kind} is reserved")
    flags = (
        (_FAHRENHEIT if value.unit == "[degF]" else 0)
        | (_TIME_STAMP if value.time_stamp is not None else 0)
        | (_TEMPERATURE_TYPE if kind is not None else 0)
    )
    w = Writer().u8(flags).float32(value.temperature)
    if value.time_stamp is not None:
        write_date_time(w, value.time_stamp, TEMPERATURE_MEASUREMENT)
    if kind is not None:
        w.u8(kind)
    return w.bytes()


CHARACTERISTICS: dict[int, tuple[str, Callable[[bytes], object], Callable[[Any], bytes]]] = {
    0x2A1C: (
        TEMPERATURE_MEASUREMENT,
        parse_temperature_measurement,
        encode_temperature_measurement,
    ),
}
