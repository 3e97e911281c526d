"""Issue #8: a Modbus temperature sensor verified at two points against a reference thermometer.

Real parts: the gateway config (TOML, as the CLI loads it), the simulators' own build of it
(``santebus simulate``'s runner: the pty RS-485 line and the pymodbus RTU server serving the
xy-md02 map), the production Modbus client, the procedure and the record. The simulated
sensor is on the bench (``model = "bath"``): in an ice bath at 0 Cel, then moved to a 25 Cel
bath (a short time constant), reading ``sensor_offset_c`` high; the reference thermometer's
readings are scripted (``manual://?values=0.0,25.0``), equal to the baths'. A sensor 0.2 Cel
high passes the 0.5 Cel tolerance; 1.0 Cel high fails it; a sensor that is never moved to the
second bath makes the verification stop with the reason, not record nonsense.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tomllib
from pathlib import Path

import pytest

from calibration.procedures.base import ProcedureAbortedError, ScriptedOperator
from calibration.records import CalibrationBook, CalibrationRecord
from calibration.report import render
from edge.calibrate_check import consistency
from edge.calibrate_more import VerifyOptions, run_thermometer
from edge.config_loader import load_config
from simulators import runner
from simulators.ledger import Ledger

CONFIG = """\
[gateway]
bus_id = "bus-cal-thermo"
state_dir = "{state}"
timezone = "Europe/Paris"

[mqtt]
host = "127.0.0.1"
tls = false

[devices.probe]
kind = "modbus"
transport = "modbus-rtu://{dev}/rs485?baudrate=19200"
unit = 1
map = "xy-md02"
role = "climate"
serial_number = "SIM-XYMD02-0001"
timeout_s = 0.3

[simulation]
seed = 4

[simulation.devices.probe]
kind = "modbus"
model = "bath"
bath_points = {points}
bath_every_s = 6.0
sensor_offset_c = {offset}
"""


async def _verify(
    tmp_path: Path, offset: float, points: str = "[0.0, 25.0]", settle_timeout: float = 60.0
) -> tuple[CalibrationRecord, list[str]]:
    path = tmp_path / "bus.toml"
    text = CONFIG.format(state=tmp_path / "state", dev=tmp_path / "dev", offset=offset,
                         points=points)  # fmt: skip
    path.write_text(text)
    config = load_config(path)
    op = ScriptedOperator()
    options = VerifyOptions("tech-it", "REF-THERMO-9", "manual://?values=0.0,25.0")
    options = dataclasses.replace(
        options,
        thermometer_plan=dataclasses.replace(
            options.thermometer_plan, settle_timeout=settle_timeout
        ),
    )
    ledger = Ledger(tmp_path / "ledger.jsonl")
    try:
        async with contextlib.AsyncExitStack() as stack:
            await runner.build(tomllib.loads(text), ledger, stack)  # the simulated unit
            record = await asyncio.wait_for(run_thermometer(config, "probe", options, op), 90)
    finally:
        ledger.close()
    return record, op.said


def test_a_sensor_within_tolerance_passes_its_two_point_check(tmp_path: Path) -> None:
    record, _ = asyncio.run(_verify(tmp_path, offset=0.2))
    assert (record.kind, record.result, record.model) == ("verification", "pass", None)
    assert (record.procedure, record.unit, record.tolerance) == ("modbus-temperature-2pt",
                                                                 "Cel", 0.5)  # fmt: skip
    assert (record.device_serial, record.reference_id) == ("SIM-XYMD02-0001", "REF-THERMO-9")
    assert record.id.startswith("VER-SIM-XYMD02-0001-")
    assert [p.reference for p in record.points] == [0.0, 25.0]
    for p in record.points:
        # the offset, give or take the register's 0.1 Cel steps, noise and the probe's lag
        assert p.error == pytest.approx(0.2, abs=0.2), record.points
    assert [c.name for c in record.checks] == ["stability"]
    assert record.checks[0].passed
    # stored, re-read (sha256), consistent, and its report renders
    book = CalibrationBook(tmp_path / "state" / "calibration")
    saved = book.add(record)
    stored = book.get(record.id)
    assert consistency(stored) == []
    assert render(stored, saved.with_suffix(".png")).stat().st_size > 20_000


def test_a_sensor_one_degree_high_fails_its_two_point_check(tmp_path: Path) -> None:
    record, _ = asyncio.run(_verify(tmp_path, offset=1.0))
    assert record.result == "fail"
    assert all(p.error == pytest.approx(1.0, abs=0.2) for p in record.points), record.points
    assert record.max_error is not None
    assert record.max_error > 0.5


def test_a_sensor_left_in_the_first_bath_stops_the_check_with_the_reason(
    tmp_path: Path,
) -> None:
    with pytest.raises(ProcedureAbortedError, match=r"point 2: the sensor still reads 0\.\d+ °C"):
        asyncio.run(_verify(tmp_path, offset=0.2, points="[0.0]", settle_timeout=3.0))
