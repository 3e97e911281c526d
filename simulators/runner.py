"""``santebus simulate``: run the simulated devices a gateway config declares.

Serial devices: each device's pty symlink is the path of its ``serial://`` transport URL, so
the daemon reads the very same config. Bluetooth LE devices: the devices sharing an adapter
``bumble:tcp-client:127.0.0.1:PORT`` are peripherals on one virtual radio whose gateway
controller this process serves on that port (simulators/ble/link.py), each advertising with its
configured address. Modbus units (``kind = "modbus"``): the units sharing a ``modbus-rtu://``
path share one simulated RS-485 line whose link is that path, those sharing a
``modbus-tcp://127.0.0.1:PORT`` one server on that port (simulators/modbus/simulated.py).
Retinographs (``kind = "retinograph"``) send to the daemon's C-STORE SCP at the device's
``bind``/``port`` (simulators/fundus_camera.py). On
SIGTERM/SIGINT or after ``--duration`` the devices stop producing and get ``drain_timeout``
seconds to deliver what they hold; the exit code is 0 when everything was delivered, 3
otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from simulators.airpuff import AirpuffScenario, SimulatedAirpuff
from simulators.bench import PneumaticBench
from simulators.ct80 import SimulatedCt80
from simulators.fundus_camera import RetinographScenario, SimulatedRetinograph
from simulators.ledger import Ledger
from simulators.modbus.scenario import ModbusScenario
from simulators.nibp import NibpScenario, SimulatedNibp
from simulators.refractor import RefractorScenario, SimulatedRefractor
from simulators.scenario import BenchScenario, BleScenario, SimulationConfig, TonometerScenario

log = logging.getLogger(__name__)


class Simulated(Protocol):
    device_id: str
    produced: int

    async def run(self) -> None: ...

    def stop_producing(self) -> None: ...

    @property
    def undelivered(self) -> int: ...


def _link_path(transport_url: str) -> Path:
    parts = urlsplit(transport_url.removeprefix("spy+"))
    if parts.scheme != "serial" or not parts.path:
        raise ValueError(f"simulated devices need a serial:// transport, got {transport_url!r}")
    return Path(parts.path)


def _radio_port(device_id: str, adapter: str) -> int:
    host, _, port = adapter.removeprefix("bumble:tcp-client:").rpartition(":")
    if not adapter.startswith("bumble:tcp-client:") or host not in ("127.0.0.1", "localhost"):
        raise ValueError(
            f"devices.{device_id}.adapter: a simulated BLE device needs"
            f" bumble:tcp-client:127.0.0.1:PORT, got {adapter!r}"
        )
    return int(port)


def _device(data: dict[str, Any], device_id: str, expected: str) -> dict[str, Any]:
    device = data.get("devices", {}).get(device_id)
    if device is None:
        raise ValueError(f"simulation.devices.{device_id}: no such device in [devices]")
    if device.get("kind") != expected:
        raise ValueError(
            f"simulation.devices.{device_id}: a {expected} scenario, but the device is"
            f" kind {device.get('kind')!r}"
        )
    return dict(device)


async def build(
    data: dict[str, Any], ledger: Ledger, stack: contextlib.AsyncExitStack
) -> list[Simulated]:
    """The simulated devices, started; radios are closed by ``stack``."""
    sim = SimulationConfig.model_validate(data.get("simulation", {}))
    zone = str(data["gateway"].get("timezone", "Europe/Paris"))
    rng = random.Random(sim.seed)
    devices: list[Simulated] = []
    radios: dict[int, list[tuple[str, dict[str, Any], BleScenario, random.Random]]] = {}
    modbus: list[tuple[str, dict[str, Any], ModbusScenario, random.Random]] = []
    bench = _bench(sim.bench, zone, rng, devices)
    for device_id, scenario in sim.devices.items():
        device_rng = random.Random(rng.random())
        if isinstance(scenario, TonometerScenario):
            device = _device(data, device_id, "ct80")
            link = _link_path(device["transport"])
            devices.append(SimulatedCt80(device_id, link, scenario, ledger, zone, device_rng))
        elif isinstance(scenario, RefractorScenario):
            link = _link_path(_device(data, device_id, "refractor")["transport"])
            devices.append(SimulatedRefractor(device_id, link, scenario, ledger, zone, device_rng))
        elif isinstance(scenario, RetinographScenario):
            device = _device(data, device_id, "retinograph")
            devices.append(SimulatedRetinograph(device_id, device, scenario, ledger, device_rng))
        elif isinstance(scenario, NibpScenario | AirpuffScenario):
            teed = sim.bench is not None and device_id in sim.bench.devices
            devices.append(
                _raw(data, device_id, scenario, ledger, zone, device_rng, bench if teed else None)
            )
        elif isinstance(scenario, ModbusScenario):
            modbus.append((device_id, _device(data, device_id, "modbus"), scenario, device_rng))
        else:
            device = _device(data, device_id, "ble")
            port = _radio_port(device_id, str(device.get("adapter", "")))
            radios.setdefault(port, []).append((device_id, device, scenario, device_rng))
    if radios:
        devices += await _start_radios(radios, ledger, zone, stack)
    if modbus:
        devices += await _start_modbus(modbus, stack)
    return devices


async def _start_modbus(
    members: list[tuple[str, dict[str, Any], ModbusScenario, random.Random]],
    stack: contextlib.AsyncExitStack,
) -> list[Simulated]:
    """Modbus lines and servers (simulators/modbus/simulated.py): pymodbus loads only here."""
    from simulators.modbus.simulated import ModbusMember, start_modbus

    started = await start_modbus([ModbusMember(*member) for member in members], stack)
    return list(started)


def _bench(
    scenario: BenchScenario | None, zone: str, rng: random.Random, devices: list[Simulated]
) -> PneumaticBench | None:
    """The calibration bench's circuit and its reference controller (added to ``devices``)."""
    if scenario is None:
        return None
    from zoneinfo import ZoneInfo

    from simulators.manometer import SimulatedManometer

    bench = scenario.bench(seed=rng.randrange(2**31))
    today = datetime.now(ZoneInfo(zone)).date()
    link = _link_path(scenario.reference)
    devices.append(
        SimulatedManometer.from_scenario(
            link, bench, scenario, today=today, seed=rng.randrange(2**31)
        )
    )
    log.info("simulated bench reference=%s devices=%s", link, scenario.devices)
    return bench


def _raw(
    data: dict[str, Any],
    device_id: str,
    scenario: NibpScenario | AirpuffScenario,
    ledger: Ledger,
    zone: str,
    rng: random.Random,
    bench: PneumaticBench | None = None,
) -> Simulated:
    """A raw-signal front-end fed by the physiological generators (loaded only when used)."""
    from simulators.waveforms import ScreeningEyes, screening_bp

    device = _device(data, device_id, scenario.kind)
    link = _link_path(device["transport"])
    if isinstance(scenario, NibpScenario):
        return SimulatedNibp(device_id, link, scenario, ledger, zone, rng, screening_bp, bench)
    return SimulatedAirpuff(device_id, link, scenario, ledger, zone, rng, ScreeningEyes())


async def _start_radios(
    radios: dict[int, list[tuple[str, dict[str, Any], BleScenario, random.Random]]],
    ledger: Ledger,
    zone: str,
    stack: contextlib.AsyncExitStack,
) -> list[Simulated]:
    # imported here: Bumble is loaded only when a BLE device is simulated
    from zoneinfo import ZoneInfo

    from simulators.ble.device import SimulatedBleDevice
    from simulators.ble.link import VirtualRadio

    out: list[Simulated] = []
    for port, members in radios.items():
        radio = await stack.enter_async_context(VirtualRadio(peripherals=len(members), port=port))
        for index, (device_id, device, scenario, device_rng) in enumerate(members):
            out.append(
                SimulatedBleDevice(
                    device_id,
                    str(device["profile"]),
                    str(device["address"]),
                    radio.hci(index),
                    scenario,
                    ledger,
                    ZoneInfo(zone),
                    device_rng,
                )
            )
        log.info("simulated radio port=%d devices=%s", port, [m[0] for m in members])
    return out


async def run(data: dict[str, Any], ledger_path: Path, duration: float | None) -> int:
    sim = SimulationConfig.model_validate(data.get("simulation", {}))
    ledger = Ledger(ledger_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        devices = await build(data, ledger, stack)
        tasks = [asyncio.create_task(d.run(), name=d.device_id) for d in devices]
        log.info("simulation started devices=%s ledger=%s",
                 [d.device_id for d in devices], ledger_path)  # fmt: skip
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                await stop.wait()
        for d in devices:
            d.stop_producing()
        log.info("simulation draining timeout=%.0fs", sim.drain_timeout)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(sim.drain_timeout):
                # polled: the devices' counters change in protocol code with no event to await
                while any(d.undelivered for d in devices):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
        await asyncio.wait(tasks, timeout=2)  # let finished devices close their ports
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    ledger.close()
    for d in devices:
        log.info("simulation device=%s produced=%d undelivered=%d",
                 d.device_id, d.produced, d.undelivered)  # fmt: skip
    return 0 if all(d.undelivered == 0 for d in devices) else 3


def main(data: dict[str, Any], ledger_path: Path, duration: float | None) -> int:
    return asyncio.run(run(data, ledger_path, duration))
