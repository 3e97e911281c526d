"""Composition root: the one place that names concrete transports, drivers and the MQTT adapter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from calibration.records import CalibrationBook
from drivers.ble.adapter import BleAdapter
from drivers.ble.cursor import RecordCursor
from drivers.ble.driver import BleDriver, BleDriverSettings, BleStats
from drivers.ble.link import BleLink, LinkSettings
from drivers.ble.profiles import PROFILES
from drivers.codec.sampletransfer import TransferStats
from drivers.devices.ct80 import Ct80Driver, Ct80Stats
from drivers.devices.refractor import RefractorDriver, RefractorStats
from drivers.readings import Delivery
from drivers.transport import ByteTransport, open_transport
from edge.config import (
    NON_MEASURING,
    BleDevice,
    Ct80Device,
    EdgeConfig,
    RefractorDevice,
    SerialDevice,
)
from edge.config_imaging import RetinographDevice
from edge.events import Events
from edge.health.endpoints import HealthEndpoints
from edge.health.snapshot import DriverStats, Sources
from edge.outbox import Budget, Outbox
from edge.pipeline.ingest import DeviceIdentity, Ingest
from edge.pipeline.telemetry import TelemetryBuffer
from edge.publish.forwarder import Forwarder, ForwarderSettings
from edge.publish.mqtt import PahoPublisher
from edge.publish.port import MqttSettings, Publisher, Will
from edge.publish.topics import Topics
from edge.rawsignal import raw_deliveries
from edge.sdnotify import Notifier
from edge.service import Service, ServiceView
from edge.supervise import DeviceHealth, supervise
from edge.vehicle.climate import Climate, OperatingGate
from edge.vehicle.modbus import ModbusUnits
from edge.visits import VisitBook
from edge.visits.commands import VisitCommands
from edge.visits.idle import close_idle

if TYPE_CHECKING:
    from edge.retinography import Retinography

log = logging.getLogger(__name__)


def mqtt_settings(config: EdgeConfig) -> MqttSettings:
    m = config.mqtt
    return MqttSettings(
        host=m.host,
        port=m.port,
        client_id=config.client_id,
        keepalive=m.keepalive,
        session_expiry=m.session_expiry,
        tls=m.tls,
        ca_file=m.ca_file,
        cert_file=m.cert_file,
        key_file=m.key_file,
        username=m.username,
        password_file=m.password_file,
        connect_timeout=m.connect_timeout,
        max_inflight=m.max_in_flight,
    )


#: seconds the service manager grants the outbox's opening (integrity check) before READY
OPEN_BUDGET_S = 300.0


class Daemon:
    """Wires config to components; :meth:`run` returns when SIGTERM/SIGINT arrives."""

    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.topics = Topics(config.gateway.bus_id)
        self.health: dict[str, DeviceHealth] = {}
        #: each device driver's counters, kept across reconnects (frame errors for edge/health)
        self.stats: dict[str, DriverStats] = {}
        #: BLE host stacks by adapter name, shared by the devices on them
        self.adapters: dict[str, BleAdapter] = {}
        #: the technicians' calibration records (read per reading, cached per device folder)
        self.calibrations = CalibrationBook(config.calibration_dir)
        #: why the daemon stopped by itself (e.g. the battery), None for a signal
        self.stop_reason: str | None = None
        self.fundus: Retinography | None = None  # retinographs; last verdicts -> snapshot
        self._stop = asyncio.Event()

    def request_stop(self, reason: str) -> None:
        """Stop cleanly, as on SIGTERM (outbox committed and closed, devices released)."""
        if self.stop_reason is None:
            log.warning("daemon stopping reason=%r", reason)
            self.stop_reason = reason
        self._stop.set()

    async def run(self) -> int:
        config = self.config
        o = config.outbox
        notifier = Notifier.from_environment()
        # Opening runs an integrity check over the whole file: on a slow SD card and a full
        # outbox, longer than TimeoutStartSec= allows. sd_notify(3) EXTEND_TIMEOUT_USEC.
        notifier.extend_timeout(OPEN_BUDGET_S)
        outbox = Outbox(
            config.outbox_path,
            budget=Budget(o.max_bytes, o.reserve_bytes, o.telemetry_max_bytes, o.high_water),
        )
        settings = mqtt_settings(config)
        will = Will(self.topics.status, b'{"state":"offline"}')

        def new_link() -> Publisher:
            return PahoPublisher(settings, will)

        forwarder = Forwarder(
            outbox,
            new_link,
            self.topics,
            ForwarderSettings(
                resend_after=config.mqtt.resend_after, max_in_flight=config.mqtt.max_in_flight
            ),
        )
        events = Events(outbox, self.topics, wake=forwarder.wake)
        forwarder.events = events
        if outbox.moved_aside is not None:
            events.raise_event("outbox.corrupt", "critical", None, moved_to=str(outbox.moved_aside))
        visits = VisitBook(config.visits_path, set(config.stations)) if config.stations else None
        ingest = Ingest(
            outbox,
            self.topics,
            config.gateway.timezone,
            wake=forwarder.wake,
            events=events,
            visits=visits,
            calibrations=self.calibrations,
        )
        tasks: list[asyncio.Task[object]] = [asyncio.create_task(forwarder.run(), name="forwarder")]
        tasks += self._vehicle(TelemetryBuffer(outbox, self.topics, wake=forwarder.wake),
                               events, ingest) + self._imaging(outbox, events, visits,
                                                               forwarder.wake)  # fmt: skip
        if visits is not None:
            tasks.append(
                asyncio.create_task(close_idle(visits, config.stations, events), name="visits")
            )
            # the reception tablet opens and closes visits (the broker's ACL admits only it)
            forwarder.commands[self.topics.cmd("visit")] = VisitCommands(visits, events).handle
        for device_id in config.devices:  # "starting" until its first attempt (readiness)
            self.health.setdefault(device_id, DeviceHealth())
        for device_id, device in config.devices.items():
            if isinstance(device, NON_MEASURING):
                continue
            run = (
                self._ble(device_id, device, ingest)
                if isinstance(device, BleDevice)
                else self._device(device_id, device, ingest, events)
            )
            tasks.append(asyncio.create_task(run, name=device_id))

        service = self._service(notifier, forwarder, outbox)
        tasks += self._ops_tasks(service, forwarder, outbox, events)

        stop = self._stop
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # SIGHUP: reconnect with freshly read TLS files (certificate rotation); queued data
        # stays in the outbox.
        loop.add_signal_handler(signal.SIGHUP, forwarder.request_reconnect)
        log.info(
            "daemon started bus=%s devices=%d outbox=%s",
            config.gateway.bus_id,
            len(config.devices),
            config.outbox_path,
        )
        waiter: asyncio.Task[object] = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        crashed = [t for t in done if t is not waiter]
        service.stopping(self.stop_reason or ("task failed" if crashed else "signal"))
        if self.stop_reason is not None and not crashed:
            await self._last_words(outbox)
        # Commits are synchronous on this loop, so cancelling at an await never splits one.
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task  # a crashed task's exception is logged below, not re-raised here
        waiter.cancel()
        for adapter in self.adapters.values():
            with contextlib.suppress(Exception):  # a dead adapter must not block the shutdown
                await adapter.close()
        counts = outbox.counts()
        outbox.close()
        if visits is not None:
            visits.close()
        for task in crashed:
            log.error("task ended unexpectedly task=%s", task.get_name(), exc_info=task.exception())
        log.info("daemon stopped outbox=%s reason=%r", counts, self.stop_reason or "signal")
        return 1 if crashed else 0

    def _imaging(
        self, outbox: Outbox, events: Events, visits: VisitBook | None, wake: asyncio.Event
    ) -> list[asyncio.Task[object]]:
        """The retinographs' DICOM receivers (edge/retinography.py)."""
        if not any(isinstance(d, RetinographDevice) for d in self.config.devices.values()):
            return []
        # Imported only for a bus with a retinograph: pydicom and Pillow cost 9 MB of RSS
        from edge.retinography import Retinography

        self.fundus = Retinography(self.config, outbox, self.topics, events, visits, self.health,
                                   wake)  # fmt: skip
        return self.fundus.tasks()

    def _service(self, notifier: Notifier, forwarder: Forwarder, outbox: Outbox) -> Service:
        logs = os.environ.get("LOGS_DIRECTORY", "").split(":")[0]  # systemd.exec(5)
        view = ServiceView(
            self.health, forwarder.settled.is_set, forwarder.connected.is_set, outbox.waiting
        )
        return Service(notifier, view, logs_dir=Path(logs) if logs else None)

    def _ops_tasks(
        self, service: Service, forwarder: Forwarder, outbox: Outbox, events: Events
    ) -> list[asyncio.Task[object]]:
        """The service manager's end (edge/service.py) and the health endpoints (edge/health)."""
        c = self.config
        sources = Sources(c, self.health, self.stats, outbox, forwarder, self.calibrations,
                          fundus=self.fundus.last if self.fundus is not None else {})  # fmt: skip
        return [
            asyncio.create_task(service.run(), name="service"),
            asyncio.create_task(HealthEndpoints(sources, events).run(), name="health"),
        ]

    def _vehicle(
        self, telemetry: TelemetryBuffer, events: Events, ingest: Ingest
    ) -> list[asyncio.Task[object]]:
        """Telemetry, the Modbus units and the operating-condition gate on measurements."""
        config = self.config
        tasks: list[asyncio.Task[object]] = [asyncio.create_task(telemetry.run(), name="telemetry")]
        climate = Climate()
        conditions = {
            d: dev.operating
            for d, dev in config.devices.items()
            if not isinstance(dev, NON_MEASURING) and dev.operating is not None
        }
        if conditions:
            ingest.gates.append(OperatingGate(climate, conditions))
        modbus = ModbusUnits(config, telemetry, events, climate, self.request_stop, self.health)
        self.stats.update({d: poller.stats for d, poller in modbus.pollers.items()})
        if modbus.pollers:
            tasks.append(asyncio.create_task(modbus.run(), name="modbus"))
        return tasks

    @staticmethod
    async def _last_words(outbox: Outbox, grace: float = 3.0) -> None:
        """Before a stop the daemon decided itself (the battery): publish its events first.

        Up to ``grace`` seconds for the forwarder to deliver the events that explain the
        stop (``power.shutdown``) while a link is up; whatever is left stays in the outbox.
        """
        deadline = asyncio.get_running_loop().time() + grace
        while asyncio.get_running_loop().time() < deadline:
            if outbox.open_rows("event") == 0:
                return
            await asyncio.sleep(0.1)

    def _identity(self, device_id: str, device: SerialDevice | BleDevice) -> DeviceIdentity:
        return DeviceIdentity(
            device_id,
            device.serial_number,
            self.config.station_of(device_id),
            calibration_required=device.calibration_required,
            calibration_withhold=device.calibration_withhold,
        )

    async def _device(
        self, device_id: str, device: SerialDevice, ingest: Ingest, events: Events
    ) -> None:
        identity = self._identity(device_id, device)
        health = self.health.setdefault(device_id, DeviceHealth())
        deliveries: Callable[[ByteTransport], AsyncIterator[Delivery]]
        if isinstance(device, Ct80Device):
            stats = self.stats[device_id] = Ct80Stats()

            def deliveries(transport: ByteTransport) -> AsyncIterator[Delivery]:
                return Ct80Driver(transport, device_id, stats=stats).deliveries()

        elif isinstance(device, RefractorDevice):
            refr = self.stats[device_id] = RefractorStats()

            def deliveries(transport: ByteTransport) -> AsyncIterator[Delivery]:
                return RefractorDriver(transport, device_id, stats=refr).deliveries()

        else:
            transfer = self.stats[device_id] = TransferStats()
            deliveries = raw_deliveries(
                device_id,
                device,
                calibrations=self.calibrations,
                recordings_dir=self.config.recordings_dir,
                timezone=self.config.gateway.timezone,
                events=events,
                health=health,
                transfer=transfer,
            )

        def commit(delivery: Delivery) -> int:
            return ingest.commit(identity, delivery)

        await supervise(
            device_id,
            lambda: open_transport(device.transport),
            deliveries,
            commit,
            reconnect_min=device.reconnect_min,
            reconnect_max=device.reconnect_max,
            health=health,
        )

    async def _ble(self, device_id: str, device: BleDevice, ingest: Ingest) -> None:
        identity = self._identity(device_id, device)
        adapter = self.adapters.setdefault(device.adapter, BleAdapter(device.adapter))
        profile = PROFILES[device.profile]
        link_settings = LinkSettings(
            profile, device.address, pair=device.pair, connect_timeout=device.connect_timeout
        )
        settings = BleDriverSettings(
            set_clock=device.set_clock,
            clock_tolerance=device.clock_tolerance_s,
            racp_poll=device.racp_poll_s,
        )
        cursor = None
        if profile.racp is not None:
            cursor = RecordCursor(self.config.ble_cursor_dir, device_id, device.address)
        stats = self.stats[device_id] = BleStats()
        zone = ZoneInfo(self.config.gateway.timezone)

        def now() -> datetime:
            # device clocks keep local wall time (Current Time Service 1.1 3.1)
            return datetime.now(zone).replace(tzinfo=None)

        def deliveries(link: BleLink) -> AsyncIterator[Delivery]:
            return BleDriver(link, device_id, now, settings, cursor, stats).deliveries()

        await supervise(
            device_id,
            lambda: BleLink(adapter, link_settings),
            deliveries,
            lambda delivery: ingest.commit(identity, delivery),
            reconnect_min=device.reconnect_min,
            reconnect_max=device.reconnect_max,
            health=self.health.setdefault(device_id, DeviceHealth()),
        )
