"""Turn a device delivery into FHIR Observation rows committed to the outbox in one transaction.

All readings of one device record (e.g. both eyes of a tonometer record) are committed
together, because the device is acknowledged per record: either the whole record is durable and
acknowledged, or nothing is and the device sends it again.

Each reading of a device that belongs to a station is bound to a visit by the rule in
edge/visits/book.py (device time corrected by the driver's clock offset, widened by its time
uncertainty). A reading bound to no visit is stored and published without a subject, and a
``visit.unbound`` event says why; a device in no station is not visit-bound at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from drivers.readings import Delivery
from edge.events import Events
from edge.outbox import NewRow, Outbox, OutboxFullError
from edge.pipeline import fhir
from edge.pipeline.measurement import Measurement, localize, message_id
from edge.publish.topics import Topics
from edge.visits import Binding, VisitBook

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    device_id: str
    serial_number: str
    station: str | None = None


class Ingest:
    """The pipeline from delivery to outbox (validation and visit binding come next)."""

    def __init__(
        self,
        outbox: Outbox,
        topics: Topics,
        timezone: str,
        wake: asyncio.Event | None = None,
        events: Events | None = None,
        visits: VisitBook | None = None,
    ) -> None:
        self.outbox = outbox
        self.visits = visits
        self.topics = topics
        self.timezone = timezone
        self.wake = wake
        self.events = events
        self._full_since: float | None = None

    def measurements(
        self, device: DeviceIdentity, delivery: Delivery
    ) -> list[tuple[Measurement, Binding | None]]:
        """Each reading as a Measurement, with its visit binding (None: not visit-bound)."""
        out = []
        for r in delivery.readings:
            effective = localize(r.device_time, self.timezone)
            binding = self._bind(device, delivery, effective.timestamp())
            subject = binding.visit.visit_id if binding and binding.visit else None
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
            )
            out.append((m, binding))
        return out

    def _bind(self, device: DeviceIdentity, delivery: Delivery, device_ts: float) -> Binding | None:
        if self.visits is None or device.station is None:
            return None
        measured = device_ts - delivery.clock_offset
        u = delivery.time_uncertainty
        return self.visits.bind(device.station, measured - u, measured + u)

    def commit(self, device: DeviceIdentity, delivery: Delivery) -> int:
        """Store the delivery's Observations durably; returns how many rows were new."""
        bound = self.measurements(device, delivery)
        rows = [
            NewRow(
                msg_id=m.msg_id,
                device=device.device_id,
                topic=self.topics.obs(device.device_id),
                payload=fhir.encode(m),
            )
            for m, _ in bound
        ]
        try:
            added = self.outbox.add(rows) if rows else 0
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
            for level in self.outbox.high_water_crossed():
                usage = self.outbox.usage()
                self.events.raise_event(
                    "outbox.high_water",
                    "warning",
                    None,
                    level=level,
                    used_bytes=usage.used_bytes,
                    budget_bytes=usage.budget_bytes,
                )
        log.info(
            "record committed device=%s readings=%d new=%d", device.device_id, len(rows), added
        )
        if added and self.events is not None:
            for m, binding in bound:
                if binding is not None and binding.visit is None:
                    self.events.raise_event(
                        "visit.unbound",
                        "warning",
                        device.device_id,
                        msg_id=m.msg_id,
                        station=device.station,
                        quantity=m.quantity,
                        reason=binding.reason,
                    )
        if self.wake is not None and added:
            self.wake.set()
        return added
