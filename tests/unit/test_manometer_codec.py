"""Reference manometer codec: message and reply vectors, garbage replies, SCPI errors."""

from __future__ import annotations

import contextlib
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.devices.manometer import (
    KPA_PER_MMHG,
    Command,
    Identity,
    ManometerCommandError,
    ManometerReplyError,
    Query,
    Setting,
    Unit,
    encode_command,
    encode_reply,
    parse_command,
    parse_reply,
)
from drivers.devices.manometer.codec import format_number, from_mmhg, take_line, to_mmhg
from drivers.errors import FrameError

# Messages as the protocol table in the codec docstring writes them.
COMMANDS = [
    (Query.IDN, None, b"*IDN?\n"),
    (Query.PRESSURE, None, b":SENS:PRES?\n"),
    (Query.UNIT, None, b":UNIT:PRES?\n"),
    (Query.SETPOINT, None, b":SOUR:PRES?\n"),
    (Query.IN_LIMITS, None, b":SOUR:PRES:INL?\n"),
    (Query.CAL_DATE, None, b":CAL:DATE?\n"),
    (Query.CAL_UNCERTAINTY, None, b":CAL:UNC?\n"),
    (Query.ERROR, None, b":SYST:ERR?\n"),
    (Setting.UNIT, Unit.MMHG, b":UNIT:PRES MMHG\n"),
    (Setting.UNIT, Unit.KPA, b":UNIT:PRES KPA\n"),
    (Setting.SETPOINT, 100.0, b":SOUR:PRES 100\n"),
    (Setting.SETPOINT, 50.25, b":SOUR:PRES 50.25\n"),
    (Setting.SETPOINT, 0.0, b":SOUR:PRES 0\n"),
    (Setting.OUTPUT, True, b":OUTP:STAT ON\n"),
    (Setting.OUTPUT, False, b":OUTP:STAT OFF\n"),
    (Setting.VENT, None, b":SOUR:PRES:VENT\n"),
]


@pytest.mark.parametrize(("header", "value", "line"), COMMANDS)
def test_command_vectors_encode_byte_exact_and_parse_back(
    header: Query | Setting, value: float | bool | Unit | None, line: bytes
) -> None:
    assert encode_command(header, value) == line
    assert parse_command(line) == Command(header, value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b":sour:pres 120.5\r\n", Command(Setting.SETPOINT, 120.5)),  # case, CR LF
        (b"SOUR:PRES 1.2E+02", Command(Setting.SETPOINT, 120.0)),  # root colon optional, NR3
        (b":OUTP:STAT 1\n", Command(Setting.OUTPUT, True)),  # SCPI <Boolean> 1|0
        (b":OUTP:STAT off\n", Command(Setting.OUTPUT, False)),
        (b"*idn?\n", Command(Query.IDN)),
        (b":UNIT:PRES kpa\n", Command(Setting.UNIT, Unit.KPA)),
    ],
)
def test_instrument_side_accepts_scpi_spellings(line: bytes, expected: Command) -> None:
    assert parse_command(line) == expected


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b":SENS:PRESS?\n", -113),  # undefined header
        (b":FOO\n", -113),
        (b"hello world\n", -113),
        (b"\xff\xfe\n", -101),  # invalid character
        (b":SENS:PRES? 3\n", -108),  # parameter not allowed
        (b":SOUR:PRES:VENT NOW\n", -108),
        (b":SOUR:PRES\n", -109),  # missing parameter
        (b":OUTP:STAT\n", -109),
        (b":SOUR:PRES abc\n", -104),  # data type error
        (b":SOUR:PRES nan\n", -104),
        (b":SOUR:PRES 1e999\n", -104),  # not finite
        (b":OUTP:STAT MAYBE\n", -224),  # illegal parameter value
        (b":UNIT:PRES PSI\n", -224),
    ],
)
def test_malformed_commands_carry_the_scpi_error_the_instrument_queues(
    line: bytes, code: int
) -> None:
    with pytest.raises(ManometerCommandError) as caught:
        parse_command(line)
    assert caught.value.code == code
    assert caught.value.text


def test_encode_command_refuses_wrong_arguments() -> None:
    with pytest.raises(ValueError, match="finite"):
        encode_command(Setting.SETPOINT, float("nan"))
    with pytest.raises(ValueError, match="takes no argument"):
        encode_command(Query.PRESSURE, 1.0)
    with pytest.raises(ValueError, match="bool"):
        encode_command(Setting.OUTPUT, 1.0)
    with pytest.raises(ValueError, match="float"):
        encode_command(Setting.SETPOINT, True)  # a bool is no pressure
    with pytest.raises(ValueError, match="Unit"):
        encode_command(Setting.UNIT, None)


REPLIES = [
    (
        Query.IDN,
        b"SANTEBUS-SIM,RPC-400,REF-SIM-0001,1.0.0\n",
        Identity("SANTEBUS-SIM", "RPC-400", "REF-SIM-0001", "1.0.0"),
    ),
    (Query.PRESSURE, b":SENS:PRES 100.02\n", 100.02),
    (Query.PRESSURE, b":SENS:PRES -0.01\n", -0.01),  # a gauge reads a little below zero
    (Query.SETPOINT, b":SOUR:PRES 250.00\n", 250.0),
    (Query.UNIT, b":UNIT:PRES MMHG\n", Unit.MMHG),
    (Query.UNIT, b":UNIT:PRES KPA\n", Unit.KPA),
    (Query.IN_LIMITS, b"1\n", True),
    (Query.IN_LIMITS, b"0\n", False),
    (Query.CAL_DATE, b"2027-03-31\n", date(2027, 3, 31)),
    (Query.CAL_UNCERTAINTY, b"0.050\n", 0.05),
    (Query.ERROR, b'0,"No error"\n', (0, "No error")),
    (Query.ERROR, b'-113,"Undefined header"\n', (-113, "Undefined header")),
    (Query.ERROR, b'-222,"Data out of range;> 400"\n', (-222, "Data out of range;> 400")),
    (Query.ERROR, b'+201,"Not in remote"\n', (201, "Not in remote")),
]


@pytest.mark.parametrize(("query", "line", "value"), REPLIES)
def test_reply_vectors_parse_with_lf_or_crlf_or_none(
    query: Query, line: bytes, value: object
) -> None:
    assert parse_reply(line, query) == value
    assert parse_reply(line.replace(b"\n", b"\r\n"), query) == value
    assert parse_reply(line.rstrip(b"\n"), query) == value


@pytest.mark.parametrize(
    ("query", "value", "line"),
    [
        (Query.PRESSURE, 100.0, b":SENS:PRES 100.00\n"),
        (Query.SETPOINT, 12.345, b":SOUR:PRES 12.35\n"),
        (Query.UNIT, Unit.MMHG, b":UNIT:PRES MMHG\n"),
        (Query.IN_LIMITS, True, b"1\n"),
        (Query.CAL_DATE, date(2026, 1, 5), b"2026-01-05\n"),
        (Query.ERROR, (-113, "Undefined header"), b'-113,"Undefined header"\n'),
        (Query.IDN, Identity("M", "X", "S", "F"), b"M,X,S,F\n"),
    ],
)
def test_reply_encoding_is_byte_exact(query: Query, value: object, line: bytes) -> None:
    assert encode_reply(query, value, 2) == line  # type: ignore[arg-type]


def test_reply_encoding_refuses_what_the_protocol_cannot_carry() -> None:
    with pytest.raises(ValueError, match="commas"):
        encode_reply(Query.IDN, Identity("A,B", "X", "S", "F"))
    with pytest.raises(ValueError, match="double quote"):
        encode_reply(Query.ERROR, (-1, 'say "hi"'))
    with pytest.raises(ValueError, match="no reply"):
        encode_reply(Query.CAL_DATE, 1.0)


GARBAGE = [
    (Query.PRESSURE, b"100.02\n"),  # header missing: maybe a reply to another query
    (Query.PRESSURE, b":SOUR:PRES 100.02\n"),  # the setpoint, not the reading
    (Query.PRESSURE, b":SENS:PRES\n"),
    (Query.PRESSURE, b":SENS:PRES nan\n"),
    (Query.PRESSURE, b":SENS:PRES 1.0.0\n"),
    (Query.PRESSURE, b":SENS:PRES 10\x0012\n"),  # a NUL from line noise
    (Query.PRESSURE, b"\xff\xfe\xfd\n"),
    (Query.IDN, b"SANTEBUS,RPC-400\n"),
    (Query.IDN, b",,,\n"),
    (Query.UNIT, b":UNIT:PRES PSI\n"),
    (Query.IN_LIMITS, b"2\n"),
    (Query.IN_LIMITS, b"ON\n"),
    (Query.CAL_DATE, b"31/03/2027\n"),
    (Query.CAL_DATE, b"20270331\n"),  # fromisoformat would take it; the protocol does not
    (Query.CAL_DATE, b"2027-02-30\n"),
    (Query.CAL_UNCERTAINTY, b"-0.05\n"),
    (Query.ERROR, b"-113,Undefined header\n"),
    (Query.ERROR, b"No error\n"),
    (Query.ERROR, b":SENS:PRES 0.00\n"),
]


@pytest.mark.parametrize(("query", "line"), GARBAGE)
def test_garbage_replies_raise_naming_the_bytes(query: Query, line: bytes) -> None:
    with pytest.raises(ManometerReplyError) as caught:
        parse_reply(line, query)
    assert caught.value.line == line
    assert repr(line) in str(caught.value)
    assert isinstance(caught.value, FrameError)  # count it, log it, keep going


def test_take_line_splits_on_lf_and_drops_a_cr() -> None:
    buffer = bytearray(b"1\r\n:SENS:PRES 1.00\n:SENS:P")
    assert take_line(buffer) == b"1"
    assert take_line(buffer) == b":SENS:PRES 1.00"
    assert take_line(buffer) is None
    assert buffer == b":SENS:P"


def test_units_use_the_conventional_millimetre_of_mercury() -> None:
    assert to_mmhg(KPA_PER_MMHG * 100, Unit.KPA) == pytest.approx(100.0)
    assert from_mmhg(750.0616827, Unit.KPA) == pytest.approx(100.0)  # 100 kPa = 750.06 mmHg
    assert to_mmhg(42.0, Unit.MMHG) == 42.0


@pytest.mark.parametrize(
    ("value", "text"), [(100.0, "100"), (0.0, "0"), (-0.0, "0"), (50.5, "50.5"), (1e-6, "0")]
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_setpoints_round_trip_to_four_decimals(value: float) -> None:
    command = parse_command(encode_command(Setting.SETPOINT, value))
    assert command.header is Setting.SETPOINT
    assert isinstance(command.value, float)
    assert command.value == pytest.approx(value, abs=5e-5)


@given(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False))
def test_readings_round_trip_to_the_decimals_sent(value: float) -> None:
    line = encode_reply(Query.PRESSURE, value, 2)
    assert parse_reply(line, Query.PRESSURE) == pytest.approx(value, abs=0.005 + 1e-9)


@given(st.binary(max_size=40))
def test_any_bytes_parse_or_raise_a_reply_error(line: bytes) -> None:
    for query in Query:
        with contextlib.suppress(ManometerReplyError):
            parse_reply(line, query)


@given(st.binary(max_size=40))
def test_any_bytes_parse_or_raise_a_command_error(line: bytes) -> None:
    code = 0
    try:
        parse_command(line)
    except ManometerCommandError as exc:
        code = exc.code
    assert code in (0, -101, -104, -108, -109, -113, -224)
