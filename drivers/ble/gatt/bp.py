"""Blood pressure: Measurement (0x2A35), Intermediate Cuff Pressure (0x2A36) and Feature (0x2A49).

Implements the Bluetooth "GATT Specification Supplement" (GSS; section numbers as in GSS v8),
for the Blood Pressure Service and Profile 1.1 (BLS / BLP):

* GSS 3.31 Blood Pressure Measurement: Flags (uint8: bit 0 kPa instead of mmHg, bit 1 Time Stamp,
  bit 2 Pulse Rate, bit 3 User ID, bit 4 Measurement Status present; bits 5..7 RFU), systolic,
  diastolic and mean arterial pressure (IEEE 11073-20601 SFLOAT), then the optional Time Stamp
  (Date Time, clock.py), Pulse Rate (SFLOAT, beats per minute), User ID (uint8, 0xFF = unknown
  user) and Measurement Status (16-bit field, :class:`MeasurementStatus`).
* GSS 3.126 Intermediate Cuff Pressure: the same layout; the systolic field carries the current
  cuff pressure and the diastolic and MAP fields are "not used" (the sender sets NaN).
* GSS 3.30 Blood Pressure Feature: a 16-bit field of supported features; bits 6..8 (E2E-CRC, User
  Data Service, User Facing Time) arrived with BLS 1.1 and read 0 on a BLS 1.0 sensor.

Decisions, where the specifications leave room:

* RFU bits (Flags 5..7, Measurement Status 6..15, Feature 9..15) are ignored on receipt and written
  as 0, the Bluetooth Core Specification's "reserved for future use" convention (Vol 1, Part E).
  The one RFU *value*, Pulse Rate Range 3, stays observable as :attr:`PulseRateRange.RESERVED`
  rather than failing the whole measurement; encoders refuse it (a sender shall not use it).
* The unused fields of Intermediate Cuff Pressure are skipped without being decoded: GSS gives
  them no meaning, and sensors in the field fill them with 0 rather than NaN (the vectors of
  NordicSemiconductor/Android-BLE-Common-Library do). Our encoder writes NaN as GSS asks.
* A Time Stamp that is present but "not known" (year, month or day 0) becomes ``None``, as when
  it is absent (see clock.py); re-encoding then omits it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Literal, NamedTuple

from drivers.ble.gatt.clock import write_date_time
from drivers.ble.gatt.reader import Reader, Writer
from drivers.codec.ieee11073 import MedicalFloat, Special

PressureUnit = Literal["mm[Hg]", "kPa"]  # UCUM codes
PULSE_RATE_UNIT = "/min"  # UCUM for beats per minute
UNKNOWN_USER = 0xFF  # GSS 3.31 User ID: "unknown user"
NAN = MedicalFloat(special=Special.NAN)

# Flags bits, GSS 3.31 (and 3.126, same layout)
_KPA, _TIME_STAMP, _PULSE_RATE, _USER_ID, _STATUS = 1, 2, 4, 8, 16

BLOOD_PRESSURE_MEASUREMENT = "Blood Pressure Measurement"
INTERMEDIATE_CUFF_PRESSURE = "Intermediate Cuff Pressure"
BLOOD_PRESSURE_FEATURE = "Blood Pressure Feature"


class PulseRateRange(IntEnum):
    """Measurement Status bits 3..4, Pulse Rate Range Detection."""

    WITHIN_RANGE = 0
    EXCEEDS_UPPER_LIMIT = 1
    BELOW_LOWER_LIMIT = 2
    #: RFU code 3: the sensor asserts nothing GSS defines (kept so that it stays visible)
    RESERVED = 3


@dataclass(frozen=True, slots=True)
class MeasurementStatus:
    """GSS 3.31 Measurement Status; each flag is meaningful only if the Feature declares it."""

    body_movement: bool = False
    cuff_too_loose: bool = False
    irregular_pulse: bool = False
    pulse_rate_range: PulseRateRange = PulseRateRange.WITHIN_RANGE
    improper_position: bool = False


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """A final blood pressure reading; ``user_id`` 0xFF is :data:`UNKNOWN_USER`."""

    unit: PressureUnit
    systolic: MedicalFloat
    diastolic: MedicalFloat
    mean_arterial_pressure: MedicalFloat
    time_stamp: datetime | None = None
    pulse_rate: MedicalFloat | None = None  # in PULSE_RATE_UNIT
    user_id: int | None = None
    measurement_status: MeasurementStatus | None = None


@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    """The cuff pressure while a measurement runs (for display only, GSS 3.126)."""

    unit: PressureUnit
    current_cuff_pressure: MedicalFloat
    time_stamp: datetime | None = None
    pulse_rate: MedicalFloat | None = None
    user_id: int | None = None
    measurement_status: MeasurementStatus | None = None


@dataclass(frozen=True, slots=True)
class BloodPressureFeature:
    """GSS 3.30: what the sensor supports (bit 0 first)."""

    body_movement_detection: bool = False
    cuff_fit_detection: bool = False
    irregular_pulse_detection: bool = False
    pulse_rate_range_detection: bool = False
    measurement_position_detection: bool = False
    multiple_bonds: bool = False
    e2e_crc: bool = False
    user_data_service: bool = False
    user_facing_time: bool = False


def _bits(value: int, count: int) -> tuple[bool, ...]:
    return tuple(bool(value >> bit & 1) for bit in range(count))


def _pack(flags: tuple[bool, ...]) -> int:
    return sum(1 << bit for bit, is_set in enumerate(flags) if is_set)


# --------------------------------------------------------------------------- shared layout


class _Common(NamedTuple):
    """The unit and the fields after the compound value, alike in 0x2A35 and 0x2A36."""

    unit: PressureUnit
    time_stamp: datetime | None
    pulse_rate: MedicalFloat | None
    user_id: int | None
    measurement_status: MeasurementStatus | None


def _status(raw: int) -> MeasurementStatus:
    body, cuff, irregular = _bits(raw, 3)
    return MeasurementStatus(
        body_movement=body,
        cuff_too_loose=cuff,
        irregular_pulse=irregular,
        pulse_rate_range=PulseRateRange(raw >> 3 & 0b11),
        improper_position=bool(raw >> 5 & 1),
    )  # bits 6..15 RFU: ignored


def _read_common(r: Reader, flags: int) -> _Common:
    """The fields after the compound value, as ``flags`` announces them, then the end."""
    time_stamp = r.date_time("time_stamp") if flags & _TIME_STAMP else None
    pulse_rate = r.sfloat("pulse_rate") if flags & _PULSE_RATE else None
    user_id = r.u8("user_id") if flags & _USER_ID else None
    status = _status(r.u16("measurement_status")) if flags & _STATUS else None
    r.end()
    return _Common("kPa" if flags & _KPA else "mm[Hg]", time_stamp, pulse_rate, user_id, status)


def _write(name: str, common: _Common, compound: tuple[MedicalFloat, ...]) -> bytes:
    if common.unit not in ("mm[Hg]", "kPa"):
        raise ValueError(f"{name}: unit {common.unit!r} is neither 'mm[Hg]' nor 'kPa'")
    if common.user_id is not None and not 0 <= common.user_id <= 0xFF:
        raise ValueError(f"{name}: user id {common.user_id} is not a uint8")
    status = common.measurement_status
    if status is not None and status.pulse_rate_range == PulseRateRange.RESERVED:
        raise ValueError(f"{name}: pulse rate range 3 is reserved (GSS 3.31)")
    w = Writer()
    w.u8(
        _pack(
            (
                common.unit == "kPa",
                common.time_stamp is not None,
                common.pulse_rate is not None,
                common.user_id is not None,
                status is not None,
            )
        )
    )
    for value in compound:
        w.sfloat(value)
    if common.time_stamp is not None:
        write_date_time(w, common.time_stamp, name)
    if common.pulse_rate is not None:
        w.sfloat(common.pulse_rate)
    if common.user_id is not None:
        w.u8(common.user_id)
    if status is not None:
        w.u16(
            _pack((status.body_movement, status.cuff_too_loose, status.irregular_pulse))
            | int(status.pulse_rate_range) << 3
            | int(status.improper_position) << 5
        )
    return w.bytes()


# --------------------------------------------------------------------------- 0x2A35, 0x2A36


def parse_blood_pressure_measurement(data: bytes) -> BloodPressureMeasurement:
    r = Reader(data, BLOOD_PRESSURE_MEASUREMENT)
    flags = r.u8("flags")  # bits 5..7 RFU: ignored
    systolic, diastolic = r.sfloat("systolic"), r.sfloat("diastolic")
    mean = r.sfloat("mean_arterial_pressure")
    t = _read_common(r, flags)
    return BloodPressureMeasurement(
        t.unit,
        systolic,
        diastolic,
        mean,
        t.time_stamp,
        t.pulse_rate,
        t.user_id,
        t.measurement_status,
    )


def encode_blood_pressure_measurement(value: BloodPressureMeasurement) -> bytes:
    common = _Common(
        value.unit, value.time_stamp, value.pulse_rate, value.user_id, value.measurement_status
    )
    compound = (value.systolic, value.diastolic, value.mean_arterial_pressure)
    return _write(BLOOD_PRESSURE_MEASUREMENT, common, compound)


def parse_intermediate_cuff_pressure(data: bytes) -> IntermediateCuffPressure:
    r = Reader(data, INTERMEDIATE_CUFF_PRESSURE)
    flags = r.u8("flags")  # bits 5..7 RFU: ignored
    pressure = r.sfloat("current_cuff_pressure")
    # GSS 3.126: diastolic and MAP are "not used": skipped undecoded, whatever they hold
    r.take(2, "diastolic")
    r.take(2, "mean_arterial_pressure")
    t = _read_common(r, flags)
    return IntermediateCuffPressure(
        t.unit, pressure, t.time_stamp, t.pulse_rate, t.user_id, t.measurement_status
    )


def encode_intermediate_cuff_pressure(value: IntermediateCuffPressure) -> bytes:
    common = _Common(
        value.unit, value.time_stamp, value.pulse_rate, value.user_id, value.measurement_status
    )
    return _write(INTERMEDIATE_CUFF_PRESSURE, common, (value.current_cuff_pressure, NAN, NAN))


# --------------------------------------------------------------------------- 0x2A49


def parse_blood_pressure_feature(data: bytes) -> BloodPressureFeature:
    r = Reader(data, BLOOD_PRESSURE_FEATURE)
    raw = r.u16("blood_pressure_feature")  # bits 9..15 RFU: ignored
    r.end()
    return BloodPressureFeature(*_bits(raw, 9))


def encode_blood_pressure_feature(value: BloodPressureFeature) -> bytes:
    flags = (
        value.body_movement_detection,
        value.cuff_fit_detection,
        value.irregular_pulse_detection,
        value.pulse_rate_range_detection,
        value.measurement_position_detection,
        value.multiple_bonds,
        value.e2e_crc,
        value.user_data_service,
        value.user_facing_time,
    )
    return Writer().u16(_pack(flags)).bytes()


CHARACTERISTICS: dict[int, tuple[str, Callable[[bytes], object], Callable[[Any], bytes]]] = {
    0x2A35: (
        BLOOD_PRESSURE_MEASUREMENT,
        parse_blood_pressure_measurement,
        encode_blood_pressure_measurement,
    ),
    0x2A36: (
        INTERMEDIATE_CUFF_PRESSURE,
        parse_intermediate_cuff_pressure,
        encode_intermediate_cuff_pressure,
    ),
    0x2A49: (BLOOD_PRESSURE_FEATURE, parse_blood_pressure_feature, encode_blood_pressure_feature),
}
