"""NIBP module codec: byte vectors, malformed payloads, and stream properties."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codec import sampleframes as sf
from drivers.codec.sampleframes import Ack, Frame, MeasurementEnd, Packet, Replay, Resend, Samples
from drivers.devices.nibp import (
    CuffState,
    MeasurementStart,
    NibpMessage,
    Outcome,
    Service,
    ServiceMode,
    Start,
    Status,
    Stop,
    decode,
    encode,
    parse,
)
from drivers.errors import FrameError
from tests.unit.test_sampleframes import chunked, crc_reference

# MEASUREMENT_START of measurement 7, written field by field (layout: drivers/devices/nibp/codec.py)
START_PAYLOAD = (
    bytes.fromhex("07000000")  # measurement id u32
    + bytes.fromhex("f401")  # fs u16 = 500 Hz
    + bytes.fromhex("ea07 0b 17 0a 0f 2a")  # 2026-11-23 10:15:42
    + bytes.fromhex("01")  # sample format: one channel of u16 counts
    + b"SB-NIBP     "  # model, 12 ASCII
    + b"SN0042      "  # serial, 12 ASCII
)
START_VECTOR = bytes.fromhex("a5 01 0000 2600") + START_PAYLOAD + bytes.fromhex("b46c")
START = MeasurementStart(7, 500, datetime(2026, 11, 23, 10, 15, 42), "SB-NIBP", "SN0042")


def test_start_vector_layout_and_crc() -> None:
    assert len(START_PAYLOAD) == 0x26
    assert crc_reference(START_VECTOR[1:-2]) == 0xB46C


def test_start_vector_decodes_whole_and_encodes_byte_exact() -> None:
    assert decode(START_VECTOR) == (Packet(0, START), len(START_VECTOR))
    assert encode(Packet(0, START)) == START_VECTOR


@pytest.mark.parametrize(
    ("message", "payload"),
    [
        (Samples(7, 10, np.array([[1000], [65535]], dtype=np.uint16)),
         bytes.fromhex("07000000 0a000000 0200 01 e803 ffff")),
        (MeasurementEnd(7, 12, Outcome.CUFF_LEAK), bytes.fromhex("07000000 0c000000 04")),
        (Status(CuffState.DEFLATING, 15000), bytes.fromhex("02 01 983a")),
        (Status(CuffState.IDLE), bytes.fromhex("00 00 0000")),
        # service mode: static pressure, and the over-pressure guard's dump flag (bit 1)
        (Status(CuffState.SERVICE, 25000), bytes.fromhex("05 01 a861")),
        (Status(CuffState.ERROR, 30500, dumped=True), bytes.fromhex("04 03 2477")),
        (Service(ServiceMode.STATIC), bytes.fromhex("01")),
        (Service(ServiceMode.MEASURE), bytes.fromhex("00")),
        (Start(180), bytes.fromhex("b400")),
        (Stop(), b""),
        (Replay(), b""),
        (Resend(7), bytes.fromhex("07000000")),
        (Ack(7), bytes.fromhex("07000000")),
    ],
)  # fmt: skip
def test_payload_vectors(message: NibpMessage, payload: bytes) -> None:
    assert message.payload() == payload
    assert parse(Frame(message.frame_type, 3, payload)) == message


def test_type_codes() -> None:
    messages = (START, Status(CuffState.IDLE), Start(100), Stop(), Service(ServiceMode.STATIC))
    assert [m.frame_type for m in messages] == [0x01, 0x10, 0x90, 0x91, 0x92]


def test_outcome_labels() -> None:
    assert [o.label for o in Outcome] == [
        "completed",
        "aborted-by-host",
        "over-pressure",
        "timeout",
        "cuff-leak",
    ]


def _start_with(offset: int, raw: bytes) -> Frame:
    payload = START_PAYLOAD[:offset] + raw + START_PAYLOAD[offset + len(raw) :]
    return Frame(0x01, 0, payload)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (_start_with(4, bytes.fromhex("f300")), "sampling rate 243 Hz"),
        (_start_with(4, bytes.fromhex("e903")), "sampling rate 1001 Hz"),
        (_start_with(8, bytes.fromhex("0d")), "device time malformed"),
        (_start_with(13, bytes.fromhex("02")), "unknown sample format 2"),
        (_start_with(14, b"\x7f"), "not printable ASCII"),
        (Frame(0x01, 0, START_PAYLOAD[:-1]), "MEASUREMENT_START payload length"),
        (Frame(0x10, 0, bytes.fromhex("09000000")), "unknown cuff state 9"),
        (Frame(0x10, 0, bytes(3)), "STATUS payload length"),
        (Frame(0x90, 0, bytes.fromhex("2d01")), "target 301 mmHg outside"),
        (Frame(0x90, 0, bytes.fromhex("1400")), "target 20 mmHg outside"),
        (Frame(0x91, 0, b"\x00"), "STOP has no payload"),
        (Frame(0x92, 0, b"\x02"), "SERVICE mode must be one byte, 0 or 1"),
        (Frame(0x92, 0, b""), "SERVICE mode must be one byte, 0 or 1"),
        (Frame(0x02, 0, bytes.fromhex("07000000 00000000 0100 02 00000000")),
         "one channel"),
        (Frame(0x42, 0, b""), "unknown frame type 0x42"),
    ],
)  # fmt: skip
def test_malformed_frames_are_dropped_whole(frame: Frame, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        parse(frame)
    assert reason in info.value.reason
    assert info.value.consumed == frame.length
    with pytest.raises(FrameError, match=reason) as info:
        decode(sf.encode(frame))
    assert info.value.consumed == frame.length


def test_target_range_ends_are_valid() -> None:
    assert parse(Frame(0x90, 0, bytes.fromhex("2c01"))) == Start(300)
    assert parse(Frame(0x90, 0, bytes.fromhex("3c00"))) == Start(60)


def test_constructors_refuse_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError, match="fs 100 Hz"):
        MeasurementStart(1, 100, START.time, "M")
    with pytest.raises(ValueError, match="model"):
        MeasurementStart(1, 500, START.time, "a model name too long")
    with pytest.raises(ValueError, match="target 400"):
        Start(400)


# --------------------------------------------------------------------------- properties

times = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
    lambda t: t.replace(microsecond=0)
)
ids = st.integers(0, 2**32 - 1)
text = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12)
starts = st.builds(MeasurementStart, ids, st.integers(250, 1000), times, text.filter(bool), text)
blocks = st.builds(
    Samples,
    ids,
    ids,
    st.lists(st.integers(0, 65535), max_size=506).map(
        lambda v: np.array(v, dtype=np.uint16).reshape(-1, 1)
    ),
)
messages: st.SearchStrategy[NibpMessage] = st.one_of(
    starts,
    blocks,
    st.builds(MeasurementEnd, ids, ids, st.integers(0, 4)),
    st.builds(Status, st.sampled_from(CuffState), st.none() | st.integers(0, 65535), st.booleans()),
    st.builds(Service, st.sampled_from(ServiceMode)),
    st.builds(Start, st.integers(60, 300)),
    st.just(Stop()),
    st.just(Replay()),
    st.builds(Resend, ids),
    st.builds(Ack, ids),
)
packets = st.builds(Packet, st.integers(0, 0xFFFF), messages)


def decode_all(chunks: list[bytes]) -> tuple[list[Packet[NibpMessage]], int]:
    """Decode as the driver does; the end of the stream is silence (the frame timeout)."""
    buf = bytearray()
    out: list[Packet[NibpMessage]] = []
    errors = 0
    for chunk in [*chunks, None]:  # None: the line goes quiet
        buf.extend(chunk or b"")
        while buf:
            try:
                packet, consumed = decode(buf)
            except FrameError as exc:
                errors += 1
                del buf[: exc.consumed]
                continue
            if packet is None:
                if chunk is not None:
                    break
                del buf[:1]  # silence inside a frame: it was broken (a corrupted length)
                errors += 1
                continue
            out.append(packet)
            del buf[:consumed]
    return out, errors


@given(packets)
def test_round_trip(packet: Packet[NibpMessage]) -> None:
    wire = encode(packet)
    assert decode(wire) == (packet, len(wire))


@given(st.lists(packets, max_size=5), st.data())
def test_any_chunking_yields_the_same_packets(
    ps: list[Packet[NibpMessage]], data: st.DataObject
) -> None:
    stream = b"".join(encode(p) for p in ps)
    assert decode_all(chunked(stream, data)) == (ps, 0)


@given(st.lists(packets, min_size=2, max_size=4), st.data())
def test_a_flipped_bit_loses_only_its_frame(
    ps: list[Packet[NibpMessage]], data: st.DataObject
) -> None:
    victim = data.draw(st.integers(0, len(ps) - 1))
    wire = [bytearray(encode(p)) for p in ps]
    pos = data.draw(st.integers(0, len(wire[victim]) - 1))
    wire[victim][pos] ^= 1 << data.draw(st.integers(0, 7))
    got, errors = decode_all([bytes(w) for w in wire])
    assert got == [p for i, p in enumerate(ps) if i != victim]
    assert errors
