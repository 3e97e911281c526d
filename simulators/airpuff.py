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
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from drivers.codec.sampleframes import MeasurementEnd
from drivers.devices.airpuff import Eye, Outcome, PuffStart
from drivers.devices.airpuff import decode as airpuff_decode
from drivers.devices.airpuff.codec import MAX_FS, MIN_FS
from simulators.ledger import Ledger
from simulators.rawdev import (
    RawDeviceScenario,
    RawDeviceSimulator,
    Waveform,
    WaveformSource,
    pick,
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


class SimulatedAirpuff(RawDeviceSimulator[AirpuffScenario]):
    """One simulated air-puff front-end; :meth:`run` until :meth:`stop_producing`, then drain."""

    kind = "airpuff"

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
        super().__init__(device_id, link, scenario, ledger, timezone, rng, waveform, airpuff_decode)
        self._busy = False

    @property
    def busy(self) -> bool:
        return self._busy

    # ----------------------------------------------------------------- measuring

    async def take(self) -> None:
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

    def _outcome(self) -> Outcome:
        s = self.scenario
        rates = ((Outcome.MISALIGNED, s.misaligned_rate), (Outcome.BLINK, s.blink_rate))
        return pick(self.rng, rates, Outcome.COMPLETED)

    async def puff(self, eye: Eye) -> None:
        """Fire one puff, record it, then send it and hold it until ACK."""
        s, fe = self.scenario, self.frontend
        mid = self._new_id()
        wave = self.waveform(self.np_rng)
        counts = airpuff_counts(wave, s)
        start = PuffStart(mid, eye, s.fs, self.clock(), len(counts), s.model, s.serial)
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
            self._ledger_line(
                start.time,
                start.measurement_id,
                code=code or IOPG[start.eye],
                value=wave.truth.get(key) if completed else None,
                unit="mm[Hg]",
                status="completed" if completed else outcome.label,
                site=start.eye,
            )
