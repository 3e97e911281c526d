"""Weight Measurement (0x2A9D) and Weight Scale Feature (0x2A9E) of the Weight Scale Service.

Implements the Bluetooth "GATT Specification Supplement" (GSS; section numbers as in GSS v8),
for the Weight Scale Service 1.0 (WSS):

* GSS 3.252 Weight Measurement: Flags (uint8: bit 0 imperial instead of SI, bit 1 Time Stamp,
  bit 2 User ID, bit 3 BMI and Height present; bits 4..7 RFU), Weight (uint16: 0.005 kg or
  0.01 lb), then the optional Time Stamp (Date Time, clock.py), User ID (uint8, 0xFF = unknown
  user), BMI (uint16, 0.1 kg/m2) and Height (uint16: 0.001 m or 0.1 in).
* WSS 1.0: a Weight of 0xFFFF means "Measurement Unsuccessful", and then "all optional fields
  other than the Time Stamp field and the User ID field shall be disabled".
* GSS 3.253 Weight Scale Feature: uint32; bit 0 Time Stamp, bit 1 Multiple Users, bit 2 BMI
  supported, bits 3..6 Weight Measurement Resolution, bits 7..9 Height Measurement Resolution,
  bits 10..31 RFU.

Decisions, where the specifications leave room:

* The fields are fixed-point integers, not IEEE 11073 floats; they are returned as exact
  :class:`MedicalFloat` values at the field's own resolution (a weight of 14000 is 70.000 kg,
  ``MedicalFloat(70000, -3)``), so no float ever rounds a 0.005 kg step. "Measurement
  Unsuccessful" is the NaN special value. The Feature's resolution says how fine the scale
  really is; it does not rescale the field (GSS fixes the field's unit), so the parser needs no
  Feature.
* BMI or Height after an unsuccessful weight breaks the WSS rule above and is refused.
* RFU bits are ignored on receipt and written as 0, the Bluetooth Core Specification's "reserved
  for future use" convention (Vol 1, Part E). An RFU resolution code stays observable as a bare
  int; encoders refuse it (a sender shall not use reserved values).
* A Time Stamp that is present but "not known" (year, month or day 0) becomes ``None``, as when
  it is absent (see clock.py); re-encoding then omits it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from typing import Any, Literal

from drivers.ble.gatt.clock import write_date_time
from drivers.ble.gatt.reader import Reader, Writer
from drivers.codec.ieee11073 import MedicalFloat, Special

WeightUnit = Literal["kg", "[lb_av]"]  # UCUM codes; SI or imperial, chosen by Flags bit 0
HeightUnit = Literal["m", "[in_i]"]
HEIGHT_UNIT: dict[WeightUnit, HeightUnit] = {"kg": "m", "[lb_av]": "[in_i]"}
BMI_UNIT = "kg/m2"
UNKNOWN_USER = 0xFF
MEASUREMENT_UNSUCCESSFUL = 0xFFFF  # WSS 1.0, Weight field

_IMPERIAL, _TIME_STAMP, _USER_ID, _BMI_AND_HEIGHT = 1, 2, 4, 8  # Flags bits, GSS 3.252

# (multiplier, decimal exponent) of each fixed-point field, GSS 3.252
_WEIGHT: dict[WeightUnit, tuple[int, int]] = {"kg": (5, -3), "[lb_av]": (1, -2)}
_HEIGHT: dict[WeightUnit, tuple[int, int]] = {"kg": (1, -3), "[lb_av]": (1, -1)}
_BMI = (1, -1)

WEIGHT_MEASUREMENT = "Weight Measurement"
WEIGHT_SCALE_FEATURE = "Weight Scale Feature"


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """A weighing; ``weight`` is NaN for "Measurement Unsuccessful".

    ``bmi`` and ``height`` come together or not at all; height is in :attr:`height_unit`.
    """

    unit: WeightUnit
    weight: MedicalFloat
    time_stamp: datetime | None = None
    user_id: int | None = None
    bmi: MedicalFloat | None = None  # in BMI_UNIT
    height: MedicalFloat | None = None

    @property
    def height_unit(self) -> HeightUnit:
        return HEIGHT_UNIT[self.unit]


def _fixed(raw: int, scale: tuple[int, int]) -> MedicalFloat:
    multiplier, exponent = scale
    return MedicalFloat(raw * multiplier, exponent)


def _raw(value: MedicalFloat, scale: tuple[int, int], limit: int, what: str) -> int:
    """The field integer that represents ``value`` exactly, or ValueError."""
    multiplier, exponent = scale
    if value.special is not None:
        raise ValueError(f"{WEIGHT_MEASUREMENT}: {what} cannot be {value.special.value}")
    units = value.decimal().scaleb(-exponent)  # in steps of 10**exponent
    if units != units.to_integral_value() or int(units) % multiplier:
        step = Decimal(multiplier).scaleb(exponent)
        raise ValueError(f"{WEIGHT_MEASUREMENT}: {what} {value} is not a multiple of {step}")
    raw = int(units) // multiplier
    if not 0 <= raw <= limit:
        raise ValueError(f"{WEIGHT_MEASUREMENT}: {what} {value} outside the uint16 field")
    return raw


def parse_weight_measurement(data: bytes) -> WeightMeasurement:
    r = Reader(data, WEIGHT_MEASUREMENT)
    flags = r.u8("flags")  # bits 4..7 RFU: ignored
    unit: WeightUnit = "[lb_av]" if flags & _IMPERIAL else "kg"
    raw_weight = r.u16("weight")
    unsuccessful = raw_weight == MEASUREMENT_UNSUCCESSFUL
    weight = (
        MedicalFloat(special=Special.NAN) if unsuccessful else _fixed(raw_weight, _WEIGHT[unit])
    )
    time_stamp = r.date_time("time_stamp") if flags & _TIME_STAMP else None
    user_id = r.u8("user_id") if flags & _USER_ID else None
    bmi = height = None
    if flags & _BMI_AND_HEIGHT:
        if unsuccessful:
            # WSS 1.0: after "Measurement Unsuccessful" only Time Stamp and User ID may follow
            raise r.error("bmi", "present although the weight is 'Measurement Unsuccessful'")
        bmi = _fixed(r.u16("bmi"), _BMI)
        height = _fixed(r.u16("height"), _HEIGHT[unit])
    r.end()
    return WeightMeasurement(unit, weight, time_stamp, user_id, bmi, height)


def encode_weight_measurement(value: WeightMeasurement) -> bytes:
    if value.unit not in _WEIGHT:
        raise ValueError(f"{WEIGHT_MEASUREMENT}: unit {value.unit!r} is neither kg nor [lb_av]")
    if (value.bmi is None) != (value.height is None):
        raise ValueError(f"{WEIGHT_MEASUREMENT}: BMI and height travel together (Flags bit 3)")
    if value.user_id is not None and not 0 <= value.user_id <= 0xFF:
        raise ValueError(f"{WEIGHT_MEASUREMENT}: user id {value.user_id} is not a uint8")
    if value.weight.special is Special.NAN:
        if value.bmi is not None:
            raise ValueError(f"{WEIGHT_MEASUREMENT}: no BMI or height with an unsuccessful weight")
        raw_weight = MEASUREMENT_UNSUCCESSFUL
    else:
        raw_weight = _raw(value.weight, _WEIGHT[value.unit], MEASUREMENT_UNSUCCESSFUL - 1, "weight")
    flags = (
        (_IMPERIAL if value.unit == "[lb_av]" else 0)
        | (_TIME_STAMP if value.time_stamp is not None else 0)
        | (_USER_ID if value.user_id is not None else 0)
        | (_BMI_AND_HEIGHT if value.bmi is not None else 0)
    )
    w = Writer().u8(flags).u16(raw_weight)
    if value.time_stamp is not None:
        write_date_time(w, value.time_stamp, WEIGHT_MEASUREMENT)
    if value.user_id is not None:
        w.u8(value.user_id)
    if value.bmi is not None and value.height is not None:
        w.u16(_raw(value.bmi, _BMI, 0xFFFF, "BMI"))
        w.u16(_raw(value.height, _HEIGHT[value.unit], 0xFFFF, "height"))
    return w.bytes()


# --------------------------------------------------------------------------- 0x2A9E


class WeightResolution(IntEnum):
    """GSS 3.253 Weight Measurement Resolution (8..15 RFU)."""

    NOT_SPECIFIED = 0
    KG_0_5_OR_LB_1 = 1
    KG_0_2_OR_LB_0_5 = 2
    KG_0_1_OR_LB_0_2 = 3
    KG_0_05_OR_LB_0_1 = 4
    KG_0_02_OR_LB_0_05 = 5
    KG_0_01_OR_LB_0_02 = 6
    KG_0_005_OR_LB_0_01 = 7

    def step(self, unit: WeightUnit) -> Decimal | None:
        """The scale's weight resolution in ``unit`` (None when not specified)."""
        steps = _WEIGHT_STEPS.get(self)
        return None if steps is None else steps[0 if unit == "kg" else 1]


class HeightResolution(IntEnum):
    """GSS 3.253 Height Measurement Resolution (4..7 RFU)."""

    NOT_SPECIFIED = 0
    M_0_01_OR_IN_1 = 1
    M_0_005_OR_IN_0_5 = 2
    M_0_001_OR_IN_0_1 = 3

    def step(self, unit: WeightUnit) -> Decimal | None:
        """The scale's height resolution in the height unit of ``unit`` (None: not specified)."""
        steps = _HEIGHT_STEPS.get(self)
        return None if steps is None else steps[0 if unit == "kg" else 1]


_D = Decimal
# (kg, lb) and (m, in) steps of each resolution code, GSS 3.253
_WEIGHT_STEPS: dict[WeightResolution, tuple[Decimal, Decimal]] = {
    WeightResolution.KG_0_5_OR_LB_1: (_D("0.5"), _D("1")),
    WeightResolution.KG_0_2_OR_LB_0_5: (_D("0.2"), _D("0.5")),
    WeightResolution.KG_0_1_OR_LB_0_2: (_D("0.1"), _D("0.2")),
    WeightResolution.KG_0_05_OR_LB_0_1: (_D("0.05"), _D("0.1")),
    WeightResolution.KG_0_02_OR_LB_0_05: (_D("0.02"), _D("0.05")),
    WeightResolution.KG_0_01_OR_LB_0_02: (_D("0.01"), _D("0.02")),
    WeightResolution.KG_0_005_OR_LB_0_01: (_D("0.005"), _D("0.01")),
}
_HEIGHT_STEPS: dict[HeightResolution, tuple[Decimal, Decimal]] = {
    HeightResolution.M_0_01_OR_IN_1: (_D("0.01"), _D("1")),
    HeightResolution.M_0_005_OR_IN_0_5: (_D("0.005"), _D("0.5")),
    HeightResolution.M_0_001_OR_IN_0_1: (_D("0.001"), _D("0.1")),
}


@dataclass(frozen=True, slots=True)
class WeightScaleFeature:
    """What the scale supports; a resolution is a bare int for an RFU code."""

    time_stamp_supported: bool = False
    multiple_users_supported: bool = False
    bmi_supported: bool = False
    weight_resolution: WeightResolution | int = WeightResolution.NOT_SPECIFIED
    height_resolution: HeightResolution | int = HeightResolution.NOT_SPECIFIED


def parse_weight_scale_feature(data: bytes) -> WeightScaleFeature:
    r = Reader(data, WEIGHT_SCALE_FEATURE)
    raw = r.uint(4, "weight_scale_feature")  # bits 10..31 RFU: ignored
    r.end()
    weight_code, height_code = raw >> 3 & 0b1111, raw >> 7 & 0b111
    return WeightScaleFeature(
        time_stamp_supported=bool(raw & 1),
        multiple_users_supported=bool(raw & 2),
        bmi_supported=bool(raw & 4),
        weight_resolution=WeightResolution(weight_code)
        if weight_code <= WeightResolution.KG_0_005_OR_LB_0_01
        else weight_code,
        height_resolution=HeightResolution(height_code)
        if height_code <= HeightResolution.M_0_001_OR_IN_0_1
        else height_code,
    )


def _rfu_refused(code: int, known: type[IntEnum], what: str) -> int:
    if code not in {int(member) for member in known}:
        raise ValueError(f"{WEIGHT_SCALE_FEATURE}: {what} code {code} is RFU (GSS 3.253)")
    return code


def encode_weight_scale_feature(value: WeightScaleFeature) -> bytes:
    weight_code = _rfu_refused(value.weight_resolution, WeightResolution, "weight resolution")
    height_code = _rfu_refused(value.height_resolution, HeightResolution, "height resolution")
    raw = (
        int(value.time_stamp_supported)
        | int(value.multiple_users_supported) << 1
        | int(value.bmi_supported) << 2
        | weight_code << 3
        | height_code << 7
    )
    return Writer().uint(raw, 4).bytes()


CHARACTERISTICS: dict[int, tuple[str, Callable[[bytes], object], Callable[[Any], bytes]]] = {
    0x2A9D: (WEIGHT_MEASUREMENT, parse_weight_measurement, encode_weight_measurement),
    0x2A9E: (WEIGHT_SCALE_FEATURE, parse_weight_scale_feature, encode_weight_scale_feature),
}
