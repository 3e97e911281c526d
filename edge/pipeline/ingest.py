"""Turn a device delivery into FHIR Observation rows committed to the outbox in one transaction.

All readings of one device record (e.g. both eyes of a tonometer record) are committed
together, because the device is acknowledged per record: either the whole record is durable and
acknowledged, or nothing is and the device sends it again.

Each reading is validated first (edge/pipeline/validate.py): an impossible or inconsistent one
goes to the outbox's quarantine table in the same transaction, with a ``reading.quarantined``
event, and is never published. Each reading of a device that belongs to a station is bound to
a visit by the rule in edge/visits/book.py (device time corrected by the driver's clock offset,
widened by its time uncertainty). A reading bound to no visit is stored and published without a
subject, and a ``visit.unbound`` event says why; a device in no station is not visit-bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from calibration.records import CalibrationBook, CalibrationError, CalibrationStatus
from drivers.readings import Delivery, DeviceReading
from edge.events import Events
from edge.outbox import NewRow, Outbox, OutboxFullError, Quarantined
from edge.pipeline import fhir
from edge.pipeline.codes import PANEL_OF
from edge.pipeline.measurement import Absent, Measurement, Part, localize, message_id
from edge.pipeline.validate import validate
from edge.publish.topics import Topics
from edge.visits import Binding, VisitBook

log = logging.getLogger(__name__)


#: A check applied to every reading of a device at its (corrected) time of measurement:
#: returns why the reading is only preliminary or None. The operating-condition gate
#: (edge/vehicle/climate.py) plugs in here; a reading a gate flags raises a
#: ``reading.out_of_conditions`` event once stored.
Gate = Callable[[str, DeviceReading, datetime], str | None]


@dataclass(frozen=True, slots=True)
class Prepared:
    """One reading on its way to the outbox."""

    measurement: Measurement
    binding: Binding | None  # None: the device is not visit-bound
    quarantine: str | None  # the validation failure; None: publish it
    calibration: CalibrationStatus | None = None  # None: no calibration book
    gated: tuple[str, ...] = ()  # the gates' reasons (also among the measurement's flags)


#: IEEE 11073-20601 special value -> FHIR data-absent-reason (NRes has no code of its own);
#: a value the signal analysis refused to derive is an "error" (FHIR R4 data-absent-reason:
#: "some system or workflow process error means that the information is not available")
_ABSENT: dict[str, Absent] = {
    "refused": "error",
    "nan": "not-a-number",
    "nres": "error",
    "+inf": "positive-infinity",
    "-inf": "negative-infinity",
}


def _held(m: Measurement, reason: str) -> Quarantined:
    detail = {
        "parts": [p.model_dump() for p in m.parts],
        "value": m.value,
        "unit": m.unit,
        "components": list(m.components),
        "effective": m.effective.isoformat(),
        "device_status": m.device_status,
        "device_model": m.device_model,
        "device_serial": m.device_serial,
        "subject": m.subject,
    }
    return Quarantined(m.msg_id, m.device_id, m.quantity, reason, json.dumps(detail))


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    device_id: str
    serial_number: str
    station: str | None = None
    #: a reading of this device with no calibration record on file is preliminary
    calibration_required: bool = False
    #: such a reading is withheld (quarantined with the reason) rather than flagged
    calibration_withhold: bool = False


#: the note on a reading whose device gave no time for it (drivers.readings.Delivery.time_known)
TIME_UNKNOWN = (
    "Measurement time unknown (the device's clock was not set): the time shown is when the"
    " gateway received it."
)


class Ingest:
    """The pipeline from delivery to outbox (validation and visit binding come next)."""

    def __init__(
        self,
        outbox: Outbox | None,
        topics: Topics,
        timezone: str,
        wake: asyncio.Event | None = None,
        events: Events | None = None,
        visits: VisitBook | None = None,
        calibrations: CalibrationBook | None = None,
    ) -> None:
        self.outbox = outbox
        self.visits = visits
        self.calibrations = calibrations
        self._calibration_reason: dict[str, str | None] = {}
        self.gates: list[Gate] = []
        self.topics = topics
        self.timezone = timezone
        self.wake = wake
        self.events = events
        self._full_since: float | None = None

    def measurements(self, device: DeviceIdentity, delivery: Delivery) -> list[Prepared]:
        """Each reading validated, as a Measurement, with its visit binding."""
        out = []
        # the readings of one record share their time: one visit look-up and one calibration
        # look-up per distinct time, not per reading
        bindings: dict[float, Binding | None] = {}
        calibrations: dict[date, CalibrationStatus | None] = {}
        for verdict in validate(delivery.readings):
            r = verdict.reading
            # the device's clock corrected by its measured offset (the driver's, e.g. from
            # the Current Time characteristic of a BLE device): the true time of measurement
            effective = localize(
                r.device_time - timedelta(seconds=delivery.clock_offset), self.timezone
            )
            at, day = effective.timestamp(), effective.date()
            if at not in bindings:
                bindings[at] = self._bind(device, delivery, at)
            if day not in calibrations:
                calibrations[day] = self._calibration(device, day)
            binding, calibration = bindings[at], calibrations[day]
            subject = binding.visit.visit_id if binding and binding.visit else None
            record = calibration.record if calibration is not None else None
            lapsed = None if calibration is None else self._calibration_flag(device, calibration)
            flags = [lapsed]
            quarantine = verdict.quarantine
            if lapsed is not None and device.calibration_withhold and quarantine is None:
                quarantine = f"withheld: {lapsed}"
            gated = [g for g in (gate(device.device_id, r, effective) for gate in self.gates) if g]
            flags += gated
            flags += list(r.remarks)
            if not delivery.time_known:
                flags.append(TIME_UNKNOWN)
            m = Measurement(
                msg_id=message_id(device.device_id, device.serial_number, r.record_key, r.quantity),
                bus_id=self.topics.bus,
                device_id=device.device_id,
                device_model=delivery.device_model,
                device_serial=device.serial_number,
                quantity=r.quantity,
                value=r.value,
                unit=r.unit,
                effective=effective,
                device_status=r.status.value,
                components=r.components,
                subject=subject,
                interpretation=verdict.interpretation,
                flags=tuple(flag for flag in flags if flag is not None),
                calibration_id=record.id if record is not None else None,
                calibration_due=record.valid_until if record is not None else None,
                absent=_ABSENT.get(r.special) if r.special else None,
                clock_offset=delivery.clock_offset,
                decimals=r.decimals,
                method=r.method,
                quality=r.quality,
                absent_text=r.absent_text,
            )
            out.append(Prepared(m, binding, quarantine, calibration, tuple(gated)))
        return self._panels(device, delivery, out)

    @staticmethod
    def _panels(
        device: DeviceIdentity, delivery: Delivery, prepared: list[Prepared]
    ) -> list[Prepared]:
        """Members of a panel (codes.PANELS: systolic, diastolic, mean) as one Observation.

        The panel is quarantined whole when a member is: the record is inconsistent, and a
        blood pressure without its systolic or diastolic is not what was measured.
        """
        groups: dict[str, list[tuple[DeviceReading, Prepared]]] = {}
        out: list[Prepared | str] = []
        for reading, p in zip(delivery.readings, prepared, strict=True):
            name = PANEL_OF.get(p.measurement.quantity)
            if name is None:
                out.append(p)
                continue
            if name not in groups:
                out.append(name)  # the panel takes its first member's place
            groups.setdefault(name, []).append((reading, p))
        for name, members in groups.items():
            first_reading, first = members[0]
            ms = [p.measurement for _, p in members]
            reasons = list(dict.fromkeys(p.quarantine for _, p in members if p.quarantine))
            parts = tuple(
                Part(quantity=m.quantity, value=m.value, unit=m.unit,
                     interpretation=m.interpretation, absent=m.absent, decimals=m.decimals,
                     absent_text=m.absent_text)
                for m in ms
            )  # fmt: skip
            unreliable = any(m.device_status == "unreliable" for m in ms)
            panel = first.measurement.model_copy(
                update={
                    "msg_id": message_id(device.device_id, device.serial_number,
                                         first_reading.record_key, name),
                    "quantity": name,
                    "value": None,
                    "unit": first.measurement.unit,
                    "interpretation": None,
                    "absent": None,
                    "components": (),
                    "parts": parts,
                    "device_status": "unreliable" if unreliable else "ok",
                }
            )  # fmt: skip
            gated = tuple(dict.fromkeys(g for _, p in members for g in p.gated))
            combined = Prepared(
                panel, first.binding, "; ".join(reasons) or None, first.calibration, gated
            )
            out[out.index(name)] = combined
        return [p for p in out if isinstance(p, Prepared)]

    def _calibration(self, device: DeviceIdentity, on: date) -> CalibrationStatus | None:
        """The device's current calibration record, judged for a reading taken ``on``."""
        if self.calibrations is None:
            return None
        try:
            return self.calibrations.status(device.serial_number, on)
        except CalibrationError as exc:
            # An unreadable record is not a valid calibration: the reading is flagged, the
            # file is left for the technician (never deleted or guessed around).
            log.error("calibration record unreadable device=%s error=%s", device.device_id, exc)
            return CalibrationStatus("unreadable", None)

    @staticmethod
    def _calibration_flag(device: DeviceIdentity, status: CalibrationStatus) -> str | None:
        if status.validity == "missing" and not device.calibration_required:
            return None
        return status.reason

    def _bind(self, device: DeviceIdentity, delivery: Delivery, device_ts: float) -> Binding | None:
        if self.visits is None or device.station is None:
            return None
        if not delivery.time_known:  # never guessed: it may be an earlier patient's
            return Binding(None, "measurement time unknown: the device's clock was not set")
        measured = device_ts  # already corrected by the device's clock offset
        u = delivery.time_uncertainty
        return self.visits.bind(device.station, measured - u, measured + u)

    def commit(self, device: DeviceIdentity, delivery: Delivery) -> int:
        """Store the delivery's Observations durably; returns how many rows were new."""
        box = self.outbox
        if box is None:  # a programming error: decode-only Ingest (santebus decode)
            raise RuntimeError("this Ingest has no outbox: it only prepares measurements")
        prepared = self.measurements(device, delivery)
        rows = [
            NewRow(
                msg_id=p.measurement.msg_id,
                device=device.device_id,
                topic=self.topics.obs(device.device_id),
                payload=fhir.encode(p.measurement),
            )
            for p in prepared
            if p.quarantine is None
        ]
        held = [_held(p.measurement, p.quarantine) for p in prepared if p.quarantine is not None]
        try:
            added, added_held = box.add_record(rows, held) if prepared else (0, 0)
        except OutboxFullError as exc:
            if self._full_since is None and self.events is not None:
                self._full_since = time.monotonic()
                self.events.raise_event("outbox.full", "critical", device.device_id, error=str(exc))
            raise
        if self._full_since is not None and self.events is not None:
            self.events.raise_event(
                "outbox.recovered",
                "info",
                device.device_id,
                full_for_s=round(time.monotonic() - self._full_since, 1),
            )
            self._full_since = None
        if self.events is not None:
            for level in box.high_water_crossed():
                usage = box.usage()
                self.events.raise_event(
                    "outbox.high_water",
                    "warning",
                    None,
                    level=level,
                    used_bytes=usage.used_bytes,
                    budget_bytes=usage.budget_bytes,
                )
        log.info(
            "record committed device=%s readings=%d new=%d quarantined=%d",
            device.device_id,
            len(rows),
            added,
            len(held),
        )
        if added_held and self.events is not None:
            for q in held:
                self.events.raise_event(
                    "reading.quarantined",
                    "warning",
                    device.device_id,
                    msg_id=q.msg_id,
                    quantity=q.quantity,
                    reason=q.reason,
                )
        if added and self.events is not None:
            self._stored_events(self.events, device, prepared)
        self._calibration_events(device, prepared)
        if self.wake is not None and added:
            self.wake.set()
        return added

    @staticmethod
    def _stored_events(events: Events, device: DeviceIdentity, prepared: list[Prepared]) -> None:
        """Per stored reading: flagged by a gate, or bound to no visit (each says why)."""
        for p in prepared:
            m, binding = p.measurement, p.binding
            if p.quarantine is not None:
                continue
            if p.gated:
                events.raise_event(
                    "reading.out_of_conditions",
                    "warning",
                    device.device_id,
                    msg_id=m.msg_id,
                    quantity=m.quantity,
                    reason=" ".join(p.gated),
                )
            if binding is not None and binding.visit is None:
                events.raise_event(
                    "visit.unbound",
                    "warning",
                    device.device_id,
                    msg_id=m.msg_id,
                    station=device.station,
                    quantity=m.quantity,
                    reason=binding.reason,
                )

    def _calibration_events(self, device: DeviceIdentity, prepared: list[Prepared]) -> None:
        """An event when a device's readings stop (or start again) being calibrated.

        One per change of state, not one per reading.
        """
        if self.events is None or not prepared or prepared[-1].calibration is None:
            return
        status = prepared[-1].calibration
        reason = self._calibration_flag(device, status)
        before = self._calibration_reason.get(device.device_id)
        self._calibration_reason[device.device_id] = reason
        record = status.record
        if reason is not None and reason != before:
            self.events.raise_event(
                "calibration.invalid",
                "warning",
                device.device_id,
                validity=status.validity,
                reason=reason,
                calibration_id=record.id if record else None,
            )
        elif reason is None and before is not None:
            self.events.raise_event(
                "calibration.valid",
                "info",
                device.device_id,
                calibration_id=record.id if record else None,
            )
