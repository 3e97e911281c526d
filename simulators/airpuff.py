"""A simulated air-puff tonometer front-end on a pty, sending puffs through the production codec.

Patients arrive at random (Poisson, ``patients_per_hour``); an exam is one puff per eye, right
then left, ``eye_interval`` seconds apart (device time, compressed by ``speed``). Each puff
asks ``waveform`` for the plenum pressure and applanation light of one puff (and its truth),
digitises them (pressure with the scenario's transducer, light as a fraction of
``light_full_scale``), and, the puff over, sends it: MEASUREMENT_START, as many SAMPLES frames
as it takes, MEASUREMENT_END. Faults: misaligned puffs and blinks (the front-end's own
refusals), line noise, lost frames, a pulled cable (simulators/rawdev/frontend.py).

The ledger gets, per puff, the readings the gateway should publish: LOINC 79892-6 (right) or
79893-4 (left) for IOPg, and the gateway's own codes ``corneal-hysteresis`` and
``iop-corneal-compensated`` (mm[Hg]), with the TRUTH as value and ``"derived": true``; value
null for a puff the front-end refused.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from pydantic import Field

from drivers.codec.sampleframes import MeasurementEnd, Message
from drivers.devices.airpuff import Eye, Outcome, PuffStart
from drivers.devices.airpuff import decode as airpuff_decode
from drivers.devices.airpuff.codec import MAX_FS, MIN_FS
from simulators.ledger import Ledger
from simulators.rawdev import (
    FrontEnd,
    RawDeviceScenario,
    Waveform,
    WaveformSource,
    sample_blocks,
    to_counts,
)
from simulators.rawdev.scenario import Rate
from simulators.rawdev.waveform import ADC_MAX, resample

log = logging.getLogger(__name__)

#: codes the gateway is expected to publish per eye, independent of its own mapping
IOPG = {"right": "79892-6", "left": "79893-4"}
CODES = (("iopg", None), ("ch", "corneal-hysteresis"), ("iopcc", "iop-corneal-compensated"))


class AirpuffScenario(RawDeviceScenario):
    """An air-puff tonometer front-end in a screening session."""

    kind: Literal["airpuff"] = "airpuff"
    #: the front-end's ADC rate; a waveform at another rate is resampled to it
    fs: Annotated[int, Field(ge=MIN_FS, le=MAX_FS)] = 16_000
    #: light counts for a detector output of 1.0: a 12-bit photodetector ADC (the light is sent
    #: in u16 words), the full scale edge/signal/iopsettings.py assumes
    light_full_scale: Annotated[int, Field(ge=1, le=ADC_MAX)] = 4095
    #: device seconds between the right and the left puff
    eye_interval: Annotated[float, Field(ge=0)] = 6.0
    #: shares of puffs the front-end refuses by itself
    misaligned_rate: Rate = 0.0
    blink_rate: Rate = 0.0
    model: Annotated[str, Field(pattern=r"^[ -~]{1,12}$")] = "SB-AIRPUFF"


def airpuff_counts(waveform: Waveform, scenario: AirpuffScenario) -> npt.NDArray[np.uint16]:
    """The (pressure, light) count pairs the front-end sends for ``waveform``, shape (n, 2)."""
    if waveform.light is None:
        raise ValueError("an air-puff waveform needs a light signal")
    pressure = resample(waveform.pressure_mmhg, waveform.fs, scenario.fs)
    light = resample(waveform.light, waveform.fs, scenario.fs)
    return np.column_stack(
        [
            to_counts(pressure, scenario.sensor_gain, scenario.sensor_offset),
            to_counts(light, 1.0 / scenario.light_full_scale),
        ]
    )


class SimulatedAirpuff:
    """One simulated air-puff front-end; :meth:`run` until :meth:`stop_producing`, then drain."""

    def __init__(
        self,
        device_id: str,
        link: Path,
        scenario: AirpuffScenario,
        ledger: Ledger,
        timezone: str,
        rng: random.Random,
        waveform: WaveformSource,
    ) -> None:
        self.device_id = device_id
        self.scenario = scenario
        self.ledger = ledger
        self.zone = ZoneInfo(timezone)
        self.rng = rng
        self.np_rng = np.random.default_rng(rng.getrandbits(64))
        self.waveform = waveform
        self.frontend = FrontEnd(device_id, link, scenario, airpuff_decode, rng, self._command)
        self.port = self.frontend.port
        self.produced = 0  # ledger lines
        self.measurements = 0  # puffs
        self.skipped = 0  # puffs not taken: memory full
        self._producing = True
        self._busy = False
        self._next_id = rng.randrange(1, 2**31)  # a front-end with a history
        self._last_time: datetime | None = None

    @property
    def undelivered(self) -> int:
        """Puffs the gateway has not acknowledged yet."""
        return self.frontend.undelivered

    def stop_producing(self) -> None:
        self._producing = False

    async def run(self) -> None:
        link = asyncio.create_task(self.frontend.run_link(), name=f"{self.device_id}-link")
        producer = asyncio.create_task(self._produce(), name=f"{self.device_id}-patients")
        try:
            while self._producing or self.undelivered or self._busy:
                for task in (link, producer):
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        await task  # a simulator bug: fail loudly
                await asyncio.sleep(0.05)
        finally:
            for task in (producer, link):
                task.cancel()
            await asyncio.gather(producer, link, return_exceptions=True)

    # ----------------------------------------------------------------- measuring

    def _command(self, message: Message) -> None:
        log.debug("sim airpuff ignores %r device=%s", message, self.device_id)

    async def _produce(self) -> None:
        rate = self.scenario.patients_per_hour / 3600.0
        while self._producing:
            await asyncio.sleep(self.rng.expovariate(rate))
            if self._producing:
                await self.exam()

    async def exam(self) -> None:
        """One puff on the right eye, then one on the left, if the memory can hold both.

        Skipping the whole exam keeps a waveform source that alternates eyes (right, left) in
        step with the front-end.
        """
        if len(self.frontend.held) + 2 > self.scenario.capacity:
            self.skipped += 2
            log.warning("sim airpuff memory full device=%s: exam not taken", self.device_id)
            return
        self._busy = True
        try:
            await self.puff("right")
            await asyncio.sleep(self.scenario.eye_interval / self.scenario.speed)
            await self.puff("left")
        finally:
            self._busy = False

    def _device_now(self) -> datetime:
        now = datetime.now(self.zone).replace(tzinfo=None, microsecond=0)
        if self._last_time is not None and now <= self._last_time:
            now = self._last_time + timedelta(seconds=1)  # one-second clock: keep times distinct
        self._last_time = now
        return now

    def _outcome(self) -> Outcome:
        roll = self.rng.random()
        if roll < self.scenario.misaligned_rate:
            return Outcome.MISALIGNED
        if roll < self.scenario.misaligned_rate + self.scenario.blink_rate:
            return Outcome.BLINK
        return Outcome.COMPLETED

    async def puff(self, eye: Eye) -> None:
        """Fire one puff, record it, then send it and hold it until ACK."""
        s, fe = self.scenario, self.frontend
        mid, self._next_id = self._next_id, (self._next_id + 1) & 0xFFFFFFFF
        wave = self.waveform(self.np_rng)
        counts = airpuff_counts(wave, s)
        start = PuffStart(mid, eye, s.fs, self._device_now(), len(counts), s.model, s.serial)
        fe.begin_live(mid)
        await asyncio.sleep(len(counts) / s.fs / s.speed)  # the puff itself
        outcome = self._outcome()
        end = MeasurementEnd(mid, len(counts), outcome)
        fe.complete(mid, [start, *sample_blocks(mid, counts), end], send=True)
        self._write_ledger(start, wave, outcome)

    def _write_ledger(self, start: PuffStart, wave: Waveform, outcome: Outcome) -> None:
        self.measurements += 1
        completed = outcome is Outcome.COMPLETED
        for key, code in CODES:
            self.produced += 1
            self.ledger.write(
                device=self.device_id,
                code=code or IOPG[start.eye],
                value=wave.truth.get(key) if completed else None,
                unit="mm[Hg]",
                time=start.time.replace(tzinfo=self.zone).isoformat(),
                status="completed" if completed else outcome.label,
                derived=True,
                site=start.eye,
                measurement=start.measurement_id,
                emitted_at=round(time.time(), 3),  # wall clock, for latency measurements
            )
