"""Pure codec for an air-puff tonometer front-end that streams each puff's raw signals.

Our protocol, modelled on OEM NIBP module protocols (SunTech Advantage, CAS-style binary
links) like the NIBP module's, on the frame layer of :mod:`drivers.codec.sampleframes`. The
front-end of an Ocular Response Analyzer style tonometer samples, for each puff, the plenum
(air) pressure and the applanation light detector; the gateway finds the two applanation
peaks and computes IOPg, corneal hysteresis and IOPcc. A puff lasts some 30 ms at 10-20 kHz,
faster than an RS-232 line carries live, so the front-end sends the puff once it is over,
split into as many SAMPLES frames as it takes. Payloads (little endian)::

    type  direction     name               payload
    0x01  device->host  MEASUREMENT_START  id u32, eye u8 (0 right, 1 left), fs u32
                                           (1000..100000 Hz), device time (year u16, month,
                                           day, hour, minute, second u8), sample format u8
                                           (2: pairs of u16 pressure, u16 light counts),
                                           n u32 (pairs to follow), model 12 ASCII,
                                           serial 12 ASCII (space padded)
    0x02  device->host  SAMPLES            id u32, first index u32, n u16, channels u8 (2),
                                           n x (pressure u16, light u16)
    0x03  device->host  MEASUREMENT_END    id u32, total pairs u32, outcome u8 (Outcome)
    0x83  host->device  REPLAY             (empty) send every unacknowledged puff
    0x84  host->device  RESEND             id u32: send this puff again from its start
    0x85  host->device  ACK                id u32: stored durably, forget it

One exam is one puff per eye, right then left: two measurements, each acknowledged on its own.
``decode(buf) -> (packet | None, consumed)`` never does I/O and raises
:class:`~drivers.errors.FrameError` for garbage (see the frame layer's contract).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import ClassVar, Literal

from drivers.codec import sampleframes as sf
from drivers.codec.sampleframes import (
    Ack,
    Frame,
    FrameType,
    MeasurementEnd,
    Packet,
    Replay,
    Resend,
    Samples,
    bad_payload,
    pack_ascii,
    pack_time,
    unpack_ascii,
    unpack_time,
)

MIN_FS, MAX_FS = 1000, 100_000
SAMPLE_FORMAT_PRESSURE_LIGHT = 2
TEXT_WIDTH = 12
CHANNELS = ("pressure", "light")
EYES: tuple[Literal["right"], Literal["left"]] = ("right", "left")
_HEAD = struct.Struct("<IBI")  # id, eye, fs
_TAIL = struct.Struct(f"<BI{TEXT_WIDTH}s{TEXT_WIDTH}s")  # format, n, model, serial
_START_LENGTH = _HEAD.size + sf.TIME_LENGTH + _TAIL.size

Eye = Literal["right", "left"]


class Outcome(IntEnum):
    """How a puff ended (MEASUREMENT_END); anything but COMPLETED is refused."""

    COMPLETED = 0
    #: the operator cancelled the puff
    ABORTED = 1
    #: the alignment system lost the corneal reflex when the puff fired
    MISALIGNED = 2
    #: the eyelid closed during the puff
    BLINK = 3

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class PuffStart:
    """The first frame of a puff. ``time`` is the front-end's local clock (naive)."""

    measurement_id: int
    eye: Eye
    fs: int
    time: datetime
    samples: int
    model: str
    serial: str = ""
    sample_format: int = SAMPLE_FORMAT_PRESSURE_LIGHT
    frame_type: ClassVar[int] = FrameType.MEASUREMENT_START

    def __post_init__(self) -> None:
        if self.eye not in EYES:
            raise ValueError(f"eye must be right or left, got {self.eye!r}")
        if not MIN_FS <= self.fs <= MAX_FS:
            raise ValueError(f"fs {self.fs} Hz outside {MIN_FS}..{MAX_FS}")
        if self.sample_format != SAMPLE_FORMAT_PRESSURE_LIGHT:
            raise ValueError(f"unknown sample format {self.sample_format}")
        pack_ascii(self.model, TEXT_WIDTH, "model")
        pack_ascii(self.serial, TEXT_WIDTH, "serial")

    @property
    def channels(self) -> int:
        return len(CHANNELS)

    def payload(self) -> bytes:
        return (
            _HEAD.pack(self.measurement_id, EYES.index(self.eye), self.fs)
            + pack_time(self.time)
            + _TAIL.pack(
                self.sample_format,
                self.samples,
                pack_ascii(self.model, TEXT_WIDTH, "model"),
                pack_ascii(self.serial, TEXT_WIDTH, "serial"),
            )
        )


AirpuffMessage = PuffStart | Samples | MeasurementEnd | Replay | Resend | Ack


def _parse_start(frame: Frame) -> PuffStart:
    p = frame.payload
    if len(p) != _START_LENGTH:
        raise bad_payload(frame, "MEASUREMENT_START payload length")
    mid, eye, fs = _HEAD.unpack_from(p)
    time = unpack_time(frame, _HEAD.size)
    at = _HEAD.size + sf.TIME_LENGTH
    fmt, n, model, serial = _TAIL.unpack_from(p, at)
    if eye >= len(EYES):
        raise bad_payload(frame, f"unknown eye code {eye}", 4)
    if not MIN_FS <= fs <= MAX_FS:
        raise bad_payload(frame, f"sampling rate {fs} Hz outside {MIN_FS}..{MAX_FS}", 5)
    if fmt != SAMPLE_FORMAT_PRESSURE_LIGHT:
        raise bad_payload(frame, f"unknown sample format {fmt}", at)
    return PuffStart(
        mid,
        EYES[eye],
        fs,
        time,
        n,
        unpack_ascii(frame, model, at + 5),
        unpack_ascii(frame, serial, at + 5 + TEXT_WIDTH),
        fmt,
    )


def parse(frame: Frame) -> AirpuffMessage:
    """The message a CRC-valid frame carries; :class:`FrameError` (whole frame) if malformed."""
    common = sf.parse_common(frame, len(CHANNELS))
    if common is not None:
        return common
    if frame.type == FrameType.MEASUREMENT_START:
        return _parse_start(frame)
    raise bad_payload(frame, f"unknown frame type 0x{frame.type:02X}")


def encode(packet: Packet[AirpuffMessage]) -> bytes:
    """Frame bytes of one message with its sequence number."""
    return sf.encode_packet(packet)


def decode(buf: bytes | bytearray) -> tuple[Packet[AirpuffMessage] | None, int]:
    """Decode the first frame of ``buf`` into a packet; see :func:`sampleframes.decode`."""
    return sf.decode_packet(buf, parse)
