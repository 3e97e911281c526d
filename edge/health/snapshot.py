"""One snapshot of the running daemon: devices, broker link, outbox, calibrations.

Both health endpoints answer from :meth:`Snapshots.take`, called on the daemon's event loop at
request time (a scrape, a ``santebus status``): the counters are the live objects the daemon
updates, read in place. Nothing in a snapshot identifies a patient - no visit id, no subject,
no reading value - since ops engineers read it; a device appears by its config id, kind,
state and counters, its calibration by record id and validity.

Frame errors per device are what each driver counts: a CT-80's, an autorefractor's and a
raw-signal front-end's bursts of garbled frames (``garbled_frames``), a BLE device's malformed
characteristic values (``malformed``), a Modbus unit's garbled answers and CRC mismatches
(``frame_errors``).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from calibration.records import CalibrationBook, CalibrationError, days_left
from drivers.ble.driver import BleStats
from drivers.codec.sampletransfer import TransferStats
from drivers.devices.ct80 import Ct80Stats
from drivers.devices.refractor import RefractorStats
from drivers.modbus.poller import PollStats
from edge.config import NON_MEASURING, EdgeConfig
from edge.health.backlog import BacklogReader
from edge.outbox import Outbox, OutboxError
from edge.publish.forwarder import Forwarder, Latency
from edge.supervise import DeviceHealth

log = logging.getLogger(__name__)

#: what a driver counts, kept by the daemon per device (edge/app.py)
DriverStats = Ct80Stats | RefractorStats | TransferStats | BleStats | PollStats


def frame_errors(stats: DriverStats) -> int:
    """The frame errors a driver counted (see the module docstring)."""
    if isinstance(stats, BleStats):
        return stats.malformed
    if isinstance(stats, PollStats):
        return stats.frame_errors
    return stats.garbled_frames


def version() -> str:
    try:
        return importlib.metadata.version("santebus-edge")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class Sources:
    """The live objects of a running daemon that a snapshot reads (never writes)."""

    config: EdgeConfig
    health: Mapping[str, DeviceHealth]
    stats: Mapping[str, DriverStats]
    outbox: Outbox
    forwarder: Forwarder
    calibrations: CalibrationBook
    #: time.time() at start-up
    started: float = field(default_factory=time.time)
    #: the last fundus photograph's verdict per station (edge/retinography.py; no identifier)
    fundus: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LatencyView:
    """A copy of a :class:`~edge.publish.forwarder.Latency`: cumulative ``(le, count)``."""

    buckets: tuple[tuple[float, int], ...]
    total: float
    count: int

    @classmethod
    def of(cls, latency: Latency) -> LatencyView:
        running, buckets = 0, []
        for bound, n in zip((*latency.bounds, float("inf")), latency.counts, strict=True):
            running += n
            buckets.append((bound, running))
        return cls(tuple(buckets), latency.total, latency.count)

    def summary(self) -> dict[str, Any]:
        mean = round(self.total / self.count, 4) if self.count else None
        return {"count": self.count, "mean_s": mean}


@dataclass(frozen=True, slots=True)
class MqttView:
    connected: bool
    connects: int
    #: time.time() of the last successful connection
    last_connect: float | None
    published: int
    confirmed: int
    rejected: int
    puback_latency: LatencyView
    backend_latency: LatencyView


@dataclass(frozen=True, slots=True)
class OutboxView:
    """The outbox's figures; ``error`` set (and the counts zero) when it cannot be read."""

    pending: int = 0
    in_flight: int = 0
    rejected: int = 0
    oldest_age_s: float | None = None
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    by_kind_age_s: float = 0.0
    used_bytes: int | None = None
    budget_bytes: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CalibrationView:
    #: calibration.records.Validity
    validity: str
    record: str | None
    valid_until: str | None
    #: days until the record lapses (0: its last day, negative: lapsed); None: no pass record
    days_left: int | None


@dataclass(frozen=True, slots=True)
class DeviceView:
    kind: str
    state: str
    connects: int
    failures: int
    records: int
    #: None: this driver does not count them
    frame_errors: int | None
    last_record_age_s: float | None
    #: None: not a measuring device (Modbus telemetry)
    calibration: CalibrationView | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    bus: str
    version: str
    pid: int
    started: float
    at: float
    mqtt: MqttView
    outbox: OutboxView
    devices: dict[str, DeviceView]
    #: station -> the last fundus verdict there (gradable, reasons, measures, object id)
    fundus: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def uptime_s(self) -> float:
        return max(0.0, self.at - self.started)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``santebus status --json`` (format documented in operations.md)."""
        mqtt = asdict(self.mqtt)
        mqtt["puback_latency"] = self.mqtt.puback_latency.summary()
        mqtt["backend_latency"] = self.mqtt.backend_latency.summary()
        return {
            "bus": self.bus,
            "version": self.version,
            "pid": self.pid,
            "started": self.started,
            "at": self.at,
            "uptime_s": round(self.uptime_s, 1),
            "mqtt": mqtt,
            "outbox": asdict(self.outbox),
            "devices": {d: asdict(v) for d, v in self.devices.items()},
            "fundus": self.fundus,
        }


class Snapshots:
    """Takes snapshots of one daemon; call from its event loop only."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.version = version()
        self.zone = ZoneInfo(sources.config.gateway.timezone)
        self._backlog = BacklogReader(sources.outbox.path)

    def take(self) -> Snapshot:
        s = self.sources
        f = s.forwarder
        mqtt = MqttView(
            connected=f.connected.is_set(),
            connects=f.stats.connects,
            last_connect=f.stats.last_connect,
            published=f.stats.published,
            confirmed=f.stats.confirmed,
            rejected=f.stats.rejected,
            puback_latency=LatencyView.of(f.stats.puback_latency),
            backend_latency=LatencyView.of(f.stats.backend_latency),
        )
        return Snapshot(
            bus=s.config.gateway.bus_id,
            version=self.version,
            pid=os.getpid(),
            started=s.started,
            at=time.time(),
            mqtt=mqtt,
            outbox=self._outbox(),
            devices=self._devices(),
            fundus={station: dict(v) for station, v in s.fundus.items()},
        )

    def close(self) -> None:
        self._backlog.close()

    def _outbox(self) -> OutboxView:
        try:
            backlog = self._backlog.read()
            usage = self.sources.outbox.usage()
        except (sqlite3.Error, OutboxError, OSError) as exc:
            log.warning("health: outbox not readable error=%r", str(exc))
            return OutboxView(error=str(exc))
        oldest = backlog.oldest_created
        return OutboxView(
            pending=backlog.pending,
            in_flight=backlog.in_flight,
            rejected=backlog.rejected,
            oldest_age_s=None if oldest is None else round(max(0.0, time.time() - oldest), 3),
            by_kind=backlog.by_kind,
            by_kind_age_s=round(backlog.breakdown_age_s, 3),
            used_bytes=usage.used_bytes,
            budget_bytes=usage.budget_bytes,
        )

    def _devices(self) -> dict[str, DeviceView]:
        s = self.sources
        today = datetime.now(self.zone).date()
        now = time.monotonic()
        devices: dict[str, DeviceView] = {}
        for device_id in sorted(s.health):
            h = s.health[device_id]
            config = s.config.devices.get(device_id)
            stats = s.stats.get(device_id)
            last = h.last_record
            if last is None and isinstance(stats, PollStats):
                last = stats.last_good
            calibration = None
            if config is not None and not isinstance(config, NON_MEASURING):
                calibration = self._calibration(config.serial_number, today)
            devices[device_id] = DeviceView(
                kind=config.kind if config is not None else "unknown",
                state=h.state,
                connects=h.connects,
                failures=h.failures,
                records=h.records,
                frame_errors=None if stats is None else frame_errors(stats),
                last_record_age_s=None if last is None else round(max(0.0, now - last), 3),
                calibration=calibration,
            )
        return devices

    def _calibration(self, serial: str, today: date) -> CalibrationView:
        try:
            status = self.sources.calibrations.status(serial, today)
        except CalibrationError:  # logged by the pipeline at each reading; not per scrape
            return CalibrationView("unreadable", None, None, None)
        r = status.record
        if r is None:
            return CalibrationView(status.validity, None, None, None)
        left = None if r.result == "fail" else days_left(r, today)
        return CalibrationView(status.validity, r.id, r.valid_until.isoformat(), left)
