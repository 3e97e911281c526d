"""Composition root: the one place that names concrete transports, drivers and the MQTT adapter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

from calibration.records import CalibrationBook
from drivers.ble.adapter import BleAdapter
from drivers.ble.cursor import RecordCursor
from drivers.ble.driver import BleDriver, BleDriverSettings, BleStats
from drivers.ble.link import BleLink, LinkSettings
from drivers.ble.profiles import PROFILES
from drivers.devices.ct80 import Ct80Driver, Ct80Stats
from drivers.readings import Delivery
from drivers.transport import ByteTransport, open_transport
from edge.config import BleDevice, Ct80Device, EdgeConfig
from edge.events import Events
from edge.outbox import Budget, Outbox
from edge.pipeline.ingest import DeviceIdentity, Ingest
from edge.publish.forwarder import Forwarder, ForwarderSettings
from edge.publish.mqtt import MqttSettings, PahoPublisher
from edge.publish.port import Publisher, Will
from edge.publish.topics import Topics
from edge.supervise import DeviceHealth, supervise
from edge.visits import VisitBook
from edge.visits.commands import VisitCommands

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


class Daemon:
    """Wires config to components; :meth:`run` returns when SIGTERM/SIGINT arrives."""

    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.topics = Topics(config.gateway.bus_id)
        self.health: dict[str, DeviceHealth] = {}
        #: BLE host stacks by adapter name, shared by the devices on them
        self.adapters: dict[str, BleAdapter] = {}

    async def run(self) -> int:
        config = self.config
        o = config.outbox
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
            calibrations=CalibrationBook(config.calibration_dir),
        )
        tasks: list[asyncio.Task[object]] = [asyncio.create_task(forwarder.run(), name="forwarder")]
        if visits is not None:
            tasks.append(asyncio.create_task(self._close_idle(visits, events), name="visits"))
            # the reception tablet opens and closes visits (the broker's ACL admits only it)
            forwarder.commands[self.topics.cmd("visit")] = VisitCommands(visits, events).handle
        for device_id, device in config.devices.items():
            run = (
                self._ble(device_id, device, ingest)
                if isinstance(device, BleDevice)
                else self._device(device_id, device, ingest)
            )
            tasks.append(asyncio.create_task(run, name=device_id))

        stop = asyncio.Event()
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
        log.info("daemon stopped outbox=%s", counts)
        return 1 if crashed else 0

    async def _close_idle(self, visits: VisitBook, events: Events) -> None:
        """Close visits idle past their station's ``idle_close_s``.

        Checked once a minute, or four times per the shortest idle time if that is shorter, so
        a visit closes at most a quarter late.
        """
        shortest = min(s.idle_close_s for s in self.config.stations.values())
        period = max(0.5, min(60.0, shortest / 4))
        while True:
            await asyncio.sleep(period)
            for station, section in self.config.stations.items():
                for _ in visits.close_idle(section.idle_close_s, station=station):
                    events.raise_event("visit.closed", "info", None, station=station, by="idle")

    def _identity(self, device_id: str, device: Ct80Device | BleDevice) -> DeviceIdentity:
        return DeviceIdentity(
            device_id,
            device.serial_number,
            self.config.station_of(device_id),
            calibration_required=device.calibration_required,
        )

    async def _device(self, device_id: str, device: Ct80Device, ingest: Ingest) -> None:
        identity = self._identity(device_id, device)
        stats = Ct80Stats()
        health = self.health.setdefault(device_id, DeviceHealth())

        def deliveries(transport: ByteTransport) -> AsyncIterator[Delivery]:
            return Ct80Driver(transport, device_id, stats=stats).deliveries()

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
        stats = BleStats()
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
