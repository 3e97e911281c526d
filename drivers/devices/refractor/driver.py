"""Autorefractor / keratometer driver: the pure codec on a :class:`ByteTransport`, and its readings.

Handshake (our extension, as for the CT-80; documented in docs/refraction.md): the device sends
a block and repeats it until the gateway answers ``ACK nnnn`` (nnnn: the block's exam number),
which the gateway sends only after the caller has committed the readings; a garbled block gets
NAK (the device repeats at once). On connect the gateway sends ENQ, asking the device to repeat
whatever it still holds.

Readings (device-neutral names; the daemon codes them, edge/pipeline/codes.py): per measured
eye, ``refraction.<eye>.sphere`` / ``.cylinder`` (D) / ``.axis`` (deg) from the device's
representative value, marked unreliable when its confidence digit is below
:data:`~drivers.devices.refractor.codec.RELIABLE_FROM`; ``kerato.<eye>.k1`` and ``.k2``, each
``.radius`` (mm), ``.power`` (D) and ``.axis`` (deg); and ``pd`` (mm) when the block has one.
The single readings stay in the device record: the representative value is what the device
reports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from drivers.codec.framing import ACK
from drivers.devices.handshake import HandshakeDriver, HandshakeStats
from drivers.devices.refractor.codec import RELIABLE_FROM, RefractorRecord, decode
from drivers.readings import DeviceReading, ReadingStatus
from drivers.transport.base import ByteTransport

log = logging.getLogger(__name__)


def to_readings(record: RefractorRecord) -> tuple[DeviceReading, ...]:
    """The readings of one block, eye by eye (an eye not measured yields none)."""
    out: list[DeviceReading] = []
    key = record.key  # a hash of the encoded block: computed once, shared by its readings

    def add(quantity: str, value: float, unit: str, decimals: int, status: ReadingStatus) -> None:
        out.append(
            DeviceReading(
                quantity=quantity,
                value=value,
                unit=unit,
                device_time=record.time,
                record_key=key,
                status=status,
                decimals=decimals,
            )
        )

    ok = ReadingStatus.OK
    for side, eye in (("right", record.right), ("left", record.left)):
        rep = eye.representative
        if rep is not None:
            status = ReadingStatus.UNRELIABLE if rep.confidence < RELIABLE_FROM else ok
            add(f"refraction.{side}.sphere", rep.sphere, "D", 2, status)
            add(f"refraction.{side}.cylinder", rep.cylinder, "D", 2, status)
            add(f"refraction.{side}.axis", rep.axis, "deg", 0, status)
        for name, k in (("k1", eye.k1), ("k2", eye.k2)):
            if k is not None:
                add(f"kerato.{side}.{name}.radius", k.radius, "mm", 2, ok)
                add(f"kerato.{side}.{name}.power", k.power, "D", 2, ok)
                add(f"kerato.{side}.{name}.axis", k.axis, "deg", 0, ok)
    if record.pd_mm is not None and (record.right.measured or record.left.measured):
        add("pd", record.pd_mm, "mm", 1, ok)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class RefractorSettings:
    """``read_chunk``: bytes per read; ``max_buffer``: noise kept before it is discarded."""

    read_chunk: int = 512
    max_buffer: int = 8192


@dataclass(slots=True)
class RefractorStats(HandshakeStats):
    """Counters kept across reconnects (exposed to health/metrics)."""


class RefractorDriver(HandshakeDriver[RefractorRecord, RefractorSettings, RefractorStats]):
    """Reads blocks from one autorefractor / keratometer; one instance per open transport."""

    kind = "refractor"
    logger = log

    def __init__(
        self,
        transport: ByteTransport,
        device_id: str,
        settings: RefractorSettings | None = None,
        stats: RefractorStats | None = None,
    ) -> None:
        super().__init__(
            transport,
            device_id,
            settings or RefractorSettings(),
            stats if stats is not None else RefractorStats(),
        )

    def _decode(self, buf: bytes) -> tuple[RefractorRecord | None, int]:
        return decode(buf)

    def _readings(self, record: RefractorRecord) -> tuple[DeviceReading, ...]:
        return to_readings(record)

    def _ack_id(self, record: RefractorRecord) -> str:
        return record.exam_no

    async def _acknowledge(self, ack_id: str) -> None:
        # ACK names the block (its exam number) so that a late ACK for an earlier copy of one
        # block can never release the next one
        await self.transport.write(bytes([ACK]) + ack_id.encode("ascii"))
