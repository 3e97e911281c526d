"""The ENQ / NAK / ACK-after-commit handshake of the RS-232 text-block devices.

The CT-80 style tonometer and the autorefractor / keratometer speak it alike (our extension of
their output, documented with each device): the device sends a framed block and repeats it
until the gateway answers ``ACK nnnn`` (nnnn names the block), which the gateway sends only
after the caller has committed the readings; a garbled block gets NAK (the device repeats at
once). On connect the gateway sends ENQ, asking the device to repeat whatever it still holds.
:class:`HandshakeDriver` runs that loop on a :class:`ByteTransport`; each device's driver
subclasses it with its codec, its readings and the way its ACK names a block.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, TypeVar

from drivers.codec.framing import ENQ, NAK
from drivers.errors import FrameError
from drivers.readings import Delivery, DeviceReading
from drivers.transport.base import ByteTransport


class LinkSettings(Protocol):
    """What the handshake loop reads of a device's settings."""

    @property
    def read_chunk(self) -> int: ...

    @property
    def max_buffer(self) -> int: ...


class Block(Protocol):
    """What the handshake loop reads of a decoded block."""

    @property
    def model(self) -> str: ...


@dataclass(slots=True)
class HandshakeStats:
    """Counters kept across reconnects (exposed to health/metrics)."""

    records: int = 0
    garbled_frames: int = 0
    noise_bytes: int = 0


RecordT = TypeVar("RecordT", bound=Block)
SettingsT = TypeVar("SettingsT", bound=LinkSettings)
StatsT = TypeVar("StatsT", bound=HandshakeStats)


class HandshakeDriver(Generic[RecordT, SettingsT, StatsT]):
    """Reads blocks from one device; one instance per open transport.

    A subclass names its log lines (``kind``, ``log``) and gives its codec (:meth:`_decode`),
    its readings (:meth:`_readings`), the id its ACK names (:meth:`_ack_id`) and the ACK itself
    (:meth:`_acknowledge`).
    """

    #: the first word of the driver's log lines ("ct80", "refractor")
    kind: ClassVar[str]
    #: the logger of the driver's module
    logger: ClassVar[logging.Logger]

    def __init__(
        self, transport: ByteTransport, device_id: str, settings: SettingsT, stats: StatsT
    ) -> None:
        self.transport = transport
        self.device_id = device_id
        self.settings = settings
        self.stats = stats
        self._buffer = bytearray()

    def _decode(self, buf: bytes) -> tuple[RecordT | None, int]:
        raise NotImplementedError

    def _readings(self, record: RecordT) -> tuple[DeviceReading, ...]:
        raise NotImplementedError

    def _ack_id(self, record: RecordT) -> str:
        raise NotImplementedError

    async def _acknowledge(self, ack_id: str) -> None:
        raise NotImplementedError

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Yield one :class:`Delivery` per valid block until the transport fails.

        The caller must await ``delivery.acknowledge()`` once the readings are durable; until
        then the device keeps the block and repeats it.
        """
        await self.transport.write(bytes([ENQ]))
        while True:
            chunk = await self.transport.read(self.settings.read_chunk)
            self._buffer.extend(chunk)
            while self._buffer:
                try:
                    record, consumed = self._decode(bytes(self._buffer))
                except FrameError as exc:
                    del self._buffer[: exc.consumed]
                    await self._on_frame_error(exc)
                    continue
                if record is None:
                    break
                del self._buffer[:consumed]
                self.stats.records += 1
                yield Delivery(
                    readings=self._readings(record),
                    device_model=record.model,
                    acknowledge=functools.partial(self._acknowledge, self._ack_id(record)),
                )
            if len(self._buffer) > self.settings.max_buffer:
                self.stats.noise_bytes += len(self._buffer)
                self._buffer.clear()

    async def _on_frame_error(self, exc: FrameError) -> None:
        if exc.reason.startswith("noise"):
            self.stats.noise_bytes += exc.consumed
            self.logger.debug(
                "%s noise device=%s bytes=%d", self.kind, self.device_id, exc.consumed
            )
            return
        self.stats.garbled_frames += 1
        # Only the reason and offset are logged: the block may hold a patient ID.
        self.logger.warning(
            "%s garbled frame device=%s reason=%r offset=%d garbled_total=%d",
            self.kind,
            self.device_id,
            exc.reason,
            exc.offset,
            self.stats.garbled_frames,
        )
        await self.transport.write(bytes([NAK]))
