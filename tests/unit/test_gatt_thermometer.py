"""Temperature Measurement codec: public vectors, round trips, fuzz, truncation, precision."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ble.gatt.reader import GattParseError
from drivers.ble.gatt.thermometer import (
    CHARACTERISTICS,
    TemperatureMeasurement,
    TemperatureType,
    encode_temperature_measurement,
    parse_temperature_measurement,
)
from drivers.codec.ieee11073 import MedicalFloat, Special
from tests.gatt_checks import assert_every_prefix_refused

M = MedicalFloat

# NordicSemiconductor/Android-BLE-Common-Library, ble-common/src/test/java/no/nordicsemi/android/
# ble/common/callback/ht/TemperatureMeasurementDataCallbackTest.java: flags 0x06 (time stamp and
# type, Celsius), FLOAT 0xFE000EB0 = 3760e-2, 2012-12-05 11:50:27, type 4 (finger).
NORDIC = bytes.fromhex("06 b00e00fe dc07 0c 05 0b 32 1b 04")
# zephyrproject-rtos/zephyr samples/bluetooth/peripheral_ht/src/hts.c: htm[0] = 0 (Celsius),
# mantissa = temperature, exponent 0; its first indication after 20 is 21 degrees.
ZEPHYR = bytes.fromhex("00 15000000")
# Hand-computed: flags 0x07 (Fahrenheit + time stamp + type), 98.6 = 986e-1: mantissa 0x0003DA,
# exponent -1 = 0xFF, little-endian da 03 00 ff; 2026-01-02 03:04:05; type 6 (mouth).
FAHRENHEIT_FULL = bytes.fromhex("07 da0300ff ea07 01 02 03 04 05 06")
# Hand-computed from IEEE 11073-20601 F.8: FLOAT NaN is the raw word 0x007FFFFF.
NAN_VALUE = bytes.fromhex("00 ffff7f00")


def test_nordic_vector() -> None:
    assert parse_temperature_measurement(NORDIC) == TemperatureMeasurement(
        "Cel", M(3760, -2), datetime(2012, 12, 5, 11, 50, 27), TemperatureType.FINGER
    )
    assert encode_temperature_measurement(parse_temperature_measurement(NORDIC)) == NORDIC


def test_zephyr_vector() -> None:
    assert parse_temperature_measurement(ZEPHYR) == TemperatureMeasurement("Cel", M(21, 0))
    assert encode_temperature_measurement(TemperatureMeasurement("Cel", M(21, 0))) == ZEPHYR


def test_fahrenheit_with_every_optional_field() -> None:
    value = TemperatureMeasurement(
        "[degF]", M(986, -1), datetime(2026, 1, 2, 3, 4, 5), TemperatureType.MOUTH
    )
    assert parse_temperature_measurement(FAHRENHEIT_FULL) == value
    assert encode_temperature_measurement(value) == FAHRENHEIT_FULL


@pytest.mark.parametrize(
    ("raw", "special"),
    [  # IEEE 11073-20601 F.8 special FLOAT words, little-endian
        ("ffff7f00", Special.NAN),
        ("00008000", Special.NRES),
        ("feff7f00", Special.POSITIVE_INFINITY),
        ("02008000", Special.NEGATIVE_INFINITY),
    ],
)
def test_special_values(raw: str, special: Special) -> None:
    m = parse_temperature_measurement(bytes.fromhex("00" + raw))
    assert m.temperature == MedicalFloat(special=special)
    assert m.temperature.value() is None


def test_reserved_float_names_field_and_offset() -> None:
    with pytest.raises(GattParseError) as exc:  # 0x00800001 is the reserved FLOAT
        parse_temperature_measurement(bytes.fromhex("00 01008000"))
    assert (exc.value.field, exc.value.offset) == ("temperature", 1)


def test_rfu_flag_bits_ignored_and_rfu_type_kept_visible() -> None:
    # hand-made: flags 0xF8 (bits 3..7 RFU) change nothing
    assert parse_temperature_measurement(b"\xf8" + ZEPHYR[1:]) == TemperatureMeasurement(
        "Cel", M(21, 0)
    )
    # GSS 3.219: types 0 and 10..255 are RFU; kept as the bare int, never sent
    for code in (0, 10, 255):
        m = parse_temperature_measurement(b"\x04" + ZEPHYR[1:] + bytes([code]))
        assert m.temperature_type == code
        assert not isinstance(m.temperature_type, TemperatureType)
        with pytest.raises(ValueError, match="reserved"):
            encode_temperature_measurement(m)


def test_not_known_time_stamp_is_none_and_impossible_one_refused() -> None:
    zero = bytes(7)
    assert parse_temperature_measurement(b"\x02" + ZEPHYR[1:] + zero).time_stamp is None
    with pytest.raises(GattParseError) as exc:  # hour 24
        parse_temperature_measurement(b"\x02" + ZEPHYR[1:] + bytes.fromhex("ea07010218 0000"))
    assert (exc.value.field, exc.value.offset) == ("time_stamp", 5)
    with pytest.raises(GattParseError) as exc:  # year 1000: before the Gregorian 1582
        parse_temperature_measurement(b"\x02" + ZEPHYR[1:] + bytes.fromhex("e803010100 0000"))
    assert (exc.value.field, exc.value.offset) == ("time_stamp.year", 5)


def test_trailing_bytes_refused() -> None:
    # Nordic's onInvalidDataReceived drops the type byte; the reverse, an extra byte, is ours
    with pytest.raises(GattParseError) as exc:
        parse_temperature_measurement(ZEPHYR + b"\x04")
    assert (exc.value.field, exc.value.offset) == ("end", 5)


def test_encoder_refuses_what_a_sender_must_not_send() -> None:
    with pytest.raises(ValueError, match="FLOAT"):
        encode_temperature_measurement(TemperatureMeasurement("Cel", M(1 << 23, 0)))
    aware = datetime.fromisoformat("2026-01-02T03:04:05+01:00")
    with pytest.raises(ValueError, match="time zone"):
        encode_temperature_measurement(TemperatureMeasurement("Cel", M(21, 0), aware))


def test_precision_is_kept() -> None:
    # FLOAT 2.0 = 20e-1 (14 00 00 ff) and 2.00 = 200e-2 (c8 00 00 fe), hand-computed
    a = parse_temperature_measurement(bytes.fromhex("00 140000ff")).temperature
    b = parse_temperature_measurement(bytes.fromhex("00 c80000fe")).temperature
    assert a == MedicalFloat.of("2.0") != b == MedicalFloat.of("2.00")
    assert (str(a), str(b)) == ("2.0", "2.00")
    assert a.decimal() == b.decimal()


FIELDS = {
    "flags", "temperature", "time_stamp", "time_stamp.year", "time_stamp.month",
    "time_stamp.day", "time_stamp.hours", "time_stamp.minutes", "time_stamp.seconds",
    "temperature_type",
}  # fmt: skip


@pytest.mark.parametrize("full", [NORDIC, FAHRENHEIT_FULL])
def test_every_strict_prefix_is_refused_with_field_and_offset(full: bytes) -> None:
    assert_every_prefix_refused(parse_temperature_measurement, full, FIELDS)


# --------------------------------------------------------------------------- properties

floats = st.one_of(
    st.builds(MedicalFloat, st.integers(-(2**23) + 3, 2**23 - 3), st.integers(-128, 127)),
    st.sampled_from([MedicalFloat(special=s) for s in Special]),
)
time_stamps = st.none() | st.datetimes(datetime(1582, 1, 1), datetime(9999, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


@given(
    st.builds(
        TemperatureMeasurement,
        st.sampled_from(["Cel", "[degF]"]),
        floats,
        time_stamps,
        st.none() | st.sampled_from(TemperatureType),
    )
)
def test_round_trip(value: TemperatureMeasurement) -> None:
    assert parse_temperature_measurement(encode_temperature_measurement(value)) == value


def test_registry() -> None:
    name, parse, encode = CHARACTERISTICS[0x2A1C]
    assert name == "Temperature Measurement"
    assert list(CHARACTERISTICS) == [0x2A1C]
    assert encode(parse(NORDIC)) == NORDIC
