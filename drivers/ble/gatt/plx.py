"""PLX Spot-check Measurement (0x2A5E), PLX Continuous Measurement (0x2A5F), PLX Features (0x2A60).

Implements Pulse Oximeter Service 1.0.1 (PLXS), which defines these values in its section 3 (the
"GATT Specification Supplement" sections of the same names carry the same layouts):

* PLXS 3.1 Spot-check: Flags (3.1.1.1, Table 3.3: bit 0 Timestamp, 1 Measurement Status, 2 Device
  and Sensor Status, 3 Pulse Amplitude Index present, 4 Device Clock is Not Set), SpO2 and PR
  (SFLOAT, % and beats per minute), then the announced fields: Timestamp (Date Time, GSS 3.70),
  Measurement Status (16 bits, Table 3.4), Device and Sensor Status (24 bits, Table 3.5), Pulse
  Amplitude Index (SFLOAT, %).
* PLXS 3.2 Continuous: Flags (Table 3.7: bit 0 SpO2PR-Fast, 1 SpO2PR-Slow, 2 Measurement Status,
  3 Device and Sensor Status, 4 Pulse Amplitude Index present), SpO2PR-Normal, then SpO2PR-Fast,
  SpO2PR-Slow (each an SpO2 and a PR SFLOAT) and the same three status fields.
* PLXS 3.3 Features: Supported Features (16 bits, Table 3.9), then Measurement Status Support (16
  bits, Table 3.10) if bit 0 and Device and Sensor Status Support (24 bits, Table 3.11) if bit 1.

Numbers are IEEE 11073-20601 SFLOAT (drivers/codec/ieee11073.py); PLXS 5.1 has the sender put NaN
in an unavailable subfield, which stays a :class:`MedicalFloat` special here.

Decisions, where the specifications leave room:

* RFU bits (Flags 5..7, Measurement Status 0..4, Device and Sensor Status 16..23, Features 8..15)
  are ignored on receipt and written as 0: PLXS has senders set them to 0, and receivers ignore
  "reserved for future use" bits (Core Specification Vol 1, Part E).
* A Timestamp that is present but "not known" (year, month or day 0) reads as ``None``, like an
  absent one; a year 1..1581 is reserved and refused.
* In Features, bit 0 / bit 1 and the presence of the matching Support field are one fact (PLXS
  3.3.1.1.1-2): the value type refuses them disagreeing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

from drivers.ble.gatt import bits
from drivers.ble.gatt.reader import Reader, Writer
from drivers.codec.ieee11073 import MedicalFloat

PLX_SPOT_CHECK = "PLX Spot-check Measurement"
PLX_CONTINUOUS = "PLX Continuous Measurement"
PLX_FEATURES = "PLX Features"
SPO2_UNIT = "%"  # UCUM codes of the PLXS units
PULSE_RATE_UNIT = "/min"
PULSE_AMPLITUDE_INDEX_UNIT = "%"


class MeasurementStatus(IntEnum):
    """PLXS Table 3.4 (and 3.10 for support): the value is the bit number."""

    MEASUREMENT_ONGOING = 5
    EARLY_ESTIMATED_DATA = 6
    VALIDATED_DATA = 7
    FULLY_QUALIFIED_DATA = 8
    DATA_FROM_MEASUREMENT_STORAGE = 9
    DATA_FOR_DEMONSTRATION = 10
    DATA_FOR_TESTING = 11
    CALIBRATION_ONGOING = 12
    MEASUREMENT_UNAVAILABLE = 13
    QUESTIONABLE_MEASUREMENT_DETECTED = 14
    INVALID_MEASUREMENT_DETECTED = 15


class DeviceSensorStatus(IntEnum):
    """PLXS Table 3.5 (and 3.11 for support): the value is the bit number."""

    EXTENDED_DISPLAY_UPDATE_ONGOING = 0
    EQUIPMENT_MALFUNCTION_DETECTED = 1
    SIGNAL_PROCESSING_IRREGULARITY_DETECTED = 2
    INADEQUATE_SIGNAL_DETECTED = 3
    POOR_SIGNAL_DETECTED = 4
    LOW_PERFUSION_DETECTED = 5
    ERRATIC_SIGNAL_DETECTED = 6
    NONPULSATILE_SIGNAL_DETECTED = 7
    QUESTIONABLE_PULSE_DETECTED = 8
    SIGNAL_ANALYSIS_ONGOING = 9
    SENSOR_INTERFERENCE_DETECTED = 10
    SENSOR_UNCONNECTED_TO_USER = 11
    UNKNOWN_SENSOR_CONNECTED = 12
    SENSOR_DISPLACED = 13
    SENSOR_MALFUNCTIONING = 14
    SENSOR_DISCONNECTED = 15


class PlxFeature(IntEnum):
    """PLXS Table 3.9 Supported Features: the value is the bit number."""

    MEASUREMENT_STATUS = 0
    DEVICE_AND_SENSOR_STATUS = 1
    SPOT_CHECK_STORAGE = 2
    SPOT_CHECK_TIMESTAMP = 3
    SPO2PR_FAST = 4
    SPO2PR_SLOW = 5
    PULSE_AMPLITUDE_INDEX = 6
    MULTIPLE_BONDS = 7


@dataclass(frozen=True, slots=True)
class Spo2Pr:
    """An SpO2PR pair: oxygen saturation (%) and pulse rate (beats per minute)."""

    spo2: MedicalFloat
    pulse_rate: MedicalFloat


@dataclass(frozen=True, slots=True)
class PlxSpotCheck:
    spo2: MedicalFloat
    pulse_rate: MedicalFloat
    timestamp: datetime | None = None  # device-local
    measurement_status: frozenset[MeasurementStatus] | None = None
    device_sensor_status: frozenset[DeviceSensorStatus] | None = None
    pulse_amplitude_index: MedicalFloat | None = None
    device_clock_not_set: bool = False

    def __post_init__(self) -> None:
        t = self.timestamp
        if t is not None and (t.tzinfo or t.microsecond or t.year < 1582):
            raise ValueError(f"timestamp {t} is no Date Time (naive, whole seconds, 1582..9999)")


@dataclass(frozen=True, slots=True)
class PlxContinuous:
    spo2: MedicalFloat  # SpO2PR-Normal
    pulse_rate: MedicalFloat
    fast: Spo2Pr | None = None
    slow: Spo2Pr | None = None
    measurement_status: frozenset[MeasurementStatus] | None = None
    device_sensor_status: frozenset[DeviceSensorStatus] | None = None
    pulse_amplitude_index: MedicalFloat | None = None


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    """What the oximeter supports; each Support field is present exactly when its bit is set."""

    features: frozenset[PlxFeature]
    measurement_status_support: frozenset[MeasurementStatus] | None = None
    device_sensor_status_support: frozenset[DeviceSensorStatus] | None = None

    def __post_init__(self) -> None:
        for bit, support in (
            (PlxFeature.MEASUREMENT_STATUS, self.measurement_status_support),
            (PlxFeature.DEVICE_AND_SENSOR_STATUS, self.device_sensor_status_support),
        ):
            if (bit in self.features) != (support is not None):
                raise ValueError(f"feature {bit.name} and its Support field must come together")


_Statuses = tuple[
    frozenset[MeasurementStatus] | None, frozenset[DeviceSensorStatus] | None, MedicalFloat | None
]


def _statuses(r: Reader, flags: int, first_bit: int) -> _Statuses:
    """Measurement Status, Device and Sensor Status, Pulse Amplitude Index, as flagged."""
    ms = (
        bits.bit_set(MeasurementStatus, r.u16("measurement_status"))
        if flags >> first_bit & 1
        else None
    )
    ds = None
    if flags >> (first_bit + 1) & 1:
        ds = bits.bit_set(DeviceSensorStatus, r.uint(3, "device_sensor_status"))
    pai = r.sfloat("pulse_amplitude_index") if flags >> (first_bit + 2) & 1 else None
    return ms, ds, pai


def _write_statuses(w: Writer, x: PlxSpotCheck | PlxContinuous) -> bytes:
    if x.measurement_status is not None:
        w.u16(bits.mask(x.measurement_status))
    if x.device_sensor_status is not None:
        w.uint(bits.mask(x.device_sensor_status), 3)
    if x.pulse_amplitude_index is not None:
        w.sfloat(x.pulse_amplitude_index)
    return w.bytes()


def _status_flags(x: PlxSpotCheck | PlxContinuous) -> tuple[bool, bool, bool]:
    return (
        x.measurement_status is not None,
        x.device_sensor_status is not None,
        x.pulse_amplitude_index is not None,
    )


def parse_plx_spot_check(data: bytes) -> PlxSpotCheck:
    r = Reader(data, PLX_SPOT_CHECK)
    flags = r.u8("flags")
    spo2, pulse_rate = r.sfloat("spo2"), r.sfloat("pulse_rate")
    timestamp = r.date_time("timestamp") if flags & 0x01 else None
    ms, ds, pai = _statuses(r, flags, 1)
    r.end()
    return PlxSpotCheck(spo2, pulse_rate, timestamp, ms, ds, pai, bool(flags & 0x10))


def encode_plx_spot_check(x: PlxSpotCheck) -> bytes:
    flags = bits.flags(x.timestamp is not None, *_status_flags(x), x.device_clock_not_set)
    w = Writer().u8(flags).sfloat(x.spo2).sfloat(x.pulse_rate)
    if x.timestamp is not None:
        w.date_time(x.timestamp)
    return _write_statuses(w, x)


def parse_plx_continuous(data: bytes) -> PlxContinuous:
    r = Reader(data, PLX_CONTINUOUS)
    flags = r.u8("flags")
    spo2, pulse_rate = r.sfloat("spo2"), r.sfloat("pulse_rate")
    fast = Spo2Pr(r.sfloat("fast.spo2"), r.sfloat("fast.pulse_rate")) if flags & 0x01 else None
    slow = Spo2Pr(r.sfloat("slow.spo2"), r.sfloat("slow.pulse_rate")) if flags & 0x02 else None
    ms, ds, pai = _statuses(r, flags, 2)
    r.end()
    return PlxContinuous(spo2, pulse_rate, fast, slow, ms, ds, pai)


def encode_plx_continuous(x: PlxContinuous) -> bytes:
    flags = bits.flags(x.fast is not None, x.slow is not None, *_status_flags(x))
    w = Writer().u8(flags).sfloat(x.spo2).sfloat(x.pulse_rate)
    for pair in (x.fast, x.slow):
        if pair is not None:
            w.sfloat(pair.spo2).sfloat(pair.pulse_rate)
    return _write_statuses(w, x)


def parse_plx_features(data: bytes) -> PlxFeatures:
    r = Reader(data, PLX_FEATURES)
    features = bits.bit_set(PlxFeature, r.u16("supported_features"))
    ms = ds = None
    if PlxFeature.MEASUREMENT_STATUS in features:
        ms = bits.bit_set(MeasurementStatus, r.u16("measurement_status_support"))
    if PlxFeature.DEVICE_AND_SENSOR_STATUS in features:
        ds = bits.bit_set(DeviceSensorStatus, r.uint(3, "device_sensor_status_support"))
    r.end()
    return PlxFeatures(features, ms, ds)


def encode_plx_features(x: PlxFeatures) -> bytes:
    w = Writer().u16(bits.mask(x.features))
    if x.measurement_status_support is not None:
        w.u16(bits.mask(x.measurement_status_support))
    if x.device_sensor_status_support is not None:
        w.uint(bits.mask(x.device_sensor_status_support), 3)
    return w.bytes()


CHARACTERISTICS: dict[int, tuple[str, Callable[[bytes], object], Callable[[Any], bytes]]] = {
    0x2A5E: (PLX_SPOT_CHECK, parse_plx_spot_check, encode_plx_spot_check),
    0x2A5F: (PLX_CONTINUOUS, parse_plx_continuous, encode_plx_continuous),
    0x2A60: (PLX_FEATURES, parse_plx_features, encode_plx_features),
}
