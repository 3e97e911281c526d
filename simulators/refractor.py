"""A simulated autorefractor / keratometer on a pty, speaking through the production codec.

Patients arrive at random (Poisson, ``patients_per_hour``); each exam makes one block held in
the device's memory until the gateway acknowledges it (``ACK nnnn``, the exam number), and one
ledger line per value the gateway is expected to publish (or quarantine). Each measured eye has
three single readings around its refraction, the representative value with a confidence digit,
and K1 (flat) / K2 (steep) meridians whose power is 337.5 / radius.

Faults from the scenario: an eye not measured (``missing_eye_rate``), a representative value
the device itself doubts (``unreliable_rate``: a confidence digit below 5), a value outside the
plausible range (``out_of_range_rate``: a sphere of +35.00 D, which the gateway must quarantine,
not publish), line noise (``noise_rate``: one flipped bit, caught by the BCC) and a garbled
field under a valid checksum (``malformed_rate``: the codec refuses the block by its field).
Both transmission faults hit one copy only: the gateway answers NAK and the next copy is clean,
so nothing is lost.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from drivers.codec.framing import bcc_hex
from drivers.devices.refractor import EyeResult, Keratometry, Refraction, RefractorRecord, encode
from simulators.handshake import HandshakeDevice
from simulators.ledger import Ledger

log = logging.getLogger(__name__)

Rate = Annotated[float, Field(ge=0.0, le=1.0)]

#: the codes the gateway is expected to publish, written here independently of its own mapping
#: (edge/pipeline/codes.py) so that a check against the ledger is a real cross-check
CODES = {
    "sphere": "251795007",
    "cylinder": "251797004",
    "axis": "251799001",
    "radius": "corneal-radius",
    "power": "corneal-power",
    "k-axis": "corneal-meridian-axis",
    "pd": "pupillary-distance",
}
OUT_OF_RANGE_SPHERE = 35.0


class RefractorScenario(BaseModel):
    """An autorefractor / keratometer in a screening session (simulators/refractor.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["refractor"] = "refractor"
    patients_per_hour: Annotated[float, Field(gt=0, le=36000)] = 20.0
    #: the population's spherical refraction, mean and standard deviation (D)
    sphere_mean: Annotated[float, Field(ge=-10, le=10)] = -0.5
    sphere_sd: Annotated[float, Field(ge=0, le=10)] = 2.0
    #: share of exams with one eye not measured
    missing_eye_rate: Rate = 0.05
    #: share of eyes whose representative value the device doubts (confidence below 5)
    unreliable_rate: Rate = 0.05
    #: share of eyes with an implausible sphere (+35 D): quarantined by the gateway
    out_of_range_rate: Rate = 0.0
    #: share of transmitted blocks with one flipped bit (line noise)
    noise_rate: Rate = 0.0
    #: share of transmitted blocks with a garbled field under a valid checksum
    malformed_rate: Rate = 0.0
    #: seconds the device waits for ACK before sending the block again
    ack_timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    baudrate: Annotated[int, Field(gt=0)] = 9600
    model: Annotated[str, Field(pattern=r"^[ -~]{1,24}$")] = "SIM/ARK-1"


def _quarter(value: float) -> float:
    return round(value * 4) / 4


class SimulatedRefractor(HandshakeDevice[RefractorRecord, RefractorScenario]):
    """One simulated autorefractor; :meth:`run` until :meth:`stop_producing`, then drain."""

    def __init__(
        self,
        device_id: str,
        link: Path,
        scenario: RefractorScenario,
        ledger: Ledger,
        timezone: str,
        rng: random.Random,
    ) -> None:
        super().__init__(device_id, link, scenario, ledger, timezone, rng)
        #: exams taken (``produced`` counts the values they hold)
        self.exams = 0
        self.noisy_frames = 0
        self.malformed_frames = 0

    @property
    def undelivered(self) -> int:
        return len(self.pending)

    # ----------------------------------------------------------------- exams

    def _refraction(self, implausible: bool) -> tuple[Refraction, tuple[Refraction, ...]]:
        s, rng = self.scenario, self.rng
        sphere = min(max(_quarter(rng.gauss(s.sphere_mean, s.sphere_sd)), -25.0), 25.0)
        if implausible:
            sphere = OUT_OF_RANGE_SPHERE
        cylinder = -_quarter(abs(rng.gauss(0.0, 0.75)))
        axis = rng.randint(1, 180) if cylinder else 0
        low = rng.random() < s.unreliable_rate
        confidence = rng.randint(2, 4) if low else rng.randint(6, 9)
        readings = tuple(
            Refraction(sphere + _quarter(rng.gauss(0, 0.15)), cylinder, axis, rng.randint(5, 9))
            for _ in range(3)
        )
        return Refraction(sphere, cylinder, axis, confidence), readings

    def _keratometry(self) -> tuple[Keratometry, Keratometry]:
        rng = self.rng
        flat = round(rng.gauss(7.8, 0.25), 2)
        steep = round(flat - abs(rng.gauss(0.1, 0.08)), 2)
        axis = rng.randint(1, 180)
        k1 = Keratometry(flat, _quarter(337.5 / flat), axis)
        return k1, Keratometry(steep, _quarter(337.5 / steep), (axis + 89) % 180 + 1)

    def _eye(self) -> EyeResult:
        implausible = self.rng.random() < self.scenario.out_of_range_rate
        representative, readings = self._refraction(implausible)
        k1, k2 = self._keratometry()
        return EyeResult(readings, representative, k1, k2)

    def new_exam(self) -> RefractorRecord:
        self._exam_no = self._exam_no % 9999 + 1
        eyes = [self._eye(), self._eye()]
        if self.rng.random() < self.scenario.missing_eye_rate:
            eyes[self.rng.randrange(2)] = EyeResult()  # one eye not measured
        record = RefractorRecord(
            model=self.scenario.model,
            exam_no=f"{self._exam_no:04d}",
            time=self.clock(),
            vertex_mm=12.0,
            right=eyes[0],
            left=eyes[1],
            patient_id=f"{self.rng.randrange(10**12):013d}",
            pd_mm=round(self.rng.gauss(63, 3) * 2) / 2,
        )
        self.exams += 1
        self.pending.append(record)
        self._ledger(record)
        return record

    def _ledger(self, record: RefractorRecord) -> None:
        at = record.time.replace(tzinfo=self.zone).isoformat()
        base = {"device": self.device_id, "time": at, "exam": record.exam_no,
                "emitted_at": round(time.time(), 3)}  # fmt: skip

        def line(quantity: str, code: str, value: float, unit: str, status: str) -> None:
            self.produced += 1
            self.ledger.write(**base, quantity=quantity, code=code, value=value, unit=unit,
                              status=status)  # fmt: skip

        for side, eye in (("right", record.right), ("left", record.left)):
            rep = eye.representative
            if rep is not None:
                status = "implausible" if rep.sphere == OUT_OF_RANGE_SPHERE else (
                    "unreliable" if rep.confidence < 5 else "ok")  # fmt: skip
                for part, value, unit in (("sphere", rep.sphere, "[diop]"),
                                          ("cylinder", rep.cylinder, "[diop]"),
                                          ("axis", rep.axis, "deg")):  # fmt: skip
                    line(f"refraction.{side}.{part}", CODES[part], value, unit, status)
            for name, k in (("k1", eye.k1), ("k2", eye.k2)):
                if k is not None:
                    prefix = f"kerato.{side}.{name}"
                    line(f"{prefix}.radius", CODES["radius"], k.radius, "mm", "ok")
                    line(f"{prefix}.power", CODES["power"], k.power, "[diop]", "ok")
                    line(f"{prefix}.axis", CODES["k-axis"], k.axis, "deg", "ok")
        if record.pd_mm is not None:
            line("pd", CODES["pd"], record.pd_mm, "mm", "ok")

    # ----------------------------------------------------------------- link

    def _frame(self, record: RefractorRecord) -> bytes:
        frame = bytearray(encode(record))
        roll = self.rng.random()
        if roll < self.scenario.noise_rate:
            self.noisy_frames += 1
            pos = self.rng.randrange(len(frame))
            frame[pos] ^= 1 << self.rng.randrange(7)  # one flipped bit: the BCC must catch it
        elif roll < self.scenario.noise_rate + self.scenario.malformed_rate:
            self.malformed_frames += 1
            pos = frame.index(b"VD") + 2  # the vertex distance field: "12.00" -> "1x.00"
            frame[pos + 1] = ord("x")
            frame[-2:] = bcc_hex(bytes(frame[1:-2]))  # a valid checksum over a bad field
        return bytes(frame)

    def _ack_id(self, record: RefractorRecord) -> str:
        return record.exam_no

    async def _link(self) -> None:
        self.port.plug()
        while self._producing or self.pending:
            await self._serve(self.scenario.ack_timeout)
