"""Date Time and Current Time codecs: public vectors, round trips, fuzz, truncation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ble.gatt.clock import (
    CHARACTERISTICS,
    AdjustReason,
    CurrentTime,
    DateTime,
    DayOfWeek,
    encode_current_time,
    encode_date_time,
    parse_current_time,
    parse_date_time,
)
from drivers.ble.gatt.reader import GattParseError
from tests.gatt_checks import assert_every_prefix_refused

EISAEV = "eisaev/blevalueparser"  # tests/datetimetest.cpp and tests/currenttimetest.cpp

# EISAEV tests/datetimetest.cpp, Normal: 2023-01-02 20:22:07
DATE_TIME = bytes.fromhex("e707 01 02 14 16 07")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (DATE_TIME, datetime(2023, 1, 2, 20, 22, 7)),
        # EISAEV tests/datetimetest.cpp, ToString: 2022-12-31 23:59:59
        ("e607 0c 1f 17 3b 3b", datetime(2022, 12, 31, 23, 59, 59)),
        # NordicSemiconductor/Android-BLE-Common-Library, ble-common/src/test/java/no/
        # nordicsemi/android/ble/common/callback/DateTimeDataCallbackTest.java, _today
        ("e207 04 11 0f 33 00", datetime(2018, 4, 17, 15, 51, 0)),
        # same file, _dateNotKnown: Nordic keeps 18:26:32 without a date; with no date it is no
        # instant, so we give None (clock.py docstring)
        ("0000 00 00 12 1a 20", None),
        ("0000 00 00 00 00 00", None),
    ],
)
def test_date_time_vectors(data: bytes | str, expected: datetime | None) -> None:
    raw = bytes.fromhex(data) if isinstance(data, str) else data
    assert parse_date_time(raw) == DateTime(expected)


def test_date_time_encodes_byte_exact() -> None:
    assert encode_date_time(DateTime(datetime(2023, 1, 2, 20, 22, 7))) == DATE_TIME
    assert encode_date_time(DateTime(None)) == bytes(7)


@pytest.mark.parametrize(
    ("data", "field", "offset"),
    [
        ("e707 01 02 14 16", "date_time.seconds", 6),  # EISAEV TooShort
        ("e707 01 02 14 16 07 07", "end", 7),  # EISAEV TooLong
        ("e707 02 1e 00 00 00", "date_time", 0),  # hand-made: 30 February
        ("e707 01 02 18 00 00", "date_time", 0),  # hand-made: hour 24
        ("e707 0d 01 00 00 00", "date_time", 0),  # hand-made: month 13
        ("2d06 01 01 00 00 00", "date_time.year", 0),  # hand-made: 1581, before Gregorian
    ],
)
def test_date_time_refusals(data: str, field: str, offset: int) -> None:
    with pytest.raises(GattParseError) as exc:
        parse_date_time(bytes.fromhex(data))
    assert (exc.value.field, exc.value.offset) == (field, offset)


def test_date_time_encoder_refuses_what_does_not_fit() -> None:
    for bad in (
        datetime(2023, 1, 2, 20, 22, 7, 500),  # sub-second
        datetime.fromisoformat("2023-01-02T20:22:07+00:00"),  # zone
        datetime(1000, 1, 1),  # before 1582
    ):
        with pytest.raises(ValueError, match="Date Time"):
            encode_date_time(DateTime(bad))


# --------------------------------------------------------------------------- Current Time

MANUAL = AdjustReason(manual_time_update=True)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # EISAEV tests/currenttimetest.cpp, Manual_255, External_0, TZChanged_1, DSTChanged_128
        (
            "e707 01 02 14 16 07 01 ff 01",
            CurrentTime(datetime(2023, 1, 2, 20, 22, 7), DayOfWeek.MONDAY, 255, MANUAL),
        ),
        (
            "e707 01 03 14 16 07 02 00 02",
            CurrentTime(
                datetime(2023, 1, 3, 20, 22, 7),
                DayOfWeek.TUESDAY,
                0,
                AdjustReason(external_reference_time_update=True),
            ),
        ),
        (
            "e707 01 04 14 16 07 03 01 04",
            CurrentTime(
                datetime(2023, 1, 4, 20, 22, 7),
                DayOfWeek.WEDNESDAY,
                1,
                AdjustReason(change_of_time_zone=True),
            ),
        ),
        (
            "e707 01 05 14 16 07 04 80 08",
            CurrentTime(
                datetime(2023, 1, 5, 20, 22, 7),
                DayOfWeek.THURSDAY,
                128,
                AdjustReason(change_of_dst=True),
            ),
        ),
        # EISAEV NoReason: day of week 0 = not known, no adjust reason
        ("e707 02 06 0e 2f 2a 00 00 00", CurrentTime(datetime(2023, 2, 6, 14, 47, 42), None)),
    ],
)
def test_current_time_vectors_round_trip_byte_exact(data: str, expected: CurrentTime) -> None:
    raw = bytes.fromhex(data)
    assert parse_current_time(raw) == expected
    assert encode_current_time(expected) == raw


def test_reported_weekday_is_kept_even_when_wrong_but_never_sent() -> None:
    # EISAEV Friday: 2022-12-29 tagged Friday (5), though that date was a Thursday
    t = parse_current_time(bytes.fromhex("e607 0c 1d 17 3b 3b 05 ff 01"))
    assert (t.time, t.day_of_week) == (datetime(2022, 12, 29, 23, 59, 59), DayOfWeek.FRIDAY)
    with pytest.raises(ValueError, match="not the weekday"):
        encode_current_time(t)


def test_rfu_day_of_week_kept_and_rfu_reason_bits_ignored() -> None:
    # EISAEV UnknownDayOfWeek: 0xAA is RFU (GSS 3.73); hand-made variant: reason 0xF1
    t = parse_current_time(bytes.fromhex("e607 0c 1f 17 3b 3b aa ff f1"))
    assert t.day_of_week == 0xAA
    assert not isinstance(t.day_of_week, DayOfWeek)
    assert t.adjust_reason == MANUAL
    with pytest.raises(ValueError, match="reserved"):
        encode_current_time(t)


def test_current_time_of_now() -> None:
    # StanfordSpezi/SpeziBluetooth Tests/SpeziBluetoothServicesTests/CurrentTimeTests.swift,
    # nowTestTime: 2024-06-06 12:04:44, Thursday, fractions256 128 (half a second); the bytes
    # are ours, in the GSS 3.62 layout: 0x07E8 06 06 0C 04 2C, 04, 0x80, reason 0.
    t = CurrentTime.of(datetime(2024, 6, 6, 12, 4, 44, 500_000))
    assert t == CurrentTime(datetime(2024, 6, 6, 12, 4, 44), DayOfWeek.THURSDAY, 128)
    assert encode_current_time(t) == bytes.fromhex("e807 06 06 0c 04 2c 04 80 00")
    assert t.exact() == datetime(2024, 6, 6, 12, 4, 44, 500_000)
    # same file, testDateConversions: 255/256 s plus 1.231234 ms is still fraction 255 (floor)
    late = CurrentTime.of(datetime(2024, 5, 17, 16, 11, 26, 996_093 + 1_231), MANUAL)
    assert (late.day_of_week, late.fractions256) == (DayOfWeek.FRIDAY, 255)
    with pytest.raises(ValueError, match="time zone"):
        CurrentTime.of(datetime.fromisoformat("2024-06-06T12:04:44+02:00"))


def test_current_time_encoder_checks_fractions() -> None:
    with pytest.raises(ValueError, match="fractions256"):
        encode_current_time(CurrentTime(None, None, 256))


FIELDS = {
    "date_time", "date_time.year", "date_time.month", "date_time.day", "date_time.hours",
    "date_time.minutes", "date_time.seconds", "exact_time_256.date_time",
    "exact_time_256.date_time.year", "exact_time_256.date_time.month",
    "exact_time_256.date_time.day", "exact_time_256.date_time.hours",
    "exact_time_256.date_time.minutes", "exact_time_256.date_time.seconds",
    "exact_time_256.day_of_week", "exact_time_256.fractions256", "adjust_reason",
}  # fmt: skip


@pytest.mark.parametrize(
    ("parse", "full"),
    [
        (parse_date_time, DATE_TIME),
        (parse_current_time, bytes.fromhex("e707 01 02 14 16 07 01 ff 01")),
    ],
)
def test_every_strict_prefix_is_refused_with_field_and_offset(
    parse: Callable[[bytes], object], full: bytes
) -> None:
    assert_every_prefix_refused(parse, full, FIELDS)


# --------------------------------------------------------------------------- properties

times = st.datetimes(datetime(1582, 1, 1), datetime(9999, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


@given(st.none() | times)
def test_date_time_round_trip(value: datetime | None) -> None:
    assert parse_date_time(encode_date_time(DateTime(value))) == DateTime(value)


@st.composite
def current_times(draw: st.DrawFn) -> CurrentTime:
    time = draw(st.none() | times)
    if time is None:
        day_of_week = draw(st.none() | st.sampled_from(DayOfWeek))
    else:  # a sender's weekday is the date's, or "not known"
        day_of_week = draw(st.sampled_from([None, DayOfWeek(time.isoweekday())]))
    reason = AdjustReason(*draw(st.tuples(*[st.booleans()] * 4)))
    return CurrentTime(time, day_of_week, draw(st.integers(0, 255)), reason)


@given(current_times())
def test_current_time_round_trip(value: CurrentTime) -> None:
    assert parse_current_time(encode_current_time(value)) == value


@given(st.datetimes(datetime(1582, 1, 1), datetime(9999, 12, 31, 23, 59, 59)))
def test_of_then_exact_never_runs_ahead_by_a_fraction(now: datetime) -> None:
    t = parse_current_time(encode_current_time(CurrentTime.of(now)))
    exact = t.exact()
    assert exact is not None
    assert 0 <= (now - exact).total_seconds() < 1 / 256


def test_registry() -> None:
    assert {uuid: name for uuid, (name, _, _) in CHARACTERISTICS.items()} == {
        0x2A08: "Date Time",
        0x2A2B: "Current Time",
    }
    _, parse, encode = CHARACTERISTICS[0x2A08]
    assert encode(parse(DATE_TIME)) == DATE_TIME
