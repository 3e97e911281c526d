"""A simulated CT-80 style tonometer on a pty, speaking through the production codec.

Patients arrive at random (Poisson, ``patients_per_hour``); each exam makes one record held in
the device's memory until the gateway acknowledges it, and one ledger line per eye reading.
Faults from the scenario: ``OVER`` and blank eyes, unreliable readings, line noise (a corrupted
byte in a transmitted frame), and the cable pulled and plugged back.

Model-eye mode (``model_eyes`` in the scenario): the tonometer is on the verification bench of
``santebus calibrate run tonometer-model-eyes``. Exams come at the same pace; each one measures
the model eye in place, in the right-eye position: three right-eye readings of ``level +
model_eye_bias + N(0, model_eye_sd)`` mmHg and their average, the left eye blank (nothing was
measured there), no patient id. After ``model_eye_repeats`` exams the next model eye is in
place, cycling through ``model_eyes`` (give the verification the same ``--levels`` and
``--repeats``: the simulated technician does not wait for its prompts, the exams queue in the
device's memory in order); the patient faults (``OVER``, blank, unreliable) do not apply to a
model eye. A model eye is nobody's reading: its exams are not ledgered (no
Observation is expected of them, and the accounting of simulators/accounting.py is about
patients' readings), and :attr:`SimulatedCt80.undelivered` counts none of them - the
verification acknowledges those it reads, and the ones the bench leaves in the device's memory
when it is done are owed to no one, so they do not fail the simulator's exit status.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path

from drivers.devices.ct80 import Ct80Record, EyeResult, IopValue, encode
from simulators.handshake import HandshakeDevice
from simulators.ledger import Ledger
from simulators.scenario import EyeIop, TonometerScenario

log = logging.getLogger(__name__)

#: the LOINC codes the gateway is expected to produce; written here independently of the
#: gateway's own mapping so the end-to-end check is a real cross-check
LOINC = {"right": "79892-6", "left": "79893-4"}


class SimulatedCt80(HandshakeDevice[Ct80Record, TonometerScenario]):
    """One simulated tonometer; :meth:`run` until :meth:`stop_producing`, then drain."""

    def __init__(
        self,
        device_id: str,
        link: Path,
        scenario: TonometerScenario,
        ledger: Ledger,
        timezone: str,
        rng: random.Random,
    ) -> None:
        super().__init__(device_id, link, scenario, ledger, timezone, rng)
        #: exams taken on model eyes (model-eye mode; not ledgered, see the module docstring)
        self.model_eye_exams = 0

    @property
    def undelivered(self) -> int:
        """Patients' records the gateway has not acknowledged yet (model eyes owe nothing)."""
        return 0 if self.scenario.model_eyes else len(self.pending)

    # ----------------------------------------------------------------- exams

    def _value(self, dist: EyeIop) -> IopValue:
        s = self.scenario
        roll = self.rng.random()
        if roll < s.blank_rate:
            return IopValue("absent")
        if roll < s.blank_rate + s.over_rate:
            return IopValue("over")
        mmhg = round(min(max(self.rng.gauss(dist.mean, dist.sd), 1.0), 59.0), 1)
        unreliable = self.rng.random() < s.unreliable_rate
        return IopValue("unreliable" if unreliable else "value", mmhg)

    def _eye(self, dist: EyeIop) -> EyeResult:
        first = self._value(dist)
        if first.kind in ("absent", "over"):
            return EyeResult(readings=(first, first, first), average=first)
        readings = [first] + [
            IopValue(first.kind, round(min(max(first.mmhg + self.rng.gauss(0, 0.8), 1.0), 59.0), 1))  # type: ignore[operator]
            for _ in range(2)
        ]
        avg = round(sum(r.mmhg for r in readings if r.mmhg is not None) / 3, 1)
        return EyeResult(
            readings=(readings[0], readings[1], readings[2]), average=IopValue(first.kind, avg)
        )

    def model_eye_level(self) -> float:
        """The nominal IOP of the model eye the next exam measures (model-eye mode)."""
        s = self.scenario
        return s.model_eyes[(self.model_eye_exams // s.model_eye_repeats) % len(s.model_eyes)]

    def _model_eye(self) -> EyeResult:
        s = self.scenario
        true = self.model_eye_level() + s.model_eye_bias
        values = [
            round(min(max(self.rng.gauss(true, s.model_eye_sd), 1.0), 59.0), 1) for _ in range(3)
        ]
        readings = tuple(IopValue("value", v) for v in values)
        average = IopValue("value", round(sum(values) / 3, 1))
        return EyeResult(readings=(readings[0], readings[1], readings[2]), average=average)

    def _new_model_eye_exam(self) -> Ct80Record:
        record = Ct80Record(
            model="CT-80",
            machine_no=self.scenario.machine_no,
            rom_version="SIM 1.0",
            patient_id="",  # a model eye: no patient
            work_id=f"W{self._exam_no:012d}",
            machine_work_id=f"{self._exam_no % 10000:04d}",
            time=self.clock(),
            right=self._model_eye(),
            left=EyeResult(),  # blank: only the right-eye position was measured
        )
        self.model_eye_exams += 1
        self.pending.append(record)
        return record

    def new_exam(self) -> Ct80Record:
        self._exam_no += 1
        if self.scenario.model_eyes:
            return self._new_model_eye_exam()
        record = Ct80Record(
            model="CT-80",
            machine_no=self.scenario.machine_no,
            rom_version="SIM 1.0",
            patient_id=f"{self.rng.randrange(10**12):013d}",
            work_id=f"W{self._exam_no:012d}",
            machine_work_id=f"{self._exam_no % 10000:04d}",
            time=self.clock(),
            right=self._eye(self.scenario.right),
            left=self._eye(self.scenario.left),
        )
        self.pending.append(record)
        for side, eye in (("right", record.right), ("left", record.left)):
            if eye.average.kind == "absent":
                continue
            self.produced += 1
            self.ledger.write(
                device=self.device_id,
                code=LOINC[side],
                value=eye.average.mmhg,
                unit="mm[Hg]",
                time=record.time.replace(tzinfo=self.zone).isoformat(),
                status=eye.average.kind,
                emitted_at=round(time.time(), 3),  # wall clock, for latency measurements
            )
        return record

    # ----------------------------------------------------------------- link

    def _frame(self, record: Ct80Record) -> bytes:
        frame = bytearray(encode(record))
        if self.rng.random() < self.scenario.noise_rate:
            pos = self.rng.randrange(len(frame))
            frame[pos] ^= 1 << self.rng.randrange(7)  # one flipped bit: the BCC must catch it
        return bytes(frame)

    def _ack_id(self, record: Ct80Record) -> str:
        return record.machine_work_id

    async def _link(self) -> None:
        s = self.scenario
        next_unplug = time.monotonic() + s.unplug_every if s.unplug_every else float("inf")
        self.port.plug()
        while self._producing or self.pending:
            if time.monotonic() >= next_unplug:
                log.info("sim unplug device=%s for=%.1fs", self.device_id, s.unplug_for)
                self.port.unplug()
                await asyncio.sleep(s.unplug_for)
                self.port.plug()
                log.info("sim replug device=%s", self.device_id)
                next_unplug = time.monotonic() + s.unplug_every
            await self._serve(s.ack_timeout)
