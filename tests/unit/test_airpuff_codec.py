"""Air-puff front-end codec: byte vectors, malformed payloads, and stream properties."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codec import sampleframes as sf
from drivers.codec.sampleframes import Ack, Frame, MeasurementEnd, Packet, Replay, Resend, Samples
from drivers.devices.airpuff import AirpuffMessage, Outcome, PuffStart, decode, encode, parse
from drivers.errors import FrameError
from tests.unit.test_sampleframes import chunked, crc_reference

# MEASUREMENT_START of a left-eye puff, written field by field (drivers/devices/airpuff/codec.py)
START_PAYLOAD = (
    bytes.fromhex("0c000000")  # measurement id u32 = 12
    + bytes.fromhex("01")  # eye: left
    + bytes.fromhex("803e0000")  # fs u32 = 16000 Hz
    + bytes.fromhex("ea07 0b 17 0a 10 05")  # 2026-11-23 10:16:05
    + bytes.fromhex("02")  # sample format: (pressure, light) u16 pairs
    + bytes.fromhex("e0010000")  # 480 pairs follow
    + b"SB-AIRPUFF  "  # model, 12 ASCII
    + b"AP-0001     "  # serial, 12 ASCII
)
START_VECTOR = bytes.fromhex("a5 01 0300 2d00") + START_PAYLOAD + bytes.fromhex("618b")
START = PuffStart(
    12, "left", 16000, datetime(2026, 11, 23, 10, 16, 5), 480, "SB-AIRPUFF", "AP-0001"
)


def test_start_vector_layout_and_crc() -> None:
    assert len(START_PAYLOAD) == 0x2D
    assert crc_reference(START_VECTOR[1:-2]) == 0x618B


def test_start_vector_decodes_whole_and_encodes_byte_exact() -> None:
    assert decode(START_VECTOR) == (Packet(3, START), len(START_VECTOR))
    assert encode(Packet(3, START)) == START_VECTOR
    assert START.channels == 2


def test_samples_are_pressure_light_pairs() -> None:
    block = Samples(12, 253, np.array([[1200, 40000], [1300, 39000]], dtype=np.uint16))
    payload = bytes.fromhex("0c000000 fd000000 0200 02 b004 409c 1405 5898")
    assert block.payload() == payload
    assert parse(Frame(0x02, 0, payload)) == block


def test_outcome_labels() -> None:
    assert [o.label for o in Outcome] == ["completed", "aborted", "misaligned", "blink"]


def _start_with(offset: int, raw: bytes) -> Frame:
    return Frame(0x01, 0, START_PAYLOAD[:offset] + raw + START_PAYLOAD[offset + len(raw) :])


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (_start_with(4, b"\x02"), "unknown eye code 2"),
        (_start_with(5, bytes.fromhex("e7030000")), "sampling rate 999 Hz"),
        (_start_with(5, bytes.fromhex("a1860100")), "sampling rate 100001 Hz"),
        (_start_with(12, b"\x20"), "device time malformed"),
        (_start_with(16, b"\x01"), "unknown sample format 1"),
        (_start_with(37, b"\x80"), "not printable ASCII"),
        (Frame(0x01, 0, START_PAYLOAD + b"\x00"), "MEASUREMENT_START payload length"),
        (Frame(0x02, 0, bytes.fromhex("0c000000 00000000 0100 01 0000")), "two channels"),
        (Frame(0x10, 0, bytes(4)), "unknown frame type 0x10"),
    ],
)  # fmt: skip
def test_malformed_frames_are_dropped_whole(frame: Frame, reason: str) -> None:
    with pytest.raises(FrameError, match=reason) as info:
        decode(sf.encode(frame))
    assert info.value.consumed == frame.length


def test_constructor_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError, match="eye must be right or left"):
        PuffStart(1, "both", 16000, START.time, 1, "M")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fs 500 Hz"):
        PuffStart(1, "right", 500, START.time, 1, "M")


# --------------------------------------------------------------------------- properties

times = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
    lambda t: t.replace(microsecond=0)
)
ids = st.integers(0, 2**32 - 1)
text = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12)
messages: st.SearchStrategy[AirpuffMessage] = st.one_of(
    st.builds(
        PuffStart,
        ids,
        st.sampled_from(["right", "left"]),
        st.integers(1000, 100_000),
        times,
        ids,
        text.filter(bool),
        text,
    ),
    st.builds(
        Samples,
        ids,
        ids,
        st.lists(st.integers(0, 65535), max_size=2 * 253)
        .filter(lambda v: len(v) % 2 == 0)
        .map(lambda v: np.array(v, dtype=np.uint16).reshape(-1, 2)),
    ),
    st.builds(MeasurementEnd, ids, ids, st.integers(0, 3)),
    st.just(Replay()),
    st.builds(Resend, ids),
    st.builds(Ack, ids),
)
packets = st.builds(Packet, st.integers(0, 0xFFFF), messages)


@given(packets)
def test_round_trip(packet: Packet[AirpuffMessage]) -> None:
    wire = encode(packet)
    assert decode(wire) == (packet, len(wire))


@given(st.lists(packets, max_size=5), st.data())
def test_any_chunking_yields_the_same_packets(
    ps: list[Packet[AirpuffMessage]], data: st.DataObject
) -> None:
    stream = b"".join(encode(p) for p in ps)
    buf = bytearray()
    got: list[Packet[AirpuffMessage]] = []
    for chunk in chunked(stream, data):
        buf.extend(chunk)
        while (decoded := decode(buf))[0] is not None:
            packet, consumed = decoded
            assert packet is not None
            got.append(packet)
            del buf[:consumed]
    assert got == ps
    assert not buf
