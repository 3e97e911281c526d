"""Weight Scale GATT codecs: public vectors, round trips, fuzz, truncation, precision."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ble.gatt.reader import GattParseError
from drivers.ble.gatt.weight import (
    CHARACTERISTICS,
    HeightResolution,
    WeightMeasurement,
    WeightResolution,
    WeightScaleFeature,
    WeightUnit,
    encode_weight_measurement,
    encode_weight_scale_feature,
    parse_weight_measurement,
    parse_weight_scale_feature,
)
from drivers.codec.ieee11073 import MedicalFloat, Special
from tests.gatt_checks import assert_every_prefix_refused

M = MedicalFloat
NAN = M(special=Special.NAN)
RONAN = "RonanB96/bluetooth-sig-python tests/gatt/characteristics/test_weight_measurement.py"

# RONAN test 1: 14000 x 0.005 kg = 70.000 kg
SI = bytes.fromhex("00 b036")
# RONAN test 2: imperial, 15700 x 0.01 lb = 157.00 lb
IMPERIAL = bytes.fromhex("01 543d")
# RONAN test 3: time stamp 2023-12-25 14:30:45
WITH_TIME = bytes.fromhex("02 b036 e707 0c 19 0e 1e 2d")
# RONAN test 6, flags 0x1F: that library reads bit 4 as "height present"; GSS 3.252 has bit 3
# "BMI and Height present" and bit 4 RFU, which gives the same fields: 157.00 lb, user 3,
# BMI 245 x 0.1 = 24.5, height 680 x 0.1 in = 68.0 in.
IMPERIAL_FULL = bytes.fromhex("1f 543d e707 0c 19 0e 1e 2d 03 f500 a802")
# Hand-computed: flags 0x0E (time stamp, user, BMI and height; SI), 13000 x 0.005 = 65.000 kg,
# 2025-12-31 23:59:58, user 2, BMI 212 -> 21.2, height 1755 x 0.001 = 1.755 m.
SI_FULL = bytes.fromhex("0e c832 e907 0c 1f 17 3b 3a 02 d400 db06")
# WSS 1.0: weight 0xFFFF is "Measurement Unsuccessful"; only time stamp and user may follow.
UNSUCCESSFUL = bytes.fromhex("06 ffff ea07 01 01 00 00 00 ff")


def test_ronan_vectors() -> None:
    assert parse_weight_measurement(SI) == WeightMeasurement("kg", M(70000, -3))
    assert parse_weight_measurement(IMPERIAL) == WeightMeasurement("[lb_av]", M(15700, -2))
    assert parse_weight_measurement(WITH_TIME) == WeightMeasurement(
        "kg", M(70000, -3), datetime(2023, 12, 25, 14, 30, 45)
    )
    m = parse_weight_measurement(IMPERIAL_FULL)
    assert m == WeightMeasurement(
        "[lb_av]", M(15700, -2), datetime(2023, 12, 25, 14, 30, 45), 3, M(245, -1), M(680, -1)
    )
    assert m.height_unit == "[in_i]"
    for vector in (SI, IMPERIAL, WITH_TIME):
        assert encode_weight_measurement(parse_weight_measurement(vector)) == vector


def test_ronan_height_without_bmi_is_trailing_bytes_under_gss() -> None:
    # RONAN test 5, flags 0x10 "height present": under GSS 3.252 bit 4 is RFU, so the two
    # bytes after the weight were announced by nothing.
    with pytest.raises(GattParseError) as exc:
        parse_weight_measurement(bytes.fromhex("10 b036 d606"))
    assert (exc.value.field, exc.value.offset) == ("end", 3)


def test_si_with_every_optional_field() -> None:
    value = WeightMeasurement(
        "kg", M(65000, -3), datetime(2025, 12, 31, 23, 59, 58), 2, M(212, -1), M(1755, -3)
    )
    assert parse_weight_measurement(SI_FULL) == value
    assert value.height_unit == "m"
    assert encode_weight_measurement(value) == SI_FULL


def test_measurement_unsuccessful_is_nan() -> None:
    m = parse_weight_measurement(UNSUCCESSFUL)
    assert m == WeightMeasurement("kg", NAN, datetime(2026, 1, 1), 0xFF)
    assert m.weight.value() is None
    assert encode_weight_measurement(m) == UNSUCCESSFUL


def test_bmi_after_unsuccessful_weight_is_refused() -> None:
    with pytest.raises(GattParseError) as exc:
        parse_weight_measurement(bytes.fromhex("08 ffff d400 db06"))
    assert (exc.value.field, exc.value.offset) == ("bmi", 3)
    with pytest.raises(ValueError, match="unsuccessful"):
        encode_weight_measurement(WeightMeasurement("kg", NAN, bmi=M(212, -1), height=M(1, 0)))


def test_resolution_steps_are_exact() -> None:
    # hand-computed: 1 x 0.005 kg, 2 x 0.005 kg, 0xFFFE x 0.005 kg = 327.670 kg, 1 x 0.01 lb
    assert str(parse_weight_measurement(bytes.fromhex("00 0100")).weight) == "0.005"
    assert str(parse_weight_measurement(bytes.fromhex("00 0200")).weight) == "0.010"
    assert str(parse_weight_measurement(bytes.fromhex("00 feff")).weight) == "327.670"
    assert str(parse_weight_measurement(bytes.fromhex("01 0100")).weight) == "0.01"
    # the encoder takes any exact multiple of the step, in any notation
    assert encode_weight_measurement(WeightMeasurement("kg", M(705, -1))) == bytes.fromhex(
        "00 1437"  # 70.5 / 0.005 = 14100 = 0x3714
    )
    with pytest.raises(ValueError, match=r"multiple of 0\.005"):
        encode_weight_measurement(WeightMeasurement("kg", M(70001, -3)))
    with pytest.raises(ValueError, match="outside"):
        encode_weight_measurement(WeightMeasurement("kg", M(32768, -2)))  # 65536 steps
    with pytest.raises(ValueError, match="outside"):
        encode_weight_measurement(WeightMeasurement("kg", M(-5, -3)))


def test_precision_is_kept() -> None:
    # The fixed-point fields keep their own resolution (hand-computed): 400 x 0.005 kg is
    # 2.000 kg, 200 x 0.01 lb is 2.00 lb, BMI 20 x 0.1 is 2.0 - never collapsed to 2 or a float.
    kg = parse_weight_measurement(bytes.fromhex("00 9001")).weight
    lb = parse_weight_measurement(bytes.fromhex("01 c800")).weight
    bmi = parse_weight_measurement(bytes.fromhex("08 9001 1400 0000")).bmi
    assert (str(kg), str(lb), str(bmi)) == ("2.000", "2.00", "2.0")
    assert lb == MedicalFloat.of("2.00") != MedicalFloat.of("2.0") == bmi
    assert kg.decimal() == lb.decimal() == Decimal(2)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # StanfordSpezi/SpeziBluetooth Tests/SpeziBluetoothServicesTests/WeightScaleTests.swift:
        # the option set of time stamp, multiple users and BMI support prints as 0x07
        ("07000000", WeightScaleFeature(True, True, True)),
        # same file: resolution20g (5), resolution10mm (1), bmi + multiple users; bytes ours:
        # 5 << 3 | 1 << 7 | 4 | 2 = 0xAE
        (
            "ae000000",
            WeightScaleFeature(
                False,
                True,
                True,
                WeightResolution.KG_0_02_OR_LB_0_05,
                HeightResolution.M_0_01_OR_IN_1,
            ),
        ),
        # hand-computed: 7 << 3 | 3 << 7 = 0x1B8, the finest resolutions
        (
            "b8010000",
            WeightScaleFeature(
                weight_resolution=WeightResolution.KG_0_005_OR_LB_0_01,
                height_resolution=HeightResolution.M_0_001_OR_IN_0_1,
            ),
        ),
        # hand-computed: bits 10..31 RFU are ignored
        ("00fcffff", WeightScaleFeature()),
        # hand-computed: RFU codes 8 (weight, 0x40) and 4 (height, 0x200) stay visible as ints
        ("40020000", WeightScaleFeature(weight_resolution=8, height_resolution=4)),
    ],
)
def test_weight_scale_feature_vectors(data: str, expected: WeightScaleFeature) -> None:
    parsed = parse_weight_scale_feature(bytes.fromhex(data))
    assert parsed == expected
    assert type(parsed.weight_resolution) is type(expected.weight_resolution)


def test_rfu_resolution_codes_are_not_sent() -> None:
    with pytest.raises(ValueError, match="RFU"):
        encode_weight_scale_feature(WeightScaleFeature(weight_resolution=8))
    with pytest.raises(ValueError, match="RFU"):
        encode_weight_scale_feature(WeightScaleFeature(height_resolution=4))


def test_resolution_steps() -> None:
    assert WeightResolution.KG_0_1_OR_LB_0_2.step("kg") == Decimal("0.1")
    assert WeightResolution.KG_0_1_OR_LB_0_2.step("[lb_av]") == Decimal("0.2")
    assert WeightResolution.NOT_SPECIFIED.step("kg") is None
    assert HeightResolution.M_0_005_OR_IN_0_5.step("[lb_av]") == Decimal("0.5")


FIELDS = {
    "flags", "weight", "time_stamp", "time_stamp.year", "time_stamp.month", "time_stamp.day",
    "time_stamp.hours", "time_stamp.minutes", "time_stamp.seconds", "user_id", "bmi", "height",
    "weight_scale_feature",
}  # fmt: skip


@pytest.mark.parametrize(
    ("parse", "full"),
    [
        (parse_weight_measurement, SI_FULL),
        (parse_weight_measurement, IMPERIAL_FULL),
        (parse_weight_measurement, UNSUCCESSFUL),
        (parse_weight_scale_feature, bytes.fromhex("ae000000")),
    ],
)
def test_every_strict_prefix_is_refused_with_field_and_offset(
    parse: Callable[[bytes], object], full: bytes
) -> None:
    assert_every_prefix_refused(parse, full, FIELDS)


# --------------------------------------------------------------------------- properties

UNITS: tuple[WeightUnit, ...] = ("kg", "[lb_av]")
time_stamps = st.none() | st.datetimes(datetime(1582, 1, 1), datetime(9999, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


@st.composite
def weight_measurements(draw: st.DrawFn) -> WeightMeasurement:
    unit = draw(st.sampled_from(UNITS))
    height_exponent = -3 if unit == "kg" else -1
    successful = draw(st.booleans())
    if successful:
        raw = draw(st.integers(0, 0xFFFE))
        weight = M(raw * 5, -3) if unit == "kg" else M(raw, -2)
    else:
        weight = NAN
    with_bmi = successful and draw(st.booleans())
    return WeightMeasurement(
        unit,
        weight,
        draw(time_stamps),
        draw(st.none() | st.integers(0, 255)),
        M(draw(st.integers(0, 0xFFFF)), -1) if with_bmi else None,
        M(draw(st.integers(0, 0xFFFF)), height_exponent) if with_bmi else None,
    )


@given(weight_measurements())
def test_measurement_round_trip(value: WeightMeasurement) -> None:
    assert parse_weight_measurement(encode_weight_measurement(value)) == value


@given(
    st.builds(
        WeightScaleFeature,
        st.booleans(),
        st.booleans(),
        st.booleans(),
        st.sampled_from(WeightResolution),
        st.sampled_from(HeightResolution),
    )
)
def test_feature_round_trip(value: WeightScaleFeature) -> None:
    assert parse_weight_scale_feature(encode_weight_scale_feature(value)) == value


def test_registry() -> None:
    assert {uuid: name for uuid, (name, _, _) in CHARACTERISTICS.items()} == {
        0x2A9D: "Weight Measurement",
        0x2A9E: "Weight Scale Feature",
    }
    _, parse, encode = CHARACTERISTICS[0x2A9D]
    assert encode(parse(SI_FULL)) == SI_FULL
