"""What the simulated raw-signal devices (NIBP module, air-puff front-end) share.

:class:`RawDeviceSimulator` owns the front-end link (simulators/rawdev/frontend.py), the
Poisson patient arrivals, the device's one-second clock, the measurement ids and the ledger
lines; a device says how one patient is measured (:meth:`RawDeviceSimulator.take`) and which
codes its ledger lines carry.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from drivers.codec.sampleframes import Message
from simulators.ledger import Ledger
from simulators.rawdev.frontend import FrontEnd, HostDecoder
from simulators.rawdev.scenario import RawDeviceScenario
from simulators.rawdev.waveform import WaveformSource
from simulators.stamps import SecondClock

log = logging.getLogger(__name__)

Sc = TypeVar("Sc", bound=RawDeviceScenario)
Out = TypeVar("Out")


def pick(rng: random.Random, rates: Iterable[tuple[Out, float]], otherwise: Out) -> Out:
    """One outcome drawn with the given probabilities, ``otherwise`` for the rest."""
    roll = rng.random()
    for outcome, rate in rates:
        if roll < rate:
            return outcome
        roll -= rate
    return otherwise


class RawDeviceSimulator(Generic[Sc]):
    """One simulated raw-signal device; :meth:`run` until :meth:`stop_producing`, then drain."""

    #: the device kind in log lines
    kind = "device"

    def __init__(
        self,
        device_id: str,
        link: Path,
        scenario: Sc,
        ledger: Ledger,
        timezone: str,
        rng: random.Random,
        waveform: WaveformSource,
        decode: HostDecoder,
    ) -> None:
        self.device_id = device_id
        self.scenario = scenario
        self.ledger = ledger
        self.zone = ZoneInfo(timezone)
        self.clock = SecondClock(self.zone)
        self.rng = rng
        self.np_rng = np.random.default_rng(rng.getrandbits(64))
        self.waveform = waveform
        self.frontend = FrontEnd(device_id, link, scenario, decode, rng, self._command)
        self.port = self.frontend.port
        self.produced = 0  # ledger lines
        self.measurements = 0
        self.skipped = 0  # measurements not taken: memory full
        self._producing = True
        self._next_id = rng.randrange(1, 2**31)  # a device with a history
        #: tasks a device starts besides the link and the arrivals (host-started measurements)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def undelivered(self) -> int:
        """Measurements the gateway has not acknowledged yet."""
        return self.frontend.undelivered

    @property
    def busy(self) -> bool:
        """True while a measurement is being taken."""
        return False

    def stop_producing(self) -> None:
        self._producing = False

    async def run(self) -> None:
        link = asyncio.create_task(self.frontend.run_link(), name=f"{self.device_id}-link")
        producer = asyncio.create_task(self._produce(), name=f"{self.device_id}-patients")
        try:
            while self._producing or self.undelivered or self.busy:
                for task in (link, producer):
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        await task  # a simulator bug: fail loudly
                await asyncio.sleep(0.05)
        finally:
            for task in (producer, link, *self._tasks):
                task.cancel()
            await asyncio.gather(producer, link, *self._tasks, return_exceptions=True)

    async def take(self) -> None:
        """Measure the next patient (a device's own protocol)."""
        raise NotImplementedError

    def _command(self, message: Message) -> None:
        """A host command other than the transfer's own; ignored unless a device knows it."""
        log.debug("sim %s ignores %r device=%s", self.kind, message, self.device_id)

    async def _produce(self) -> None:
        rate = self.scenario.patients_per_hour / 3600.0
        while self._producing:
            await asyncio.sleep(self.rng.expovariate(rate))
            if self._producing:
                await self.take()

    def _new_id(self) -> int:
        mid, self._next_id = self._next_id, (self._next_id + 1) & 0xFFFFFFFF
        return mid

    def _ledger_line(self, start_time: datetime, measurement_id: int, **fields: Any) -> None:
        """One reading the gateway should publish: ``fields`` add code, value, unit, status."""
        self.produced += 1
        self.ledger.write(
            device=self.device_id,
            time=start_time.replace(tzinfo=self.zone).isoformat(),
            derived=True,
            measurement=measurement_id,
            emitted_at=round(time.time(), 3),  # wall clock, for latency measurements
            **fields,
        )
