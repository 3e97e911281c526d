"""Glucose Measurement and Context: public vectors, reserved values, properties, the merge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

# Tester and TesterHealth via the module: pytest would try to collect Test* names imported here
from drivers.ble.gatt import glucose
from drivers.ble.gatt.glucose import (
    CHARACTERISTICS,
    EXERCISE_OVERRUN,
    Carbohydrate,
    CarbohydrateId,
    Exercise,
    GlucoseConcentration,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseMerge,
    GlucoseRecord,
    GlucoseType,
    Health,
    Meal,
    Medication,
    MedicationId,
    SampleLocation,
    SensorStatus,
    encode_glucose_measurement,
    encode_glucose_measurement_context,
    merge_glucose_records,
    parse_glucose_measurement,
    parse_glucose_measurement_context,
)
from drivers.ble.gatt.reader import GattParseError
from drivers.codec.ieee11073 import MedicalFloat, Special
from tests.gatt_checks import assert_every_prefix_refused

# --------------------------------------------------------------------------- vectors

# NordicSemiconductor/Android-BLE-Common-Library, ble-common/src/test/java/no/nordicsemi/android/
# ble/common/callback/glucose/GlucoseMeasurementDataCallbackTest.java, onGlucoseMeasurementReceived:
# flags 0b011011, seq 1, 2019-02-27 11:10:30, offset -5 min, 30 kg/L (SFLOAT 0x001E), type 2 /
# location 1 (0x12), status 0x0105. Nordic's comment calls bit 2 "Device Fault"; the GSS bit 2 is
# "sample size insufficient", which is what we decode (Nordic asserts only value 261 and bit 0).
NORDIC_MEASUREMENT = bytes(
    [0x1B, 1, 0, 0xE3, 0x07, 2, 27, 11, 10, 30, 0xFB, 0xFF, 30, 0, 0x12, 0b101, 0b1]
)
NORDIC_MEASUREMENT_VALUE = GlucoseMeasurement(
    sequence_number=1,
    base_time=datetime(2019, 2, 27, 11, 10, 30),
    time_offset_minutes=-5,
    concentration=GlucoseConcentration(
        MedicalFloat(30, 0), "kg/L", GlucoseType.CAPILLARY_PLASMA, SampleLocation.FINGER
    ),
    sensor_status=frozenset(
        {
            SensorStatus.DEVICE_BATTERY_LOW,
            SensorStatus.SAMPLE_SIZE_INSUFFICIENT,
            SensorStatus.TEMPERATURE_TOO_LOW,
        }
    ),
    context_follows=True,
)
# Same file, onInvalidDataReceived: the time offset is missing, so the fields shift and the value
# is both too short and inconsistent.
NORDIC_INVALID_MEASUREMENT = bytes([0x1B, 0, 0, 0xE2, 0x07, 4, 26, 11, 9, 30, 30, 0, 0x12, 5, 1])

# A real Accu-Chek Guide notification from the Stack Overflow question "How to decode response
# from Glucose Measurement Characteristic (Bluetooth)" (question 63340809, react-native-ble-plx).
# The question printed the value after a UTF-8 round trip ([27, 4, 0, 195, 164, 7, ...]); undoing
# it (195 164 -> 0xE4, 194 176 -> 0xB0, 195 184 -> 0xF8) gives these 17 bytes, which is exactly
# the length flags 0x1B announce: 119e-5 kg/L = 119 mg/dL, undetermined plasma, location n/a.
ACCU_CHEK = bytes([27, 4, 0, 0xE4, 7, 7, 14, 11, 6, 5, 0x5A, 2, 0x77, 0xB0, 0xF8, 0, 0])

# Hand-computed, every field present and mol/L: flags 0x1F; seq 258 = 02 01; 2024-03-05 06:07:08
# (2024 = 0x07E8); offset +60 = 3C 00; 5.5 mmol/L = 55e-4 mol/L = (0xC << 12) | 55 = 0xC037;
# venous plasma 4 | earlobe 3 << 4 = 0x34; status bits 3, 5, 11 = 0x0828.
HAND_MOL = bytes.fromhex("1f0201e80703050607083c0037c0342808")
BASE_TIME = bytes.fromhex("e8070305060708")  # 2024-03-05 06:07:08


def test_nordic_measurement() -> None:
    assert parse_glucose_measurement(NORDIC_MEASUREMENT) == NORDIC_MEASUREMENT_VALUE
    assert encode_glucose_measurement(NORDIC_MEASUREMENT_VALUE) == NORDIC_MEASUREMENT


def test_nordic_invalid_measurement_is_refused() -> None:
    with pytest.raises(GattParseError):
        parse_glucose_measurement(NORDIC_INVALID_MEASUREMENT)


def test_accu_chek_guide_notification() -> None:
    m = parse_glucose_measurement(ACCU_CHEK)
    assert (m.sequence_number, m.base_time) == (4, datetime(2020, 7, 14, 11, 6, 5))
    assert m.time_offset_minutes == 602
    assert m.concentration == GlucoseConcentration(
        MedicalFloat(119, -5), "kg/L", GlucoseType.UNDETERMINED_PLASMA, SampleLocation.NOT_AVAILABLE
    )
    assert m.sensor_status == frozenset()
    assert m.context_follows
    assert encode_glucose_measurement(m) == ACCU_CHEK


def test_hand_computed_mol_per_litre_all_fields() -> None:
    m = parse_glucose_measurement(HAND_MOL)
    assert m == GlucoseMeasurement(
        258,
        datetime(2024, 3, 5, 6, 7, 8),
        60,
        GlucoseConcentration(
            MedicalFloat(55, -4), "mol/L", GlucoseType.VENOUS_PLASMA, SampleLocation.EARLOBE
        ),
        frozenset(
            {
                SensorStatus.STRIP_INSERTION_ERROR,
                SensorStatus.RESULT_TOO_HIGH,
                SensorStatus.TIME_FAULT,
            }
        ),
        True,
    )
    assert encode_glucose_measurement(m) == HAND_MOL


@pytest.mark.parametrize(
    ("word", "special"),
    [
        ("ff07", Special.NAN),
        ("0008", Special.NRES),
        ("fe07", Special.POSITIVE_INFINITY),
        ("0208", Special.NEGATIVE_INFINITY),
    ],
)
def test_special_concentrations(word: str, special: Special) -> None:
    # hand-computed: flags 0x02, seq 0, base time "not known" (all zero), SFLOAT special, 0x11
    data = bytes.fromhex("020000" + "00" * 7 + word + "11")
    m = parse_glucose_measurement(data)
    assert m.base_time is None
    assert m.concentration is not None
    assert m.concentration.value == MedicalFloat(special=special)
    assert encode_glucose_measurement(m) == data


def test_rfu_flag_and_status_bits_are_ignored() -> None:
    # hand-computed: flags 0xE8 = RFU bits 5..7 + status present; status 0xF001 = RFU 12..15 + bit 0
    m = parse_glucose_measurement(bytes.fromhex("e80100") + BASE_TIME + bytes.fromhex("01f0"))
    assert m.sensor_status == frozenset({SensorStatus.DEVICE_BATTERY_LOW})
    assert encode_glucose_measurement(m) == bytes.fromhex("080100") + BASE_TIME + b"\x01\x00"


@pytest.mark.parametrize(
    ("data", "field", "offset"),
    [
        (bytes.fromhex("020000") + BASE_TIME + bytes.fromhex("640010"), "type", 12),  # type 0
        (bytes.fromhex("020000") + BASE_TIME + bytes.fromhex("64001b"), "type", 12),  # type 11
        (bytes.fromhex("020000") + BASE_TIME + bytes.fromhex("640001"), "sample_location", 12),
        (bytes.fromhex("020000") + BASE_TIME + bytes.fromhex("640051"), "sample_location", 12),
        (bytes.fromhex("020000") + BASE_TIME + bytes.fromhex("010811"), "concentration", 10),
        (bytes.fromhex("000000e807021e000000"), "base_time", 3),  # 30 February
        (bytes.fromhex("000000e8070305180000"), "base_time", 3),  # 24:00
        (bytes.fromhex("0000002d060101000000"), "base_time.year", 3),  # year 1581
        (bytes.fromhex("000000") + BASE_TIME + b"\x00", "end", 10),  # unannounced byte
    ],
)
def test_measurement_faults_name_field_and_offset(data: bytes, field: str, offset: int) -> None:
    with pytest.raises(GattParseError) as caught:
        parse_glucose_measurement(data)
    assert (caught.value.field, caught.value.offset) == (field, offset)
    assert caught.value.characteristic == "Glucose Measurement"


# NordicSemiconductor/Android-BLE-Common-Library, .../callback/glucose/
# GlucoseMeasurementContextDataCallbackTest.java, onGlucoseMeasurementContextReceived_full:
# flags 0xFF, seq 0, extended flags 0xB3 (ignored), dinner, 100.0 kg, casual, 0x12 (health care
# professional, minor issues), 60 s, 50 %, long acting insulin, 123.45 (litres, flag bit 5), HbA1c
# 34.5 %. The SFLOAT words are what Nordic's Data.sfloatToInt makes of those Java floats
# (replicated in float32): 100.0 -> 0x0064, 123.45 -> 1235e-1 = 0xF4D3, 34.5 -> 345e-1 = 0xF159.
NORDIC_CONTEXT = bytes.fromhex("ff0000b303640004123c003204d3f459f1")
NORDIC_CONTEXT_VALUE = GlucoseMeasurementContext(
    0,
    Carbohydrate(CarbohydrateId.DINNER, MedicalFloat(100, 0)),
    Meal.CASUAL,
    glucose.TesterHealth(glucose.Tester.HEALTH_CARE_PROFESSIONAL, Health.MINOR_ISSUES),
    Exercise(60, 50),
    Medication(MedicationId.LONG_ACTING_INSULIN, MedicalFloat(1235, -1), "L"),
    MedicalFloat(345, -1),
)

# Hand-computed, medication in kg: flags 0x5D (carbohydrate, tester-health, exercise, medication,
# HbA1c); seq 7; breakfast, 45 g = 45e-3 kg = 0xD02D; self (1) | health n/a (15) << 4 = 0xF1;
# exercise overrun 0xFFFF, 100 % = 0x64; rapid acting, 0.5 mg = 5e-7 kg = (0x9 << 12) | 5 =
# 0x9005; HbA1c 6.5 % = 65e-1 = 0xF041.
HAND_CONTEXT = bytes.fromhex("5d0700012dd0f1ffff6401059041f0")


def test_nordic_context_full() -> None:
    assert parse_glucose_measurement_context(NORDIC_CONTEXT) == NORDIC_CONTEXT_VALUE
    # re-encoded without the Extended Flags byte (all its bits are RFU), so flags 0x7F
    assert encode_glucose_measurement_context(NORDIC_CONTEXT_VALUE) == b"\x7f" + (
        NORDIC_CONTEXT[1:3] + NORDIC_CONTEXT[4:]
    )


def test_nordic_context_empty_and_invalid() -> None:
    # onGlucoseMeasurementContextReceived_empty: flags 0, seq 1, in a 17-byte buffer. Nordic
    # ignores the 14 trailing zeros; for us bytes the flags did not announce are an error.
    empty = bytes([0, 1, 0]) + bytes(14)
    assert parse_glucose_measurement_context(empty[:3]) == GlucoseMeasurementContext(1)
    with pytest.raises(GattParseError, match="end at byte 3"):
        parse_glucose_measurement_context(empty)
    # onInvalidDataReceived: flags 0xFF in a 5-byte buffer: the carbohydrate SFLOAT is missing
    with pytest.raises(GattParseError) as caught:
        parse_glucose_measurement_context(bytes([0xFF, 0, 0, 0xB3, 3]))
    assert (caught.value.field, caught.value.offset) == ("carbohydrate", 5)


def test_hand_computed_context_in_kilograms() -> None:
    c = parse_glucose_measurement_context(HAND_CONTEXT)
    assert c == GlucoseMeasurementContext(
        7,
        carbohydrate=Carbohydrate(CarbohydrateId.BREAKFAST, MedicalFloat(45, -3)),
        tester_health=glucose.TesterHealth(glucose.Tester.SELF, Health.NOT_AVAILABLE),
        exercise=Exercise(EXERCISE_OVERRUN, 100),
        medication=Medication(MedicationId.RAPID_ACTING_INSULIN, MedicalFloat(5, -7), "kg"),
        hba1c=MedicalFloat(65, -1),
    )
    assert encode_glucose_measurement_context(c) == HAND_CONTEXT


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (bytes.fromhex("02010000"), "meal"),  # meal 0
        (bytes.fromhex("02010006"), "meal"),  # meal 6
        (bytes.fromhex("010100086400"), "carbohydrate_id"),  # 8
        (bytes.fromhex("04010050"), "tester"),  # tester 0
        (bytes.fromhex("04010061"), "health"),  # health 6
        (bytes.fromhex("101000066400"), "medication_id"),  # 6
        (bytes.fromhex("4001000108"), "hba1c"),  # reserved SFLOAT 0x0801
    ],
)
def test_context_reserved_values(data: bytes, field: str) -> None:
    with pytest.raises(GattParseError) as caught:
        parse_glucose_measurement_context(data)
    assert (caught.value.field, caught.value.offset) == (field, 3)


# --------------------------------------------------------------------------- properties

sfloats = st.one_of(
    st.builds(MedicalFloat, st.integers(-2045, 2045), st.integers(-8, 7)),
    st.sampled_from([MedicalFloat(special=s) for s in Special]),
)
date_times = st.none() | st.datetimes(datetime(1582, 1, 1), datetime(9999, 12, 31, 23, 59, 59)).map(
    lambda d: d.replace(microsecond=0)
)
measurements = st.builds(
    GlucoseMeasurement,
    st.integers(0, 0xFFFF),
    date_times,
    st.none() | st.integers(-0x8000, 0x7FFF),
    st.none()
    | st.builds(
        GlucoseConcentration,
        sfloats,
        st.sampled_from(["kg/L", "mol/L"]),
        st.sampled_from(GlucoseType),
        st.sampled_from(SampleLocation),
    ),
    st.none() | st.frozensets(st.sampled_from(SensorStatus)),
    st.booleans(),
)
contexts = st.builds(
    GlucoseMeasurementContext,
    st.integers(0, 0xFFFF),
    st.none() | st.builds(Carbohydrate, st.sampled_from(CarbohydrateId), sfloats),
    st.none() | st.sampled_from(Meal),
    st.none()
    | st.builds(glucose.TesterHealth, st.sampled_from(glucose.Tester), st.sampled_from(Health)),
    st.none() | st.builds(Exercise, st.integers(0, 0xFFFF), st.integers(0, 0xFF)),
    st.none()
    | st.builds(Medication, st.sampled_from(MedicationId), sfloats, st.sampled_from(["kg", "L"])),
    st.none() | sfloats,
)


@given(measurements)
def test_measurement_round_trip(m: GlucoseMeasurement) -> None:
    assert parse_glucose_measurement(encode_glucose_measurement(m)) == m


@given(contexts)
def test_context_round_trip(c: GlucoseMeasurementContext) -> None:
    assert parse_glucose_measurement_context(encode_glucose_measurement_context(c)) == c


@pytest.mark.parametrize(
    ("parse", "full"),
    [
        (parse_glucose_measurement, NORDIC_MEASUREMENT),
        (parse_glucose_measurement, HAND_MOL),
        (parse_glucose_measurement_context, NORDIC_CONTEXT),
        (parse_glucose_measurement_context, HAND_CONTEXT),
    ],
)
def test_every_strict_prefix_is_truncated(parse: Callable[[bytes], object], full: bytes) -> None:
    assert_every_prefix_refused(parse, full, reason="truncated")


def test_values_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="sequence_number"):
        GlucoseMeasurement(0x10000, None)
    with pytest.raises(ValueError, match="base_time"):
        GlucoseMeasurement(1, datetime(2024, 1, 1, 0, 0, 0, 500))
    with pytest.raises(ValueError, match="time_offset"):
        GlucoseMeasurement(1, None, 0x8000)
    with pytest.raises(ValueError, match="intensity"):
        Exercise(10, 256)


def test_characteristics_table() -> None:
    assert CHARACTERISTICS[0x2A18] == (
        "Glucose Measurement",
        parse_glucose_measurement,
        encode_glucose_measurement,
    )
    assert CHARACTERISTICS[0x2A34][1] is parse_glucose_measurement_context


# --------------------------------------------------------------------------- merge


def _m(seq: int, *, context: bool) -> GlucoseMeasurement:
    return GlucoseMeasurement(seq, datetime(2024, 3, 5, 6, 7, 8), context_follows=context)


def _c(seq: int) -> GlucoseMeasurementContext:
    return GlucoseMeasurementContext(seq, meal=Meal.FASTING)


def test_context_after_its_measurement_completes_it() -> None:
    state, done = GlucoseMerge().add(_m(1, context=True))
    assert done == ()  # the flag says a context follows: the measurement waits
    state, done = state.add(_c(1))
    assert done == (GlucoseRecord(_m(1, context=True), _c(1)),)
    assert state == GlucoseMerge()


def test_context_before_its_measurement() -> None:
    state, done = GlucoseMerge().add(_c(2))
    assert done == ()
    state, done = state.add(_m(2, context=True))
    assert done == (GlucoseRecord(_m(2, context=True), _c(2)),)
    assert state.flush() == ((), ())


def test_measurement_without_the_flag_is_complete_at_once() -> None:
    state, done = GlucoseMerge().add(_m(3, context=False))
    assert done == (GlucoseRecord(_m(3, context=False)),)
    assert state == GlucoseMerge()


def test_missing_context_and_unknown_sequence_number() -> None:
    records, orphans = merge_glucose_records(
        [_m(4, context=True), _m(5, context=False), _c(99), _m(6, context=True), _c(6)]
    )
    assert records == (
        GlucoseRecord(_m(5, context=False)),
        GlucoseRecord(_m(6, context=True), _c(6)),
        GlucoseRecord(_m(4, context=True)),  # its context never came: released at the end
    )
    assert orphans == (_c(99),)  # no measurement has sequence number 99


def test_context_for_a_measurement_that_announced_none_is_an_orphan() -> None:
    records, orphans = merge_glucose_records([_c(7), _m(7, context=False)])
    assert records == (GlucoseRecord(_m(7, context=False)),)
    assert orphans == (_c(7),)
