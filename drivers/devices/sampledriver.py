"""The link loop shared by the raw-signal front-ends (NIBP module, air-puff tonometer).

Both speak the sampled-transfer protocol of :mod:`drivers.codec.sampletransfer`: REPLAY on
connect (the device sends again whatever it still holds), RESEND for a record with a lost or
garbled frame (never a record with a hole), ACK only when the caller awaits
``delivery.acknowledge()`` after its durable commit. A device driver subclasses
:class:`SampleStreamDriver` and says how a completed record becomes a :class:`Delivery`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from drivers.codec.sampleframes import Message, Replay
from drivers.codec.sampletransfer import (
    Completed,
    Discarded,
    Event,
    Received,
    Receiver,
    SamplesArrived,
    Send,
    StartMessage,
    TransferStats,
)
from drivers.errors import DeviceTimeoutError
from drivers.readings import Delivery
from drivers.transport.base import ByteTransport

log = logging.getLogger(__name__)

#: called with the first channel's counts of each block as it arrives and the sampling rate in
#: Hz (the live cuff-pressure display)
SamplesCallback = Callable[[npt.NDArray[np.float64], float], None]


def record_key(kind: str, start: StartMessage) -> str:
    """Equal for every copy of one record; distinct across a device reboot (its time).

    A device numbers its records from a counter that a reboot may reset, so the id alone
    could name two records; the serial (or the model, when the device has none) names the
    device.
    """
    who = start.serial or start.model
    return f"{kind}|{who}|{start.measurement_id}|{start.time.isoformat()}"


class LinkSettings(Protocol):
    """What the loop reads from a device's settings."""

    @property
    def read_chunk(self) -> int: ...

    @property
    def frame_timeout(self) -> float: ...


S = TypeVar("S", bound=StartMessage)


class SampleStreamDriver(Generic[S]):
    """Reads records from one raw-signal device; one instance per open transport.

    ``label`` names the device kind in log lines (``nibp resend measurement device=...``).
    """

    label = "device"

    def __init__(
        self,
        transport: ByteTransport,
        device_id: str,
        settings: LinkSettings,
        receiver: Receiver[S],
        on_samples: SamplesCallback | None = None,
    ) -> None:
        self.transport = transport
        self.device_id = device_id
        self.on_samples = on_samples
        self._link = settings
        self._rx = receiver
        self._write_lock = asyncio.Lock()

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Yield one :class:`Delivery` per whole record until the transport fails.

        Raises :class:`~drivers.errors.TransientDeviceError` when the link goes away (the
        supervisor reconnects).
        """
        await self._send(Replay())
        while True:
            for event in await self._events():
                if isinstance(event, Completed):
                    yield self._delivery(event)
                else:
                    await self._handle(event)

    def _delivery(self, event: Completed[S]) -> Delivery:
        raise NotImplementedError

    def _received(self, message: Message) -> None:
        """A device message outside any record (e.g. a status report); ignored by default."""

    async def _events(self) -> list[Event[S]]:
        # Wait for ever on an idle line; inside a frame, silence means the frame is broken.
        timeout = self._link.frame_timeout if self._rx.buffered else None
        try:
            chunk = await self.transport.read(self._link.read_chunk, timeout=timeout)
        except DeviceTimeoutError:
            if timeout is None:
                raise
            return self._rx.timeout()
        return self._rx.feed(chunk)

    async def _handle(self, event: Event[S]) -> None:
        if isinstance(event, Send):
            level = logging.DEBUG if isinstance(event.message, Replay) else logging.WARNING
            stats: TransferStats = self._rx.stats
            log.log(
                level,
                "%s %s device=%s garbled_total=%d gaps_total=%d resends_total=%d",
                self.label,
                event.reason,
                self.device_id,
                stats.garbled_frames,
                stats.gaps,
                stats.resends,
            )
            await self._send(event.message)
        elif isinstance(event, SamplesArrived):
            if self.on_samples is not None:
                self.on_samples(event.counts[:, 0].astype(np.float64), float(event.fs))
        elif isinstance(event, Discarded):
            log.error(
                "%s record discarded device=%s id=%d reason=%r",
                self.label,
                self.device_id,
                event.measurement_id,
                event.reason,
            )
        elif isinstance(event, Received):
            self._received(event.message)

    async def _acknowledge(self, start: S) -> None:
        await self._send(self._rx.acknowledge(start))

    async def _send(self, message: Message) -> None:
        # Numbered under the lock so that the device sees host frames in sequence order even
        # when a command (the NIBP's STOP) races an ACK from the daemon's task.
        async with self._write_lock:
            await self.transport.write(self._rx.command(message))
