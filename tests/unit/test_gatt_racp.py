"""Record Access Control Point: public vectors, refusals a glucometer answers, properties."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ble.gatt.racp import (
    CHARACTERISTICS,
    RacpGeneralResponse,
    RacpNumberOfRecordsResponse,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpRequestError,
    RacpResponse,
    RacpResponseCode,
    encode_racp_request,
    encode_racp_response,
    parse_racp_request,
    parse_racp_response,
)
from drivers.ble.gatt.reader import GattParseError
from tests.gatt_checks import assert_every_prefix_refused

OP = RacpOpCode
OPERATOR = RacpOperator
CODE = RacpResponseCode

# --------------------------------------------------------------------------- responses

# NordicSemiconductor/Android-BLE-Common-Library, ble-common/src/test/java/no/nordicsemi/android/
# ble/common/callback/RecordAccessControlPointDataCallbackTest.java: one Response Code indication
# per response code value (request op code, code). Op code 12 is RFU: "Op Code not supported"
# echoes whatever the collector wrote.
NORDIC_RESPONSE_CODES = [
    (bytes([6, 0, 1, 1]), 1, CODE.SUCCESS),
    (bytes([6, 0, 12, 2]), 12, CODE.OP_CODE_NOT_SUPPORTED),
    (bytes([6, 0, 1, 3]), 1, CODE.INVALID_OPERATOR),
    (bytes([6, 0, 2, 4]), 2, CODE.OPERATOR_NOT_SUPPORTED),
    (bytes([6, 0, 1, 5]), 1, CODE.INVALID_OPERAND),
    (bytes([6, 0, 1, 6]), 1, CODE.NO_RECORDS_FOUND),
    (bytes([6, 0, 3, 7]), 3, CODE.ABORT_UNSUCCESSFUL),
    (bytes([6, 0, 2, 8]), 2, CODE.PROCEDURE_NOT_COMPLETED),
    (bytes([6, 0, 2, 9]), 2, CODE.OPERAND_NOT_SUPPORTED),
]


@pytest.mark.parametrize(("data", "request_op", "code"), NORDIC_RESPONSE_CODES)
def test_every_response_code(data: bytes, request_op: int, code: RacpResponseCode) -> None:
    response = parse_racp_response(data)
    assert response == RacpGeneralResponse(request_op, code)
    assert isinstance(response, RacpGeneralResponse)
    assert response.response_code is code
    assert encode_racp_response(response) == data


def test_known_request_op_code_is_an_enum_and_unknown_one_an_int() -> None:
    success = parse_racp_response(bytes([6, 0, 1, 1]))
    assert isinstance(success, RacpGeneralResponse)
    assert success.request_op_code is OP.REPORT_STORED_RECORDS
    unknown = parse_racp_response(bytes([6, 0, 12, 2]))
    assert isinstance(unknown, RacpGeneralResponse)
    assert type(unknown.request_op_code) is int


def test_number_of_stored_records() -> None:
    # Nordic test onNumberOfRecordsReceived_uint16: 0x0102 = 258 records
    assert parse_racp_response(bytes([5, 0, 2, 1])) == RacpNumberOfRecordsResponse(258)
    assert encode_racp_response(RacpNumberOfRecordsResponse(258)) == bytes([5, 0, 2, 1])


@pytest.mark.parametrize(
    ("data", "field", "offset"),
    [
        # Nordic accepts a uint8, uint32 or "unknown" count; GLS/PLXS say uint16 (PLXS 3.4.7)
        (bytes([5, 0, 1]), "number_of_records", 2),  # onNumberOfRecordsReceived_uint8
        (bytes([5, 0, 4, 3, 2, 1]), "end", 4),  # onNumberOfRecordsReceived_uint32
        (bytes([5, 0, 3, 2, 1]), "end", 4),  # onNumberOfRecordsReceived_unsupportedLength
        (bytes([6, 0, 1, 10]), "response_code", 3),  # onRecordAccessOperationError_unknownErrorCode
        (bytes([1, 1]), "op_code", 0),  # onInvalidDataReceived_tooShort: a request
        (bytes([1, 3, 1, 2, 0]), "op_code", 0),  # onInvalidDataReceived_wrongOpCode
        (bytes([6, 1, 1]), "operator", 1),  # onInvalidDataReceived_invalidOperator
        (bytes([6, 0, 5, 1]), "request_op_code", 2),  # hand-made: "success" of a response
        (bytes([6, 0, 0, 9]), "request_op_code", 2),  # hand-made: RFU op 0, not "not supported"
        (bytes([6, 0, 1, 0]), "response_code", 3),  # hand-made: response code 0 is RFU
    ],
)
def test_responses_refused(data: bytes, field: str, offset: int) -> None:
    with pytest.raises(GattParseError) as caught:
        parse_racp_response(data)
    assert (caught.value.field, caught.value.offset) == (field, offset)


# --------------------------------------------------------------------------- requests

# The bytes NordicSemiconductor/Android-BLE-Common-Library ble-common/src/main/java/no/nordicsemi/
# android/ble/common/data/RecordAccessControlPointData.java writes for each request (op code,
# operator, and for filters Filter Type 0x01 + uint16 sequence numbers); the sequence numbers 12,
# 41 and 12..412 are those of StanfordSpezi/SpeziBluetooth Tests/SpeziBluetoothServicesTests/
# RecordAccessControlPointTests.swift (412 = 0x019C).
REQUESTS = [
    (bytes([1, 1]), RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.ALL_RECORDS)),
    (bytes([1, 5]), RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.FIRST_RECORD)),
    (bytes([1, 6]), RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.LAST_RECORD)),
    (
        bytes([1, 3, 1, 12, 0]),
        RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.GREATER_THAN_OR_EQUAL, minimum=12),
    ),
    (
        bytes([2, 2, 1, 41, 0]),
        RacpRequest(OP.DELETE_STORED_RECORDS, OPERATOR.LESS_THAN_OR_EQUAL, maximum=41),
    ),
    (
        bytes([4, 4, 1, 12, 0, 0x9C, 0x01]),
        RacpRequest(OP.REPORT_NUMBER_OF_STORED_RECORDS, OPERATOR.WITHIN_RANGE, 12, 412),
    ),
    (bytes([2, 1]), RacpRequest(OP.DELETE_STORED_RECORDS, OPERATOR.ALL_RECORDS)),
    (bytes([3, 0]), RacpRequest(OP.ABORT_OPERATION, OPERATOR.NULL)),
    (bytes([4, 1]), RacpRequest(OP.REPORT_NUMBER_OF_STORED_RECORDS, OPERATOR.ALL_RECORDS)),
]


@pytest.mark.parametrize(("data", "value"), REQUESTS)
def test_request_vectors(data: bytes, value: RacpRequest) -> None:
    assert encode_racp_request(value) == data
    assert parse_racp_request(data) == value


@pytest.mark.parametrize(
    ("data", "code", "field", "offset"),
    [
        (b"", CODE.OP_CODE_NOT_SUPPORTED, "op_code", 0),
        (bytes([0, 1]), CODE.OP_CODE_NOT_SUPPORTED, "op_code", 0),
        (bytes([5, 0, 2, 1]), CODE.OP_CODE_NOT_SUPPORTED, "op_code", 0),  # a response written
        (bytes([0x20, 1]), CODE.OP_CODE_NOT_SUPPORTED, "op_code", 0),
        (bytes([1]), CODE.INVALID_OPERATOR, "operator", 1),
        (bytes([1, 0]), CODE.INVALID_OPERATOR, "operator", 1),  # Null where a filter is needed
        (bytes([3, 1]), CODE.INVALID_OPERATOR, "operator", 1),  # Abort takes Null
        (bytes([1, 7]), CODE.OPERATOR_NOT_SUPPORTED, "operator", 1),  # RFU operator
        (bytes([4, 0xFF]), CODE.OPERATOR_NOT_SUPPORTED, "operator", 1),
        (bytes([1, 3]), CODE.INVALID_OPERAND, "filter_type", 2),
        (bytes([1, 3, 0, 1, 0]), CODE.INVALID_OPERAND, "filter_type", 2),  # filter type 0
        (bytes([1, 3, 2] + [0] * 7), CODE.OPERAND_NOT_SUPPORTED, "filter_type", 2),  # user time
        (bytes([1, 3, 9, 1, 0]), CODE.OPERAND_NOT_SUPPORTED, "filter_type", 2),  # RFU filter
        (bytes([1, 3, 1, 1]), CODE.INVALID_OPERAND, "minimum", 3),
        (bytes([1, 4, 1, 1, 0]), CODE.INVALID_OPERAND, "maximum", 5),
        (bytes([1, 4, 1, 5, 0, 4, 0]), CODE.INVALID_OPERAND, "maximum", 5),  # 5..4 is empty
        (bytes([1, 1, 1, 5, 0]), CODE.INVALID_OPERAND, "end", 2),  # All records takes no operand
        (bytes([1, 2, 1, 5, 0, 6, 0]), CODE.INVALID_OPERAND, "end", 5),  # <= takes one bound
        (bytes([3, 0, 0]), CODE.INVALID_OPERAND, "end", 2),
    ],
)
def test_refused_requests_carry_their_answer(
    data: bytes, code: RacpResponseCode, field: str, offset: int
) -> None:
    with pytest.raises(RacpRequestError) as caught:
        parse_racp_request(data)
    error = caught.value
    assert (error.response.response_code, error.field, error.offset) == (code, field, offset)
    assert error.response.request_op_code == (data[0] if data else 0)
    # the answer is a valid indication: the collector's parser reads it back
    assert parse_racp_response(encode_racp_response(error.response)) == error.response


def test_invalid_values_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="not a request"):
        RacpRequest(OP.RESPONSE_CODE, OPERATOR.NULL)
    with pytest.raises(ValueError, match="not an operator"):
        RacpRequest(OP.ABORT_OPERATION, OPERATOR.ALL_RECORDS)
    with pytest.raises(ValueError, match="takes"):
        RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.WITHIN_RANGE, minimum=1)
    with pytest.raises(ValueError, match="empty"):
        RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.WITHIN_RANGE, 3, 2)
    with pytest.raises(ValueError, match="uint16"):
        RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.LESS_THAN_OR_EQUAL, maximum=0x10000)
    with pytest.raises(ValueError, match="cannot answer"):
        RacpGeneralResponse(OP.RESPONSE_CODE, CODE.SUCCESS)
    with pytest.raises(ValueError, match="uint16"):
        RacpNumberOfRecordsResponse(-1)


# --------------------------------------------------------------------------- properties

sequence_numbers = st.integers(0, 0xFFFF)


@st.composite
def requests(draw: st.DrawFn) -> RacpRequest:
    op = draw(st.sampled_from([OP(n) for n in range(1, 5)]))
    if op is OP.ABORT_OPERATION:
        return RacpRequest(op, OPERATOR.NULL)
    operator = draw(st.sampled_from([o for o in RacpOperator if o is not OPERATOR.NULL]))
    low, high = sorted((draw(sequence_numbers), draw(sequence_numbers)))
    if operator is OPERATOR.WITHIN_RANGE:
        return RacpRequest(op, operator, low, high)
    if operator is OPERATOR.GREATER_THAN_OR_EQUAL:
        return RacpRequest(op, operator, minimum=low)
    if operator is OPERATOR.LESS_THAN_OR_EQUAL:
        return RacpRequest(op, operator, maximum=high)
    return RacpRequest(op, operator)


@st.composite
def general_responses(draw: st.DrawFn) -> RacpGeneralResponse:
    code = draw(st.sampled_from(RacpResponseCode))
    if code is CODE.OP_CODE_NOT_SUPPORTED:
        return RacpGeneralResponse(draw(st.integers(0, 0xFF)), code)
    return RacpGeneralResponse(draw(st.sampled_from([OP(n) for n in range(1, 5)])), code)


responses = general_responses() | st.builds(RacpNumberOfRecordsResponse, sequence_numbers)


@given(requests())
def test_request_round_trip(value: RacpRequest) -> None:
    assert parse_racp_request(encode_racp_request(value)) == value


@given(responses)
def test_response_round_trip(response: RacpResponse) -> None:
    assert parse_racp_response(encode_racp_response(response)) == response


@given(st.binary(max_size=40))
def test_random_requests_are_parsed_or_answered(data: bytes) -> None:
    try:
        value = parse_racp_request(data)
    except RacpRequestError as error:  # a GattParseError that knows the indication to send
        answer = error.response
    else:
        assert encode_racp_request(value) == data  # a valid request has one encoding
        return
    assert parse_racp_response(encode_racp_response(answer)) == answer


@pytest.mark.parametrize(
    ("parse", "full"),
    [
        (parse_racp_request, bytes([4, 4, 1, 12, 0, 0x9C, 0x01])),
        (parse_racp_request, bytes([1, 2, 1, 41, 0])),
        (parse_racp_response, bytes([6, 0, 1, 1])),
        (parse_racp_response, bytes([5, 0, 2, 1])),
    ],
)
def test_every_strict_prefix_is_truncated(parse: Callable[[bytes], object], full: bytes) -> None:
    assert_every_prefix_refused(parse, full, reason="truncated")


def test_characteristics_table_maps_the_response_parser() -> None:
    assert list(CHARACTERISTICS) == [0x2A52]
    name, parse, encode = CHARACTERISTICS[0x2A52]
    assert (name, parse, encode) == (
        "Record Access Control Point",
        parse_racp_response,
        encode_racp_response,
    )
