"""Turn a device delivery into FHIR Observation rows committed to the outbox in one transaction.

All readings of one device record (e.g. both eyes of a tonometer record) are committed
together, because the device is acknowledged per record: either the whole record is durable and
acknowledged, or nothing is and the device sends it again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from drivers.readings import Delivery
from edge.outbox import NewRow, Outbox
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
        self, outbox: Outbox, topics: Topics, timezone: str, wake: asyncio.Event | None = None
    ) -> None:
        self.outbox = outbox
        self.topics = topics
        self.timezone = timezone
        self.wake = wake

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
        added = self.outbox.add(rows) if rows else 0
        log.info(
            "record committed device=%s readings=%d new=%d", device.device_id, len(rows), added
        )
        if self.wake is not None and added:
            self.wake.set()
        return added
