"""Autorefractor / keratometer codec: byte vectors, malformed blocks, and stream properties.

The vector is written out line by line (layout: drivers/devices/refractor/codec.py, modelled on
Nidek's RS-232C output; the confidence digit, K lines and BCC are our documented assumptions).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.codec.framing import ACK, ENQ, NAK, bcc_hex
from drivers.devices.refractor import (
    MAX_FRAME,
    EyeResult,
    Keratometry,
    Refraction,
    RefractorDriver,
    RefractorRecord,
    decode,
    encode,
    to_readings,
)
from drivers.errors import FrameError
from drivers.readings import ReadingStatus
from drivers.transport import LoopTransport

E = b"\x17\r"  # ETB CR ends every line
BODY = (
    b"IDSIM/ARK-1" + E
    + b"NO0042" + E
    + b"DA2026/11/23" + E
    + b"TM09:41:07" + E
    + b"PI0000000000042" + E
    + b"VD12.00" + E
    + b"R1-02.75-00.50175 8" + E  # right eye, reading 1: S -2.75 C -0.50 A 175, confidence 8
    + b"R2-02.50-00.75170 9" + E
    + b"OR-02.75-00.50175 9" + E  # right eye representative value
    + b"KR107.85 43.00178" + E  # K1: 7.85 mm, 43.00 D, 178 deg
    + b"KR207.70 43.75088" + E  # K2
    + b"OL+01.25+00.00000 3" + E  # left eye: representative only, low confidence
    + b"PD64.0" + E
)  # fmt: skip
VECTOR = b"\x01" + BODY + b"\x04" + bcc_hex(BODY + b"\x04")

RECORD = RefractorRecord(
    model="SIM/ARK-1",
    exam_no="0042",
    time=datetime(2026, 11, 23, 9, 41, 7),
    vertex_mm=12.0,
    right=EyeResult(
        readings=(Refraction(-2.75, -0.5, 175, 8), Refraction(-2.5, -0.75, 170, 9)),
        representative=Refraction(-2.75, -0.5, 175, 9),
        k1=Keratometry(7.85, 43.0, 178),
        k2=Keratometry(7.7, 43.75, 88),
    ),
    left=EyeResult(representative=Refraction(1.25, 0.0, 0, 3)),
    patient_id="0000000000042",
    pd_mm=64.0,
)


def frame(body: bytes) -> bytes:
    return b"\x01" + body + b"\x04" + bcc_hex(body + b"\x04")


def test_vector_decodes_to_the_whole_record_and_encodes_back() -> None:
    assert decode(VECTOR) == (RECORD, len(VECTOR))
    assert encode(RECORD) == VECTOR


def test_nidek_style_space_padding_is_read_as_zeros() -> None:
    """The RT-5100 capture pads with spaces (``- 2.75``, ``  0``, ``DA2016/ 5/ 2``)."""
    body = BODY.replace(b"OR-02.75-00.50175", b"OR- 2.75- 0.50175").replace(
        b"OL+01.25+00.00000", b"OL+ 1.25+ 0.00  0"
    )
    body = body.replace(b"DA2026/11/23", b"DA2026/ 1/ 5")
    record, _ = decode(frame(body))
    assert record is not None
    assert record.right.representative == Refraction(-2.75, -0.5, 175, 9)
    assert record.left.representative == Refraction(1.25, 0.0, 0, 3)
    assert record.time == datetime(2026, 1, 5, 9, 41, 7)


def test_readings_per_eye_with_units_decimals_and_the_device_confidence() -> None:
    readings = {r.quantity: r for r in to_readings(RECORD)}
    assert list(readings) == [
        "refraction.right.sphere", "refraction.right.cylinder", "refraction.right.axis",
        "kerato.right.k1.radius", "kerato.right.k1.power", "kerato.right.k1.axis",
        "kerato.right.k2.radius", "kerato.right.k2.power", "kerato.right.k2.axis",
        "refraction.left.sphere", "refraction.left.cylinder", "refraction.left.axis", "pd",
    ]  # fmt: skip
    sphere = readings["refraction.right.sphere"]
    assert (sphere.value, sphere.unit, sphere.decimals, sphere.status) == (
        -2.75, "D", 2, ReadingStatus.OK)  # fmt: skip
    assert (readings["refraction.right.axis"].value, readings["refraction.right.axis"].unit) == (
        175, "deg")  # fmt: skip
    assert readings["kerato.right.k1.radius"].unit == "mm"
    # the left eye's confidence digit 3 is below 5: the device doubts it
    assert readings["refraction.left.sphere"].status is ReadingStatus.UNRELIABLE
    assert {r.record_key for r in readings.values()} == {RECORD.key}
    assert {r.device_time for r in readings.values()} == {RECORD.time}


def test_an_eye_not_measured_yields_no_reading_and_nothing_measured_no_pd() -> None:
    one_eye = RefractorRecord("M", "0001", RECORD.time, 12.0, RECORD.right, EyeResult(), "", 63.5)
    assert not any(".left." in r.quantity for r in to_readings(one_eye))
    assert "pd" in [r.quantity for r in to_readings(one_eye)]
    nothing = RefractorRecord("M", "0002", RECORD.time, 12.0, EyeResult(), EyeResult(), "", 63.5)
    assert to_readings(nothing) == ()


def test_a_retransmission_has_the_same_key_another_exam_another() -> None:
    again, _ = decode(encode(RECORD))
    assert again is not None
    assert again.key == RECORD.key
    other, _ = decode(encode(dataclasses.replace(RECORD, exam_no="0043")))
    assert other is not None
    assert other.key != RECORD.key


# --------------------------------------------------------------------------- malformed blocks

BAD_FIELDS = [
    # (what is replaced, by what, words the reason must contain)
    (
        b"OR-02.75-00.50175 9",
        b"OR-0x.75-00.50175 9",
        ["line 9", "(OR)", "representative sphere", "6 chars"],
    ),
    (b"OR-02.75-00.50175 9", b"OR-02.75-00.501x5 9", ["line 9", "representative axis"]),
    (b"OR-02.75-00.50175 9", b"OR-02.75-00.50175", ["line 9", "17 chars"]),
    (b"R2-02.50", b"R3-02.50", ["line 8", "reading number", "reading 2 in order"]),
    (b"KR107.85 43.00178", b"KR107.85 4300178", ["line 10", "K1"]),
    (b"KR207.70 43.75088", b"KR20x.70 43.75088", ["line 11", "K2 radius"]),
    (b"VD12.00", b"VD1x.00", ["line 6", "vertex distance"]),
    (b"NO0042", b"NO42", ["line 2", "exam number"]),
    (b"TM09:41:07", b"TM25:41:07", ["line 4", "time"]),
    (b"PD64.0", b"XX64.0", ["line 13", "tag"]),
    (b"NO0042" + E, b"", ["NO line missing"]),
    (b"PD64.0" + E, b"PD64.0" + E + b"PD64.0" + E, ["line 14", "once per block"]),
    (b"PD64.0" + E, b"PD64.0\r", ["not ended by ETB CR"]),
    (b"OL+01.25", b"OL+01\t25", ["line 12", "control byte"]),
]


@pytest.mark.parametrize(("old", "new", "words"), BAD_FIELDS)
def test_a_malformed_line_is_refused_by_line_tag_field_and_offset(
    old: bytes, new: bytes, words: list[str]
) -> None:
    assert old in BODY
    bad = frame(BODY.replace(old, new, 1))
    with pytest.raises(FrameError) as caught:
        decode(bad)
    for word in words:
        assert word in caught.value.reason, caught.value.reason
    assert caught.value.consumed == len(bad)  # checksum-valid: the whole block is dropped
    assert 1 <= caught.value.offset < len(bad)


def test_the_offset_points_at_the_bad_field() -> None:
    bad = frame(BODY.replace(b"VD12.00", b"VD1x.00"))
    with pytest.raises(FrameError) as caught:
        decode(bad)
    assert bad[caught.value.offset : caught.value.offset + 5] == b"1x.00"


def test_framing_faults() -> None:
    with pytest.raises(FrameError, match="noise before SOH") as noise:
        decode(b"xx" + VECTOR)
    assert noise.value.consumed == 2
    flipped = bytearray(VECTOR)
    flipped[30] ^= 0x04
    with pytest.raises(FrameError, match="BCC mismatch") as bcc:
        decode(bytes(flipped))
    assert bcc.value.consumed == 1
    with pytest.raises(FrameError, match="truncated by a new SOH") as cut:
        decode(VECTOR[:50] + VECTOR)
    assert cut.value.consumed == 50
    with pytest.raises(FrameError, match="no EOT"):
        decode(b"\x01" + b"A" * MAX_FRAME)
    assert decode(VECTOR[:-1]) == (None, 0)  # BCC not there yet
    assert decode(b"") == (None, 0)


def _decode_all(stream: bytes, chunks: list[int]) -> tuple[list[RefractorRecord], int]:
    """Feed ``stream`` in chunks as a driver does; the records and the frame errors."""
    buf, out, errors, pos = bytearray(), [], 0, 0
    for size in [*chunks, len(stream)]:
        buf += stream[pos : pos + size]
        pos += size
        while buf:
            try:
                record, used = decode(bytes(buf))
            except FrameError as exc:
                del buf[: exc.consumed]
                errors += 1
                continue
            if record is None:
                break
            out.append(record)
            del buf[:used]
    return out, errors


SECOND = dataclasses.replace(RECORD, exam_no="0043", pd_mm=None)
BAD = frame(BODY.replace(b"VD12.00", b"VD1x.00"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=64), max_size=40))
def test_any_chunking_yields_the_good_blocks_around_a_bad_one(chunks: list[int]) -> None:
    stream = b"\xff\x00" + VECTOR + BAD + encode(SECOND) + VECTOR[:40] + encode(SECOND)
    records, errors = _decode_all(stream, chunks)
    assert records == [RECORD, SECOND, SECOND]
    assert errors >= 3  # the noise, the bad field, the cut block


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_noise_never_loses_the_next_block(noise: bytes) -> None:
    noise = noise.replace(b"\x01", b"")
    records, _ = _decode_all(noise + VECTOR, [7])
    assert records == [RECORD]


def test_encode_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="exam number"):
        encode(dataclasses.replace(RECORD, exam_no="42"))
    too_many = EyeResult(readings=(Refraction(0, 0, 0, 9),) * 10)
    with pytest.raises(ValueError, match="at most 9"):
        encode(dataclasses.replace(RECORD, right=too_many))


# --------------------------------------------------------------------------- driver


def test_driver_enq_at_connect_nak_on_a_bad_block_ack_naming_the_exam_after_commit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        gateway, device = LoopTransport.pair()
        await gateway.open()
        await device.open()
        driver = RefractorDriver(gateway, "refr-1")
        await device.write(BAD + VECTOR)
        stream = driver.deliveries()
        delivery = await anext(stream)
        assert await device.read() == bytes([ENQ, NAK])
        assert delivery.device_model == "SIM/ARK-1"
        assert delivery.readings == to_readings(RECORD)
        with pytest.raises(TimeoutError):  # nothing acknowledged before the commit
            await device.read(timeout=0.05)
        await delivery.acknowledge()
        assert await device.read() == bytes([ACK]) + b"0042"
        assert driver.stats.garbled_frames == 1

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    assert "vertex distance" in caplog.text
    assert "0000000000042" not in caplog.text  # never the patient id


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([b"PIDUPONT-JEAN-1985"], "patient id"),  # too long for the 13-char field
        ([b"PIDUPONT-JEAN", b"PIDUPONT-JEAN"], "once per block"),  # a duplicate PI line
        ([b"DUPONT-JEAN-1985"], "unknown tag"),  # an id keyed where a tag should be
    ],
)
def test_a_bad_patient_id_line_is_never_echoed_in_the_reason_or_the_log(
    lines: list[bytes], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    pi = b"PI0000000000042" + E
    assert pi in BODY
    bad = frame(BODY.replace(pi, b"".join(line + E for line in lines), 1))
    with pytest.raises(FrameError) as caught:
        decode(bad)
    reason = str(caught.value)
    assert field in reason
    assert "byte" in reason  # where, and how long; never what
    for leak in ("DUPONT", "JEAN", "1985", "'PID"):
        assert leak not in reason

    async def scenario() -> None:
        gateway, device = LoopTransport.pair()
        await gateway.open()
        await device.open()
        await device.write(bad + VECTOR)
        stream = RefractorDriver(gateway, "refr-1").deliveries()
        await anext(stream)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
    assert "garbled frame" in caplog.text
    for leak in ("DUPONT", "JEAN", "1985"):
        assert leak not in caplog.text
