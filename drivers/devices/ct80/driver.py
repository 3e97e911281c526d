"""CT-80 driver: wires the pure codec to a :class:`ByteTransport` and runs the handshake.

Handshake (our extension of the CT-80 output, documented in ``codec``): the device sends a
framed record and repeats it until the gateway answers ACK; the gateway answers NAK to a
garbled frame (the device repeats at once) and ``ACK nnnn`` (nnnn: the record's machine work
id) only after the caller has committed the readings. On connect the gateway sends ENQ,
asking the device to repeat whatever it still holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from drivers.codec.framing import ACK
from drivers.devices.ct80.codec import Ct80Record, decode, to_readings
from drivers.devices.ct80.settings import Ct80Settings
from drivers.devices.handshake import HandshakeDriver, HandshakeStats
from drivers.readings import DeviceReading
from drivers.transport.base import ByteTransport

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Ct80Stats(HandshakeStats):
    """Counters kept across reconnects (exposed to health/metrics)."""


class Ct80Driver(HandshakeDriver[Ct80Record, Ct80Settings, Ct80Stats]):
    """Reads records from one tonometer; one instance per open transport."""

    kind = "ct80"
    logger = log

    def __init__(
        self,
        transport: ByteTransport,
        device_id: str,
        settings: Ct80Settings | None = None,
        stats: Ct80Stats | None = None,
    ) -> None:
        super().__init__(
            transport,
            device_id,
            settings or Ct80Settings(),
            stats if stats is not None else Ct80Stats(),
        )

    def _decode(self, buf: bytes) -> tuple[Ct80Record | None, int]:
        return decode(buf)

    def _readings(self, record: Ct80Record) -> tuple[DeviceReading, ...]:
        return to_readings(record)

    def _ack_id(self, record: Ct80Record) -> str:
        return record.machine_work_id

    async def _acknowledge(self, ack_id: str) -> None:
        # ACK names the record (its 4-digit machine work id) so that a late ACK for an earlier
        # copy of one record can never release the next one (alternating-bit style).
        await self.transport.write(bytes([ACK]) + ack_id.encode("ascii").ljust(4)[:4])
