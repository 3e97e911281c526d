"""PLX Spot-check, Continuous and Features: public vectors, reserved values, properties."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ble.gatt.plx import (
    CHARACTERISTICS,
    DeviceSensorStatus,
    MeasurementStatus,
    PlxContinuous,
    PlxFeature,
    PlxFeatures,
    PlxSpotCheck,
    Spo2Pr,
    encode_plx_continuous,
    encode_plx_features,
    encode_plx_spot_check,
    parse_plx_continuous,
    parse_plx_features,
    parse_plx_spot_check,
)
from drivers.ble.gatt.reader import GattParseError
from drivers.codec.ieee11073 import MedicalFloat, Special
from tests.gatt_checks import assert_every_prefix_refused

MS = MeasurementStatus
DS = DeviceSensorStatus
NAN = MedicalFloat(special=Special.NAN)

# --------------------------------------------------------------------------- vectors
# StanfordSpezi/SpeziBluetooth, Tests/SpeziBluetoothServicesTests/PLXTests.swift (SFLOAT words
# checked by hand: 0xF3E8 = exponent -1, mantissa 0x3E8 = 1000 -> 100.0; 0xE37A = 890e-2 -> 8.90).

# testVerySimpleMeasurementCoding: Spezi writes 100 % / 90 bpm as 1000e-1 / 900e-1 ...
SPEZI_VERY_SIMPLE_ENCODED = bytes([0, 232, 243, 132, 243])
# ... and reads the integer words 100 / 90 back as the same quantities
SPEZI_VERY_SIMPLE_PARSED = bytes([0, 100, 0, 90, 0])
# testSimpleMeasurementCoding: flags 28 (status, device status, PAI), 95 %, 90 bpm, "measurement
# ongoing", no device status bit, PAI 87e-1 %
SPEZI_SIMPLE = bytes([28, 95, 0, 90, 0, 32, 0, 0, 0, 0, 87, 240])
SPEZI_SIMPLE_VALUE = PlxContinuous(
    MedicalFloat(95, 0),
    MedicalFloat(90, 0),
    measurement_status=frozenset({MS.MEASUREMENT_ONGOING}),
    device_sensor_status=frozenset(),
    pulse_amplitude_index=MedicalFloat(87, -1),
)
# testFullMeasurementCoding: every field, normal 99/97, fast 97/137, slow 98/69
SPEZI_FULL = bytes(
    [31, 222, 243, 202, 243, 202, 243, 90, 245, 212, 243, 178, 242, 32, 1, 0, 0, 0, 122, 227]
)
SPEZI_FULL_VALUE = PlxContinuous(
    MedicalFloat(990, -1),
    MedicalFloat(970, -1),
    fast=Spo2Pr(MedicalFloat(970, -1), MedicalFloat(1370, -1)),
    slow=Spo2Pr(MedicalFloat(980, -1), MedicalFloat(690, -1)),
    measurement_status=frozenset({MS.MEASUREMENT_ONGOING, MS.FULLY_QUALIFIED_DATA}),
    device_sensor_status=frozenset(),
    pulse_amplitude_index=MedicalFloat(890, -2),
)
# testSpotCheckMeasurementCoding: 94 %, 147 bpm, 2024-11-29 23:08:57, two status bits of each kind
SPEZI_SPOT_CHECK = bytes(
    [15, 172, 243, 190, 245, 232, 7, 11, 29, 23, 8, 57, 32, 64, 34, 0, 0, 102, 227]
)
SPEZI_SPOT_CHECK_VALUE = PlxSpotCheck(
    MedicalFloat(940, -1),
    MedicalFloat(1470, -1),
    datetime(2024, 11, 29, 23, 8, 57),
    frozenset({MS.MEASUREMENT_ONGOING, MS.QUESTIONABLE_MEASUREMENT_DETECTED}),
    frozenset({DS.EQUIPMENT_MALFUNCTION_DETECTED, DS.LOW_PERFUSION_DETECTED}),
    MedicalFloat(870, -2),
)
# testPLXFeaturesCoding: features 0x00A3, status support 0x1040, device status support 0x000180
SPEZI_FEATURES = bytes([163, 0, 64, 16, 128, 1, 0])
SPEZI_FEATURES_VALUE = PlxFeatures(
    frozenset(
        {
            PlxFeature.MEASUREMENT_STATUS,
            PlxFeature.DEVICE_AND_SENSOR_STATUS,
            PlxFeature.SPO2PR_SLOW,
            PlxFeature.MULTIPLE_BONDS,
        }
    ),
    frozenset({MS.CALIBRATION_ONGOING, MS.EARLY_ESTIMATED_DATA}),
    frozenset({DS.NONPULSATILE_SIGNAL_DETECTED, DS.QUESTIONABLE_PULSE_DETECTED}),
)

# Hand-computed, PLXS 3.1.1.2 / 5.1: SpO2 and PR unavailable are NaN (0x07FF); flags 0x10 =
# Device Clock is Not Set, no optional field.
HAND_NAN_SPOT_CHECK = bytes([0x10, 0xFF, 0x07, 0xFF, 0x07])
# Hand-computed: flags 0xEC = RFU bits 5..7 + status (bit 2) + device status (bit 3); SpO2 +INF
# (0x07FE), PR -INF (0x0802); Measurement Status 0x201F = RFU bits 0..4 + bit 13 (measurement
# unavailable); Device and Sensor Status 0xFF8000 = RFU bits 16..23 + bit 15 (sensor disconnected).
HAND_RFU_CONTINUOUS = bytes([0xEC, 0xFE, 0x07, 0x02, 0x08, 0x1F, 0x20, 0x00, 0x80, 0xFF])


def test_spezi_very_simple_continuous() -> None:
    ours = PlxContinuous(MedicalFloat(1000, -1), MedicalFloat(900, -1))
    assert encode_plx_continuous(ours) == SPEZI_VERY_SIMPLE_ENCODED
    parsed = parse_plx_continuous(SPEZI_VERY_SIMPLE_PARSED)
    assert parsed == PlxContinuous(MedicalFloat(100, 0), MedicalFloat(90, 0))
    # same quantity, different stated resolution: kept apart, as the codec keeps precision
    assert parsed.spo2.decimal() == ours.spo2.decimal()
    assert parsed != ours


@pytest.mark.parametrize(
    ("parse", "encode", "data", "value"),
    [
        (parse_plx_continuous, encode_plx_continuous, SPEZI_SIMPLE, SPEZI_SIMPLE_VALUE),
        (parse_plx_continuous, encode_plx_continuous, SPEZI_FULL, SPEZI_FULL_VALUE),
        (parse_plx_spot_check, encode_plx_spot_check, SPEZI_SPOT_CHECK, SPEZI_SPOT_CHECK_VALUE),
        (parse_plx_features, encode_plx_features, SPEZI_FEATURES, SPEZI_FEATURES_VALUE),
        (
            parse_plx_spot_check,
            encode_plx_spot_check,
            HAND_NAN_SPOT_CHECK,
            PlxSpotCheck(NAN, NAN, device_clock_not_set=True),
        ),
    ],
    ids=["spezi-simple", "spezi-full", "spezi-spot-check", "spezi-features", "nan"],
)
def test_vectors_both_ways(
    parse: Callable[[bytes], object], encode: Callable[[Any], bytes], data: bytes, value: object
) -> None:
    assert parse(data) == value
    assert encode(value) == data


def test_rfu_bits_are_ignored() -> None:
    value = parse_plx_continuous(HAND_RFU_CONTINUOUS)
    assert value == PlxContinuous(
        MedicalFloat(special=Special.POSITIVE_INFINITY),
        MedicalFloat(special=Special.NEGATIVE_INFINITY),
        measurement_status=frozenset({MS.MEASUREMENT_UNAVAILABLE}),
        device_sensor_status=frozenset({DS.SENSOR_DISCONNECTED}),
    )
    assert encode_plx_continuous(value) == bytes(
        [0x0C, 0xFE, 0x07, 0x02, 0x08, 0, 0x20, 0, 0x80, 0]
    )
    # hand-computed: Supported Features 0xFF0C = RFU bits 8..15 + storage (2) + timestamp (3)
    features = parse_plx_features(bytes([0x0C, 0xFF]))
    assert features == PlxFeatures(
        frozenset({PlxFeature.SPOT_CHECK_STORAGE, PlxFeature.SPOT_CHECK_TIMESTAMP})
    )


def test_timestamp_present_but_not_known_reads_as_none() -> None:
    # hand-computed: flags 0x01, 98 % (0x0062), 72 bpm (0x0048), Date Time all zero
    value = parse_plx_spot_check(bytes([0x01, 0x62, 0, 0x48, 0]) + bytes(7))
    assert value == PlxSpotCheck(MedicalFloat(98, 0), MedicalFloat(72, 0))


@pytest.mark.parametrize(
    ("parse", "data", "field", "offset"),
    [
        (parse_plx_spot_check, bytes([0, 0x01, 0x08, 0, 0]), "spo2", 1),  # reserved SFLOAT
        (parse_plx_spot_check, bytes([0, 0x62, 0, 0x01, 0x08]), "pulse_rate", 3),
        (
            parse_plx_spot_check,
            bytes([1, 0x62, 0, 0x48, 0, 0xE8, 7, 13, 1, 0, 0, 0]),
            "timestamp",
            5,
        ),
        (
            parse_plx_spot_check,
            bytes([1, 0x62, 0, 0x48, 0, 0xE8, 3, 1, 1, 0, 0, 0]),
            "timestamp.year",
            5,
        ),
        (parse_plx_spot_check, bytes([0, 0x62, 0, 0x48, 0, 0]), "end", 5),
        (parse_plx_continuous, bytes([0x01, 0x62, 0, 0x48, 0]), "fast.spo2", 5),
        (
            parse_plx_continuous,
            bytes([0x10, 0x62, 0, 0x48, 0, 0x01, 0x08]),
            "pulse_amplitude_index",
            5,
        ),
        (parse_plx_features, bytes([0x01, 0x00]), "measurement_status_support", 2),
        (parse_plx_features, bytes([0x02, 0x00, 0, 0]), "device_sensor_status_support", 2),
    ],
)
def test_faults_name_field_and_offset(
    parse: Callable[[bytes], object], data: bytes, field: str, offset: int
) -> None:
    with pytest.raises(GattParseError) as caught:
        parse(data)
    assert (caught.value.field, caught.value.offset) == (field, offset)


def test_values_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="MEASUREMENT_STATUS"):
        PlxFeatures(frozenset({PlxFeature.MEASUREMENT_STATUS}))
    with pytest.raises(ValueError, match="DEVICE_AND_SENSOR_STATUS"):
        PlxFeatures(frozenset(), device_sensor_status_support=frozenset())
    with pytest.raises(ValueError, match="timestamp"):
        PlxSpotCheck(NAN, NAN, datetime(1500, 1, 1))


# --------------------------------------------------------------------------- properties

sfloats = st.one_of(
    st.builds(MedicalFloat, st.integers(-2045, 2045), st.integers(-8, 7)),
    st.sampled_from([MedicalFloat(special=s) for s in Special]),
)
timestamps = st.none() | st.datetimes(datetime(1582, 1, 1), datetime(9999, 12, 31, 23, 59, 59)).map(
    lambda d: d.replace(microsecond=0)
)
measurement_statuses = st.none() | st.frozensets(st.sampled_from(MeasurementStatus))
device_statuses = st.none() | st.frozensets(st.sampled_from(DeviceSensorStatus))
pairs = st.none() | st.builds(Spo2Pr, sfloats, sfloats)
spot_checks = st.builds(
    PlxSpotCheck,
    sfloats,
    sfloats,
    timestamps,
    measurement_statuses,
    device_statuses,
    st.none() | sfloats,
    st.booleans(),
)
continuous = st.builds(
    PlxContinuous,
    sfloats,
    sfloats,
    pairs,
    pairs,
    measurement_statuses,
    device_statuses,
    st.none() | sfloats,
)


@st.composite
def features(draw: st.DrawFn) -> PlxFeatures:
    supported = draw(st.frozensets(st.sampled_from(PlxFeature)))
    ms = device = None
    if PlxFeature.MEASUREMENT_STATUS in supported:
        ms = draw(st.frozensets(st.sampled_from(MeasurementStatus)))
    if PlxFeature.DEVICE_AND_SENSOR_STATUS in supported:
        device = draw(st.frozensets(st.sampled_from(DeviceSensorStatus)))
    return PlxFeatures(supported, ms, device)


@given(spot_checks)
def test_spot_check_round_trip(value: PlxSpotCheck) -> None:
    assert parse_plx_spot_check(encode_plx_spot_check(value)) == value


@given(continuous)
def test_continuous_round_trip(value: PlxContinuous) -> None:
    assert parse_plx_continuous(encode_plx_continuous(value)) == value


@given(features())
def test_features_round_trip(value: PlxFeatures) -> None:
    assert parse_plx_features(encode_plx_features(value)) == value


@pytest.mark.parametrize(
    ("parse", "full"),
    [
        (parse_plx_spot_check, SPEZI_SPOT_CHECK),
        (parse_plx_continuous, SPEZI_FULL),
        (parse_plx_features, SPEZI_FEATURES),
    ],
)
def test_every_strict_prefix_is_truncated(parse: Callable[[bytes], object], full: bytes) -> None:
    assert_every_prefix_refused(parse, full, reason="truncated")


def test_characteristics_table() -> None:
    assert {uuid: entry[0] for uuid, entry in CHARACTERISTICS.items()} == {
        0x2A5E: "PLX Spot-check Measurement",
        0x2A5F: "PLX Continuous Measurement",
        0x2A60: "PLX Features",
    }
    assert CHARACTERISTICS[0x2A5E][1:] == (parse_plx_spot_check, encode_plx_spot_check)
