"""NIBP module driver: wires the pure codec and the sans-IO :class:`Receiver` to a transport.

On connect the driver sends REPLAY, so the module sends again whatever it still holds (a
measurement taken while the gateway was down or restarting). Each measurement is assembled
whole - a lost or garbled frame makes the driver ask RESEND, never deliver a hole - and
delivered as a :class:`RawRecording` of cuff-pressure counts. ACK goes out only when the
caller awaits ``delivery.acknowledge()`` after its durable commit; until then the module keeps
the measurement and repeats it.
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
    Received,
    Receiver,
    SamplesArrived,
    Send,
    TransferStats,
)
from drivers.devices.nibp.codec import MeasurementStart, Outcome, Start, Status, Stop, parse
from drivers.devices.nibp.settings import NibpSettings
from drivers.errors import DeviceTimeoutError
from drivers.readings import Delivery, RawRecording
from drivers.transport.base import ByteTransport

log = logging.getLogger(__name__)

#: called with each block of cuff-pressure counts as it arrives and the sampling rate in Hz
#: (a live pressure display)
SamplesCallback = Callable[[npt.NDArray[np.float64], float], None]


class NibpStats(TransferStats):
    """Counters kept across reconnects: frames, garbled frames, gaps, resends, duplicates."""

    __slots__ = ()


def record_key(start: MeasurementStart) -> str:
    """Equal for every copy of one measurement; distinct across a module reboot (time)."""
    who = start.serial or start.model
    return f"nibp|{who}|{start.measurement_id}|{start.time.isoformat()}"


def refusal(outcome: int) -> str | None:
    """The reason a measurement is unusable, None when it completed."""
    try:
        known = Outcome(outcome)
    except ValueError:
        return f"unknown outcome {outcome}"
    return None if known is Outcome.COMPLETED else known.label


class NibpDriver:
    """Reads measurements from one NIBP module; one instance per open transport."""

    def __init__(
        self,
        transport: ByteTransport,
        device_id: str,
        settings: NibpSettings | None = None,
        stats: NibpStats | None = None,
        on_samples: SamplesCallback | None = None,
    ) -> None:
        self.transport = transport
        self.device_id = device_id
        self.settings = settings or NibpSettings()
        self.stats = stats if stats is not None else NibpStats()
        self.on_samples = on_samples
        #: the module's last STATUS report (None until one arrives)
        self.status: Status | None = None
        self._rx: Receiver[MeasurementStart] = Receiver(
            parse, MeasurementStart, self.stats, self.settings.max_samples
        )
        self._write_lock = asyncio.Lock()

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Yield one :class:`Delivery` per whole measurement until the transport fails.

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

    async def start(self, target_mmhg: int) -> None:
        """Ask the module to inflate to ``target_mmhg`` and measure."""
        await self._send(Start(target_mmhg))

    async def stop(self) -> None:
        """Abort the measurement and dump the cuff now (safety)."""
        log.warning("nibp STOP sent device=%s", self.device_id)
        await self._send(Stop())

    # ----------------------------------------------------------------- internals

    async def _events(self) -> list[Event[MeasurementStart]]:
        # Wait for ever on an idle line; inside a frame, silence means the frame is broken.
        timeout = self.settings.frame_timeout if self._rx.buffered else None
        try:
            chunk = await self.transport.read(self.settings.read_chunk, timeout=timeout)
        except DeviceTimeoutError:
            if timeout is None:
                raise
            return self._rx.timeout()
        return self._rx.feed(chunk)

    async def _handle(self, event: Event[MeasurementStart]) -> None:
        if isinstance(event, Send):
            level = logging.DEBUG if isinstance(event.message, Replay) else logging.WARNING
            log.log(
                level,
                "nibp %s device=%s garbled_total=%d gaps_total=%d resends_total=%d",
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
                "nibp measurement discarded device=%s id=%d reason=%r",
                self.device_id,
                event.measurement_id,
                event.reason,
            )
        elif isinstance(event, Received) and isinstance(event.message, Status):
            self.status = event.message

    def _delivery(self, event: Completed[MeasurementStart]) -> Delivery:
        start = event.start
        pressure = event.counts[:, 0].astype(np.float64)
        pressure.flags.writeable = False
        recording = RawRecording(
            kind="oscillometric-bp",
            record_key=record_key(start),
            device_time=start.time,
            fs=float(start.fs),
            channels={"pressure": pressure},
            refused=refusal(event.end.outcome),
        )
        log.info(
            "nibp measurement device=%s id=%d samples=%d refused=%s",
            self.device_id,
            start.measurement_id,
            len(pressure),
            recording.refused,
        )
        return Delivery(
            readings=(),
            device_model=start.model,
            acknowledge=functools.partial(self._acknowledge, start),
            recordings=(recording,),
        )

    async def _acknowledge(self, start: MeasurementStart) -> None:
        await self._send(self._rx.acknowledge(start))

    async def _send(self, message: Message) -> None:
        # Numbered under the lock so that the module sees host frames in sequence order even
        # when stop() races an ACK from the daemon's task.
        async with self._write_lock:
            await self.transport.write(self._rx.command(message))
