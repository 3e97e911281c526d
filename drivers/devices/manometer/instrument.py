"""The instrument's side of the manometer protocol: commands parsed, replies encoded (pure).

What a reference manometer does with a line (the protocol is in :mod:`.codec`'s docstring):
used by the simulator (simulators/manometer.py), kept apart from the host's side the driver
needs. A malformed command raises :class:`ManometerCommandError` with the SCPI code the
instrument queues for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from drivers.devices.manometer.codec import (
    _ARGUMENT,
    _HEADER,
    _HEADERS,
    LF,
    Header,
    Identity,
    ManometerCommandError,
    Query,
    ReplyValue,
    Setting,
    Unit,
    Value,
    _normal_header,
    _number,
    _text,
)

NO_ERROR = (0, "No error")

# SCPI-99 vol. 2, chapter 21: the standard error/event numbers the simulator queues.
INVALID_CHARACTER = (-101, "Invalid character")
DATA_TYPE_ERROR = (-104, "Data type error")
PARAMETER_NOT_ALLOWED = (-108, "Parameter not allowed")
MISSING_PARAMETER = (-109, "Missing parameter")
UNDEFINED_HEADER = (-113, "Undefined header")
DATA_OUT_OF_RANGE = (-222, "Data out of range")
ILLEGAL_PARAMETER_VALUE = (-224, "Illegal parameter value")
QUEUE_OVERFLOW = (-350, "Queue overflow")
INPUT_BUFFER_OVERRUN = (-363, "Input buffer overrun")


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed message: a query (``value`` None) or a setting with its typed argument."""

    header: Header
    value: Value = None


def parse_command(line: bytes) -> Command:
    """Parse a message line (instrument side).

    Raises :class:`ManometerCommandError` carrying the SCPI error the instrument queues.
    """
    text = _text(line)
    if text is None:
        raise ManometerCommandError(*INVALID_CHARACTER)
    head, _, rest = text.strip().partition(" ")
    header = _normal_header(head)
    argument = rest.strip()
    if not _HEADER.fullmatch(header) or header not in _HEADERS:
        raise ManometerCommandError(*UNDEFINED_HEADER)
    known = _HEADERS[header]
    kind = _ARGUMENT.get(known) if isinstance(known, Setting) else None
    if kind is None:
        if argument:
            raise ManometerCommandError(*PARAMETER_NOT_ALLOWED)
        return Command(known)
    if not argument:
        raise ManometerCommandError(*MISSING_PARAMETER)
    word = argument.upper()
    if kind is bool:
        if word not in ("ON", "OFF", "1", "0"):
            raise ManometerCommandError(*ILLEGAL_PARAMETER_VALUE)
        return Command(known, word in ("ON", "1"))
    if kind is Unit:
        if word not in Unit.__members__:
            raise ManometerCommandError(*ILLEGAL_PARAMETER_VALUE)
        return Command(known, Unit(word))
    number = _number(argument)
    if number is None:
        raise ManometerCommandError(*DATA_TYPE_ERROR)
    return Command(known, number)


def encode_reply(query: Query, value: ReplyValue, decimals: int = 2) -> bytes:
    """The reply line to ``query`` (instrument side); numbers get at most ``decimals`` decimals."""
    if query is Query.IDN and isinstance(value, Identity):
        fields = (value.maker, value.model, value.serial, value.firmware)
        if any("," in f or _text(f.encode("ascii")) is None for f in fields):
            raise ValueError(f"identity fields must be printable ASCII without commas: {value}")
        text = ",".join(fields)
    elif query in (Query.PRESSURE, Query.SETPOINT) and isinstance(value, float | int):
        text = f"{query.value.removesuffix('?')} {value:.{decimals}f}"
    elif query is Query.UNIT and isinstance(value, Unit):
        text = f"{Setting.UNIT.value} {value.value}"
    elif query is Query.IN_LIMITS and isinstance(value, bool):
        text = "1" if value else "0"
    elif query is Query.CAL_DATE and isinstance(value, date):
        text = value.isoformat()
    elif query is Query.CAL_UNCERTAINTY and isinstance(value, float | int):
        text = f"{value:.{decimals}f}"
    elif query is Query.ERROR and isinstance(value, tuple):
        code, message = value
        if '"' in message:
            raise ValueError(f"an error text cannot hold a double quote: {message!r}")
        text = f'{code},"{message}"'
    else:
        raise ValueError(f"no reply to {query} holds {value!r}")
    return text.encode("ascii") + LF
