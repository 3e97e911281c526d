"""Air-puff front-end driver: wires the pure codec and the sans-IO :class:`Receiver` to a link.

The link loop and handshake are the shared ones (drivers/devices/sampledriver.py): REPLAY on
connect, RESEND for a puff with a lost or garbled frame, ACK only when the caller awaits
``delivery.acknowledge()`` after its durable commit. Each puff is one :class:`Delivery` holding
one :class:`RawRecording` (pressure and light counts, ``site`` the eye).
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from drivers.codec.sampletransfer import Completed, Receiver, TransferStats
from drivers.devices.airpuff.codec import CHANNELS, Outcome, PuffStart, parse
from drivers.devices.airpuff.settings import AirpuffSettings
from drivers.devices.sampledriver import SamplesCallback, SampleStreamDriver, record_key
from drivers.readings import Delivery, RawRecording
from drivers.transport.base import ByteTransport

log = logging.getLogger(__name__)


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


class AirpuffDriver(SampleStreamDriver[PuffStart]):
    """Reads puffs from one air-puff tonometer front-end; one instance per open transport."""

    label = "airpuff"

    def __init__(
        self,
        transport: ByteTransport,
        device_id: str,
        settings: AirpuffSettings | None = None,
        stats: TransferStats | None = None,
        on_samples: SamplesCallback | None = None,
    ) -> None:
        self.settings = settings or AirpuffSettings()
        self.stats = stats if stats is not None else TransferStats()
        receiver: Receiver[PuffStart] = Receiver(
            parse, PuffStart, self.stats, self.settings.max_samples
        )
        super().__init__(transport, device_id, self.settings, receiver, on_samples)

    def _delivery(self, event: Completed[PuffStart]) -> Delivery:
        start = event.start
        channels = {}
        for index, name in enumerate(CHANNELS):
            channel = event.counts[:, index].astype(np.float64)
            channel.flags.writeable = False
            channels[name] = channel
        recording = RawRecording(
            kind="airpuff-iop",
            record_key=record_key(self.label, start),
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
