"""Sample frame layer: CRC, byte vectors, stream properties, shared payloads, the Receiver."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.codec import sampleframes as sf
from drivers.codec.sampleframes import (
    MAX_PAYLOAD,
    SOF,
    Ack,
    Frame,
    MeasurementEnd,
    Message,
    Replay,
    Resend,
    Samples,
    crc16_ccitt_false,
    decode,
    encode,
)
from drivers.codec.sampletransfer import (
    Completed,
    Discarded,
    Receiver,
    SamplesArrived,
    Send,
)
from drivers.devices.nibp import MeasurementStart, parse
from drivers.errors import FrameError


def crc_reference(data: bytes) -> int:
    """CRC-16/CCITT-FALSE bit by bit, straight from its definition (poly 0x1021, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


# ACK of measurement 7, host sequence number 0x0102, written out byte by byte
ACK_VECTOR = bytes.fromhex("a5 85 0201 0400 07000000 b047")
REPLAY_VECTOR = bytes.fromhex("a5 83 ffff 0000 59ce")


def test_crc_check_value_and_reference() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1  # the catalogue's check value
    assert crc_reference(b"123456789") == 0x29B1


@given(st.binary(max_size=300))
def test_crc_matches_the_bitwise_definition(data: bytes) -> None:
    assert crc16_ccitt_false(data) == crc_reference(data)


def test_vectors_are_byte_exact() -> None:
    assert encode(Frame(0x85, 0x0102, bytes([7, 0, 0, 0]))) == ACK_VECTOR
    assert encode(Frame(0x83, 0xFFFF, b"")) == REPLAY_VECTOR
    assert decode(ACK_VECTOR) == (Frame(0x85, 0x0102, b"\x07\x00\x00\x00"), len(ACK_VECTOR))
    assert crc_reference(ACK_VECTOR[1:-2]) == 0xB047


def test_incomplete_frame_waits_for_more() -> None:
    assert decode(b"") == (None, 0)
    for cut in range(1, len(ACK_VECTOR)):
        assert decode(ACK_VECTOR[:cut]) == (None, 0)


@pytest.mark.parametrize(
    ("buf", "reason", "consumed"),
    [
        (b"xyz" + ACK_VECTOR, "noise before SOF", 3),
        (b"\x00\x01\x02", "noise outside a frame", 3),
        (bytes([SOF, 2, 0, 0]) + (MAX_PAYLOAD + 1).to_bytes(2, "little"), "length over maximum", 1),
        (ACK_VECTOR[:-1] + b"\x00", "CRC mismatch", 1),
    ],
)  # fmt: skip
def test_bad_input_names_what_and_how_much_to_drop(buf: bytes, reason: str, consumed: int) -> None:
    with pytest.raises(FrameError) as info:
        decode(buf)
    assert reason in info.value.reason
    assert info.value.consumed == consumed


def test_frame_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        Frame(1, 0, bytes(MAX_PAYLOAD + 1))
    with pytest.raises(ValueError, match="out of range"):
        Frame(1, 0x10000, b"")


# --------------------------------------------------------------------------- properties

frames = st.builds(
    Frame,
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.binary(max_size=64) | st.binary(min_size=MAX_PAYLOAD - 2, max_size=MAX_PAYLOAD),
)
quiet_noise = st.binary(max_size=20).map(lambda b: b.replace(bytes([SOF]), b""))


def decode_stream(chunks: list[bytes]) -> tuple[list[Frame], list[FrameError]]:
    """What a driver does: feed chunks, decode greedily, drop what errors tell it to.

    The end of the stream is silence: a partial frame left then is dropped byte by byte, as
    the driver does on its frame timeout (a corrupted length field announces a longer frame).
    """
    buf = bytearray()
    out: list[Frame] = []
    errors: list[FrameError] = []
    for chunk in [*chunks, None]:  # None: the line goes quiet
        buf.extend(chunk or b"")
        while buf:
            try:
                frame, consumed = decode(buf)
            except FrameError as exc:
                errors.append(exc)
                del buf[: exc.consumed]
                continue
            if frame is None:
                if chunk is not None:
                    break
                errors.append(FrameError("frame cut short by silence", 1))
                del buf[:1]
                continue
            out.append(frame)
            del buf[:consumed]
    return out, errors


def chunked(stream: bytes, data: st.DataObject) -> list[bytes]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


@given(frames)
def test_round_trip(frame: Frame) -> None:
    assert decode(encode(frame)) == (frame, frame.length)


@given(st.lists(frames, max_size=5), st.data())
def test_any_chunking_yields_the_same_frames(fs: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(encode(f) for f in fs)
    assert decode_stream(chunked(stream, data)) == (fs, [])


@given(st.lists(st.tuples(quiet_noise, frames), max_size=5), quiet_noise, st.data())
def test_noise_between_frames_is_skipped(
    pairs: list[tuple[bytes, Frame]], tail: bytes, data: st.DataObject
) -> None:
    stream = b"".join(noise + encode(f) for noise, f in pairs) + tail
    got, errors = decode_stream(chunked(stream, data))
    assert got == [f for _, f in pairs]
    assert all(e.reason.startswith("noise") for e in errors)
    assert sum(e.consumed for e in errors) == len(stream) - sum(f.length for f in got)


@given(st.lists(frames, min_size=2, max_size=4), st.data())
def test_a_corrupted_byte_is_detected_and_never_yields_a_wrong_frame(
    fs: list[Frame], data: st.DataObject
) -> None:
    victim = data.draw(st.integers(0, len(fs) - 1))
    wire = [bytearray(encode(f)) for f in fs]
    pos = data.draw(st.integers(0, len(wire[victim]) - 1))
    wire[victim][pos] ^= 1 << data.draw(st.integers(0, 7))
    got, errors = decode_stream([bytes(w) for w in wire])
    # CRC-16/CCITT detects every single-bit error over a frame's span; a flip in the length
    # field moves the span, and a moved span passes only by a 2**-16 chance.
    assert got == [f for i, f in enumerate(fs) if i != victim]
    assert errors


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_random_bytes_raise_only_frame_errors(blob: bytes) -> None:
    decode_stream([blob])


# --------------------------------------------------------------------------- shared payloads


def test_shared_payloads_round_trip() -> None:
    block = Samples(9, 506, np.array([[1, 2], [65535, 0]], dtype=np.uint16))
    messages: list[Message] = [block, MeasurementEnd(9, 508, 3), Replay(), Resend(9), Ack(9)]
    for seq, message in enumerate(messages):
        frame = sf.to_frame(message, seq)
        assert sf.parse_common(frame, channels=2) == message
    assert block.payload() == bytes.fromhex("09000000 fa010000 0200 02 01000200 ffff0000")


def test_samples_block_is_bounded_by_the_payload() -> None:
    assert sf.max_samples_per_frame(1) == 506
    assert sf.max_samples_per_frame(2) == 253
    with pytest.raises(ValueError, match="do not fit"):
        Samples(1, 0, np.zeros((507, 1), dtype=np.uint16))


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (Frame(0x02, 0, bytes(10)), "SAMPLES payload too short"),
        (Frame(0x02, 0, bytes.fromhex("01000000 00000000 0300 01 0000")), "sample count"),
        (Frame(0x03, 0, bytes(8)), "MEASUREMENT_END payload length"),
        (Frame(0x85, 0, bytes(3)), "measurement id payload length"),
    ],
)
def test_malformed_shared_payloads_drop_the_whole_frame(frame: Frame, reason: str) -> None:
    with pytest.raises(FrameError, match=reason) as info:
        sf.parse_common(frame, channels=1)
    assert info.value.consumed == frame.length


def test_device_time_and_text_fields() -> None:
    t = datetime(2026, 11, 23, 10, 15, 42)
    frame = Frame(0x01, 0, sf.pack_time(t) + sf.pack_ascii("SN1", 4, "serial"))
    assert sf.unpack_time(frame, 0) == t
    assert sf.unpack_ascii(frame, frame.payload[7:], 7) == "SN1"
    with pytest.raises(FrameError, match="device time malformed"):
        sf.unpack_time(Frame(0x01, 0, bytes(7)), 0)
    with pytest.raises(ValueError, match="printable ASCII"):
        sf.pack_ascii("é", 4, "serial")


# --------------------------------------------------------------------------- receiver

START = MeasurementStart(7, 500, datetime(2026, 11, 23, 10, 15, 42), "SB-NIBP", "SN42")


def wire(messages: list[Message], first_seq: int = 0) -> list[bytes]:
    return [sf.encode(sf.to_frame(m, (first_seq + i) & 0xFFFF)) for i, m in enumerate(messages)]


def block(first: int, n: int, mid: int = 7) -> Samples:
    return Samples(mid, first, np.arange(first, first + n, dtype=np.uint16).reshape(-1, 1))


MEASUREMENT: list[Message] = [START, block(0, 3), block(3, 2), MeasurementEnd(7, 5, 0)]


def completed(events: Sequence[object]) -> list[Completed[MeasurementStart]]:
    return [e for e in events if isinstance(e, Completed)]


def sends(events: Sequence[object]) -> list[Message]:
    return [e.message for e in events if isinstance(e, Send)]


def test_receiver_assembles_a_measurement_and_reports_each_block() -> None:
    rx = Receiver(parse, MeasurementStart)
    events = rx.feed(b"".join(wire(MEASUREMENT, 65534)))  # the sequence number wraps
    (done,) = completed(events)
    assert done.start == START
    assert done.end == MeasurementEnd(7, 5, 0)
    assert done.counts[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert [len(e.counts) for e in events if isinstance(e, SamplesArrived)] == [3, 2]
    assert (rx.stats.frames, rx.stats.measurements, rx.stats.gaps) == (4, 1, 0)


def test_a_lost_frame_asks_resend_once_and_the_next_copy_completes() -> None:
    rx = Receiver(parse, MeasurementStart)
    frames_ = wire(MEASUREMENT)
    events = rx.feed(frames_[0] + frames_[1] + frames_[3])  # the second SAMPLES was lost
    assert sends(events) == [Resend(7)]
    assert not completed(events)
    assert (rx.stats.gaps, rx.stats.resends) == (1, 1)
    events = rx.feed(b"".join(wire(MEASUREMENT, 10)))  # the device starts it again
    assert sends(events) == []  # the gap before a restart of the same measurement is expected
    assert len(completed(events)) == 1


def test_samples_without_their_start_ask_resend_once() -> None:
    rx = Receiver(parse, MeasurementStart)
    events = rx.feed(b"".join(wire(MEASUREMENT)[1:]))
    assert sends(events) == [Resend(7)]


def test_a_garbled_frame_counts_once_and_asks_resend() -> None:
    rx = Receiver(parse, MeasurementStart)
    frames_ = wire(MEASUREMENT)
    bad = bytearray(frames_[1])
    bad[12] ^= 0x10
    events = rx.feed(frames_[0] + bytes(bad) + frames_[2] + frames_[3])
    assert sends(events) == [Resend(7)]
    assert rx.stats.garbled_frames == 1
    assert not completed(events)


def test_a_frame_cut_short_by_silence_is_dropped_on_timeout() -> None:
    rx = Receiver(parse, MeasurementStart)
    frames_ = wire(MEASUREMENT)
    assert completed(rx.feed(frames_[0] + frames_[1][:5])) == []
    assert rx.buffered == 5
    events = rx.timeout()
    assert sends(events) == [Resend(7)]
    assert rx.buffered == 0
    assert rx.timeout() == []


def test_a_copy_of_an_acknowledged_measurement_is_acked_again_not_delivered() -> None:
    rx = Receiver(parse, MeasurementStart)
    (done,) = completed(rx.feed(b"".join(wire(MEASUREMENT))))
    assert rx.acknowledge(done.start) == Ack(7)
    events = rx.feed(b"".join(wire(MEASUREMENT, 4)))
    assert completed(events) == []
    assert sends(events) == [Ack(7)]
    assert rx.stats.duplicates == 1


def test_an_unacknowledged_copy_is_delivered_again_with_the_same_start() -> None:
    rx = Receiver(parse, MeasurementStart)
    first = completed(rx.feed(b"".join(wire(MEASUREMENT))))
    again = completed(rx.feed(b"".join(wire(MEASUREMENT, 4))))
    assert [c.start for c in first] == [c.start for c in again] == [START]


def test_a_wrong_total_or_out_of_order_block_asks_resend() -> None:
    rx = Receiver(parse, MeasurementStart)
    bad_total: list[Message] = [*MEASUREMENT[:3], MeasurementEnd(7, 6, 0)]
    assert sends(rx.feed(b"".join(wire(bad_total)))) == [Resend(7)]
    out_of_order: list[Message] = [START, block(0, 3), block(4, 2), MeasurementEnd(7, 5, 0)]
    rx = Receiver(parse, MeasurementStart)
    assert sends(rx.feed(b"".join(wire(out_of_order)))) == [Resend(7)]


def test_an_oversized_measurement_is_discarded_not_resent() -> None:
    rx = Receiver(parse, MeasurementStart, max_samples=4)
    events = rx.feed(b"".join(wire(MEASUREMENT)))
    assert [type(e) for e in events if not isinstance(e, SamplesArrived)] == [Discarded]
    assert rx.stats.discarded == 1
    assert sends(events) == []


def test_host_commands_are_numbered_in_order() -> None:
    rx = Receiver(parse, MeasurementStart)
    first, second = rx.command(Replay()), rx.command(Ack(7))
    assert decode(first)[0] == Frame(0x83, 0, b"")
    assert decode(second)[0] == Frame(0x85, 1, b"\x07\x00\x00\x00")
