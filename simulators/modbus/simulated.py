"""``santebus simulate`` for Modbus units: lines and servers from the gateway's own config.

The devices of ``kind = "modbus"`` that share a ``modbus-rtu://`` path share one
:class:`~simulators.modbus.rtu_line.RtuLine` (its link is that path) and one serial server;
those that share a ``modbus-tcp://127.0.0.1:PORT`` endpoint share one TCP server. Each unit
serves its device's register map (``map``, or its own ``points``) with the values of its
scenario's model. Telemetry is not ledgered (no Observation is expected of it), so a
:class:`SimulatedModbus` produces nothing and owes nothing; it applies the unit's silent
window, and the servers and lines stay up until the runner's exit stack closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.errors import DeviceConfigError
from drivers.modbus.lines import ModbusTarget, parse_modbus_url
from drivers.modbus.maps import RegisterMap, resolve_map
from simulators.modbus import dynamics
from simulators.modbus.rtu_line import RtuLine
from simulators.modbus.scenario import ModbusScenario
from simulators.modbus.server import ModbusSimServer, SimSlave

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModbusMember:
    """One simulated unit as the runner hands it over."""

    device_id: str
    device: dict[str, Any]
    scenario: ModbusScenario
    rng: random.Random


def model_values(scenario: ModbusScenario, seed: int) -> dynamics.Values:
    """The scenario's value model."""
    s = scenario
    if s.model == "cabin":
        return dynamics.cabin_climate(
            s.speed, seed, start_hour=s.start_hour, low=s.cabin_low, high=s.cabin_high
        )
    if s.model == "fridge":
        return dynamics.fridge(
            s.speed, seed, s.door_every_s, s.door_open_s,
            high_limit=s.high_limit, low_limit=s.low_limit,
        )  # fmt: skip
    if s.model == "bath":
        return dynamics.bath(
            s.bath_points, s.bath_every_s, seed, offset=s.sensor_offset_c, tau_s=s.bath_tau_s,
            humidity=s.bath_humidity,
        )  # fmt: skip
    return dynamics.power(s.speed, seed, s.soc_start, s.drain_pct_per_hour, s.shore_power_until_s)


def _register_map(member: ModbusMember) -> RegisterMap:
    device, where = member.device, f"devices.{member.device_id}"
    try:
        regmap = resolve_map(device.get("map"), device.get("points"), device.get("max_gap"))
    except DeviceConfigError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    missing = sorted({p.name for p in regmap.points} - member.scenario.points)
    if missing:
        raise ValueError(
            f"simulation.devices.{member.device_id}: model {member.scenario.model!r} gives no"
            f" values for the points {missing} of map {regmap.name!r}"
        )
    return regmap


class SimulatedModbus:
    """The runner's handle on one simulated unit (its servers live in the exit stack)."""

    def __init__(
        self, device_id: str, unit: int, scenario: ModbusScenario, server: ModbusSimServer,
        line: RtuLine | None,
    ) -> None:  # fmt: skip
        self.device_id = device_id
        self.unit = unit
        self.scenario = scenario
        self.server = server
        self.line = line
        self.produced = 0
        self._stopped = asyncio.Event()

    @property
    def undelivered(self) -> int:
        return 0

    def stop_producing(self) -> None:
        self._stopped.set()

    def _silence(self, on: bool) -> None:
        # on RTU the line swallows the answers (the requests still cross it); TCP has no line
        silent = self.line.silent if self.line is not None else self.server.silent
        if on != (self.unit in silent):
            log.info("simulated modbus device=%s unit=%d silent=%s", self.device_id, self.unit, on)
        if on:
            silent.add(self.unit)
        else:
            silent.discard(self.unit)

    async def _stopped_within(self, seconds: float | None) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopped.wait()
        return self._stopped.is_set()

    async def run(self) -> None:
        """Apply the silent window; return when production stops."""
        s = self.scenario
        try:
            if s.silent_from is not None:
                if await self._stopped_within(max(0.0, s.silent_from - self.server.elapsed())):
                    return
                self._silence(True)
                if await self._stopped_within(s.silent_for):
                    return
                self._silence(False)
            await self._stopped.wait()
        finally:
            self._silence(False)


async def start_modbus(
    members: list[ModbusMember], stack: contextlib.AsyncExitStack
) -> list[SimulatedModbus]:
    """Start a line and a server per RTU path, a server per TCP port; closed by ``stack``."""
    groups: dict[tuple[str, str], list[tuple[ModbusMember, SimSlave, ModbusTarget]]] = {}
    for m in members:
        try:
            target = parse_modbus_url(str(m.device["transport"]))
        except DeviceConfigError as exc:
            raise ValueError(f"devices.{m.device_id}.transport: {exc}") from exc
        if target.serial is None:
            if target.host not in ("127.0.0.1", "localhost"):
                raise ValueError(f"devices.{m.device_id}: a simulated Modbus TCP unit needs"
                                 f" modbus-tcp://127.0.0.1:PORT, got {target.url!r}")  # fmt: skip
            if m.scenario.garble_rate:
                raise ValueError(f"simulation.devices.{m.device_id}: garble_rate needs RTU")
            key = ("tcp", str(target.port))
        else:
            key = ("rtu", target.serial.path)
        slave = SimSlave(
            int(m.device.get("unit", 1)),
            _register_map(m),
            model_values(m.scenario, m.rng.randrange(2**31)),
            m.scenario.exception_rate,
            m.rng.randrange(2**31),
        )
        groups.setdefault(key, []).append((m, slave, target))
    out: list[SimulatedModbus] = []
    for (kind, where), group in groups.items():
        slaves = [slave for _, slave, _ in group]
        line: RtuLine | None = None
        if kind == "rtu":
            bauds = {t.serial.baudrate for _, _, t in group if t.serial is not None}
            if len(bauds) > 1:
                raise ValueError(f"the Modbus devices on {where} disagree on the baud rate")
            line = RtuLine(Path(where), baudrate=bauds.pop(), seed=group[0][0].rng.randrange(2**31))
            await stack.enter_async_context(line)
            server = await ModbusSimServer.rtu(line, slaves)
        else:
            server = await ModbusSimServer.tcp(int(where), slaves)
        stack.push_async_callback(server.stop)
        for m, slave, _ in group:
            if line is not None:
                line.garble[slave.unit] = m.scenario.garble_rate
            out.append(SimulatedModbus(m.device_id, slave.unit, m.scenario, server, line))
        log.info("simulated modbus %s=%s units=%s", kind, where, [s.unit for s in slaves])
    return out
