"""The simulated autorefractor on a real pty, read by the production driver into a real outbox.

The simulator (simulators/refractor.py) sends one block per exam through the production codec
with its faults on: line noise, a garbled field under a valid checksum, an eye not measured, a
value the device doubts, an implausible sphere. A small supervisor loop (reconnect on
TransientDeviceError, commit then acknowledge, as edge/supervise.py does) reads it over a
``serial://`` transport and commits each delivery with the daemon's :class:`Ingest`. Every value
in the simulator's ledger must end up published (component for component, at its device time)
or, when implausible, quarantined - never both, never lost, never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.devices.refractor import RefractorDriver, RefractorStats
from drivers.errors import TransientDeviceError
from drivers.transport import open_transport
from edge.config import EdgeConfig, RefractorDevice
from edge.outbox import Outbox
from edge.pipeline.ingest import DeviceIdentity, Ingest
from simulators.ledger import Ledger, read_ledger
from simulators.refractor import RefractorScenario, SimulatedRefractor
from simulators.runner import build
from tests.contract import errors
from tests.helpers import TOPICS

ZONE = "Europe/Paris"
GUARD = 20.0  # seconds before a hung test fails (a hang guard, not a timing assertion)
EXAMS = 14


async def _gateway(url: str, ingest: Ingest, stats: RefractorStats) -> None:
    identity = DeviceIdentity("refr-1", "ARK-SN-7")
    while True:
        transport = open_transport(url)
        try:
            await transport.open()
            async for delivery in RefractorDriver(transport, "refr-1", stats=stats).deliveries():
                ingest.commit(identity, delivery)
                await delivery.acknowledge()  # only after the commit
        except TransientDeviceError:
            await asyncio.sleep(0.05)
        finally:
            await transport.close()


def _published(box: Outbox) -> Counter[tuple[str, float, datetime]]:
    """(code, value, instant) of every published value: panel components, or the value."""
    out: Counter[tuple[str, float, datetime]] = Counter()
    for row in box.rows():
        if row.kind != "clinical":
            continue
        obs: dict[str, Any] = json.loads(row.payload)
        assert errors("Observation", obs) == [], obs
        at = datetime.fromisoformat(obs["effectiveDateTime"])
        parts = obs.get("component", [obs])
        for part in parts:
            code = part["code"]["coding"][0]["code"]
            out[(code, round(part["valueQuantity"]["value"], 2), at)] += 1
    return out


def test_every_value_is_published_or_quarantined_through_line_faults(tmp_path: Path) -> None:
    link = tmp_path / "dev" / "refr-1"
    scenario = RefractorScenario(
        patients_per_hour=36000,
        noise_rate=0.15,
        malformed_rate=0.15,
        missing_eye_rate=0.25,
        unreliable_rate=0.2,
        out_of_range_rate=0.15,
        ack_timeout=0.5,
    )
    ledger = Ledger(tmp_path / "ledger.jsonl")
    box = Outbox(tmp_path / "outbox.sqlite")
    stats = RefractorStats()

    async def main() -> SimulatedRefractor:
        sim = SimulatedRefractor("refr-1", link, scenario, ledger, ZONE, random.Random(11))
        ingest = Ingest(box, TOPICS, ZONE)
        device = asyncio.create_task(sim.run())
        gateway = asyncio.create_task(_gateway(f"serial://{link}", ingest, stats))
        async with asyncio.timeout(GUARD):
            while sim.exams < EXAMS:
                await asyncio.sleep(0.01)
            sim.stop_producing()
            await device  # returns once every block was acknowledged
        gateway.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gateway
        return sim

    sim = asyncio.run(main())
    ledger.close()
    assert sim.undelivered == 0
    assert sim.acked == sim.exams >= EXAMS
    lines = read_ledger(tmp_path / "ledger.jsonl")
    expected = Counter(
        (line["code"], round(line["value"], 2), datetime.fromisoformat(line["time"]))
        for line in lines
        if line["status"] != "implausible"
    )
    assert _published(box) == expected
    implausible = {
        (line["quantity"].rsplit(".", 1)[0], line["time"])
        for line in lines
        if line["status"] == "implausible"
    }
    held = box.quarantined(limit=1000)
    assert len(held) == len(implausible) > 0
    assert {q.quantity for q in held} <= {"refraction.right", "refraction.left"}
    assert all("outside the plausible range -30-30 D" in q.reason for q in held)
    # the faults were exercised, and each cost a NAK and a resend, not a block
    assert sim.noisy_frames > 0
    assert sim.malformed_frames > 0
    assert stats.garbled_frames >= sim.malformed_frames
    assert stats.records >= sim.exams
    assert any(line["status"] == "unreliable" for line in lines)
    sides: dict[str, set[str]] = {}
    for line in lines:
        if line["quantity"] != "pd":
            sides.setdefault(line["exam"], set()).add(line["quantity"].split(".")[1])
    assert {"right"} in sides.values() or {"left"} in sides.values(), "an eye went missing"


def test_the_config_kind_and_santebus_simulate_start_the_simulated_refractor(
    tmp_path: Path,
) -> None:
    data: dict[str, Any] = {
        "gateway": {"bus_id": "bus-it", "state_dir": str(tmp_path), "timezone": ZONE},
        "mqtt": {"host": "127.0.0.1", "tls": False},
        "devices": {
            "refr-1": {
                "kind": "refractor",
                "transport": f"serial://{tmp_path}/dev/refr-1?baudrate=9600",
                "serial_number": "ARK-SN-7",
            }
        },
        "stations": {"eye-1": {"devices": ["refr-1"]}},
        "simulation": {"devices": {"refr-1": {"kind": "refractor", "noise_rate": 0.1}}},
    }
    config = EdgeConfig.model_validate(data)
    assert isinstance(config.devices["refr-1"], RefractorDevice)
    assert config.station_of("refr-1") == "eye-1"

    async def main() -> list[Any]:
        ledger = Ledger(tmp_path / "ledger.jsonl")
        async with contextlib.AsyncExitStack() as stack:
            devices = await build(data, ledger, stack)
        ledger.close()
        return devices

    (device,) = asyncio.run(main())
    assert isinstance(device, SimulatedRefractor)
    assert device.scenario.noise_rate == 0.1
    assert device.port.link == tmp_path / "dev" / "refr-1"
