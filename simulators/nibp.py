"""A simulated OEM NIBP module on a pty, streaming raw cuff pressure through the production codec.

Patients arrive at random (Poisson, ``patients_per_hour``; one cuff, so they queue); the host's
START also starts a measurement. Each measurement asks ``waveform`` for a cuff-pressure record
(and its truth), digitises it with the scenario's transducer (simulators/rawdev/waveform.py),
and streams it live - STATUS, MEASUREMENT_START, a SAMPLES frame per 100 ms of deflation,
MEASUREMENT_END - at ``speed`` times real time. Faults from the scenario: the module's own
aborts (over-pressure, timeout, cuff leak), line noise, lost frames and a pulled cable
(simulators/rawdev/frontend.py). STOP from the host aborts at once.

The ledger gets one line per reading the gateway should publish, when the measurement ends:
LOINC 8480-6 systolic, 8462-4 diastolic, 8478-0 mean (mm[Hg]) and 8867-4 pulse rate (/min),
with the TRUTH as value and ``"derived": true`` (the gateway computes its own value from the
signal, so accounting matches on device, code and time); value null for an aborted measurement.
"""

from __future__ import annotations

import asyncio
import logging
import random
import zlib
from pathlib import Path
from typing import Annotated, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import Field

from drivers.codec.sampleframes import MeasurementEnd, Message, Samples
from drivers.devices.nibp import (
    CuffState,
    MeasurementStart,
    Outcome,
    Service,
    ServiceMode,
    Start,
    Status,
    Stop,
)
from drivers.devices.nibp import decode as nibp_decode
from drivers.devices.nibp.codec import MAX_FS, MIN_FS
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
from simulators.rawdev.waveform import resample

log = logging.getLogger(__name__)

#: the codes the gateway is expected to publish, written here independently of its mapping
LOINC = {
    "systolic": ("8480-6", "mm[Hg]"),
    "diastolic": ("8462-4", "mm[Hg]"),
    "mean": ("8478-0", "mm[Hg]"),
    "heart_rate": ("8867-4", "/min"),
}


class NibpScenario(RawDeviceScenario):
    """An OEM NIBP module in a screening session."""

    kind: Literal["nibp"] = "nibp"
    #: the module's ADC rate; a waveform at another rate is resampled to it
    fs: Annotated[int, Field(ge=MIN_FS, le=MAX_FS)] = 500
    #: shares of measurements the module aborts by itself
    over_pressure_rate: Rate = 0.0
    timeout_rate: Rate = 0.0
    cuff_leak_rate: Rate = 0.0
    #: start a measurement when the host sends START (else only the module's button does)
    host_start: bool = True
    model: Annotated[str, Field(pattern=r"^[ -~]{1,12}$")] = "SB-NIBP"
    #: the over-pressure guard opens the dump valve above this (an adult cuff's limit)
    relief_mmhg: Annotated[float, Field(gt=0, le=400)] = 300.0
    #: the transducer's non-linearity: it reads this much high at mid-scale (150 mmHg), none
    #: at 0 and 300 mmHg (a bow a two-point or linear calibration cannot remove)
    sensor_bow_mmhg: Annotated[float, Field(ge=-50, le=50)] = 0.0
    #: 0: every patient new; N: a panel of N recorded patients replayed in turn, waveform and
    #: noise identical each time (as an NIBP tester replays its stored waveforms), so that
    #: measurements before and after a calibration can be compared patient by patient
    repeat_patients: Annotated[int, Field(ge=0, le=1000)] = 0


class Bench(Protocol):
    """The pneumatic circuit the module's cuff port is teed to on a calibration bench."""

    def pressure(self) -> float: ...

    def dump(self) -> None: ...


def transducer_counts(mmhg: npt.ArrayLike, scenario: NibpScenario) -> npt.NDArray[np.uint16]:
    """What the module's transducer reports for true pressures ``mmhg`` (its errors included)."""
    p = np.asarray(mmhg, dtype=np.float64)
    seen = p + scenario.sensor_bow_mmhg * 4.0 * (p / 300.0) * (1.0 - p / 300.0)
    return to_counts(seen, scenario.sensor_gain, scenario.sensor_offset)


def nibp_counts(waveform: Waveform, scenario: NibpScenario) -> npt.NDArray[np.uint16]:
    """The counts the module sends for ``waveform``: at ``scenario.fs``, its transducer's."""
    return transducer_counts(resample(waveform.pressure_mmhg, waveform.fs, scenario.fs), scenario)


class SimulatedNibp(RawDeviceSimulator[NibpScenario]):
    """One simulated NIBP module; :meth:`run` until :meth:`stop_producing`, then drain."""

    kind = "nibp"

    def __init__(
        self,
        device_id: str,
        link: Path,
        scenario: NibpScenario,
        ledger: Ledger,
        timezone: str,
        rng: random.Random,
        waveform: WaveformSource,
        bench: Bench | None = None,
    ) -> None:
        super().__init__(device_id, link, scenario, ledger, timezone, rng, waveform, nibp_decode)
        self._stop = False
        self._cuff = asyncio.Lock()
        #: the calibration bench the cuff port is teed to (None: the cuff is open to the air)
        self.bench = bench
        self._service: asyncio.Task[None] | None = None
        self.dumps = 0

    @property
    def busy(self) -> bool:
        return self._cuff.locked()

    # ----------------------------------------------------------------- measuring

    async def take(self) -> None:
        await self.measure()

    def _command(self, message: Message) -> None:
        if isinstance(message, Service):
            self._service_mode(message.mode)
        elif isinstance(message, Stop):
            self._stop = True  # a safety command: honoured whatever the module is doing
        elif isinstance(message, Start) and self._honours_start():
            task = asyncio.create_task(self.measure(message.target_mmhg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _honours_start(self) -> bool:
        return (
            self.scenario.host_start
            and self._producing
            and not self._cuff.locked()
            and self._service is None
        )

    # ----------------------------------------------------------------- service mode

    def _service_mode(self, mode: ServiceMode) -> None:
        if mode is ServiceMode.STATIC and self._service is None:
            log.info("sim nibp service mode device=%s", self.device_id)
            self._service = asyncio.create_task(self._report_static())
            self._tasks.add(self._service)
        elif mode is ServiceMode.MEASURE and self._service is not None:
            self._service.cancel()
            self._service = None

    async def _report_static(self) -> None:
        """STATUS every 100 ms with the transducer's reading; the guard dumps above its limit."""
        dumped_until = 0.0
        loop = asyncio.get_running_loop()
        while True:
            p = self.bench.pressure() if self.bench is not None else 0.0
            if p > self.scenario.relief_mmhg and self.bench is not None:
                self.bench.dump()
                self.dumps += 1
                dumped_until = loop.time() + 2.0
                log.info("sim nibp over-pressure dump device=%s at %.1f mmHg", self.device_id, p)
            dumped = loop.time() < dumped_until
            counts = int(transducer_counts([p], self.scenario)[0])
            state = CuffState.ERROR if dumped else CuffState.SERVICE
            await self.frontend.send(Status(state, counts, dumped))
            await asyncio.sleep(0.1)

    def _outcome(self) -> Outcome:
        s = self.scenario
        rates = (
            (Outcome.OVER_PRESSURE, s.over_pressure_rate),
            (Outcome.TIMEOUT, s.timeout_rate),
            (Outcome.CUFF_LEAK, s.cuff_leak_rate),
        )
        return pick(self.rng, rates, Outcome.COMPLETED)

    async def measure(self, target_mmhg: int | None = None) -> None:
        """Take one measurement, streaming it live; then hold it until ACK."""
        if self._service is not None:
            return  # on the calibration bench: no patient
        async with self._cuff:
            if self.frontend.full:
                self.skipped += 1
                log.warning("sim nibp memory full device=%s: patient not measured", self.device_id)
                return
            await self._measure(target_mmhg)

    async def _measure(self, target_mmhg: int | None) -> None:
        s, fe = self.scenario, self.frontend
        mid = self._new_id()
        self._stop = False
        patient = None
        rng = self.np_rng
        if s.repeat_patients:
            patient = self.measurements % s.repeat_patients
            rng = np.random.default_rng([zlib.crc32(self.device_id.encode()), patient])
        wave = self.waveform(rng)
        counts = nibp_counts(wave, s)
        outcome = self._outcome()
        if outcome is not Outcome.COMPLETED:  # the module gives up part way
            counts = counts[: self.rng.randrange(len(counts) // 4, len(counts) // 2 + 2)]
        start = MeasurementStart(mid, s.fs, self.clock(), s.model, s.serial)
        log.debug("sim nibp start device=%s id=%d target=%s", self.device_id, mid, target_mmhg)
        fe.begin_live(mid)
        await fe.send(Status(CuffState.INFLATING, None))
        await fe.send(start)
        step, sent = max(1, s.fs // 10), 0  # a frame per 100 ms of deflation
        for first in range(0, len(counts), step):
            if self._stop:
                outcome = Outcome.ABORTED_BY_HOST
                break
            block = Samples(mid, first, counts[first : first + step].reshape(-1, 1))
            await fe.send(block)
            sent += len(block.counts)
            if first % (5 * step) == 0:  # live cuff pressure twice a second
                await fe.send(Status(CuffState.DEFLATING, int(block.counts[-1, 0])))
            await asyncio.sleep(len(block.counts) / s.fs / s.speed)
        end = MeasurementEnd(mid, sent, outcome)
        await fe.send(end)
        # held as a stored record is sent again: in as few frames as it fits
        stored: list[Message] = [start, *sample_blocks(mid, counts[:sent].reshape(-1, 1)), end]
        fe.complete(mid, stored, send=False)
        done = CuffState.DONE if outcome is Outcome.COMPLETED else CuffState.ERROR
        await fe.send(Status(done, None))
        self._write_ledger(start, wave, outcome, patient)

    def _write_ledger(
        self, start: MeasurementStart, wave: Waveform, outcome: Outcome, patient: int | None
    ) -> None:
        self.measurements += 1
        completed = outcome is Outcome.COMPLETED
        for key, (code, unit) in LOINC.items():
            self._ledger_line(
                start.time,
                start.measurement_id,
                code=code,
                value=wave.truth.get(key) if completed else None,
                unit=unit,
                status="completed" if completed else outcome.label,
                **({} if patient is None else {"patient": patient}),
            )
