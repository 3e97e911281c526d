"""Blood pressure GATT codecs: public vectors, round trips, fuzz, truncation, precision."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ble.gatt.bp import (
    CHARACTERISTICS,
    UNKNOWN_USER,
    BloodPressureFeature,
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    MeasurementStatus,
    PulseRateRange,
    encode_blood_pressure_feature,
    encode_blood_pressure_measurement,
    encode_intermediate_cuff_pressure,
    parse_blood_pressure_feature,
    parse_blood_pressure_measurement,
    parse_intermediate_cuff_pressure,
)
from drivers.ble.gatt.reader import GattParseError
from drivers.codec.ieee11073 import MedicalFloat, Special
from tests.gatt_checks import assert_every_prefix_refused

M = MedicalFloat
NAN, NRES = M(special=Special.NAN), M(special=Special.NRES)
PINF, NINF = M(special=Special.POSITIVE_INFINITY), M(special=Special.NEGATIVE_INFINITY)

NORDIC = "NordicSemiconductor/Android-BLE-Common-Library"
NORDIC_BPM = "ble-common/src/test/java/no/nordicsemi/android/ble/common/callback/bps/"

# NORDIC, NORDIC_BPM + BloodPressureMeasurementDataCallbackTest.java, _full: all fields, mmHg.
# The time stamp has year 0 ("not known"): Nordic keeps month/day/time, we give None (clock.py).
BPM_FULL = bytes.fromhex("1e 8a00 5800 7800 0000 04 11 14 29 3b 3c00 01 2700")
# same file, _some: kPa, SFLOAT 0xF0BD = 189e-1, pulse rate and status 0b010010
BPM_KPA = bytes.fromhex("15 bdf0 0b00 9ff0 3c00 1200")
# same file, _minimal: flags 0, mmHg
BPM_MINIMAL = bytes.fromhex("00 bdf0 0b00 9ff0")
# Hand-computed: flags 0x1F (kPa + all fields); systolic NaN 0x07FF, diastolic NRes 0x0800,
# MAP +INF 0x07FE, time stamp 2024-06-20 16:45:10 (0x07E8 06 14 10 2D 0A), pulse rate -INF
# 0x0802, user 0xFF (unknown), status 0x002D = body movement (bit 0) + irregular pulse (bit 2)
# + range 1 "exceeds upper limit" (bits 3..4 = 0b01 -> 0x08) + improper position (bit 5, 0x20).
BPM_SPECIALS = bytes.fromhex("1f ff07 0008 fe07 e807 06 14 10 2d 0a 0208 ff 2d00")

# NORDIC, NORDIC_BPM + IntermediateCuffPressureDataCallbackTest.java: _full, _some, _minimal.
# Their unused diastolic / MAP fields hold 0x0000, not the NaN GSS 3.126 asks for.
ICP_FULL = bytes.fromhex("1e 0400 0000 0000 0000 04 11 14 29 3b 3c00 01 2700")
ICP_KPA = bytes.fromhex("15 6ff0 0000 0000 3c00 1200")
ICP_MINIMAL = bytes.fromhex("00 d7f0 0000 0000")

ALL_OF_STATUS_0x27 = MeasurementStatus(
    body_movement=True, cuff_too_loose=True, irregular_pulse=True, improper_position=True
)
KPA_STATUS = MeasurementStatus(
    cuff_too_loose=True, pulse_rate_range=PulseRateRange.BELOW_LOWER_LIMIT
)


def test_nordic_full_measurement() -> None:
    assert parse_blood_pressure_measurement(BPM_FULL) == BloodPressureMeasurement(
        unit="mm[Hg]",
        systolic=M(138, 0),
        diastolic=M(88, 0),
        mean_arterial_pressure=M(120, 0),
        time_stamp=None,
        pulse_rate=M(60, 0),
        user_id=1,
        measurement_status=ALL_OF_STATUS_0x27,
    )


def test_nordic_kpa_measurement() -> None:
    m = parse_blood_pressure_measurement(BPM_KPA)
    assert (m.unit, m.systolic, m.diastolic, m.mean_arterial_pressure) == (
        "kPa",
        M(189, -1),
        M(11, 0),
        M(159, -1),
    )
    assert (m.time_stamp, m.pulse_rate, m.user_id) == (None, M(60, 0), None)
    assert m.measurement_status == KPA_STATUS
    assert encode_blood_pressure_measurement(m) == BPM_KPA


def test_nordic_minimal_measurement_round_trips_byte_exact() -> None:
    m = parse_blood_pressure_measurement(BPM_MINIMAL)
    assert m == BloodPressureMeasurement("mm[Hg]", M(189, -1), M(11, 0), M(159, -1))
    assert encode_blood_pressure_measurement(m) == BPM_MINIMAL


def test_special_values_every_optional_field_and_several_status_bits() -> None:
    m = parse_blood_pressure_measurement(BPM_SPECIALS)
    assert m == BloodPressureMeasurement(
        unit="kPa",
        systolic=NAN,
        diastolic=NRES,
        mean_arterial_pressure=PINF,
        time_stamp=datetime(2024, 6, 20, 16, 45, 10),
        pulse_rate=NINF,
        user_id=UNKNOWN_USER,
        measurement_status=MeasurementStatus(
            body_movement=True,
            irregular_pulse=True,
            pulse_rate_range=PulseRateRange.EXCEEDS_UPPER_LIMIT,
            improper_position=True,
        ),
    )
    assert not m.systolic.is_number
    assert encode_blood_pressure_measurement(m) == BPM_SPECIALS


def test_exponent_nibble_8_is_minus_8() -> None:
    # RonanB96/bluetooth-sig-python tests/gatt/characteristics/test_blood_pressure_measurement.py
    # labels the bytes 78 80 "120 mmHg". IEEE 11073-20601 F.8: word 0x8078 has exponent nibble
    # 0x8 = -8 and mantissa 0x078 = 120, so it is 120e-8; we keep the standard's reading.
    m = parse_blood_pressure_measurement(bytes.fromhex("00 7880 5080 5a80"))
    assert (m.systolic, m.diastolic, m.mean_arterial_pressure) == (
        M(120, -8),
        M(80, -8),
        M(90, -8),
    )


def test_rfu_bits_are_ignored() -> None:
    # Hand-made from BPM_MINIMAL: flags 0xE0 (bits 5..7 RFU) and, with bit 4, status 0xFFC0
    # (bits 6..15 RFU) decode as if those bits were 0 (Core Spec Vol 1 Part E, RFU).
    assert parse_blood_pressure_measurement(b"\xe0" + BPM_MINIMAL[1:]) == (
        parse_blood_pressure_measurement(BPM_MINIMAL)
    )
    m = parse_blood_pressure_measurement(b"\xf0" + BPM_MINIMAL[1:] + b"\xc0\xff")
    assert m.measurement_status == MeasurementStatus()


def test_reserved_pulse_rate_range_is_kept_visible_and_never_sent() -> None:
    # Hand-made: status 0x0018 puts 0b11 in bits 3..4, the RFU code of Pulse Rate Range
    m = parse_blood_pressure_measurement(b"\x10" + BPM_MINIMAL[1:] + b"\x18\x00")
    assert m.measurement_status == MeasurementStatus(pulse_rate_range=PulseRateRange.RESERVED)
    with pytest.raises(ValueError, match="reserved"):
        encode_blood_pressure_measurement(m)


def test_intermediate_cuff_pressure_nordic_vectors() -> None:
    assert parse_intermediate_cuff_pressure(ICP_FULL) == IntermediateCuffPressure(
        "mm[Hg]", M(4, 0), None, M(60, 0), 1, ALL_OF_STATUS_0x27
    )
    assert parse_intermediate_cuff_pressure(ICP_KPA) == IntermediateCuffPressure(
        "kPa", M(111, -1), pulse_rate=M(60, 0), measurement_status=KPA_STATUS
    )
    assert parse_intermediate_cuff_pressure(ICP_MINIMAL) == IntermediateCuffPressure(
        "mm[Hg]", M(215, -1)
    )


def test_intermediate_cuff_pressure_writes_nan_in_unused_fields() -> None:
    # GSS 3.126: diastolic and MAP "not used", set to NaN (0x07FF, little-endian ff 07)
    value = IntermediateCuffPressure("mm[Hg]", M(215, -1))
    assert encode_intermediate_cuff_pressure(value) == bytes.fromhex("00 d7f0 ff07 ff07")
    # unused fields are not decoded: even the reserved SFLOAT 0x0801 there is no error
    assert parse_intermediate_cuff_pressure(bytes.fromhex("00 d7f0 0108 0108")) == value


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # RonanB96/bluetooth-sig-python tests/gatt/characteristics/test_blood_pressure_feature.py
        ("0000", BloodPressureFeature()),
        ("3f00", BloodPressureFeature(True, True, True, True, True, True)),
        ("0100", BloodPressureFeature(body_movement_detection=True)),
        ("ff01", BloodPressureFeature(*[True] * 9)),
        # hand-made: bits 9..15 are RFU and ignored
        ("00fe", BloodPressureFeature()),
    ],
)
def test_blood_pressure_feature_vectors(data: str, expected: BloodPressureFeature) -> None:
    assert parse_blood_pressure_feature(bytes.fromhex(data)) == expected


def test_errors_name_field_and_offset() -> None:
    with pytest.raises(GattParseError) as exc:  # reserved SFLOAT 0x0801 as diastolic
        parse_blood_pressure_measurement(bytes.fromhex("00 7800 0108 5a00"))
    assert (exc.value.field, exc.value.offset) == ("diastolic", 3)
    with pytest.raises(GattParseError) as exc:  # Nordic's _noTimestamp: flag set, no bytes
        parse_blood_pressure_measurement(bytes([3, 2, 3, 4, 5, 6, 7]))
    assert (exc.value.field, exc.value.offset) == ("time_stamp.year", 7)
    with pytest.raises(GattParseError) as exc:  # trailing byte no flag announced
        parse_blood_pressure_measurement(BPM_MINIMAL + b"\x00")
    assert (exc.value.field, exc.value.offset) == ("end", 7)
    with pytest.raises(GattParseError) as exc:  # 2023-02-30 is no date
        parse_blood_pressure_measurement(
            b"\x02" + BPM_MINIMAL[1:] + bytes.fromhex("e707021e000000")
        )
    assert (exc.value.field, exc.value.offset) == ("time_stamp", 7)


def test_precision_is_kept() -> None:
    # SFLOAT 2.0 = 20e-1 = 0xF014 and 2.00 = 200e-2 = 0xE0C8 (hand-computed)
    a = parse_blood_pressure_measurement(bytes.fromhex("01 14f0 14f0 14f0"))
    b = parse_blood_pressure_measurement(bytes.fromhex("01 c8e0 c8e0 c8e0"))
    assert a.systolic == MedicalFloat.of("2.0") != b.systolic == MedicalFloat.of("2.00")
    assert (str(a.systolic), str(b.systolic)) == ("2.0", "2.00")


FIELDS = {
    "flags", "systolic", "diastolic", "mean_arterial_pressure", "current_cuff_pressure",
    "time_stamp", "time_stamp.year", "time_stamp.month", "time_stamp.day", "time_stamp.hours",
    "time_stamp.minutes", "time_stamp.seconds", "pulse_rate", "user_id", "measurement_status",
    "blood_pressure_feature",
}  # fmt: skip


@pytest.mark.parametrize(
    ("parse", "full"),
    [
        (parse_blood_pressure_measurement, BPM_SPECIALS),
        (parse_blood_pressure_measurement, BPM_FULL),
        (parse_intermediate_cuff_pressure, ICP_FULL),
        (parse_blood_pressure_feature, bytes.fromhex("ff01")),
    ],
)
def test_every_strict_prefix_is_refused_with_field_and_offset(
    parse: Callable[[bytes], object], full: bytes
) -> None:
    assert_every_prefix_refused(parse, full, FIELDS)


# --------------------------------------------------------------------------- properties

sfloats = st.one_of(
    st.builds(MedicalFloat, st.integers(-2045, 2045), st.integers(-8, 7)),
    st.sampled_from([NAN, NRES, PINF, NINF]),
)
time_stamps = st.none() | st.datetimes(datetime(1582, 1, 1), datetime(9999, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
ranges = st.sampled_from([r for r in PulseRateRange if r is not PulseRateRange.RESERVED])
statuses = st.builds(MeasurementStatus, *[st.booleans()] * 3, ranges, st.booleans())
units = st.sampled_from(["mm[Hg]", "kPa"])
optional = {  # the fields after the compound value, alike in 0x2A35 and 0x2A36
    "time_stamp": time_stamps,
    "pulse_rate": st.none() | sfloats,
    "user_id": st.none() | st.integers(0, 255),
    "measurement_status": st.none() | statuses,
}


@given(st.builds(BloodPressureMeasurement, units, sfloats, sfloats, sfloats, **optional))
def test_measurement_round_trip(value: BloodPressureMeasurement) -> None:
    assert parse_blood_pressure_measurement(encode_blood_pressure_measurement(value)) == value


@given(st.builds(IntermediateCuffPressure, units, sfloats, **optional))
def test_intermediate_cuff_pressure_round_trip(value: IntermediateCuffPressure) -> None:
    assert parse_intermediate_cuff_pressure(encode_intermediate_cuff_pressure(value)) == value


@given(st.builds(BloodPressureFeature, *[st.booleans()] * 9))
def test_feature_round_trip(value: BloodPressureFeature) -> None:
    assert parse_blood_pressure_feature(encode_blood_pressure_feature(value)) == value


def test_registry() -> None:
    assert {uuid: name for uuid, (name, _, _) in CHARACTERISTICS.items()} == {
        0x2A35: "Blood Pressure Measurement",
        0x2A36: "Intermediate Cuff Pressure",
        0x2A49: "Blood Pressure Feature",
    }
    _, parse, encode = CHARACTERISTICS[0x2A35]
    assert encode(parse(BPM_KPA)) == BPM_KPA
