"""Pure codec for CT-80 style tonometer result records.

The public Topcon CT-80 manual ("Transmission Formula", RS-232C communication format
Mode 5 / STD 2) lists the record as fixed-width ASCII fields::

    model name, type no.      15    machine no.          2    ROM version     10
    ID no. (patient ID)       13    work ID no.         13    machine work ID  4
    time/date                 20    R: 3 readings + avg 24    L: 3 readings + avg 24

The manual does not describe framing, field padding or the time layout. Our assumptions,
implemented here and by the simulator alike:

* a record is framed ``STX <125-byte body> ETX <BCC>``; the BCC is the XOR of body and ETX
  written as two upper-case hex digits (ISO 1745 style). The checksum is our extension so that
  line noise is detected rather than parsed as a plausible number.
* time/date is ``YYYY/MM/DD  HH:MM:SS`` (two spaces, 20 bytes), device local time.
* each eye block is four 6-byte fields (reading 1, 2, 3, average); a field holds a right-aligned
  ``15.0``, a parenthesised ``(15.0)`` for a reading the device marks unreliable, ``OVER``
  when the pressure exceeded the measuring range, or spaces when there is no data or an error
  (the manual: "when there is no data or ERRs only, a space is sent").

``decode(buf) -> (record | None, consumed)`` never does I/O; malformed input raises
:class:`~drivers.errors.FrameError` with the number of bytes to drop, so a stream always
resynchronises on the next STX.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from drivers.codec.framing import ETX, STX, bcc_hex
from drivers.errors import FrameError
from drivers.readings import DeviceReading, ReadingStatus

# (name, width) in transmission order - CT-80 manual, communication format Mode 5 / STD 2.
FIELDS: tuple[tuple[str, int], ...] = (
    ("model", 15),
    ("machine_no", 2),
    ("rom_version", 10),
    ("patient_id", 13),
    ("work_id", 13),
    ("machine_work_id", 4),
    ("time", 20),
    ("right", 24),
    ("left", 24),
)
BODY_LENGTH = sum(width for _, width in FIELDS)  # 125
FRAME_LENGTH = 1 + BODY_LENGTH + 1 + 2  # STX body ETX BCC(2 hex digits)
VALUE_WIDTH = 6
TIME_FORMAT = "%Y/%m/%d  %H:%M:%S"
MAX_IOP_MMHG = 99.9  # what fits the field; the device's own range is narrower

_NUMBER = re.compile(r"[0-9]{1,2}\.[0-9]")

IopKind = Literal["value", "unreliable", "over", "absent"]


@dataclass(frozen=True, slots=True)
class IopValue:
    """One 6-byte IOP field."""

    kind: IopKind
    mmhg: float | None = None

    def __post_init__(self) -> None:
        has_number = self.kind in ("value", "unreliable")
        if has_number != (self.mmhg is not None):
            raise ValueError(f"IopValue kind {self.kind!r} with mmhg={self.mmhg!r}")
        if self.mmhg is not None and not 0.0 <= self.mmhg <= MAX_IOP_MMHG:
            raise ValueError(f"IOP {self.mmhg} mmHg does not fit the record field")


ABSENT = IopValue("absent")


@dataclass(frozen=True, slots=True)
class EyeResult:
    """Three readings and the device's average for one eye."""

    readings: tuple[IopValue, IopValue, IopValue] = (ABSENT, ABSENT, ABSENT)
    average: IopValue = ABSENT


@dataclass(frozen=True, slots=True)
class Ct80Record:
    """A decoded result record. ``patient_id`` is opaque and must never be logged."""

    model: str
    machine_no: str
    rom_version: str
    patient_id: str
    work_id: str
    machine_work_id: str
    time: datetime
    right: EyeResult
    left: EyeResult

    @property
    def body(self) -> bytes:
        return _encode_body(self)

    @property
    def key(self) -> str:
        """Identity of the record: equal for a retransmission, distinct for another exam."""
        return hashlib.sha256(self.body).hexdigest()[:32]


# --------------------------------------------------------------------------- encoding


def _text(value: str, width: int, name: str) -> bytes:
    raw = value.encode("ascii")
    if len(raw) > width or any(not 32 <= b < 127 for b in raw):
        raise ValueError(f"field {name} must be at most {width} printable ASCII chars")
    return raw.ljust(width)


def _encode_value(value: IopValue) -> bytes:
    if value.kind == "absent":
        return b" " * VALUE_WIDTH
    if value.kind == "over":
        return b"OVER".rjust(VALUE_WIDTH)
    text = f"{value.mmhg:.1f}"
    if value.kind == "unreliable":
        text = f"({text})"
    return text.encode("ascii").rjust(VALUE_WIDTH)


def _encode_eye(eye: EyeResult) -> bytes:
    return b"".join(_encode_value(v) for v in (*eye.readings, eye.average))


def _encode_body(record: Ct80Record) -> bytes:
    body = b"".join(
        (
            _text(record.model, 15, "model"),
            _text(record.machine_no, 2, "machine_no"),
            _text(record.rom_version, 10, "rom_version"),
            _text(record.patient_id, 13, "patient_id"),
            _text(record.work_id, 13, "work_id"),
            _text(record.machine_work_id, 4, "machine_work_id"),
            record.time.strftime(TIME_FORMAT).encode("ascii"),
            _encode_eye(record.right),
            _encode_eye(record.left),
        )
    )
    assert len(body) == BODY_LENGTH
    return body


def encode(record: Ct80Record) -> bytes:
    """Frame a record: ``STX body ETX BCC``."""
    body = _encode_body(record)
    return bytes([STX]) + body + bytes([ETX]) + bcc_hex(body + bytes([ETX]))


# --------------------------------------------------------------------------- decoding


def _decode_value(raw: bytes, offset: int) -> IopValue:
    text = raw.decode("ascii").strip()
    if not text:
        return ABSENT
    if text == "OVER":
        return IopValue("over")
    kind: IopKind = "value"
    if text.startswith("(") and text.endswith(")"):
        kind, text = "unreliable", text[1:-1]
    if not _NUMBER.fullmatch(text):
        raise FrameError("IOP field is not a number like 15.0", FRAME_LENGTH, offset)
    return IopValue(kind, float(text))


def _decode_eye(raw: bytes, offset: int) -> EyeResult:
    values = [
        _decode_value(raw[i : i + VALUE_WIDTH], offset + i)
        for i in range(0, 4 * VALUE_WIDTH, VALUE_WIDTH)
    ]
    return EyeResult(readings=(values[0], values[1], values[2]), average=values[3])


def _parse_body(body: bytes) -> Ct80Record:
    fields: dict[str, bytes] = {}
    offsets: dict[str, int] = {}
    pos = 0
    for name, width in FIELDS:
        fields[name], offsets[name] = body[pos : pos + width], pos + 1  # +1: after STX
        pos += width
    try:
        time = datetime.strptime(fields["time"].decode("ascii"), TIME_FORMAT)
    except ValueError:
        raise FrameError("time/date field malformed", FRAME_LENGTH, offsets["time"]) from None

    def text(name: str) -> str:
        return fields[name].decode("ascii").rstrip()

    return Ct80Record(
        model=text("model"),
        machine_no=text("machine_no"),
        rom_version=text("rom_version"),
        patient_id=text("patient_id"),
        work_id=text("work_id"),
        machine_work_id=text("machine_work_id"),
        time=time,
        right=_decode_eye(fields["right"], offsets["right"]),
        left=_decode_eye(fields["left"], offsets["left"]),
    )


def decode(buf: bytes) -> tuple[Ct80Record | None, int]:
    """Decode the first frame of ``buf``.

    Returns ``(record, consumed)`` for a complete frame and ``(None, 0)`` when more bytes are
    needed. Raises :class:`FrameError` (with ``consumed`` >= 1) for noise before an STX, a frame
    cut short by a new STX, a bad BCC or a malformed field.
    """
    if not buf:
        return None, 0
    start = buf.find(STX)
    if start == -1:
        raise FrameError("noise outside a frame", len(buf))
    if start > 0:
        raise FrameError("noise before STX", start)
    window = buf[1:FRAME_LENGTH]
    restart = window.find(STX)
    if restart != -1:
        # a new frame began before this one ended: the line was cut mid-record
        raise FrameError("frame truncated by a new STX", restart + 1, restart + 1)
    for i, byte in enumerate(window[:BODY_LENGTH]):
        if not 32 <= byte < 127:
            raise FrameError("non-printable byte in record body", i + 1, i + 1)
    if len(buf) < FRAME_LENGTH:
        return None, 0
    body = buf[1 : 1 + BODY_LENGTH]
    if buf[1 + BODY_LENGTH] != ETX:
        raise FrameError("ETX missing at end of record", 1, 1 + BODY_LENGTH)
    if buf[2 + BODY_LENGTH : FRAME_LENGTH] != bcc_hex(body + bytes([ETX])):
        raise FrameError("BCC mismatch", 1, 2 + BODY_LENGTH)
    try:
        return _parse_body(body), FRAME_LENGTH
    except FrameError as exc:
        # a checksum-valid frame with a bad field is not resynchronisable noise: drop it whole
        raise FrameError(exc.reason, FRAME_LENGTH, exc.offset) from exc


# --------------------------------------------------------------------------- readings

_STATUS: dict[IopKind, ReadingStatus] = {
    "value": ReadingStatus.OK,
    "unreliable": ReadingStatus.UNRELIABLE,
    "over": ReadingStatus.OVER_RANGE,
}


def to_readings(record: Ct80Record) -> tuple[DeviceReading, ...]:
    """One reading per measured eye: the device's average, with the three readings as parts.

    An eye whose average field is blank (not measured, or errors only) yields no reading.
    """
    out = []
    key = record.key  # a hash of the encoded record: computed once, shared by its readings
    for side, eye in (("right", record.right), ("left", record.left)):
        if eye.average.kind == "absent":
            continue
        out.append(
            DeviceReading(
                quantity=f"iop.{side}",
                value=eye.average.mmhg,
                unit="mmHg",
                device_time=record.time,
                record_key=key,
                status=_STATUS[eye.average.kind],
                components=tuple(r.mmhg for r in eye.readings),
            )
        )
    return tuple(out)
