"""The Modbus units of the config, polled: telemetry, roles, and failures as events and states.

One :class:`~drivers.modbus.lines.SharedLine` per transport URL (the units of one RS-485 line
take turns), one :class:`~drivers.modbus.poller.Poller` per unit. Every value goes to the
telemetry buffer (group commit, ``telemetry/{source}``); the unit's role adds its meaning:
``climate`` feeds the operating-condition gate, ``cold-chain`` the excursion tracker,
``power`` the battery watch.

A unit's failure is a state (``silent``, ``line-down``) and an event, never the end of a loop:
after ``SILENT_AFTER`` failed polls in a row ``modbus.unit_silent`` is raised once, and
``modbus.unit_back`` when it answers again. Exception responses and garbled (CRC) answers are
counted events: the first is raised at once, later ones at most once per ``EVENT_EVERY``
seconds per unit and kind, carrying how many happened since the previous event and in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from drivers.modbus.errors import (
    ModbusError,
    ModbusExceptionResponseError,
    ModbusFrameError,
    ModbusLinkError,
)
from drivers.modbus.lines import SharedLine, open_client
from drivers.modbus.poller import Poller, PollSettings, PollStats, Values
from edge.config import EdgeConfig
from edge.config_modbus import ModbusDevice
from edge.events import Events
from edge.pipeline.telemetry import Sample, TelemetryBuffer
from edge.supervise import DeviceHealth
from edge.vehicle.climate import Climate, ClimateSample
from edge.vehicle.coldchain import ColdChain
from edge.vehicle.power import PowerWatch

log = logging.getLogger(__name__)

SILENT_AFTER = 3
EVENT_EVERY = 60.0
_POWER = {"battery_soc", "battery_voltage", "input_source"}


class _Unit:
    """One unit's callbacks: values to telemetry and its role; failures to state and events."""

    def __init__(
        self,
        device_id: str,
        device: ModbusDevice,
        line: SharedLine,
        telemetry: TelemetryBuffer,
        events: Events,
        climate: Climate,
        stop: Callable[[str], None],
        health: DeviceHealth,
        event_every: float = EVENT_EVERY,
    ) -> None:
        self.device_id = device_id
        self.event_every = event_every
        self.device = device
        self.line = line
        self.telemetry = telemetry
        self.events = events
        self.climate = climate
        self.health = health
        self.source = device.source or device_id
        regmap = device.register_map()
        self.points = {p.name: p for p in regmap.points}
        self.coldchain = (
            ColdChain(device_id, device.cold_chain, events) if device.cold_chain else None
        )
        self.power = PowerWatch(device_id, device.power, events, stop) if device.power else None
        self.silent_since: float | None = None
        self._last_event: dict[str, float] = {}
        self._since_event: Counter[str] = Counter()
        self.totals: Counter[str] = Counter()

    def on_values(self, values: Values) -> None:
        now = datetime.now(UTC)
        by_quantity: dict[str, float] = {}
        for name, value in values.items():
            point = self.points[name]
            if not math.isfinite(value):  # a float32 NaN from a faulty probe: not a value
                self._counted("modbus.bad_value", f"{name} = {value}")
                continue
            by_quantity[point.quantity] = value
            self.telemetry.add(Sample(self.source, point.quantity, value, point.unit, now))
        self.health.records += 1
        self._role(by_quantity, now)

    def _role(self, v: dict[str, float], now: datetime) -> None:
        role = self.device.role
        if role == "climate" and "temperature" in v and "humidity" in v:
            sample = ClimateSample(now.timestamp(), v["temperature"], v["humidity"], self.source)
            self.climate.record(sample)
        elif role == "cold-chain" and self.coldchain is not None and "temperature" in v:
            alarm = int(v.get("alarm", 0)) & 0b11 != 0  # bits 0/1: the logger's own limits
            self.coldchain.update(v["temperature"], now, alarm)
        elif role == "power" and self.power is not None and v.keys() >= _POWER:
            self.power.update(v["battery_soc"], v["battery_voltage"], v["input_source"])

    def on_good(self, stats: PollStats) -> None:
        if self.silent_since is not None:
            self.events.raise_event(
                "modbus.unit_back",
                "info",
                self.device_id,
                unit=self.device.unit,
                line=self.line.url,
                silent_for_s=round(time.monotonic() - self.silent_since, 1),
            )
            log.info("modbus unit answering again device=%s", self.device_id)
            self.silent_since = None
        self.health.state = "connected"

    def on_error(self, exc: ModbusError, stats: PollStats) -> None:
        self.health.failures += 1
        if isinstance(exc, ModbusExceptionResponseError):
            self._counted("modbus.exception", str(exc), code=exc.code)
        elif isinstance(exc, ModbusFrameError):
            self._counted("modbus.frame_error", str(exc))
        if stats.failing >= SILENT_AFTER and self.silent_since is None:
            self.silent_since = time.monotonic()
            self.health.state = "line-down" if isinstance(exc, ModbusLinkError) else "silent"
            self.events.raise_event(
                "modbus.unit_silent",
                "warning",
                self.device_id,
                unit=self.device.unit,
                line=self.line.url,
                failed_polls=stats.failing,
                error=str(exc),
            )
        elif self.silent_since is None:
            log.info("modbus poll failed device=%s error=%s", self.device_id, exc)

    def _counted(self, kind: str, error: str, **detail: int) -> None:
        self.totals[kind] += 1
        self._since_event[kind] += 1
        now = time.monotonic()
        if now - self._last_event.get(kind, -math.inf) < self.event_every:
            return
        self._last_event[kind] = now
        count, self._since_event[kind] = self._since_event[kind], 0
        self.events.raise_event(
            kind,
            "warning",
            self.device_id,
            unit=self.device.unit,
            count=count,
            total=self.totals[kind],
            error=error,
            **detail,
        )


class ModbusUnits:
    """Polls every Modbus device of ``config`` until cancelled, then closes the lines."""

    def __init__(
        self,
        config: EdgeConfig,
        telemetry: TelemetryBuffer,
        events: Events,
        climate: Climate,
        stop: Callable[[str], None],
        health: dict[str, DeviceHealth],
        open_line: Callable[[str], SharedLine] = open_client,
        event_every: float = EVENT_EVERY,
    ) -> None:
        self.lines: dict[str, SharedLine] = {}
        self.units: dict[str, _Unit] = {}
        self.pollers: dict[str, Poller] = {}
        for device_id, device in config.devices.items():
            if not isinstance(device, ModbusDevice):
                continue
            line = self.lines.get(device.transport) or open_line(device.transport)
            self.lines[device.transport] = line
            h = health.setdefault(device_id, DeviceHealth())
            unit = _Unit(device_id, device, line, telemetry, events, climate, stop, h, event_every)
            self.units[device_id] = unit
            settings = PollSettings(
                period=device.period_s,
                jitter=device.jitter,
                timeout=device.timeout_s,
                retries=device.retries,
                backoff_max=device.backoff_max_s,
            )
            self.pollers[device_id] = Poller(
                line,
                device.unit,
                device.register_map(),
                settings,
                unit.on_values,
                unit.on_error,
                random.Random(device_id),
                on_good=unit.on_good,
            )
            climate.stale_after = max(climate.stale_after, device.stale_after_s)

    async def run(self) -> None:
        """Run every poller; on cancellation stop them and close the lines."""
        tasks = [asyncio.create_task(p.run(), name=f"modbus:{d}") for d, p in self.pollers.items()]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for line in self.lines.values():
                with contextlib.suppress(Exception):  # a dead line must not block the stop
                    await line.close()
            log.info("modbus lines closed lines=%d units=%d", len(self.lines), len(self.pollers))
