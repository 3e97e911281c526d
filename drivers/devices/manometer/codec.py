"""Pure codec for the reference manometer (a digital pressure calibrator/controller).

The protocol is ours, modelled on the SCPI command sets of pressure controllers (GE Druck PACE,
Mensor CPC, Fluke 6270A) and on the SCPI/IEEE 488.2 conventions they share. Line: ASCII,
9600 8N1 by default. A message is one line ending in LF (CR LF is accepted both ways); headers
are the SCPI short forms, case-insensitive, the leading colon optional. A query (its header
ends in ``?``) gets exactly one reply line; a setting gets no reply (SCPI), so the host follows
each setting with ``:SYST:ERR?`` to learn whether it was accepted.

=====================  =====================================  ================================
message                reply                                  meaning
=====================  =====================================  ================================
``*IDN?``              ``MAKER,MODEL,SERIAL,FIRMWARE``        IEEE 488.2 identification
``:SENS:PRES?``        ``:SENS:PRES <number>``                reading, in the current unit
``:UNIT:PRES?``        ``:UNIT:PRES MMHG|KPA``                the current unit
``:UNIT:PRES <u>``     -                                      ``MMHG`` or ``KPA``
``:SOUR:PRES?``        ``:SOUR:PRES <number>``                the controller's setpoint
``:SOUR:PRES <n>``     -                                      set the setpoint (current unit)
``:OUTP:STAT ON|OFF``  -                                      ON: drive the circuit to the
                                                              setpoint; OFF: isolate (seal) it
``:SOUR:PRES:INL?``    ``1`` or ``0``                         1: within 0.05 % of full scale
                                                              of the setpoint, and stable
``:SOUR:PRES:VENT``    -                                      vent to atmosphere (output OFF)
``:CAL:DATE?``         ``YYYY-MM-DD``                         the instrument's own certificate
                                                              due date
``:CAL:UNC?``          ``<number>``                           its expanded uncertainty (k=2),
                                                              in the current unit
``:SYST:ERR?``         ``<code>,"<text>"``                    oldest entry of the SCPI error
                                                              queue; ``0,"No error"`` if empty
=====================  =====================================  ================================

Numbers are SCPI ``<NRf>`` (``12``, ``-0.25``, ``1.5E+02``); ``ON|OFF`` also accepts ``1|0``
(SCPI ``<Boolean>``). The pressure replies carry their header, as the PACE's do, so that a reply
to some other query can never pass for a reading. Error codes are the SCPI-99 standard ones
(chapter 21): -101 invalid character, -104 data type error, -108 parameter not allowed,
-109 missing parameter, -113 undefined header, -222 data out of range, -224 illegal parameter
value, -350 queue overflow, -363 input buffer overrun.

Encoding and parsing never do I/O: a malformed reply raises :class:`ManometerReplyError`
naming the offending bytes. This module is the host's side; the instrument's side (parsing a
command, encoding a reply, the SCPI error codes it queues) is :mod:`.instrument`, which the
simulator uses.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Literal, overload

from drivers.errors import DriverError, FrameError

#: longest line either side sends or accepts (SCPI input buffers are a few hundred bytes)
MAX_LINE = 256
LF = b"\n"
#: 1 mmHg = 133.322387415 Pa (the conventional millimetre of mercury, ISO 80000-4 / BIPM SI
#: brochure table 8), so 1 mmHg = 0.133322387415 kPa
KPA_PER_MMHG = 0.133322387415
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEADER = re.compile(r"\*[A-Z]+\??|(?::[A-Z]+)+\??")
_ERROR = re.compile(r'([+-]?[0-9]+),"([^"]*)"')
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Unit(StrEnum):
    """Pressure units the instrument reports in (``:UNIT:PRES``)."""

    MMHG = "MMHG"
    KPA = "KPA"


class Query(StrEnum):
    """Queries: each gets exactly one reply line."""

    IDN = "*IDN?"
    PRESSURE = ":SENS:PRES?"
    UNIT = ":UNIT:PRES?"
    SETPOINT = ":SOUR:PRES?"
    IN_LIMITS = ":SOUR:PRES:INL?"
    CAL_DATE = ":CAL:DATE?"
    CAL_UNCERTAINTY = ":CAL:UNC?"
    ERROR = ":SYST:ERR?"


class Setting(StrEnum):
    """Settings: no reply; success or failure shows in the error queue."""

    UNIT = ":UNIT:PRES"
    SETPOINT = ":SOUR:PRES"
    OUTPUT = ":OUTP:STAT"
    VENT = ":SOUR:PRES:VENT"


Header = Query | Setting
Value = float | bool | Unit | None
#: the SCPI error queue entry ``(code, text)``
ErrorEntry = tuple[int, str]

#: the argument each setting takes (None: none)
_ARGUMENT: dict[Setting, type[float] | type[bool] | type[Unit] | None] = {
    Setting.UNIT: Unit,
    Setting.SETPOINT: float,
    Setting.OUTPUT: bool,
    Setting.VENT: None,
}
_HEADERS: dict[str, Header] = {h.value: h for h in (*Query, *Setting)}


class ManometerReplyError(FrameError):
    """A reply line that is not the answer to the query sent; ``line`` holds its bytes."""

    def __init__(self, reason: str, line: bytes) -> None:
        super().__init__(f"{reason}: got {line!r}", consumed=len(line) + 1)
        self.line = line


class ManometerCommandError(DriverError):
    """The instrument refused a command: a SCPI error ``code`` and ``text`` (data, not a fault).

    ``command`` is the message that caused it when the driver knows it; ``others`` holds further
    entries the error queue held at the same time (oldest first).
    """

    def __init__(
        self, code: int, text: str, command: str = "", others: tuple[ErrorEntry, ...] = ()
    ) -> None:
        where = f" after {command!r}" if command else ""
        super().__init__(f"instrument error {code},{text!r}{where}")
        self.code = code
        self.text = text
        self.command = command
        self.others = others


@dataclass(frozen=True, slots=True)
class Identity:
    """The four ``*IDN?`` fields (IEEE 488.2 section 10.14)."""

    maker: str
    model: str
    serial: str
    firmware: str


@dataclass(frozen=True, slots=True)
class Certificate:
    """The instrument's own calibration: valid through ``due`` (inclusive)."""

    due: date
    #: expanded uncertainty (k=2) of its readings, mmHg
    uncertainty_mmhg: float

    def valid_on(self, day: date) -> bool:
        return day <= self.due


# --------------------------------------------------------------------------- units


def to_mmhg(value: float, unit: Unit) -> float:
    return value if unit is Unit.MMHG else value / KPA_PER_MMHG


def from_mmhg(mmhg: float, unit: Unit) -> float:
    return mmhg if unit is Unit.MMHG else mmhg * KPA_PER_MMHG


# --------------------------------------------------------------------------- lines


def take_line(buffer: bytearray) -> bytes | None:
    """Remove and return the first complete line of ``buffer`` (without LF or CR LF).

    None when no LF has arrived yet.
    """
    end = buffer.find(LF)
    if end == -1:
        return None
    line = bytes(buffer[:end])
    del buffer[: end + 1]
    return line.removesuffix(b"\r")


def _text(line: bytes) -> str | None:
    """The line as text without its terminator, None if it holds a non-printable byte."""
    stripped = line.removesuffix(b"\n").removesuffix(b"\r")
    if any(not 32 <= b < 127 for b in stripped):
        return None
    return stripped.decode("ascii")


def format_number(value: float, decimals: int = 4) -> str:
    """A finite number as SCPI ``<NR2>`` with at most ``decimals`` decimals (``100``, ``50.5``)."""
    if not math.isfinite(value):
        raise ValueError(f"a SCPI number must be finite, got {value!r}")
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _number(text: str) -> float | None:
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- host -> instrument


def _normal_header(raw: str) -> str:
    header = raw.upper()
    if not header.startswith((":", "*")):
        header = ":" + header  # SCPI: the root colon is optional at the start of a message
    return header


def encode_command(header: Header, value: Value = None) -> bytes:
    """One message line, e.g. ``:SOUR:PRES 100`` and LF; raises ValueError for a bad argument."""
    if isinstance(header, Query):
        if value is not None:
            raise ValueError(f"{header} takes no argument")
        return header.value.encode("ascii") + LF
    kind = _ARGUMENT[header]
    if kind is None:
        if value is not None:
            raise ValueError(f"{header} takes no argument")
        return header.value.encode("ascii") + LF
    if kind is bool and isinstance(value, bool):
        argument = "ON" if value else "OFF"
    elif kind is Unit and isinstance(value, Unit):
        argument = value.value
    elif kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        argument = format_number(float(value))
    else:
        raise ValueError(f"{header} takes a {kind.__name__} argument, got {value!r}")
    return f"{header.value} {argument}".encode("ascii") + LF


# --------------------------------------------------------------------------- instrument -> host


ReplyValue = Identity | float | Unit | bool | date | ErrorEntry


@overload
def parse_reply(line: bytes, query: Literal[Query.IDN]) -> Identity: ...
@overload
def parse_reply(
    line: bytes, query: Literal[Query.PRESSURE, Query.SETPOINT, Query.CAL_UNCERTAINTY]
) -> float: ...
@overload
def parse_reply(line: bytes, query: Literal[Query.UNIT]) -> Unit: ...
@overload
def parse_reply(line: bytes, query: Literal[Query.IN_LIMITS]) -> bool: ...
@overload
def parse_reply(line: bytes, query: Literal[Query.CAL_DATE]) -> date: ...
@overload
def parse_reply(line: bytes, query: Literal[Query.ERROR]) -> ErrorEntry: ...
@overload
def parse_reply(line: bytes, query: Query) -> ReplyValue: ...
def parse_reply(line: bytes, query: Query) -> ReplyValue:
    """The typed value of the reply ``line`` (LF and a CR before it are ignored) to ``query``.

    Raises :class:`ManometerReplyError` naming the bytes when the line is not such a reply.
    """
    text = _text(line)
    if text is None:
        raise ManometerReplyError(f"reply to {query} holds a non-printable byte", line)
    return _PARSERS[query](query, text.strip(), line)


def _identity(query: Query, text: str, line: bytes) -> Identity:
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != 4 or not fields[0] or not fields[1]:
        raise ManometerReplyError(f"reply to {query} is not MAKER,MODEL,SERIAL,FIRMWARE", line)
    return Identity(*fields)


def _after_header(query: Query, text: str, line: bytes) -> str:
    expected = query.value.removesuffix("?")
    head, _, rest = text.partition(" ")
    if _normal_header(head) != expected:
        raise ManometerReplyError(f"reply to {query} does not start {expected!r}", line)
    return rest.strip()


def _pressure(query: Query, text: str, line: bytes) -> float:
    value = _number(_after_header(query, text, line))
    if value is None:
        raise ManometerReplyError(f"reply to {query} holds no finite number", line)
    return value


def _unit(query: Query, text: str, line: bytes) -> Unit:
    word = _after_header(query, text, line).upper()
    if word not in Unit.__members__:
        raise ManometerReplyError(f"reply to {query} is not MMHG or KPA", line)
    return Unit(word)


def _flag(query: Query, text: str, line: bytes) -> bool:
    if text not in ("0", "1"):
        raise ManometerReplyError(f"reply to {query} is not 0 or 1", line)
    return text == "1"


def _date(query: Query, text: str, line: bytes) -> date:
    # fullmatch first: date.fromisoformat also takes 20260101 and week dates
    if _DATE.fullmatch(text):
        with contextlib.suppress(ValueError):  # 2026-02-30
            return date.fromisoformat(text)
    raise ManometerReplyError(f"reply to {query} is not a YYYY-MM-DD date", line)


def _uncertainty(query: Query, text: str, line: bytes) -> float:
    value = _number(text)
    if value is None or value < 0:
        raise ManometerReplyError(f"reply to {query} is no non-negative number", line)
    return value


def _error_entry(query: Query, text: str, line: bytes) -> ErrorEntry:
    match = _ERROR.fullmatch(text)
    if match is None:
        raise ManometerReplyError(f'reply to {query} is not <code>,"<text>"', line)
    return int(match.group(1)), match.group(2)


_PARSERS: dict[Query, Callable[[Query, str, bytes], ReplyValue]] = {
    Query.IDN: _identity,
    Query.PRESSURE: _pressure,
    Query.SETPOINT: _pressure,
    Query.UNIT: _unit,
    Query.IN_LIMITS: _flag,
    Query.CAL_DATE: _date,
    Query.CAL_UNCERTAINTY: _uncertainty,
    Query.ERROR: _error_entry,
}
