"""The vehicle's Modbus roles: cold-chain excursions, battery watch, operating-condition gate,
and the config of Modbus devices (each fault located)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from drivers.readings import DeviceReading
from edge.cli import main
from edge.config_modbus import ColdChainSettings, OperatingConditions, PowerSettings
from edge.events import Events
from edge.outbox import Outbox
from edge.publish.topics import Topics
from edge.vehicle.climate import Climate, ClimateSample, OperatingGate
from edge.vehicle.coldchain import ColdChain
from edge.vehicle.power import PowerWatch

T0 = datetime(2026, 7, 14, 13, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"


def _events(box: Outbox) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in box.rows() if r.kind == "event"]


def test_a_cold_chain_excursion_is_one_event_pair_with_start_duration_and_peak(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    chain = ColdChain("fridge", ColdChainSettings(), Events(box, Topics("bus-1")))
    # 5 C, door opened at minute 2: 8.4, 9.6, 11.2 (peak), back to 7.9 (inside, but within the
    # hysteresis of 8.0 - 0.3: still the same excursion), 8.1 (chatter), then 7.5: ended
    temps = [5.0, 5.2, 8.4, 9.6, 11.2, 7.9, 8.1, 7.5, 6.0]
    for minute, t in enumerate(temps):
        chain.update(t, T0 + timedelta(minutes=minute), logger_alarm=t > 8.0)
    started, ended = _events(box)
    assert started["type"] == "coldchain.excursion_started"
    assert started["detail"] == {
        "start": "2026-07-14T13:02:00+00:00", "side": "high", "temperature_c": 8.4,
        "limit_c": 8.0,
    }  # fmt: skip
    assert ended["type"] == "coldchain.excursion_ended"
    assert ended["detail"] == {
        "start": "2026-07-14T13:02:00+00:00", "end": "2026-07-14T13:07:00+00:00",
        "duration_s": 300.0, "side": "high", "peak_c": 11.2, "limit_c": 8.0,
        "logger_alarm": True,
    }  # fmt: skip
    chain.update(1.2, T0 + timedelta(minutes=20))  # a freezing excursion is one too
    assert _events(box)[-1]["detail"]["side"] == "low"
    assert chain.excursions == 2


def _power(tmp_path: Path) -> tuple[PowerWatch, Outbox, list[str]]:
    box = Outbox(tmp_path / "o.sqlite")
    stops: list[str] = []
    watch = PowerWatch("power", PowerSettings(), Events(box, Topics("bus-1")), stops.append)
    return watch, box, stops


def test_low_battery_warns_once_then_stops_after_confirmed_samples(tmp_path: Path) -> None:
    watch, box, stops = _power(tmp_path)
    for soc in (40, 31, 30, 29, 25, 20, 16):
        watch.update(soc, 12.2, 240)
    assert [e["type"] for e in _events(box)] == ["power.battery_low"]
    assert stops == []
    watch.update(15, 12.0, 240)
    watch.update(14, 12.0, 240)
    assert stops == []  # two low samples: could be a glitch
    watch.update(14, 11.9, 240)
    assert [e["type"] for e in _events(box)] == ["power.battery_low", "power.shutdown"]
    assert stops == ["battery low: 14 % at 11.90 V, off shore power"]
    watch.update(13, 11.9, 240)
    assert len(stops) == 1  # asked once


def test_low_voltage_stops_too_and_a_glitch_or_shore_power_does_not(tmp_path: Path) -> None:
    watch, box, stops = _power(tmp_path)
    watch.update(60, 11.5, 240)
    watch.update(60, 12.6, 240)  # one sag under load: reset
    watch.update(60, 11.5, 240)
    watch.update(60, 11.5, 240)
    assert stops == []
    for _ in range(5):
        watch.update(10, 11.0, 3)  # plugged in at the depot: charging, nothing to stop
    assert stops == []
    assert [e["type"] for e in _events(box)] == ["power.ac_connected"]
    for _ in range(3):
        watch.update(60, 11.4, 240)
    assert stops == ["battery low: 60 % at 11.40 V, off shore power"]


def _reading() -> DeviceReading:
    return DeviceReading("iop.right", 15.0, "mmHg", datetime(2026, 7, 14, 15, 0), "r1")


def test_the_gate_judges_a_reading_against_the_climate_when_it_was_taken() -> None:
    climate = Climate(resolution=10.0)
    for minute in range(0, 60):
        temp = 25.0 if minute < 30 else 43.0  # the bus parked in the sun at half past
        climate.record(ClimateSample((T0 + timedelta(minutes=minute)).timestamp(), temp, 50, "c"))
    wanted = OperatingConditions(temperature=(10, 40), humidity=(30, 90))
    gate = OperatingGate(climate, {"tono-1": wanted})
    assert gate("tono-1", _reading(), T0 + timedelta(minutes=10)) is None
    flag = gate("tono-1", _reading(), T0 + timedelta(minutes=40))
    assert flag == (
        "Taken outside the device's operating conditions: cabin temperature 43.0 Cel"
        " (allowed 10-40 Cel)."
    )
    assert gate("bpm-1", _reading(), T0 + timedelta(minutes=40)) is None  # no conditions
    unknown = gate("tono-1", _reading(), T0 + timedelta(hours=3))
    assert unknown is not None
    assert unknown.startswith("Operating conditions unknown")


def test_an_hour_of_two_second_samples_keeps_a_history_at_the_resolution() -> None:
    climate = Climate(resolution=10.0)
    t0 = T0.timestamp()
    for k in range(1800):  # one hour, every 2 s, 20 C rising 1 C every 6 minutes
        climate.record(ClimateSample(t0 + 2 * k, 20 + k / 180, 50, "cabin"))
    for minutes in (0, 10, 30, 59):
        sample = climate.at(t0 + 60 * minutes)
        assert sample is not None
        assert abs(sample.at - (t0 + 60 * minutes)) <= 10
        assert sample.temperature == pytest.approx(20 + minutes / 6, abs=0.1)


def test_in_range_readings_stay_final_and_only_flagged_ones_raise_an_event(
    tmp_path: Path,
) -> None:
    from drivers.readings import Delivery
    from edge.pipeline.ingest import DeviceIdentity, Ingest

    box = Outbox(tmp_path / "o.sqlite")
    topics = Topics("bus-1")
    climate = Climate()
    zone = ZoneInfo("Europe/Paris")
    measured = datetime(2026, 7, 14, 15, 0)  # the device's naive local clock
    at = measured.replace(tzinfo=zone).timestamp()
    ingest = Ingest(box, topics, "Europe/Paris", events=Events(box, topics))
    ingest.gates.append(
        OperatingGate(climate, {"tono-1": OperatingConditions(temperature=(10, 40))})
    )

    async def ack() -> None:
        return None

    def deliver(temperature: float, key: str) -> dict[str, Any]:
        climate.record(ClimateSample(at + len(key), temperature, 50, "cabin"))
        before = {r.msg_id for r in box.rows()}
        reading = DeviceReading("iop.right", 15.0, "mmHg", measured, key)
        ingest.commit(DeviceIdentity("tono-1", "SN1"), Delivery((reading,), "CT-80", ack))
        (row,) = [r for r in box.rows() if r.kind == "clinical" and r.msg_id not in before]
        return dict(json.loads(row.payload))

    inside = deliver(25.0, "r")
    assert inside["status"] == "final"
    assert "note" not in inside
    assert _events(box) == []
    outside = deliver(42.0, "rec-2")  # a newer climate sample (the gate takes the nearest)
    assert outside["status"] == "preliminary"
    (event,) = _events(box)
    assert event["type"] == "reading.out_of_conditions"
    assert event["detail"]["reason"] == outside["note"][0]["text"]


def test_climate_keeps_one_sample_per_resolution_and_stays_ordered() -> None:
    climate = Climate(keep=10, resolution=10.0)
    t = T0.timestamp()
    climate.record(ClimateSample(t, 20, 50, "a"))
    climate.record(ClimateSample(t + 2, 21, 50, "a"))  # replaces: within 10 s
    climate.record(ClimateSample(t + 1, 99, 50, "b"))  # late: ignored
    sample = climate.at(t)
    assert sample is not None
    assert sample.temperature == 21


MODBUS = """
[devices.cabin]
kind = "modbus"
transport = "modbus-rtu:///dev/santebus/rs485?baudrate=9600&parity=E"
unit = 1
map = "xy-md02"
role = "climate"
"""


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('map = "xy-md99"', "unknown register map 'xy-md99'; bundled: fridge-logger,"),
        ('transport = "modbus-udp://x"', "unsupported Modbus URL 'modbus-udp://x'"),
        ('role = "power"', "a power device needs points with quantity ['battery_soc',"),
        ("period_s = 0", "period_s: Input should be greater than 0"),
        (
            'points = [{name = "t", table = "input", address = 0, type = "bool"}]',
            "give either map (a bundled register map) or points, not both",
        ),
    ],
)
def test_modbus_device_faults_are_located(tmp_path: Path, snippet: str, message: str) -> None:
    key = snippet.split(" = ", 1)[0]
    body = (
        "\n".join(line for line in MODBUS.splitlines() if not line.startswith(f"{key} = "))
        + f"\n{snippet}\n"
    )
    cfg = tmp_path / "bus.toml"
    cfg.write_text(EXAMPLE.read_text() + body)
    result = CliRunner().invoke(main, ["check-config", str(cfg)])
    assert result.exit_code == 78
    assert f"{cfg}:" in result.output
    assert message in result.output


def test_inline_points_are_checked_point_by_point(tmp_path: Path) -> None:
    body = MODBUS.replace('map = "xy-md02"', "") + (
        'points = [{name = "temperature", table = "input", address = 1, type = "int16",'
        ' scale = 0.1, unit = "Cel"}, {name = "humidity", table = "coil", address = 2}]\n'
    )
    cfg = tmp_path / "bus.toml"
    cfg.write_text(EXAMPLE.read_text() + body)
    result = CliRunner().invoke(main, ["check-config", str(cfg)])
    assert result.exit_code == 78
    assert "point 'humidity': coils and discrete inputs are bool, registers not" in result.output
    point = '{name = "temperature", table = "input", %s, unit = "Cel"}'
    for fields, message in (
        ("address = 1.5", "point 'temperature': address must be an integer, got 1.5"),
        ('address = "0x01"', "point 'temperature': address must be an integer, got '0x01'"),
        ('address = 1, scale = "x10"', "point 'temperature': scale must be a number, got 'x10'"),
    ):
        cabin = MODBUS.replace('map = "xy-md02"', f"points = [{point % fields}]")
        cfg.write_text(EXAMPLE.read_text() + cabin.replace('role = "climate"', ""))
        result = CliRunner().invoke(main, ["check-config", str(cfg)])
        assert result.exit_code == 78, result.output
        assert message in result.output
