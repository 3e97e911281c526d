"""Binary sample frames shared by the raw-signal front-ends (NIBP module, air-puff tonometer).

Our protocol, modelled on OEM NIBP module protocols (SunTech Advantage, CAS-style binary
links: a start byte, a typed and length-prefixed payload, a CRC), extended with a per-direction
sequence number so that a lost frame is seen, not guessed::

    offset  size  field
    0       1     SOF 0xA5
    1       1     type (FrameType; device-specific types in the device codecs)
    2       2     sequence number, u16 little-endian, per direction, wraps at 65536
    4       2     payload length n, u16 little-endian, 0..MAX_PAYLOAD
    6       n     payload (little-endian fields)
    6+n     2     CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over type..payload, big-endian

The payloads every front-end shares are defined here: ``SAMPLES`` (measurement id u32, index of
the first sample u32, n u16, channels u8, then n x channels u16 ADC counts, sample-major),
``MEASUREMENT_END`` (id u32, total samples u32, outcome u8), and the host's ``REPLAY`` (empty),
``RESEND`` (id u32) and ``ACK`` (id u32). A device codec adds its ``MEASUREMENT_START`` and its
own types, then uses :class:`~drivers.codec.sampletransfer.Receiver` to reassemble
measurements, detect lost frames and ask for resends.

``decode(buf) -> (frame | None, consumed)`` never does I/O; garbage raises
:class:`~drivers.errors.FrameError` whose ``consumed`` drops the bytes up to the next SOF
candidate, so the stream resynchronises (the CT-80 codec's contract). A payload may contain
0xA5: after a CRC failure one byte is dropped and the next SOF is tried, and the CRC rejects
any false start.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import ClassVar, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from drivers.errors import FrameError

SOF = 0xA5
MAX_PAYLOAD = 1024
_HEADER = struct.Struct("<BBHH")  # SOF, type, seq, length
HEADER_LENGTH = _HEADER.size  # 6
CRC_LENGTH = 2
OVERHEAD = HEADER_LENGTH + CRC_LENGTH

Counts = npt.NDArray[np.uint16]


class FrameType(IntEnum):
    """Frame types every front-end shares: 0x01-0x0F device->host, 0x81-0x8F host->device.

    Device codecs number their own types 0x10-0x7F (device->host) and 0x90-0xFF (host->device).
    """

    MEASUREMENT_START = 0x01
    SAMPLES = 0x02
    MEASUREMENT_END = 0x03
    REPLAY = 0x83
    RESEND = 0x84
    ACK = 0x85


def crc16_ccitt_false(data: bytes | bytearray) -> int:
    """CRC-16/CCITT-FALSE; ``binascii.crc_hqx`` is that CRC (poly 0x1021) with a given init."""
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: its type, the sender's sequence number and the raw payload."""

    type: int
    seq: int
    payload: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 0xFF or not 0 <= self.seq <= 0xFFFF:
            raise ValueError(f"frame type {self.type} or seq {self.seq} out of range")
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")

    @property
    def length(self) -> int:
        """Bytes on the wire."""
        return OVERHEAD + len(self.payload)


def encode(frame: Frame) -> bytes:
    """Frame bytes: ``SOF type seq length payload CRC``."""
    body = _HEADER.pack(SOF, frame.type, frame.seq, len(frame.payload))[1:] + frame.payload
    return bytes([SOF]) + body + crc16_ccitt_false(body).to_bytes(2, "big")


def decode(buf: bytes | bytearray) -> tuple[Frame | None, int]:
    """Decode the first frame of ``buf``.

    Returns ``(frame, consumed)`` for a complete frame and ``(None, 0)`` when more bytes are
    needed. Raises :class:`FrameError` for bytes before a SOF (``consumed`` up to it), a length
    over :data:`MAX_PAYLOAD` or a CRC mismatch (``consumed`` 1: the SOF was not a frame's).
    """
    if not buf:
        return None, 0
    start = buf.find(SOF)
    if start == -1:
        raise FrameError("noise outside a frame", len(buf))
    if start > 0:
        raise FrameError("noise before SOF", start)
    if len(buf) < HEADER_LENGTH:
        return None, 0
    _, ftype, seq, length = _HEADER.unpack_from(buf)
    if length > MAX_PAYLOAD:
        raise FrameError("payload length over maximum", 1, 4)
    total = OVERHEAD + length
    if len(buf) < total:
        return None, 0
    if int.from_bytes(buf[total - 2 : total], "big") != crc16_ccitt_false(buf[1 : total - 2]):
        raise FrameError("CRC mismatch", 1, total - 2)
    return Frame(ftype, seq, bytes(buf[HEADER_LENGTH : total - 2])), total


# --------------------------------------------------------------------------- shared payloads

_U32 = struct.Struct("<I")
_SAMPLES = struct.Struct("<IIHB")  # id, first index, n, channels
_END = struct.Struct("<IIB")  # id, total, outcome
_TIME = struct.Struct("<HBBBBB")  # year, month, day, hour, minute, second (device local time)
TIME_LENGTH = _TIME.size  # 7


def max_samples_per_frame(channels: int) -> int:
    """How many multi-channel samples one SAMPLES payload holds."""
    return (MAX_PAYLOAD - _SAMPLES.size) // (2 * channels)


def pack_time(t: datetime) -> bytes:
    return _TIME.pack(t.year, t.month, t.day, t.hour, t.minute, t.second)


def pack_ascii(value: str, width: int, name: str) -> bytes:
    """A fixed-width, space-padded ASCII field (model, serial number)."""
    raw = value.encode("ascii", "replace")
    if not value.isascii() or len(raw) > width or any(not 32 <= b < 127 for b in raw):
        raise ValueError(f"{name} must be at most {width} printable ASCII characters")
    return raw.ljust(width)


def unpack_ascii(frame: Frame, raw: bytes, offset: int) -> str:
    if any(not 32 <= b < 127 for b in raw):
        raise bad_payload(frame, "text field is not printable ASCII", offset)
    return raw.decode("ascii").rstrip()


def bad_payload(frame: Frame, reason: str, offset: int = 0) -> FrameError:
    """A CRC-valid frame whose payload breaks the protocol: drop the whole frame."""
    return FrameError(reason, frame.length, HEADER_LENGTH + offset)


def unpack_time(frame: Frame, offset: int) -> datetime:
    """The device time at payload ``offset``: naive device local time (it sends no zone)."""
    try:
        return datetime(*_TIME.unpack_from(frame.payload, offset))
    except ValueError:
        raise bad_payload(frame, "device time malformed", offset) from None


@dataclass(frozen=True, slots=True, eq=False)
class Samples:
    """A block of samples of one measurement: ``counts[i, c]`` is sample first_index+i of c."""

    measurement_id: int
    first_index: int
    counts: Counts
    frame_type: ClassVar[int] = FrameType.SAMPLES

    def __post_init__(self) -> None:
        n, channels = self.counts.shape
        if channels < 1 or n > max_samples_per_frame(channels):
            raise ValueError(f"{n} samples of {channels} channels do not fit one frame")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Samples):
            return NotImplemented
        return (self.measurement_id, self.first_index) == (
            other.measurement_id,
            other.first_index,
        ) and np.array_equal(self.counts, other.counts)

    __hash__ = None  # type: ignore[assignment]

    def payload(self) -> bytes:
        n, channels = self.counts.shape
        head = _SAMPLES.pack(self.measurement_id, self.first_index, n, channels)
        return head + self.counts.astype("<u2").tobytes()


@dataclass(frozen=True, slots=True)
class MeasurementEnd:
    """The last frame of a measurement: how many samples it holds and how it ended."""

    measurement_id: int
    total: int
    #: 0 is "completed" on every front-end; other codes are the device codec's
    outcome: int
    frame_type: ClassVar[int] = FrameType.MEASUREMENT_END

    def payload(self) -> bytes:
        return _END.pack(self.measurement_id, self.total, self.outcome)


@dataclass(frozen=True, slots=True)
class Replay:
    """Host: send again every completed measurement not yet acknowledged."""

    frame_type: ClassVar[int] = FrameType.REPLAY

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class Resend:
    """Host: send this measurement again from its start."""

    measurement_id: int
    frame_type: ClassVar[int] = FrameType.RESEND

    def payload(self) -> bytes:
        return _U32.pack(self.measurement_id)


@dataclass(frozen=True, slots=True)
class Ack:
    """Host: the measurement is durably stored; the device may forget it."""

    measurement_id: int
    frame_type: ClassVar[int] = FrameType.ACK

    def payload(self) -> bytes:
        return _U32.pack(self.measurement_id)


Common = Samples | MeasurementEnd | Replay | Resend | Ack


_CHANNEL_WORDS = {1: "one channel", 2: "two channels"}


def parse_common(frame: Frame, channels: int) -> Common | None:
    """The shared message a frame carries, None for a device-specific type.

    ``channels``: how many interleaved channels the device's SAMPLES carry; any other count is
    a malformed frame.
    """
    p = frame.payload
    if frame.type == FrameType.SAMPLES:
        if len(p) < _SAMPLES.size:
            raise bad_payload(frame, "SAMPLES payload too short")
        mid, first, n, sent = _SAMPLES.unpack_from(p)
        if sent != channels:
            wanted = _CHANNEL_WORDS.get(channels, f"{channels} channels")
            raise bad_payload(frame, f"SAMPLES carry {sent} channels, this device sends {wanted}")
        if len(p) != _SAMPLES.size + 2 * n * channels:
            raise bad_payload(frame, "SAMPLES length does not match its sample count")
        counts = np.frombuffer(p, dtype="<u2", offset=_SAMPLES.size).reshape(n, channels)
        block = counts.astype(np.uint16)  # native order, a copy we own
        block.flags.writeable = False
        return Samples(mid, first, block)
    if frame.type == FrameType.MEASUREMENT_END:
        if len(p) != _END.size:
            raise bad_payload(frame, "MEASUREMENT_END payload length")
        return MeasurementEnd(*_END.unpack(p))
    if frame.type == FrameType.REPLAY:
        return Replay()
    if frame.type in (FrameType.RESEND, FrameType.ACK):
        if len(p) != _U32.size:
            raise bad_payload(frame, "measurement id payload length")
        (mid,) = _U32.unpack(p)
        return Resend(mid) if frame.type == FrameType.RESEND else Ack(mid)
    return None


class Message(Protocol):
    """What a frame can carry: its type code and payload bytes."""

    @property
    def frame_type(self) -> int: ...

    def payload(self) -> bytes: ...


M_co = TypeVar("M_co", bound=Message, covariant=True)


@dataclass(frozen=True, slots=True)
class Packet(Generic[M_co]):
    """A parsed frame: the sender's sequence number and the message."""

    seq: int
    message: M_co


def to_frame(message: Message, seq: int) -> Frame:
    return Frame(message.frame_type, seq, message.payload())


def encode_packet(packet: Packet[Message]) -> bytes:
    """Frame bytes of one message with its sequence number."""
    return encode(to_frame(packet.message, packet.seq))


P = TypeVar("P", bound=Message)


def decode_packet(
    buf: bytes | bytearray, parse: Callable[[Frame], P]
) -> tuple[Packet[P] | None, int]:
    """Decode the first frame of ``buf`` with a device's ``parse``; see :func:`decode`."""
    frame, consumed = decode(buf)
    if frame is None:
        return None, consumed
    return Packet(frame.seq, parse(frame)), consumed
