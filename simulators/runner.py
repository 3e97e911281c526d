"""``santebus simulate``: run the simulated devices a gateway config declares.

Each device's pty symlink is the path of its ``serial://`` transport URL, so the daemon reads
the very same config. On SIGTERM/SIGINT or after ``--duration`` the devices stop producing and
get ``drain_timeout`` seconds to deliver what they hold; the exit code is 0 when everything was
acknowledged, 3 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from simulators.ct80 import SimulatedCt80
from simulators.ledger import Ledger
from simulators.scenario import SimulationConfig

log = logging.getLogger(__name__)


def _link_path(transport_url: str) -> Path:
    parts = urlsplit(transport_url.removeprefix("spy+"))
    if parts.scheme != "serial" or not parts.path:
        raise ValueError(f"simulated devices need a serial:// transport, got {transport_url!r}")
    return Path(parts.path)


def build(data: dict[str, Any], ledger: Ledger) -> list[SimulatedCt80]:
    sim = SimulationConfig.model_validate(data.get("simulation", {}))
    zone = str(data["gateway"].get("timezone", "Europe/Paris"))
    rng = random.Random(sim.seed)
    devices = []
    for device_id, scenario in sim.devices.items():
        device = data.get("devices", {}).get(device_id)
        if device is None:
            raise ValueError(f"simulation.devices.{device_id}: no such device in [devices]")
        devices.append(
            SimulatedCt80(
                device_id,
                _link_path(device["transport"]),
                scenario,
                ledger,
                zone,
                random.Random(rng.random()),
            )
        )
    return devices


async def run(data: dict[str, Any], ledger_path: Path, duration: float | None) -> int:
    sim = SimulationConfig.model_validate(data.get("simulation", {}))
    ledger = Ledger(ledger_path)
    devices = build(data, ledger)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(d.run(), name=d.device_id) for d in devices]
    log.info("simulation started devices=%s ledger=%s", [d.device_id for d in devices], ledger_path)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(duration):
            await stop.wait()
    for d in devices:
        d.stop_producing()
    log.info("simulation draining timeout=%.0fs", sim.drain_timeout)
    _, late = await asyncio.wait(tasks, timeout=sim.drain_timeout)
    for task in late:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    ledger.close()
    undelivered = sum(len(d.pending) for d in devices)
    for d in devices:
        log.info(
            "simulation device=%s produced=%d records_acked=%d frames_sent=%d undelivered=%d",
            d.device_id,
            d.produced,
            d.acked,
            d.sent_frames,
            len(d.pending),
        )
    return 0 if undelivered == 0 else 3


def main(data: dict[str, Any], ledger_path: Path, duration: float | None) -> int:
    return asyncio.run(run(data, ledger_path, duration))
