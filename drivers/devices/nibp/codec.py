"""Pure codec for an OEM NIBP module that streams the raw cuff pressure of each measurement.

Our protocol, modelled on OEM NIBP module protocols (SunTech Advantage, CAS-style binary
links), on the frame layer of :mod:`drivers.codec.sampleframes` (SOF 0xA5, type, sequence
number, length, payload, CRC-16/CCITT-FALSE). The module does not compute a blood pressure:
it streams the cuff pressure during deflation and the gateway analyses it. Payloads (little
endian)::

    type  direction      name               payload
    0x01  module->host   MEASUREMENT_START  id u32, fs u16 (250..1000 Hz), device time
                                            (year u16, month, day, hour, minute, second u8),
                                            sample format u8 (1: one channel of u16 counts),
                                            model 12 ASCII, serial 12 ASCII (space padded)
    0x02  module->host   SAMPLES            id u32, first index u32, n u16, channels u8 (1),
                                            n x u16 cuff pressure ADC counts
    0x03  module->host   MEASUREMENT_END    id u32, total samples u32, outcome u8 (Outcome)
    0x10  module->host   STATUS             state u8 (CuffState), flags u8 (bit 0: pressure
                                            present, bit 1: over-pressure dump), live cuff
                                            pressure u16 counts
    0x83  host->module   REPLAY             (empty) send every unacknowledged measurement
    0x84  host->module   RESEND             id u32: send this measurement again from its start
    0x85  host->module   ACK                id u32: stored durably, forget it
    0x90  host->module   START              target inflation pressure u16 mmHg (60..300)
    0x91  host->module   STOP               (empty) abort: dump the cuff at once (safety)
    0x92  host->module   SERVICE            mode u8 (ServiceMode): 1 = static pressure: pump
                                            off, valves closed, STATUS (state SERVICE) every
                                            100 ms, the over-pressure guard still armed;
                                            0 = back to measuring

Service mode is how a technician checks the transducer (issue #8, drivers/devices/nibp/
service.py): the cuff port is teed to a reference manometer that sets static pressures, and the
module reports what its transducer reads. The guard opens the dump valve above the module's
limit whatever the mode, and says so in STATUS (flag bit 1, state ERROR).

The module keeps up to 8 completed measurements until each is acknowledged and repeats them
after a timeout or on REPLAY, as the CT-80 repeats its record until ACK.
``decode(buf) -> (packet | None, consumed)`` never does I/O and raises
:class:`~drivers.errors.FrameError` for garbage (see the frame layer's contract).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import ClassVar

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

MIN_FS, MAX_FS = 250, 1000
MIN_TARGET_MMHG, MAX_TARGET_MMHG = 60, 300
SAMPLE_FORMAT_U16 = 1
TEXT_WIDTH = 12
_ID_FS = struct.Struct("<IH")
_START_TAIL = struct.Struct(f"<B{TEXT_WIDTH}s{TEXT_WIDTH}s")
_START_LENGTH = _ID_FS.size + sf.TIME_LENGTH + _START_TAIL.size
_STATUS = struct.Struct("<BBH")
_TARGET = struct.Struct("<H")


class NibpFrameType(IntEnum):
    """The module's own frame types (the shared ones are :class:`FrameType`)."""

    STATUS = 0x10
    START = 0x90
    STOP = 0x91
    SERVICE = 0x92


class ServiceMode(IntEnum):
    MEASURE = 0
    STATIC = 1


class Outcome(IntEnum):
    """How a measurement ended (MEASUREMENT_END); anything but COMPLETED is refused."""

    COMPLETED = 0
    ABORTED_BY_HOST = 1
    OVER_PRESSURE = 2
    TIMEOUT = 3
    CUFF_LEAK = 4

    @property
    def label(self) -> str:
        """``aborted-by-host``: the reason a refused recording carries."""
        return self.name.lower().replace("_", "-")


class CuffState(IntEnum):
    IDLE = 0
    INFLATING = 1
    DEFLATING = 2
    DONE = 3
    ERROR = 4
    SERVICE = 5


@dataclass(frozen=True, slots=True)
class MeasurementStart:
    """The first frame of a measurement. ``time`` is the module's local clock (naive)."""

    measurement_id: int
    fs: int
    time: datetime
    model: str
    serial: str = ""
    sample_format: int = SAMPLE_FORMAT_U16
    frame_type: ClassVar[int] = FrameType.MEASUREMENT_START

    def __post_init__(self) -> None:
        if not MIN_FS <= self.fs <= MAX_FS:
            raise ValueError(f"fs {self.fs} Hz outside {MIN_FS}..{MAX_FS}")
        if self.sample_format != SAMPLE_FORMAT_U16:
            raise ValueError(f"unknown sample format {self.sample_format}")
        pack_ascii(self.model, TEXT_WIDTH, "model")
        pack_ascii(self.serial, TEXT_WIDTH, "serial")

    @property
    def channels(self) -> int:
        return 1

    def payload(self) -> bytes:
        return (
            _ID_FS.pack(self.measurement_id, self.fs)
            + pack_time(self.time)
            + _START_TAIL.pack(
                self.sample_format,
                pack_ascii(self.model, TEXT_WIDTH, "model"),
                pack_ascii(self.serial, TEXT_WIDTH, "serial"),
            )
        )


@dataclass(frozen=True, slots=True)
class Status:
    """What the cuff is doing; ``pressure`` (counts) is absent when the module has none.

    ``dumped``: the over-pressure guard opened the dump valve (flag bit 1).
    """

    state: CuffState
    pressure: int | None = None
    dumped: bool = False
    frame_type: ClassVar[int] = NibpFrameType.STATUS

    def payload(self) -> bytes:
        present = self.pressure is not None
        flags = int(present) | (2 if self.dumped else 0)
        return _STATUS.pack(self.state, flags, self.pressure if present else 0)


@dataclass(frozen=True, slots=True)
class Start:
    """Host: inflate to ``target_mmhg`` and measure."""

    target_mmhg: int
    frame_type: ClassVar[int] = NibpFrameType.START

    def __post_init__(self) -> None:
        if not MIN_TARGET_MMHG <= self.target_mmhg <= MAX_TARGET_MMHG:
            raise ValueError(
                f"target {self.target_mmhg} mmHg outside {MIN_TARGET_MMHG}..{MAX_TARGET_MMHG}"
            )

    def payload(self) -> bytes:
        return _TARGET.pack(self.target_mmhg)


@dataclass(frozen=True, slots=True)
class Service:
    """Host: enter or leave the static-pressure service mode."""

    mode: ServiceMode
    frame_type: ClassVar[int] = NibpFrameType.SERVICE

    def payload(self) -> bytes:
        return bytes([self.mode])


@dataclass(frozen=True, slots=True)
class Stop:
    """Host: abort now and dump the cuff (a safety command: always honoured)."""

    frame_type: ClassVar[int] = NibpFrameType.STOP

    def payload(self) -> bytes:
        return b""


NibpMessage = (
    MeasurementStart
    | Samples
    | MeasurementEnd
    | Status
    | Replay
    | Resend
    | Ack
    | Start
    | Stop
    | Service
)


def _parse_start(frame: Frame) -> MeasurementStart:
    p = frame.payload
    if len(p) != _START_LENGTH:
        raise bad_payload(frame, "MEASUREMENT_START payload length")
    mid, fs = _ID_FS.unpack_from(p)
    time = unpack_time(frame, _ID_FS.size)
    fmt, model, serial = _START_TAIL.unpack_from(p, _ID_FS.size + sf.TIME_LENGTH)
    if not MIN_FS <= fs <= MAX_FS:
        raise bad_payload(frame, f"sampling rate {fs} Hz outside {MIN_FS}..{MAX_FS}", 4)
    if fmt != SAMPLE_FORMAT_U16:
        raise bad_payload(frame, f"unknown sample format {fmt}", _ID_FS.size + sf.TIME_LENGTH)
    text_at = _ID_FS.size + sf.TIME_LENGTH + 1
    return MeasurementStart(
        mid,
        fs,
        time,
        unpack_ascii(frame, model, text_at),
        unpack_ascii(frame, serial, text_at + TEXT_WIDTH),
        fmt,
    )


def _parse_status(frame: Frame) -> Status:
    if len(frame.payload) != _STATUS.size:
        raise bad_payload(frame, "STATUS payload length")
    state, flags, pressure = _STATUS.unpack(frame.payload)
    try:
        cuff = CuffState(state)
    except ValueError:
        raise bad_payload(frame, f"unknown cuff state {state}") from None
    return Status(cuff, pressure if flags & 1 else None, bool(flags & 2))


def _parse_start_command(frame: Frame) -> Start:
    if len(frame.payload) != _TARGET.size:
        raise bad_payload(frame, "START payload length")
    try:
        return Start(*_TARGET.unpack(frame.payload))
    except ValueError as exc:
        raise bad_payload(frame, str(exc)) from None


def parse(frame: Frame) -> NibpMessage:
    """The message a CRC-valid frame carries; :class:`FrameError` (whole frame) if malformed."""
    common = sf.parse_common(frame, 1)
    if common is not None:
        return common
    if frame.type == FrameType.MEASUREMENT_START:
        return _parse_start(frame)
    if frame.type == NibpFrameType.STATUS:
        return _parse_status(frame)
    if frame.type == NibpFrameType.START:
        return _parse_start_command(frame)
    if frame.type == NibpFrameType.SERVICE:
        if len(frame.payload) != 1 or frame.payload[0] not in tuple(ServiceMode):
            raise bad_payload(frame, "SERVICE mode must be one byte, 0 or 1")
        return Service(ServiceMode(frame.payload[0]))
    if frame.type == NibpFrameType.STOP:
        if frame.payload:
            raise bad_payload(frame, "STOP has no payload")
        return Stop()
    raise bad_payload(frame, f"unknown frame type 0x{frame.type:02X}")


def encode(packet: Packet[NibpMessage]) -> bytes:
    """Frame bytes of one message with its sequence number."""
    return sf.encode_packet(packet)


def decode(buf: bytes | bytearray) -> tuple[Packet[NibpMessage] | None, int]:
    """Decode the first frame of ``buf`` into a packet; see :func:`sampleframes.decode`."""
    return sf.decode_packet(buf, parse)
