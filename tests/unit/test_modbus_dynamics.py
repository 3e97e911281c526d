"""The simulated Modbus units' value models, their scenario data, and the line's RTU framing.

The models are pure functions of time, so their physics is checked on dense samples: the
cabin's daily curve, the fridge's compressor band, door openings and alarm bits, the battery
on and off shore power.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from simulators.modbus import dynamics
from simulators.modbus.rtu_line import frame_length
from simulators.modbus.scenario import ModbusScenario
from simulators.scenario import SimulationConfig


def test_models_are_deterministic_per_seed() -> None:
    for make in (dynamics.cabin_climate, dynamics.fridge, dynamics.power):
        assert make(10.0, 7)(123.4) == make(10.0, 7)(123.4)
        assert make(10.0, 7)(123.4) != make(10.0, 8)(123.4)


def test_cabin_is_coolest_at_dawn_and_hottest_mid_afternoon() -> None:
    day = dynamics.cabin_climate(speed=3600.0, seed=1, start_hour=0.0)  # t in hours
    at = {hour: day(hour) for hour in range(24)}
    # the curve is flat at its ends: the noise may move the extremes by an hour
    assert min(at, key=lambda h: at[h]["temperature"]) in (5, 6, 7)
    assert max(at, key=lambda h: at[h]["temperature"]) in (14, 15, 16)
    assert at[6]["temperature"] == pytest.approx(14.0, abs=0.3)
    assert at[15]["temperature"] == pytest.approx(27.0, abs=0.3)
    assert at[6]["humidity"] > 60 > 40 > at[15]["humidity"]  # humidity moves the other way


def test_fridge_cycles_in_its_band_without_door_openings() -> None:
    cold = dynamics.fridge(speed=1.0, seed=2)
    samples = [cold(t) for t in range(0, 3 * 1200, 5)]
    temps = [s["temperature"] for s in samples]
    assert 2.9 < min(temps) < 3.2
    assert 6.8 < max(temps) < 7.1
    assert {s["door"] for s in samples} == {s["alarm"] for s in samples} == {0.0}


def test_fridge_door_opening_raises_an_excursion_alarm_then_recovers() -> None:
    model = dynamics.fridge(speed=1.0, seed=3, door_every_s=3600, door_open_s=120)
    samples = [(t, model(t)) for t in range(3600)]
    opened = [t for t, s in samples if s["door"] == 1.0]
    assert len(opened) == 120
    assert opened == list(range(opened[0], opened[0] + 120))  # one opening, in one piece
    peak = max(s["temperature"] for _, s in samples)
    assert 8.0 < peak < 12.0  # towards the cabin's air, not beyond it
    for _, s in samples:  # bit 0 exactly while above the high limit
        assert s["alarm"] == (1.0 if s["temperature"] > s["high_limit"] else 0.0)
    later = model(opened[-1] + 1500)  # recovered into the compressor's band
    assert later["temperature"] < 7.3
    assert later["alarm"] == 0.0


def test_fridge_low_limit_sets_alarm_bit_1() -> None:
    model = dynamics.fridge(seed=4, low_limit=5.0, high_limit=9.0)
    low = [s for s in (model(t) for t in range(1200)) if s["temperature"] < 5.0]
    assert low
    assert {s["alarm"] for s in low} == {2.0}


def test_battery_charges_on_shore_power_then_drains() -> None:
    bus = dynamics.power(speed=1.0, seed=5, soc_start=50, shore_power_until_s=3600)
    shore, away = bus(1800), bus(7200)
    assert shore["input_source"] == dynamics.SHORE_POWER
    assert shore["battery_current"] > 0
    assert bus(3500)["battery_soc"] > bus(100)["battery_soc"] > 50
    assert away["input_source"] == dynamics.NOT_CONNECTED
    assert away["battery_current"] < 0
    assert away["battery_soc"] == pytest.approx(50 + 15 - 8)  # +15 %/h charged, -8 %/h since
    assert shore["battery_voltage"] > away["battery_voltage"]


def test_battery_voltage_follows_the_state_of_charge() -> None:
    volts = [
        dynamics.power(seed=6, soc_start=soc, drain_pct_per_hour=0)(0)["battery_voltage"]
        for soc in (0, 50, 100)
    ]
    assert volts[0] == pytest.approx(11.8, abs=0.05)
    assert volts[2] == pytest.approx(13.2, abs=0.05)
    assert volts == sorted(volts)
    assert dynamics.power(seed=6, soc_start=0)(3600)["battery_soc"] == 0.0  # never below empty


def test_scripted_excursion_has_a_known_start_duration_and_peak() -> None:
    probe = dynamics.scripted(
        {"temperature": dynamics.excursion(4.0, 11.0, start=60, duration=30, ramp=10)}, speed=2
    )
    assert probe(29.9) == {"temperature": 4.0}  # simulated 59.8 s
    assert probe(32.5)["temperature"] == pytest.approx(7.5)  # half-way up the ramp
    assert probe(37.5) == {"temperature": 11.0}
    assert probe(45.0) == {"temperature": 4.0}  # simulated 90 s: over
    assert dynamics.excursion(4.0, 11.0, start=0, duration=5)(0) == 11.0  # a step


@pytest.mark.parametrize(
    ("frame", "response", "length"),
    [
        ("01 04 00 01 00 02 20 0b", False, 8),  # read input registers request
        ("01 10 00 10 00 02 04 00 50 00 14 ff ff", False, 13),  # write multiple registers
        ("01 10 00 10 00 02", False, None),  # byte count not here yet
        ("01 04 04 00 e2 01 e2 da a8", True, 9),  # read response with 4 data bytes
        ("01 84 02 c2 c1", True, 5),  # exception response
        ("01 06 00 10 00 50 88 23", True, 8),  # write single register echo
        ("01 2b 0e 01 00", True, None),  # a function the relay cannot size
        ("01", True, None),
    ],
)
def test_rtu_frame_lengths(frame: str, response: bool, length: int | None) -> None:
    assert frame_length(bytes.fromhex(frame), response) == length


def test_scenario_is_strict() -> None:
    assert ModbusScenario(model="fridge").points == {
        "temperature", "door", "alarm", "high_limit", "low_limit"
    }  # fmt: skip
    with pytest.raises(ValidationError, match="extra"):
        ModbusScenario.model_validate({"model": "cabin", "colour": "red"})
    with pytest.raises(ValidationError, match="low_limit must be below high_limit"):
        ModbusScenario(model="fridge", low_limit=9.0)
    with pytest.raises(ValidationError, match="door_open_s must be shorter"):
        ModbusScenario(model="fridge", door_every_s=30, door_open_s=45)
    with pytest.raises(ValidationError, match="silent_for needs silent_from"):
        ModbusScenario(model="cabin", silent_for=5)


def test_simulation_config_routes_kind_modbus() -> None:
    sim = SimulationConfig.model_validate(
        {"devices": {"gx": {"kind": "modbus", "model": "power", "soc_start": 40}}}
    )
    assert sim.devices["gx"] == ModbusScenario(model="power", soc_start=40)
