"""Record Access Control Point (0x2A52): requests and responses, for collector and glucometer.

Implements the value of the Bluetooth "GATT Specification Supplement" section "Record Access
Control Point" (GSS v8 3.178: Op Code, Operator, Operand, Response Code Values) with the
procedures of Glucose Service / Glucose Profile 1.0 ("Record Access Control Point" sections):
Report stored records (1), Delete stored records (2), Abort operation (3) and Report number of
stored records (4) are written by the collector; the sensor indicates Number of stored records
response (5, operand uint16) or Response Code (6, operand Request Op Code + Response Code Value).
The Operator of a response and of Abort is Null; the others filter by operator, and where the
operator needs an operand it is Filter Type 0x01 (sequence number) and one or two uint16.

Decisions, where the specifications leave room:

* A request a glucometer must refuse raises :class:`RacpRequestError`, a :class:`GattParseError`
  carrying the Response Code indication that answers it. The codes follow the services' error
  clauses (PLXS 1.0.1 section 3.4.8 "RACP Specific Errors"; GLS 1.0 has the same rules) and
  Nordic's nRF5 ble_gls.c where they are silent: unknown op code -> Op Code Not Supported;
  missing operator, Null where one is needed or non-Null for Abort -> Invalid Operator; RFU
  operator (7..255) -> Operator Not Supported; Filter Type 0x02 (user facing time, defined by
  GLS but not implemented here) or RFU -> Operand Not Supported; Filter Type 0, a missing, short
  or extra operand, or a range whose minimum exceeds its maximum -> Invalid Operand.
* A Response Code may name any request op code, including one the server did not know (Op Code
  Not Supported echoes it): such an op code is kept as a bare ``int``; with any other response
  code it is an inconsistency and refused. Other pairings (Abort unsuccessful for a report, say)
  are not policed: the Response Code is the server's account of what happened.
* The Number of stored records operand is a uint16 (GLS and PLXS). Nordic's Android library also
  accepts 1 and 4 bytes; we refuse them, as any length the flags/op code did not announce.
* Response Code Values 0x0A..0xFF are RFU in GLS 1.0 and refused (later GSS revisions define
  0x0A "Server busy" for other services).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeAlias

from drivers.ble.gatt.reader import GattParseError, Reader, Writer

RECORD_ACCESS_CONTROL_POINT = "Record Access Control Point"


class RacpOpCode(IntEnum):
    REPORT_STORED_RECORDS = 1
    DELETE_STORED_RECORDS = 2
    ABORT_OPERATION = 3
    REPORT_NUMBER_OF_STORED_RECORDS = 4
    NUMBER_OF_STORED_RECORDS_RESPONSE = 5
    RESPONSE_CODE = 6


class RacpOperator(IntEnum):
    NULL = 0
    ALL_RECORDS = 1
    LESS_THAN_OR_EQUAL = 2
    GREATER_THAN_OR_EQUAL = 3
    WITHIN_RANGE = 4  # inclusive
    FIRST_RECORD = 5  # oldest
    LAST_RECORD = 6  # most recent


class RacpFilterType(IntEnum):
    SEQUENCE_NUMBER = 1
    USER_FACING_TIME = 2  # GLS: Base Time + Time Offset; not supported here


class RacpResponseCode(IntEnum):
    SUCCESS = 1
    OP_CODE_NOT_SUPPORTED = 2
    INVALID_OPERATOR = 3
    OPERATOR_NOT_SUPPORTED = 4
    INVALID_OPERAND = 5
    NO_RECORDS_FOUND = 6
    ABORT_UNSUCCESSFUL = 7
    PROCEDURE_NOT_COMPLETED = 8
    OPERAND_NOT_SUPPORTED = 9


_REQUESTS = frozenset(range(1, 5))
_OP_CODES = frozenset(RacpOpCode)
_OPERATORS = frozenset(RacpOperator)
# which of (minimum, maximum) the operand of each filtering operator carries
_BOUNDS = {
    RacpOperator.LESS_THAN_OR_EQUAL: (False, True),
    RacpOperator.GREATER_THAN_OR_EQUAL: (True, False),
    RacpOperator.WITHIN_RANGE: (True, True),
}


@dataclass(frozen=True, slots=True)
class RacpRequest:
    """A request; ``minimum``/``maximum`` are the sequence-number bounds its operator takes."""

    op_code: RacpOpCode
    operator: RacpOperator
    minimum: int | None = None
    maximum: int | None = None

    def __post_init__(self) -> None:
        if self.op_code not in _REQUESTS:
            raise ValueError(f"{self.op_code!r} is not a request")
        if (self.operator == RacpOperator.NULL) != (self.op_code == RacpOpCode.ABORT_OPERATION):
            raise ValueError(f"{self.operator!r} is not an operator of {self.op_code!r}")
        wants = _BOUNDS.get(self.operator, (False, False))
        bounds = (self.minimum, self.maximum)
        if tuple(b is not None for b in bounds) != wants:
            raise ValueError(f"{self.operator!r} takes (minimum, maximum) present as {wants}")
        if any(b is not None and not 0 <= b <= 0xFFFF for b in bounds):
            raise ValueError(f"sequence numbers are uint16, got {bounds}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"range {self.minimum}..{self.maximum} is empty")


@dataclass(frozen=True, slots=True)
class RacpNumberOfRecordsResponse:
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.count <= 0xFFFF:
            raise ValueError(f"number of records {self.count} is no uint16")


@dataclass(frozen=True, slots=True)
class RacpGeneralResponse:
    """Response Code: the outcome of the request whose op code it names."""

    request_op_code: RacpOpCode | int
    response_code: RacpResponseCode

    def __post_init__(self) -> None:
        if not 0 <= self.request_op_code <= 0xFF:
            raise ValueError(f"request op code {self.request_op_code} is no uint8")
        if not _consistent(self.request_op_code, self.response_code):
            raise ValueError(f"{self.response_code!r} cannot answer op code {self.request_op_code}")


RacpResponse: TypeAlias = RacpNumberOfRecordsResponse | RacpGeneralResponse


def _consistent(request_op_code: int, code: RacpResponseCode) -> bool:
    # only Op Code Not Supported answers what is not a request (GLS/PLXS RACP Specific Errors)
    return request_op_code in _REQUESTS or code == RacpResponseCode.OP_CODE_NOT_SUPPORTED


def _op_code(raw: int) -> RacpOpCode | int:
    return RacpOpCode(raw) if raw in _OP_CODES else raw


class RacpRequestError(GattParseError):
    """A request the server must refuse; :attr:`response` is the indication that answers it."""

    def __init__(self, cause: GattParseError, response: RacpGeneralResponse) -> None:
        super().__init__(cause.characteristic, cause.field, cause.offset, cause.reason)
        self.response = response


def _refuse(
    r: Reader, op: int, code: RacpResponseCode, field: str, reason: str, at: int
) -> RacpRequestError:
    return RacpRequestError(r.error(field, reason, at), RacpGeneralResponse(_op_code(op), code))


@contextmanager
def _answering(op: int, code: RacpResponseCode) -> Iterator[None]:
    """Turn a reader fault (truncation, trailing bytes) into the refusal ``code``."""
    try:
        yield
    except GattParseError as exc:
        raise RacpRequestError(exc, RacpGeneralResponse(_op_code(op), code)) from exc


def parse_racp_request(data: bytes) -> RacpRequest:
    """What a glucometer receives; a refused request raises :class:`RacpRequestError`."""
    r = Reader(data, RECORD_ACCESS_CONTROL_POINT)
    with _answering(0, RacpResponseCode.OP_CODE_NOT_SUPPORTED):
        op = r.u8("op_code")
    if op not in _REQUESTS:
        code = RacpResponseCode.OP_CODE_NOT_SUPPORTED
        raise _refuse(r, op, code, "op_code", f"{op:#04x} is not a request op code", 0)
    with _answering(op, RacpResponseCode.INVALID_OPERATOR):
        raw = r.u8("operator")
    if raw not in _OPERATORS:
        code = RacpResponseCode.OPERATOR_NOT_SUPPORTED
        raise _refuse(r, op, code, "operator", f"{raw:#04x} is reserved for future use", 1)
    operator = RacpOperator(raw)
    if (operator == RacpOperator.NULL) != (op == RacpOpCode.ABORT_OPERATION):
        need = "the Null operator" if op == RacpOpCode.ABORT_OPERATION else "a non-Null operator"
        reason = f"{RacpOpCode(op).name} takes {need}, not {operator.name}"
        raise _refuse(r, op, RacpResponseCode.INVALID_OPERATOR, "operator", reason, 1)
    bounds: list[int | None] = [None, None]
    wants = _BOUNDS.get(operator, (False, False))
    if any(wants):
        with _answering(op, RacpResponseCode.INVALID_OPERAND):
            kind = r.u8("filter_type")
        if kind != RacpFilterType.SEQUENCE_NUMBER:
            code = RacpResponseCode.INVALID_OPERAND
            if kind != 0:  # 0 is no filter type at all; 0x02 and RFU ones are filters we lack
                code = RacpResponseCode.OPERAND_NOT_SUPPORTED
            raise _refuse(r, op, code, "filter_type", f"{kind:#04x} is no sequence number", 2)
        with _answering(op, RacpResponseCode.INVALID_OPERAND):
            for i, name in enumerate(("minimum", "maximum")):
                if wants[i]:
                    bounds[i] = r.u16(name)
    low, high = bounds
    if low is not None and high is not None and low > high:
        code = RacpResponseCode.INVALID_OPERAND
        raise _refuse(r, op, code, "maximum", f"range {low}..{high} is empty", 5)
    with _answering(op, RacpResponseCode.INVALID_OPERAND):
        r.end()
    return RacpRequest(RacpOpCode(op), operator, low, high)


def encode_racp_request(request: RacpRequest) -> bytes:
    w = Writer().u8(request.op_code).u8(request.operator)
    bounds = [b for b in (request.minimum, request.maximum) if b is not None]
    if bounds:
        w.u8(RacpFilterType.SEQUENCE_NUMBER)
        for bound in bounds:
            w.u16(bound)
    return w.bytes()


def parse_racp_response(data: bytes) -> RacpResponse:
    """What a collector receives in an indication."""
    r = Reader(data, RECORD_ACCESS_CONTROL_POINT)
    op = r.u8("op_code")
    if op not in (RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, RacpOpCode.RESPONSE_CODE):
        raise r.error("op_code", f"{op:#04x} is not a response op code", 0)
    operator = r.u8("operator")
    if operator != RacpOperator.NULL:
        raise r.error("operator", f"a response takes the Null operator, not {operator:#04x}", 1)
    if op == RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        count = r.u16("number_of_records")
        r.end()
        return RacpNumberOfRecordsResponse(count)
    request = r.u8("request_op_code")
    raw = r.u8("response_code")
    try:
        code = RacpResponseCode(raw)
    except ValueError:
        raise r.error("response_code", f"{raw:#04x} is reserved for future use", 3) from None
    if not _consistent(request, code):
        raise r.error("request_op_code", f"{code.name} cannot answer op code {request:#04x}", 2)
    r.end()
    return RacpGeneralResponse(_op_code(request), code)


def encode_racp_response(response: RacpResponse) -> bytes:
    w = Writer()
    if isinstance(response, RacpNumberOfRecordsResponse):
        w.u8(RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE).u8(RacpOperator.NULL)
        return w.u16(response.count).bytes()
    w.u8(RacpOpCode.RESPONSE_CODE).u8(RacpOperator.NULL)
    return w.u8(response.request_op_code).u8(response.response_code).bytes()


# For 0x2A52 a central receives responses (indications); requests are what it writes.
CHARACTERISTICS: dict[int, tuple[str, Callable[[bytes], object], Callable[[Any], bytes]]] = {
    0x2A52: (RECORD_ACCESS_CONTROL_POINT, parse_racp_response, encode_racp_response),
}
