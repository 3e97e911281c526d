"""A simulated retinograph in a screening session: fundus photographs sent by C-STORE.

Patients arrive at random (Poisson, ``photos_per_hour``); each photograph is drawn by
:func:`simulators.fundus.generate` (a fault among blur, under/over-exposure, eyelid and
off-centre at the scenario's rates, else clean), wrapped in a DICOM Ophthalmic Photography 8 Bit
object by :func:`simulators.retinograph.build_dataset` with a made-up patient (name, ID, birth
date: what the gateway must never let out), possibly with a DICOM fault (invalid laterality,
swapped laterality, truncated or missing pixel data), and sent to the gateway's C-STORE SCP as
configured in ``[devices.<id>]`` (``bind``, ``port``, ``ae_title``).

Like a real camera, it keeps a photograph the gateway could not take *for now* (no association,
0xA700 Out of Resources, 0x0110 Processing Failure: PS3.4 B.2.3, PS3.7 C.4.2) and sends it again
after ``retry_after`` seconds; any other status is final (a refusal the nurse sees on the
camera). One ledger line per final outcome (``"kind": "photo"``, not a reading: the
Observation accounting skips it) with the send window, the status, the truth of the image and
the status a correct gateway answers, so a check can match each photograph to its
``fundus.graded`` event (simulators/photo_accounting.py).

pynetdicom is loaded only when a retinograph is simulated (:mod:`simulators.retinograph`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulators.ledger import Ledger

log = logging.getLogger(__name__)

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
#: statuses after which the camera keeps the photograph and sends it again (None: no answer)
TRANSIENT = (None, 0xA700, 0x0110)


class RetinographScenario(BaseModel):
    """A non-mydriatic retinograph at an eye station (simulators/fundus_camera.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["retinograph"] = "retinograph"
    photos_per_hour: Annotated[float, Field(gt=0, le=36000)] = 120.0
    #: image size; 1024 x 1024 keeps a demo light (a real camera: 2-12 Mpx)
    width: Annotated[int, Field(ge=64, le=8192)] = 1024
    height: Annotated[int, Field(ge=64, le=8192)] = 1024
    #: image faults (simulators/fundus/case.py), each drawn over a range straddling its limit
    blur_rate: Rate = 0.1
    underexposed_rate: Rate = 0.05
    overexposed_rate: Rate = 0.05
    eyelid_rate: Rate = 0.05
    off_centre_rate: Rate = 0.05
    #: DICOM faults (simulators/retinograph.py Fault): refused 0xA900 / 0xC000, or accepted
    invalid_laterality_rate: Rate = 0.0
    swapped_laterality_rate: Rate = 0.0
    truncated_pixels_rate: Rate = 0.0
    no_pixel_data_rate: Rate = 0.0
    #: the camera's own AE title (must be in the device's ``allowed_calling_aes``)
    calling_ae: Annotated[str, Field(min_length=1, max_length=16)] = "RETINO1"
    #: seconds before a photograph the gateway could not take for now is sent again
    retry_after: Annotated[float, Field(gt=0, le=600)] = 2.0
    patient_name: str = "DUPONT^JEANNE"
    patient_id: str = "1850575123456"
    birth_date: Annotated[str, Field(pattern=r"^[0-9]{8}$")] = "19850507"

    def image_fault(self, rng: random.Random) -> str:
        """``clean`` or one of the generator's faults, at the scenario's rates."""
        x = rng.random()
        for fault, rate in (("blur", self.blur_rate), ("underexposed", self.underexposed_rate),
                            ("overexposed", self.overexposed_rate), ("eyelid", self.eyelid_rate),
                            ("off-centre", self.off_centre_rate)):  # fmt: skip
            if x < rate:
                return fault
            x -= rate
        return "clean"

    def dicom_fault(self, rng: random.Random) -> str:
        """``none`` or a :class:`simulators.retinograph.Fault` value."""
        x = rng.random()
        for fault, rate in (("laterality-invalid", self.invalid_laterality_rate),
                            ("laterality-swapped", self.swapped_laterality_rate),
                            ("truncated-pixels", self.truncated_pixels_rate),
                            ("no-pixel-data", self.no_pixel_data_rate)):  # fmt: skip
            if x < rate:
                return fault
            x -= rate
        return "none"


@dataclass(slots=True)
class _Photo:
    seed: int
    image_fault: str
    dicom_fault: str
    laterality: str
    truth_gradable: bool
    truth_reason: str | None
    dataset: Any
    attempts: int = 0


class SimulatedRetinograph:
    """A camera sending to ``host:port``; :meth:`run` until cancelled."""

    def __init__(
        self,
        device_id: str,
        device: dict[str, Any],
        scenario: RetinographScenario,
        ledger: Ledger,
        rng: random.Random,
    ) -> None:
        self.device_id = device_id
        self.host = str(device.get("bind", "127.0.0.1"))
        self.port = int(device.get("port", 11112))
        self.called_ae = str(device["ae_title"]).strip()
        self.scenario = scenario
        self.ledger = ledger
        self.rng = rng
        self.produced = 0
        self._pending: deque[_Photo] = deque()
        self._producing = True

    @property
    def undelivered(self) -> int:
        return len(self._pending)

    def stop_producing(self) -> None:
        self._producing = False

    async def run(self) -> None:
        """Take photographs at random times; send each, keep the ones to send again."""
        rate = self.scenario.photos_per_hour / 3600.0
        next_photo = asyncio.get_running_loop().time() + self.rng.expovariate(rate)
        while True:
            now = asyncio.get_running_loop().time()
            if self._producing and now >= next_photo:
                self._pending.append(await asyncio.to_thread(self._take))
                self.produced += 1
                next_photo = now + self.rng.expovariate(rate)
            if self._pending:
                photo = self._pending.popleft()
                if not await self._send(photo):
                    self._pending.appendleft(photo)
                    await asyncio.sleep(self.scenario.retry_after)
                continue
            await asyncio.sleep(min(0.2, max(0.0, next_photo - now)))

    def _take(self) -> _Photo:
        from simulators.fundus import generate
        from simulators.retinograph import Fault, Patient, build_dataset

        s = self.scenario
        seed = self.rng.randrange(2**31)
        image_fault, dicom_fault = s.image_fault(self.rng), s.dicom_fault(self.rng)
        pixels, truth = generate(seed, image_fault, s.width, s.height)
        patient = Patient(name=s.patient_name, patient_id=s.patient_id, birth_date=s.birth_date)
        ds = build_dataset(patient, truth.laterality, pixels=lambda *_: pixels, rows=s.height,
                           columns=s.width, fault=Fault(dicom_fault))  # fmt: skip
        return _Photo(seed, image_fault, dicom_fault, truth.laterality, truth.gradable,
                      truth.reason, ds)  # fmt: skip

    async def _send(self, photo: _Photo) -> bool:
        """One C-STORE; True when the outcome is final (ledger line written)."""
        from simulators.retinograph import Fault, Retinograph

        camera = Retinograph(self.host, self.port, called_ae=self.called_ae,
                             calling_ae=self.scenario.calling_ae)  # fmt: skip
        photo.attempts += 1
        sent_at = datetime.now(UTC)
        (result,) = await asyncio.to_thread(camera.send, photo.dataset)
        answered_at = datetime.now(UTC)
        if result.status in TRANSIENT:
            log.info("retinograph device=%s not taken status=%s problem=%r: kept", self.device_id,
                     result.status, result.problem)  # fmt: skip
            return False
        self.ledger.write(
            device=self.device_id,
            kind="photo",
            code="fundus-photograph",
            value=None,
            unit=None,
            time=sent_at.isoformat(),
            answered=answered_at.isoformat(),
            status=f"0x{result.status:04X}" if result.status is not None else "none",
            error_comment=result.error_comment,
            expected_status=Fault(photo.dicom_fault).expected_status,
            image_fault=photo.image_fault,
            dicom_fault=photo.dicom_fault,
            laterality=photo.laterality,
            truth_gradable=photo.truth_gradable,
            truth_reason=photo.truth_reason,
            attempts=photo.attempts,
        )
        return True
