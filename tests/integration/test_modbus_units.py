"""The daemon's Modbus units (edge/vehicle/modbus.py) on a simulated RS-485 line.

Real parts: the pty line with its faults, the pymodbus RTU server built from the bundled maps,
the production SharedLine, Poller, TelemetryBuffer, Events and outbox. Proven here: exception
responses and CRC errors surface as counted events (count since the last event, total), a
unit that goes silent is one ``modbus.unit_silent`` event and a state, then
``modbus.unit_back``; a NaN from a faulty probe is counted, never published, and the good values
around it still are; telemetry packs carry the simulated values.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

from drivers.modbus.maps import load_map
from edge.config import EdgeConfig
from edge.events import Events
from edge.outbox import Outbox
from edge.pipeline.telemetry import TelemetryBuffer
from edge.publish.topics import Topics
from edge.supervise import DeviceHealth
from edge.vehicle.climate import Climate
from edge.vehicle.modbus import ModbusUnits
from simulators.modbus.dynamics import cabin_climate, scripted
from simulators.modbus.rtu_line import RtuLine
from simulators.modbus.server import ModbusSimServer, SimSlave

TOPICS = Topics("bus-it")


def _config(link: Path) -> EdgeConfig:
    line = f"modbus-rtu://{link}?baudrate=19200"
    common = {"kind": "modbus", "transport": line, "period_s": 0.2, "timeout_s": 0.2,
              "retries": 0, "backoff_max_s": 0.4}  # fmt: skip
    return EdgeConfig.model_validate(
        {
            "gateway": {"bus_id": "bus-it", "state_dir": str(link.parent)},
            "mqtt": {"host": "127.0.0.1", "tls": False},
            "devices": {
                "cabin": {**common, "unit": 1, "map": "xy-md02", "role": "climate"},
                "busy": {**common, "unit": 2, "map": "xy-md02"},
                "noisy": {**common, "unit": 3, "map": "xy-md02"},
                "fridge": {**common, "unit": 4, "map": "fridge-logger", "role": "cold-chain"},
            },
        }
    )


async def _run(tmp_path: Path) -> tuple[Outbox, ModbusUnits, dict[str, DeviceHealth], Climate]:
    link = tmp_path / "rs485"
    xy, logger = load_map("xy-md02"), load_map("fridge-logger")
    nan_probe = scripted({
        "temperature": lambda t: math.nan if int(t * 5) % 2 else 5.0,
        "door": lambda t: 0.0, "alarm": lambda t: 0.0,
        "high_limit": lambda t: 8.0, "low_limit": lambda t: 2.0,
    })  # fmt: skip
    slaves = [
        SimSlave(1, xy, cabin_climate(seed=1)),
        SimSlave(2, xy, cabin_climate(seed=2), exception_rate=1.0),
        SimSlave(3, xy, cabin_climate(seed=3)),
        SimSlave(4, logger, nan_probe),
    ]
    box = Outbox(tmp_path / "outbox.sqlite")
    events = Events(box, TOPICS)
    telemetry = TelemetryBuffer(box, TOPICS, flush_every=0.5)
    health: dict[str, DeviceHealth] = {}
    climate = Climate()
    stops: list[str] = []
    async with RtuLine(link, baudrate=19200) as line, await ModbusSimServer.rtu(line, slaves):
        line.garble[3] = 1.0
        units = ModbusUnits(
            _config(link), telemetry, events, climate, stops.append, health, event_every=1.0
        )
        task = asyncio.create_task(units.run())
        flusher = asyncio.create_task(telemetry.run())
        await asyncio.sleep(3.0)
        line.silent.add(1)
        await asyncio.sleep(2.0)
        line.silent.discard(1)
        await asyncio.sleep(1.5)
        task.cancel()
        flusher.cancel()
        await asyncio.gather(task, flusher, return_exceptions=True)
    assert stops == []
    return box, units, health, climate


def _events(box: Outbox) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in box.rows() if r.kind == "event"]


def test_modbus_failures_are_counted_events_and_states_never_the_end(tmp_path: Path) -> None:
    box, units, health, climate = asyncio.run(_run(tmp_path))
    events = _events(box)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_type.setdefault(e["type"], []).append(e)

    # exception responses (server device busy on every read): counted events, rate-limited
    busy = [e for e in by_type["modbus.exception"] if e["device"] == "busy"]
    assert len(busy) >= 2  # the first at once, then one per second
    assert busy[0]["detail"]["code"] == 6
    assert busy[0]["detail"]["count"] == 1
    assert sum(e["detail"]["count"] for e in busy) <= units.units["busy"].totals["modbus.exception"]
    assert busy[-1]["detail"]["total"] == sum(e["detail"]["count"] for e in busy)
    assert health["busy"].records == 0

    # CRC garbage: frame-error events, counted the same way
    noisy = by_type["modbus.frame_error"]
    assert {e["device"] for e in noisy} == {"noisy"}
    assert noisy[-1]["detail"]["total"] >= 5
    # the garbled bytes themselves: unit 3's answer to function 4 (read input registers)
    assert noisy[0]["detail"]["error"].startswith("unit 3: invalid response (9 bytes 03 04 04 ")
    assert units.pollers["noisy"].stats.frame_errors >= noisy[-1]["detail"]["total"]

    # the cabin sensor went silent for 2 s: one event and a state, then it came back
    cabin_silent = [e for e in by_type["modbus.unit_silent"] if e["device"] == "cabin"]
    cabin_back = [e for e in by_type["modbus.unit_back"] if e["device"] == "cabin"]
    assert len(cabin_silent) == 1
    assert len(cabin_back) == 1
    assert cabin_back[0]["detail"]["silent_for_s"] > 0
    assert health["cabin"].state == "connected"
    assert units.pollers["cabin"].stats.good > 10  # polled before and after

    # NaN from the fridge probe: counted, never published; its other values still are
    assert by_type["modbus.bad_value"][0]["device"] == "fridge"
    packs = [json.loads(r.payload) for r in box.rows() if r.kind == "telemetry"]
    fridge_records = [rec for pack in packs if pack[0]["bn"].endswith(":fridge:") for rec in pack]
    temps = [r["v"] for r in fridge_records if r["n"] == "temperature"]
    assert temps
    assert set(temps) == {5.0}
    assert any(r["n"] == "door" for r in fridge_records)

    # the climate unit fed the gate's history with the simulated values
    cabin = [rec for pack in packs if pack[0]["bn"].endswith(":cabin:") for rec in pack]
    assert {r["u"] for r in cabin} == {"Cel", "%RH"}
    last = climate.at(max(r.get("bt", 0) for r in cabin) + 1)
    assert last is not None
    assert 10 < last.temperature < 30
