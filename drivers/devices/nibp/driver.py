"""NIBP module driver: wires the pure codec and the sans-IO :class:`Receiver` to a transport.

On connect the driver sends REPLAY, so the module sends again whatever it still holds (a
measurement taken while the gateway was down or restarting). Each measurement is assembled
whole - a lost or garbled frame makes the driver ask RESEND, never deliver a hole - and
delivered as a :class:`RawRecording` of cuff-pressure counts. ACK goes out only when the
caller awaits ``delivery.acknowledge()`` after its durable commit; until then the module keeps
the measurement and repeats it.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from drivers.codec.sampleframes import Message
from drivers.codec.sampletransfer import Completed, Receiver, TransferStats
from drivers.devices.nibp.codec import MeasurementStart, Outcome, Start, Status, Stop, parse
from drivers.devices.nibp.settings import NibpSettings
from drivers.devices.sampledriver import SamplesCallback, SampleStreamDriver, record_key
from drivers.readings import Delivery, RawRecording
from drivers.transport.base import ByteTransport

log = logging.getLogger(__name__)


def refusal(outcome: int) -> str | None:
    """The reason a measurement is unusable, None when it completed."""
    try:
        known = Outcome(outcome)
    except ValueError:
        return f"unknown outcome {outcome}"
    return None if known is Outcome.COMPLETED else known.label


class NibpDriver(SampleStreamDriver[MeasurementStart]):
    """Reads measurements from one NIBP module; one instance per open transport."""

    label = "nibp"

    def __init__(
        self,
        transport: ByteTransport,
        device_id: str,
        settings: NibpSettings | None = None,
        stats: TransferStats | None = None,
        on_samples: SamplesCallback | None = None,
    ) -> None:
        self.settings = settings or NibpSettings()
        self.stats = stats if stats is not None else TransferStats()
        #: the module's last STATUS report (None until one arrives)
        self.status: Status | None = None
        receiver: Receiver[MeasurementStart] = Receiver(
            parse, MeasurementStart, self.stats, self.settings.max_samples
        )
        super().__init__(transport, device_id, self.settings, receiver, on_samples)

    async def start(self, target_mmhg: int) -> None:
        """Ask the module to inflate to ``target_mmhg`` and measure."""
        await self._send(Start(target_mmhg))

    async def stop(self) -> None:
        """Abort the measurement and dump the cuff now (safety)."""
        log.warning("nibp STOP sent device=%s", self.device_id)
        await self._send(Stop())

    def _received(self, message: Message) -> None:
        if isinstance(message, Status):
            self.status = message

    def _delivery(self, event: Completed[MeasurementStart]) -> Delivery:
        start = event.start
        pressure = event.counts[:, 0].astype(np.float64)
        pressure.flags.writeable = False
        recording = RawRecording(
            kind="oscillometric-bp",
            record_key=record_key(self.label, start),
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
