"""CT-80 codec: byte vectors, round trips, and stream properties (any chunking, any noise)."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.codec.framing import ETX, STX, bcc_hex
from drivers.devices.ct80 import FRAME_LENGTH, Ct80Record, EyeResult, IopValue, decode, encode
from drivers.devices.ct80.codec import BODY_LENGTH, to_readings
from drivers.errors import FrameError
from drivers.readings import ReadingStatus

# A record written out field by field (layout: CT-80 manual, communication format Mode 5 /
# STD 2; padding, time layout and BCC are our documented assumptions in the codec docstring).
BODY = (
    b"CT-80          "  # model, type no.        15
    b"01"  # machine no.                          2
    b"SIM 1.0   "  # ROM version                 10
    b"0000000000042"  # ID no. (patient)         13
    b"W000000000007"  # work ID no.              13
    b"0007"  # machine work ID                    4
    b"2026/11/23  10:15:42"  # time/date         20
    b"  15.0  16.0  14.0  15.0"  # R: 3 + avg     24
    b"  OVER  OVER  OVER  OVER"  # L: over range  24
)
VECTOR = bytes([STX]) + BODY + bytes([ETX]) + bcc_hex(BODY + bytes([ETX]))

RECORD = Ct80Record(
    model="CT-80",
    machine_no="01",
    rom_version="SIM 1.0",
    patient_id="0000000000042",
    work_id="W000000000007",
    machine_work_id="0007",
    time=datetime(2026, 11, 23, 10, 15, 42),
    right=EyeResult(
        readings=(IopValue("value", 15.0), IopValue("value", 16.0), IopValue("value", 14.0)),
        average=IopValue("value", 15.0),
    ),
    left=EyeResult(
        readings=(IopValue("over"), IopValue("over"), IopValue("over")),
        average=IopValue("over"),
    ),
)


def test_vector_layout_is_the_documented_one() -> None:
    assert len(BODY) == BODY_LENGTH == 125
    assert len(VECTOR) == FRAME_LENGTH == 129


def test_decode_vector_gives_the_whole_record() -> None:
    assert decode(VECTOR) == (RECORD, FRAME_LENGTH)


def test_encode_vector_is_byte_exact() -> None:
    assert encode(RECORD) == VECTOR


def test_bcc_is_xor_of_body_and_etx_in_hex() -> None:
    x = 0
    for b in BODY + bytes([ETX]):
        x ^= b
    assert VECTOR[-2:] == f"{x:02X}".encode()


def test_readings_of_vector() -> None:
    right, left = to_readings(RECORD)
    assert (right.quantity, right.value, right.unit, right.status) == (
        "iop.right",
        15.0,
        "mmHg",
        ReadingStatus.OK,
    )
    assert right.components == (15.0, 16.0, 14.0)
    assert (left.quantity, left.value, left.status) == ("iop.left", None, ReadingStatus.OVER_RANGE)
    assert right.record_key == left.record_key == RECORD.key


def test_unreliable_and_blank_fields() -> None:
    body = BODY[:-48] + b"(15.0)  16.0      (15.5)" + b" " * 24
    frame = bytes([STX]) + body + bytes([ETX]) + bcc_hex(body + bytes([ETX]))
    record, _ = decode(frame)
    assert record is not None
    assert record.right.readings[0] == IopValue("unreliable", 15.0)
    assert record.right.readings[2] == IopValue("absent")
    assert record.right.average == IopValue("unreliable", 15.5)
    assert record.left == EyeResult()
    (only,) = to_readings(record)  # a blank eye yields no reading
    assert only.status is ReadingStatus.UNRELIABLE


def test_incomplete_frame_waits_for_more() -> None:
    for cut in range(1, FRAME_LENGTH):
        assert decode(VECTOR[:cut]) == (None, 0)


@pytest.mark.parametrize(
    ("frame", "reason", "consumed"),
    [
        (b"xyz" + VECTOR, "noise before STX", 3),
        (b"\x00\xff", "noise outside a frame", 2),
        (VECTOR[:50] + VECTOR, "frame truncated by a new STX", 50),
        (VECTOR[:-2] + b"00", "BCC mismatch", 1),
        (VECTOR[:-3] + b"X" + VECTOR[-2:], "ETX missing at end of record", 1),
        (VECTOR[:10] + b"\x7f" + VECTOR[11:], "non-printable byte in record body", 10),
    ],
)
def test_bad_input_names_what_and_where(frame: bytes, reason: str, consumed: int) -> None:
    with pytest.raises(FrameError) as info:
        decode(frame)
    assert info.value.reason == reason
    assert info.value.consumed == consumed


def _framed(body: bytes) -> bytes:
    return bytes([STX]) + body + bytes([ETX]) + bcc_hex(body + bytes([ETX]))


def test_bad_field_with_valid_bcc_is_refused_whole_with_its_offset() -> None:
    body = BODY[:57] + b"2026/13/23  10:15:42" + BODY[77:]
    with pytest.raises(FrameError) as info:
        decode(_framed(body))
    assert info.value.reason == "time/date field malformed"
    assert info.value.offset == 58  # 1 (STX) + 57 bytes of preceding fields
    assert info.value.consumed == FRAME_LENGTH
    body = BODY[:-24] + b"  1x.0" + BODY[-18:]
    with pytest.raises(FrameError, match="IOP field is not a number") as info:
        decode(_framed(body))
    assert info.value.offset == 1 + BODY_LENGTH - 24


# --------------------------------------------------------------------------- properties

iop = st.one_of(
    st.just(IopValue("absent")),
    st.just(IopValue("over")),
    st.builds(
        IopValue,
        st.sampled_from(["value", "unreliable"]),
        st.integers(0, 999).map(lambda n: n / 10),
    ),
)
eye = st.builds(EyeResult, st.tuples(iop, iop, iop), iop)
text = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=4)
records = st.builds(
    Ct80Record,
    model=st.just("CT-80"),
    machine_no=st.from_regex(r"[0-9]{2}", fullmatch=True),
    rom_version=text,
    patient_id=st.from_regex(r"[0-9]{13}", fullmatch=True),
    work_id=text,
    machine_work_id=st.from_regex(r"[0-9]{4}", fullmatch=True),
    time=st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
        lambda t: t.replace(microsecond=0)
    ),
    right=eye,
    left=eye,
)


def decode_stream(chunks: list[bytes]) -> tuple[list[Ct80Record], list[FrameError]]:
    """What the driver does: feed chunks, decode greedily, drop what errors tell it to."""
    buf = bytearray()
    out: list[Ct80Record] = []
    errors: list[FrameError] = []
    for chunk in chunks:
        buf.extend(chunk)
        while buf:
            try:
                record, consumed = decode(bytes(buf))
            except FrameError as exc:
                errors.append(exc)
                del buf[: exc.consumed]
                continue
            if record is None:
                break
            out.append(record)
            del buf[:consumed]
    return out, errors


@given(records)
def test_round_trip(record: Ct80Record) -> None:
    assert decode(encode(record)) == (record, FRAME_LENGTH)


@given(st.lists(records, max_size=5), st.data())
def test_any_chunking_yields_the_same_records(recs: list[Ct80Record], data: st.DataObject) -> None:
    stream = b"".join(encode(r) for r in recs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert decode_stream(chunks) == (recs, [])


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_frame_errors(blob: bytes) -> None:
    decode_stream([blob])  # anything but FrameError propagates and fails the test


@given(st.lists(records, min_size=2, max_size=4), st.data())
def test_a_garbled_record_is_reported_and_its_neighbours_arrive(
    recs: list[Ct80Record], data: st.DataObject
) -> None:
    victim = data.draw(st.integers(0, len(recs) - 1))
    frames = [bytearray(encode(r)) for r in recs]
    pos = data.draw(st.integers(1, FRAME_LENGTH - 1))
    frames[victim][pos] ^= 1 << data.draw(st.integers(0, 6))
    got, errors = decode_stream([bytes(f) for f in frames])
    assert got == [r for i, r in enumerate(recs) if i != victim]
    assert errors, "the garbled frame must be reported"
