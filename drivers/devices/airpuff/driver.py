"""Air-puff front-end driver: wires the pure codec and the sans-IO :class:`Receiver` to a link.

The handshake is the NIBP module's (drivers/devices/nibp/driver.py): REPLAY on connect, RESEND
for a puff with a lost or garbled frame, ACK only when the caller awaits
``delivery.acknowledge()`` after its durable commit. Each puff is one :class:`Delivery` holding
one :class:`RawRecording` (pressure and light counts, ``site`` the eye).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable

import numpy as np
import numpy.typing as npt

from drivers.codec.sampleframes import (
    Message,
    Replay,
)
from drivers.codec.sampletransfer import (
    Completed,
    Discarded,
    Event,
    Receiver,
    SamplesArrived,
    Send,
    TransferStats,
)
from drivers.devices.airpuff.codec import CHANNELS, Outcome, PuffStart, parse
from drivers.devices.airpuff.settings import AirpuffSettings
from drivers.errors import DeviceTimeoutError
from drivers.readings import Delivery, RawRecording
from drivers.transport.base import ByteTransport

log = logging.getLogger(__name__)

#: called with the pressure counts of each block as it arrives and the sampling rate in Hz
SamplesCallback = Callable[[npt.NDArray[np.float64], float], None]


class AirpuffStats(TransferStats):
    """Counters kept across reconnects: frames, garbled frames, gaps, resends, duplicates."""

    __slots__ = ()


def record_key(start: PuffStart) -> str:
    """Equal for every copy of one puff; distinct across a front-end reboot (time)."""
    who = start.serial or start.model
    return f"airpuff|{who}|{start.measurement_id}|{start.time.isoformat()}"


def refusal(start: PuffStart, total: int, outcome: int) -> str | None:
    """The reason a puff is unusable, None when it completed."""
    try:
        known = Outcome(outcome)
    except ValueError:
        return f"unknown outcome {outcome}"
    if known is not Outcome.COMPLETED:
        return known.label
    if total != start.samples:  # a front-end fault: the record is not the one it announced
        return f"announced {start.samples} samples, sent {total}"
    return None


class AirpuffDriver:
    """Reads puffs from one air-puff tonometer front-end; one instance per open transport."""

    def __init__(
        self,
        transport: ByteTransport,
        device_id: str,
        settings: AirpuffSettings | None = None,
        stats: AirpuffStats | None = None,
        on_samples: SamplesCallback | None = None,
    ) -> None:
        self.transport = transport
        self.device_id = device_id
        self.settings = settings or AirpuffSettings()
        self.stats = stats if stats is not None else AirpuffStats()
        self.on_samples = on_samples
        self._rx: Receiver[PuffStart] = Receiver(
            parse, PuffStart, self.stats, self.settings.max_samples
        )
        self._write_lock = asyncio.Lock()

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Yield one :class:`Delivery` per whole puff until the transport fails.

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

    # ----------------------------------------------------------------- internals

    async def _events(self) -> list[Event[PuffStart]]:
        # Wait for ever on an idle line; inside a frame, silence means the frame is broken.
        timeout = self.settings.frame_timeout if self._rx.buffered else None
        try:
            chunk = await self.transport.read(self.settings.read_chunk, timeout=timeout)
        except DeviceTimeoutError:
            if timeout is None:
                raise
            return self._rx.timeout()
        return self._rx.feed(chunk)

    async def _handle(self, event: Event[PuffStart]) -> None:
        if isinstance(event, Send):
            level = logging.DEBUG if isinstance(event.message, Replay) else logging.WARNING
            log.log(
                level,
                "airpuff %s device=%s garbled_total=%d gaps_total=%d resends_total=%d",
                event.reason,
                self.device_id,
                self.stats.garbled_frames,
                self.stats.gaps,
                self.stats.resends,
            )
            await self._send(event.message)
        elif isinstance(event, SamplesArrived):
            if self.on_samples is not None:
                self.on_samples(event.counts[:, 0].astype(np.float64), float(event.fs))
        elif isinstance(event, Discarded):
            log.error(
                "airpuff puff discarded device=%s id=%d reason=%r",
                self.device_id,
                event.measurement_id,
                event.reason,
            )

    def _delivery(self, event: Completed[PuffStart]) -> Delivery:
        start = event.start
        channels = {}
        for index, name in enumerate(CHANNELS):
            channel = event.counts[:, index].astype(np.float64)
            channel.flags.writeable = False
            channels[name] = channel
        recording = RawRecording(
            kind="airpuff-iop",
            record_key=record_key(start),
            device_time=start.time,
            fs=float(start.fs),
            channels=channels,
            site=start.eye,
            refused=refusal(start, event.end.total, event.end.outcome),
        )
        log.info(
            "airpuff puff device=%s id=%d eye=%s samples=%d refused=%s",
            self.device_id,
            start.measurement_id,
            start.eye,
            event.end.total,
            recording.refused,
        )
        return Delivery(
            readings=(),
            device_model=start.model,
            acknowledge=functools.partial(self._acknowledge, start),
            recordings=(recording,),
        )

    async def _acknowledge(self, start: PuffStart) -> None:
        await self._send(self._rx.acknowledge(start))

    async def _send(self, message: Message) -> None:
        async with self._write_lock:  # numbered under the lock: frames leave in order
            await self.transport.write(self._rx.command(message))
