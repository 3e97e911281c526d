"""Retinal photographs into the outbox: DICOM reception bound to visits, graded, chunked.

For each ``kind = "retinograph"`` device the daemon runs a C-STORE SCP
(:class:`drivers.dicom.scp.DicomReceiver`, loaded lazily: pynetdicom only when a retinograph is
configured) and, when ``folder`` is set, a :class:`drivers.dicom.folder.FolderWatcher`. Both
hand each object to :meth:`Retinography.on_object`, on the event loop:

1. validate (drivers/dicom/validate.py): a refusal answers its PS3.4 B.2.3 status (0xA900 a
   wrong or missing attribute, 0xC000 undecodable) and raises ``fundus.refused``;
2. the visit open at the device's station *now* (edge/visits): none - 0x0124 Refused: Not
   Authorized (PS3.7 Annex C.5) with the Error Comment "no visit open at station X" and an
   event; the camera keeps the photograph (an automatic retry could bind it to the next
   patient, so the status is not a transient one);
3. de-identify to the visit pseudonym (PS3.15 Annex E basic profile, drivers/dicom/deidentify):
   the original identifiers never reach a log, an event, the outbox or MQTT;
4. grade the decoded pixels in a worker thread (edge/imaging, ``asyncio.to_thread``) while the
   de-identified Part-10 file is encoded and planned; the verdict is awaited at most
   :data:`GRADING_BUDGET_S` (past it the photograph is stored ungraded and the event says so);
5. store the manifest (FHIR R4 Media: subject = visit pseudonym, bodySite = the eye,
   contentType ``application/dicom``) and every chunk in ONE outbox transaction; storage full
   answers 0xA700 (Refused: Out of Resources, PS3.4 B.2.3: the camera may retry);
6. answer Success (0x0000) and raise ``fundus.graded`` (station, device, eye, gradable,
   reasons, key measures, object id; no identifier) so the nurse can retake at once. The last
   verdict per station is kept in :attr:`Retinography.last` for the status snapshot and
   ``santebus fundus last``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from drivers.dicom import ObjectHandler, Status, Verdict
from drivers.dicom.deidentify import deidentify, part10
from drivers.dicom.validate import Refusal, validate
from drivers.errors import TransientDeviceError
from edge.config import EdgeConfig
from edge.config_imaging import RetinographDevice
from edge.events import Events, Severity
from edge.imaging import Verdict as Grade
from edge.imaging import grade
from edge.outbox import NewRow, Outbox, OutboxError
from edge.pipeline.media import manifest_msg_id, media_manifest
from edge.publish.objects import MANIFEST_SCHEMA, chunk_rows, plan_object
from edge.publish.topics import Topics
from edge.supervise import DeviceHealth
from edge.visits import VisitBook

log = logging.getLogger(__name__)

#: the issue's budget from reception to the gradability verdict (s)
GRADING_BUDGET_S = 2.0
#: the key of the DICOM UID keying secret (drivers/dicom/deidentify.new_uid), in the state dir
UID_KEYING_FILE = "dicom-uid.key"
_EYES = {"R": "right", "L": "left"}


def uid_secret(state_dir: Path) -> bytes:
    """The gateway's secret for keyed UIDs: 32 random bytes, made once (mode 0600), kept."""
    path = state_dir / UID_KEYING_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    state_dir.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f"{UID_KEYING_FILE}.{os.getpid()}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
        f.flush()
        os.fsync(f.fileno())
    with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
        os.link(part, path)
    part.unlink()
    return path.read_bytes()


def graded_detail(result: Grade | None) -> dict[str, str | int | float | bool | None]:
    """The event's and the snapshot's view of a verdict: flags, reasons, key measures."""
    if result is None:
        return {"gradable": None, "reasons": "grading-timeout"}
    m = result.measures
    return {
        "gradable": result.gradable,
        "reasons": ",".join(result.reasons),
        "focus": round(m.focus, 3),
        "luma": round(m.luma, 1),
        "clipped": round(m.clipped, 3),
        "occluded": round(m.occluded, 3),
        "disc_contrast": round(m.disc_contrast, 2),
        "contrast": round(m.contrast, 3),
        "fov_offset": round(m.fov_offset, 3),
    }


class Retinography:
    """The retinographs of one daemon; :meth:`tasks` starts their receivers."""

    def __init__(
        self,
        config: EdgeConfig,
        outbox: Outbox,
        topics: Topics,
        events: Events,
        visits: VisitBook | None,
        health: dict[str, DeviceHealth],
        wake: asyncio.Event | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.topics = topics
        self.events = events
        self.visits = visits
        self.health = health
        self.wake = wake
        self.devices = {
            d: dev for d, dev in config.devices.items() if isinstance(dev, RetinographDevice)
        }
        self.zone = ZoneInfo(config.gateway.timezone)
        #: the last verdict per station (no identifier): the snapshot's ``fundus`` section
        self.last: dict[str, dict[str, Any]] = {}
        self._secret: bytes | None = None

    def tasks(self) -> list[asyncio.Task[object]]:
        """One task per retinograph: its SCP (and folder watcher) until cancelled."""
        return [asyncio.create_task(self._serve(d, dev), name=d) for d, dev in self.devices.items()]

    def handler(self, device_id: str) -> ObjectHandler:
        """The ``on_object`` of one device (drivers/dicom ObjectHandler)."""

        async def on_object(raw: bytes, source: str) -> Verdict:
            return await self.on_object(device_id, raw, source)

        return on_object

    async def _serve(self, device_id: str, device: RetinographDevice) -> None:
        from drivers.dicom.folder import FolderSettings, FolderWatcher
        from drivers.dicom.scp import DicomReceiver, ReceiverSettings

        health = self.health.setdefault(device_id, DeviceHealth())
        settings = ReceiverSettings(
            ae_title=device.ae_title.strip(),
            allowed_calling_aets=tuple(t.strip() for t in device.allowed_calling_aes),
            port=device.port,
            bind_address=device.bind,
            verdict_timeout_s=device.verdict_timeout_s,
        )
        delay = 0.5
        while True:
            receiver = DicomReceiver(settings, self.handler(device_id))
            try:
                await receiver.start()
            except TransientDeviceError as exc:
                health.state, health.failures = "lost", health.failures + 1
                log.warning("device lost device=%s error=%r", device_id, str(exc))
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
                continue
            health.state, health.connects = "connected", health.connects + 1
            log.info("device connected device=%s url=dicom://%s:%d", device_id, device.bind,
                     receiver.port)  # fmt: skip
            try:
                if device.folder is None:
                    await asyncio.Event().wait()  # until cancelled
                else:
                    watch = FolderSettings(device.folder, name=device_id)
                    await FolderWatcher(watch, self.handler(device_id)).run()
            finally:
                await receiver.stop()

    # -- one object ---------------------------------------------------------------------

    async def on_object(self, device_id: str, raw: bytes, source: str) -> Verdict:
        """Validate, bind, de-identify, grade, store; never raises on a bad object."""
        received = time.monotonic()
        station = self.config.station_of(device_id)
        checked = validate(raw)
        if isinstance(checked, Refusal):
            return self._refuse(device_id, station, checked.verdict(), source)
        if self.visits is None or station is None:
            why = "device belongs to no station"
            return self._refuse(device_id, station, Verdict(Status.NOT_AUTHORIZED, "no-station",
                                                            why), source)  # fmt: skip
        now = time.time()
        binding = self.visits.bind(station, now, now)
        if binding.visit is None:
            why = f"no visit open at station {station}"
            if binding.reason.startswith("ambiguous"):
                why = f"visit hand-over at station {station}: retry"
            return self._refuse(device_id, station, Verdict(Status.NOT_AUTHORIZED, "no-visit",
                                                            why), source)  # fmt: skip
        pseudonym = binding.visit.visit_id
        clean = deidentify(checked.dataset, pseudonym, self._uid_secret())
        if isinstance(clean, Refusal):
            return self._refuse(device_id, station, clean.verdict(), source)
        grading = asyncio.ensure_future(asyncio.to_thread(grade, checked.pixels))
        device = self.devices[device_id]
        data = part10(clean.dataset)
        # the scope keeps object and manifest ids apart between buses and devices that send
        # the same bytes (the backend keys them per bus as well)
        plan = plan_object(
            data, chunk_size=device.chunk_size, scope=f"{self.topics.bus}/{device_id}"
        )
        eye = _EYES[checked.laterality]
        manifest = media_manifest(
            plan,
            device_id=device_id,
            content_type="application/dicom",
            created=datetime.now(self.zone),
            subject=pseudonym,
            eye=eye,
            title=f"fundus photograph, {eye} eye",
        )
        rows = [
            NewRow(manifest_msg_id(plan.object_id), device_id, self.topics.obs(device_id),
                   manifest, schema=MANIFEST_SCHEMA),
            *chunk_rows(plan, self.topics, device_id, data),
        ]  # fmt: skip
        try:
            self.outbox.add(rows)
        except OutboxError as exc:
            grading.cancel()
            log.error("photograph not stored device=%s error=%r", device_id, str(exc))
            verdict = Verdict(Status.OUT_OF_RESOURCES, "storage-full",
                              "gateway storage full: keep the photograph, retry later")  # fmt: skip
            return self._refuse(device_id, station, verdict, source)
        if self.wake is not None:
            self.wake.set()
        health = self.health.setdefault(device_id, DeviceHealth())
        health.records, health.last_record = health.records + 1, time.monotonic()
        result = await self._graded(grading, received)
        self._report(device_id, station, eye, plan.object_id, plan.size, result, received)
        return Verdict.stored()

    async def _graded(self, grading: asyncio.Future[Grade], received: float) -> Grade | None:
        left = GRADING_BUDGET_S - (time.monotonic() - received)
        try:
            return await asyncio.wait_for(asyncio.shield(grading), max(0.01, left))
        except TimeoutError:
            log.warning("fundus grading late budget_s=%.1f", GRADING_BUDGET_S)
            return None

    def _report(
        self,
        device_id: str,
        station: str,
        eye: str,
        object_id: str,
        size: int,
        result: Grade | None,
        received: float,
    ) -> None:
        detail = graded_detail(result)
        latency_ms = round((time.monotonic() - received) * 1000.0, 1)
        severity: Severity = "info" if result is not None and result.gradable else "warning"
        self.events.raise_event(
            "fundus.graded",
            severity,
            device_id,
            station=station,
            eye=eye,
            object_id=object_id,
            size=size,
            latency_ms=latency_ms,
            **detail,
        )
        self.last[station] = {
            "device": device_id,
            "eye": eye,
            "object_id": object_id,
            "at": time.time(),
            "latency_ms": latency_ms,
            **detail,
        }

    def _refuse(
        self, device_id: str, station: str | None, verdict: Verdict, source: str
    ) -> Verdict:
        self.events.raise_event(
            "fundus.refused",
            "warning",
            device_id,
            station=station,
            status=f"0x{int(verdict.status):04X}",
            code=verdict.code,
            reason=verdict.reason,
            source=source,
        )
        return verdict

    def _uid_secret(self) -> bytes:
        if self._secret is None:
            self._secret = uid_secret(self.config.gateway.state_dir)
        return self._secret
