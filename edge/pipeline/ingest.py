"""Turn a device delivery into FHIR Observation rows committed to the outbox in one transaction.

All readings of one device record (e.g. both eyes of a tonometer record) are committed
together, because the device is acknowledged per record: either the whole record is durable and
acknowledged, or nothing is and the device sends it again.
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

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    device_id: str
    serial_number: str


class Ingest:
    """The pipeline from delivery to outbox (validation and visit binding come next)."""

    def __init__(
        self,
        outbox: Outbox,
        topics: Topics,
        timezone: str,
        wake: asyncio.Event | None = None,
        events: Events | None = None,
    ) -> None:
        self.outbox = outbox
        self.topics = topics
        self.timezone = timezone
        self.wake = wake
        self.events = events
        self._full_since: float | None = None

    def measurements(self, device: DeviceIdentity, delivery: Delivery) -> list[Measurement]:
        return [
            Measurement(
                msg_id=message_id(device.device_id, device.serial_number, r.record_key, r.quantity),
                bus_id=self.topics.bus,
                device_id=device.device_id,
                device_model=delivery.device_model,
                device_serial=device.serial_number,
                quantity=r.quantity,
                value=r.value,
                unit=r.unit,
                effective=localize(r.device_time, self.timezone),
                device_status=r.status.value,
                components=r.components,
            )
            for r in delivery.readings
        ]

    def commit(self, device: DeviceIdentity, delivery: Delivery) -> int:
        """Store the delivery's Observations durably; returns how many rows were new."""
        rows = [
            NewRow(
                msg_id=m.msg_id,
                device=device.device_id,
                topic=self.topics.obs(device.device_id),
                payload=fhir.encode(m),
            )
            for m in self.measurements(device, delivery)
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
        if self.wake is not None and added:
            self.wake.set()
        return added
