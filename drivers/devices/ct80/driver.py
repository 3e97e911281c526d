"""CT-80 driver: wires the pure codec to a :class:`ByteTransport` and runs the handshake.

Handshake (our extension of the CT-80 output, documented in ``codec``): the device sends a
framed record and repeats it until the gateway answers ACK; the gateway answers NAK to a
garbled frame (the device repeats at once) and ``ACK nnnn`` (nnnn: the record's machine work
id) only after the caller has committed the readings. On connect the gateway sends ENQ,
asking the device to repeat whatever it still holds.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from drivers.codec.framing import ACK, ENQ, NAK
from drivers.devices.ct80.codec import decode, to_readings
from drivers.devices.ct80.settings import Ct80Settings
from drivers.errors import FrameError
from drivers.readings import Delivery
from drivers.transport.base import ByteTransport

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Ct80Stats:
    """Counters kept across reconnects (exposed to health/metrics)."""

    records: int = 0
    garbled_frames: int = 0
    noise_bytes: int = 0


class Ct80Driver:
    """Reads records from one tonometer; one instance per open transport."""

    def __init__(
        self,
        transport: ByteTransport,
        device_id: str,
        settings: Ct80Settings | None = None,
        stats: Ct80Stats | None = None,
    ) -> None:
        self.transport = transport
        self.device_id = device_id
        self.settings = settings or Ct80Settings()
        self.stats = stats if stats is not None else Ct80Stats()
        self._buffer = bytearray()

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Yield one :class:`Delivery` per valid record until the transport fails.

        The caller must await ``delivery.acknowledge()`` once the readings are durable; until
        then the device keeps the record and repeats it.
        """
        await self.transport.write(bytes([ENQ]))
        while True:
            chunk = await self.transport.read(self.settings.read_chunk)
            self._buffer.extend(chunk)
            while self._buffer:
                try:
                    record, consumed = decode(bytes(self._buffer))
                except FrameError as exc:
                    del self._buffer[: exc.consumed]
                    await self._on_frame_error(exc)
                    continue
                if record is None:
                    break
                del self._buffer[:consumed]
                self.stats.records += 1
                yield Delivery(
                    readings=to_readings(record),
                    device_model=record.model,
                    acknowledge=functools.partial(self._acknowledge, record.machine_work_id),
                )
            if len(self._buffer) > self.settings.max_buffer:
                self.stats.noise_bytes += len(self._buffer)
                self._buffer.clear()

    async def _acknowledge(self, machine_work_id: str) -> None:
        # ACK names the record (its 4-digit machine work id) so that a late ACK for an earlier
        # copy of one record can never release the next one (alternating-bit style).
        await self.transport.write(bytes([ACK]) + machine_work_id.encode("ascii").ljust(4)[:4])

    async def _on_frame_error(self, exc: FrameError) -> None:
        if exc.reason.startswith("noise"):
            self.stats.noise_bytes += exc.consumed
            log.debug("ct80 noise device=%s bytes=%d", self.device_id, exc.consumed)
            return
        self.stats.garbled_frames += 1
        # Only the reason and offset are logged: the frame may hold a patient ID.
        log.warning(
            "ct80 garbled frame device=%s reason=%r offset=%d garbled_total=%d",
            self.device_id,
            exc.reason,
            exc.offset,
            self.stats.garbled_frames,
        )
        await self.transport.write(bytes([NAK]))
