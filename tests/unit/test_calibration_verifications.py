"""The pure parts of issue #8's verifications: the tonometer on model eyes, the Modbus
temperature sensor's two-point check, their verdict and record, the bench simulators' models,
and the CLI's refusals (all before any hardware is touched)."""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from calibration.procedures import thermometer, tonometer
from calibration.procedures.base import (
    Check,
    Collected,
    PointReading,
    ProcedureAbortedError,
    ScriptedOperator,
)
from calibration.records import CalibrationBook, CalibrationRecord
from edge.calibrate_check import consistency
from edge.calibrate_more import PromptedReference, reference_for, verification_record
from edge.cli import main
from edge.config_modbus import ModbusDevice
from simulators.ct80 import SimulatedCt80
from simulators.ledger import Ledger
from simulators.modbus.dynamics import bath
from simulators.modbus.scenario import ModbusScenario
from simulators.modbus.simulated import model_values
from simulators.scenario import TonometerScenario

# --------------------------------------------------------------------------- manual:// URLs


@pytest.mark.parametrize(
    ("url", "values"),
    [
        ("manual://", None),
        ("manual:", None),
        ("manual:///", None),
        ("manual://?values=0.05,25.10", (0.05, 25.1)),
        ("manual://?values=-0.2,37", (-0.2, 37.0)),
        ("manual:///?values=4", (4.0,)),
    ],
)
def test_manual_urls_give_the_scripted_values_or_none_for_a_prompt(
    url: str, values: tuple[float, ...] | None
) -> None:
    assert thermometer.parse_manual_url(url) == values


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("serial:///dev/ttyUSB1", "manual:// or manual://"),
        ("manual://lab/thermometer", "no host or path"),
        ("manual://?values=0.1,warm", "numbers separated by commas"),
        ("manual://?values=", "numbers separated by commas"),
        ("manual://?values=nan,25", "finite"),
        ("manual://?values=1&values=2", "one values="),
        ("manual://?value=1,2", "one values="),
    ],
)
def test_other_reference_urls_are_refused_saying_why(url: str, match: str) -> None:
    with pytest.raises(thermometer.ReferenceUrlError, match=match):
        thermometer.parse_manual_url(url)


def test_the_reference_is_scripted_prompted_or_refused() -> None:
    scripted = reference_for("manual://?values=0.1,25", None, 2)
    assert asyncio.run(scripted.reading(2, 2, "warm")) == 25.0
    asked: list[str] = []

    def ask(text: str) -> float:
        asked.append(text)
        return 0.2

    prompted = reference_for("manual://", ask, 2)
    assert isinstance(prompted, PromptedReference)
    assert asyncio.run(prompted.reading(1, 2, "ice")) == 0.2
    assert asked == ["Point 1 of 2: the reference thermometer's reading now (°C)"]
    with pytest.raises(thermometer.ReferenceUrlError, match="without a terminal"):
        reference_for("manual://", None, 2)
    with pytest.raises(thermometer.ReferenceUrlError, match="3 reference values for 2 points"):
        reference_for("manual://?values=1,2,3", None, 2)


# --------------------------------------------------------------------------- the verdict


def _point(reference: float, reading: float, sd: float = 0.0, n: int = 3) -> PointReading:
    return PointReading(reference, reference, 0.0, reading, sd, n)


def _record(
    points: list[PointReading], checks: Sequence[Check] = (), *, u_ref: float = 0.0,
    res: float = 0.1,
) -> CalibrationRecord:  # fmt: skip
    return verification_record(
        serial="SIM-1", device_model="CT-80 tonometer (tono-1)", procedure=tonometer.NAME,
        collected=Collected(points=points, checks=list(checks)), tolerance=2.0,
        reference_expanded=u_ref, resolution=res, unit="mmHg",
        technician="tech-1", reference_id="EYES-1", day=date(2026, 12, 7), valid_days=365,
        now=datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
    )  # fmt: skip


def test_a_verification_within_tolerance_passes_and_records_its_errors() -> None:
    r = _record([_point(10, 10.4), _point(20, 19.7), _point(35, 36.9)])
    assert (r.result, r.kind, r.model, r.unit, r.raw_unit) == (
        "pass", "verification", None, "mmHg", "mmHg",
    )  # fmt: skip
    assert [p.error for p in r.points] == [0.4, -0.3, 1.9]
    assert [(p.as_found, p.as_left) for p in r.points] == [(None, None)] * 3
    assert (r.max_error, r.tolerance) == (1.9, 2.0)
    assert r.id == "VER-SIM-1-20261207T093000"
    # 365 days counting the day it was done (as the calibrations: edge/calibrate_runs.py)
    assert (r.valid_from, r.valid_until) == (date(2026, 12, 7), date(2027, 12, 6))
    assert (r.reference_id, r.reference_due, r.procedure) == ("EYES-1", None, tonometer.NAME)
    assert consistency(r) == []


def test_a_point_beyond_tolerance_or_a_failed_check_fails_the_verification() -> None:
    beyond = _record([_point(10, 10.4), _point(35, 37.1)])
    assert (beyond.result, beyond.max_error) == ("fail", 2.1)
    spread = Check("repeatability", 1.4, 1.0, "mmHg", False, "SD too large")
    failed = _record([_point(10, 10.4)], [spread])
    assert failed.result == "fail"
    assert failed.checks[0].name == "repeatability"
    assert not failed.checks[0].passed
    # stored and read back: a failed verification is a valid record
    assert consistency(failed) == []


def test_the_uncertainty_adds_the_reference_the_resolution_and_the_mean_of_repeats() -> None:
    r = _record([_point(10, 10.0, sd=0.3, n=3), _point(20, 20.0, sd=0.1, n=3)],
                u_ref=0.2, res=0.1)  # fmt: skip
    u_ref, u_res, u_mean = 0.2 / 2, 0.1 / math.sqrt(12), 0.3 / math.sqrt(3)
    assert r.uncertainty_k2 == pytest.approx(2 * math.sqrt(u_ref**2 + u_res**2 + u_mean**2),
                                             abs=0.001)  # fmt: skip


def test_a_verification_record_is_sealed_and_stored_like_any_other(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path)
    r = _record([_point(10, 10.4)])
    book.add(r)
    assert book.get(r.id).sha256 is not None
    assert book.status("SIM-1", date(2026, 12, 8)).validity == "valid"


# --------------------------------------------------------------------------- tonometer


class Bench:
    """A fake tonometer line: queued exams, and which of them were acknowledged."""

    def __init__(self, exams: list[tuple[float | None, str, datetime | None]]) -> None:
        self.exams = exams
        self.sent = 0
        self.acked: list[int] = []

    async def next_exam(self) -> tonometer.Exam:
        if self.sent >= len(self.exams):
            await asyncio.sleep(3600)  # nothing more measured
        right, status, taken = self.exams[self.sent]
        number = self.sent
        self.sent += 1

        async def ack() -> None:
            self.acked.append(number)

        return tonometer.Exam(right, status, taken, ack)


NOW = datetime(2026, 12, 7, 9, 0)


class Refusing(ScriptedOperator):
    def __init__(self, refuse: str) -> None:
        super().__init__()
        self.refuse = refuse

    def confirm(self, text: str) -> bool:
        self.said.append(text)
        return self.refuse not in text


def _tono(
    bench: Bench, op: ScriptedOperator | None = None, reading_timeout: float = 120.0
) -> Collected:
    plan = tonometer.TonometerPlan(levels=(10.0, 20.0), repeats=2, reading_timeout=reading_timeout)
    return asyncio.run(tonometer.run(bench, plan, op or ScriptedOperator(), started=NOW))


def test_model_eye_readings_are_averaged_per_level_and_unusable_exams_discarded() -> None:
    bench = Bench([(10.2, "ok", NOW), (None, "absent", NOW), (10.4, "ok", NOW),
                   (20.1, "ok", NOW), (None, "unreliable", NOW), (19.9, "ok", NOW)])  # fmt: skip
    op = ScriptedOperator()
    out = _tono(bench, op)
    assert [(p.target, round(p.raw, 3), p.samples) for p in out.points] == [
        (10.0, 10.3, 2), (20.0, 20.0, 2),
    ]  # fmt: skip
    assert bench.acked == [0, 1, 2, 3, 4, 5]  # every exam read is forgotten by the device
    assert sum("exam discarded: right eye absent" in s for s in op.said) == 1
    assert any(s.startswith("Place the 20 mmHg model eye (2 of 2)") for s in op.said)
    (check,) = out.checks
    assert (check.name, check.passed, check.limit) == ("repeatability", True, 1.0)
    assert check.value == pytest.approx(math.sqrt(0.02), abs=0.001)


def test_readings_scattered_on_a_model_eye_fail_the_repeatability_check() -> None:
    out = _tono(Bench([(10.0, "ok", NOW), (12.0, "ok", NOW), (20.0, "ok", NOW),
                       (20.2, "ok", NOW)]))  # fmt: skip
    (check,) = out.checks
    assert not check.passed
    assert check.value == pytest.approx(math.sqrt(2), abs=0.001)
    assert "10: 1.41" in check.detail


def test_an_exam_older_than_the_verification_is_not_acknowledged() -> None:
    bench = Bench([(15.0, "ok", NOW - timedelta(hours=2))])
    with pytest.raises(ProcedureAbortedError, match="may be a patient's, so it was not ackn"):
        _tono(bench)
    assert bench.acked == []


def test_no_measurement_within_the_timeout_aborts_naming_the_level() -> None:
    bench = Bench([(10.0, "ok", NOW), (10.1, "ok", NOW), (20.0, "ok", NOW)])
    reason = r"within 0\.05 s on the 20 mmHg model eye \(1 of 2 taken\)"
    with pytest.raises(ProcedureAbortedError, match=reason):
        _tono(bench, reading_timeout=0.05)


def test_too_many_unusable_exams_or_a_no_abort() -> None:
    blanks = Bench([(None, "over-range", NOW)] * 5)
    with pytest.raises(ProcedureAbortedError, match="4 exams without a usable right-eye value"):
        _tono(blanks)
    with pytest.raises(ProcedureAbortedError, match="stopped at the 20 mmHg model eye"):
        _tono(Bench([(10.0, "ok", NOW), (10.1, "ok", NOW)]), Refusing("20 mmHg"))


@pytest.mark.parametrize(
    "plan",
    [{"levels": ()}, {"levels": (10.0, 10.0)}, {"levels": (0.0,)}, {"repeats": 1}],
)
def test_a_tonometer_plan_that_cannot_verify_is_refused(plan: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"level|measurements"):
        tonometer.TonometerPlan(**plan)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- thermometer


class Probe:
    """A fake sensor: the given readings in turn, then the last one for ever."""

    def __init__(self, readings: list[float]) -> None:
        self.readings = readings
        self.reads = 0

    async def temperature(self) -> float:
        value = self.readings[min(self.reads, len(self.readings) - 1)]
        self.reads += 1
        return value


def _thermo(
    probe: Probe, values: tuple[float, ...] = (0.0, 25.0), settle_timeout: float = 60.0
) -> tuple[Collected, list[str]]:
    plan = thermometer.ThermometerPlan(samples=3, every_s=0.001, settle_timeout=settle_timeout)
    op = ScriptedOperator()
    out = asyncio.run(thermometer.run(probe, thermometer.ScriptedReference(values), plan, op))
    return out, op.said


def test_each_point_is_a_stable_window_away_from_the_previous_point() -> None:
    # point 1 settles at 0.2; point 2 waits while the probe still reads the ice bath, then
    # while it climbs, and takes the first stable window of the warm bath
    out, said = _thermo(Probe([0.6, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 9.0, 21.0, 25.2, 25.3, 25.2]))
    assert [round(p.raw, 3) for p in out.points] == [0.2, 25.233]
    assert [p.reference for p in out.points] == [0.0, 25.0]
    assert any("waiting for it to reach this bath" in s for s in said)
    (check,) = out.checks
    assert (check.name, check.passed, check.unit) == ("stability", True, "Cel")
    assert check.value == pytest.approx(0.1, abs=1e-9)


def test_a_sensor_that_does_not_settle_stops_the_check_with_the_reason() -> None:
    flicker = Probe([0.0, 0.5] * 1000)
    with pytest.raises(ProcedureAbortedError, match=r"point 1: the sensor did not settle"):
        _thermo(flicker, settle_timeout=0.05)


def test_a_scripted_reference_must_have_one_value_per_point() -> None:
    with pytest.raises(ProcedureAbortedError, match="1 scripted reference values for 2 points"):
        _thermo(Probe([0.1]), values=(0.0,))


# --------------------------------------------------------------------------- configuration


def test_a_modbus_unit_may_carry_a_serial_number() -> None:
    base = {"kind": "modbus", "transport": "modbus-tcp://127.0.0.1:5020", "map": "xy-md02"}
    assert ModbusDevice.model_validate(base).serial_number is None
    unit = ModbusDevice.model_validate({**base, "serial_number": "XY-MD02.0042"})
    assert unit.serial_number == "XY-MD02.0042"
    with pytest.raises(ValidationError, match="serial_number"):
        ModbusDevice.model_validate({**base, "serial_number": "../etc"})


# --------------------------------------------------------------------------- simulators


def test_the_simulated_ct80_measures_model_eyes_in_turn_and_owes_nothing(tmp_path: Path) -> None:
    scenario = TonometerScenario(model_eyes=(10.0, 20.0), model_eye_repeats=2,
                                 model_eye_bias=1.0, model_eye_sd=0.0)  # fmt: skip
    ledger = Ledger(tmp_path / "ledger.jsonl")
    sim = SimulatedCt80("tono-1", tmp_path / "tono", scenario, ledger, "Europe/Paris",
                        random.Random(1))  # fmt: skip
    exams = [sim.new_exam() for _ in range(5)]
    ledger.close()
    assert [e.right.average.mmhg for e in exams] == [11.0, 11.0, 21.0, 21.0, 11.0]
    assert all(e.left.average.kind == "absent" and e.patient_id == "" for e in exams)
    assert (len(sim.pending), sim.undelivered, sim.produced) == (5, 0, 0)
    assert (tmp_path / "ledger.jsonl").read_text() == ""  # a model eye is nobody's reading


def test_the_simulated_ct80_with_patients_still_owes_its_records(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    sim = SimulatedCt80("tono-1", tmp_path / "tono", TonometerScenario(blank_rate=0.0), ledger,
                        "Europe/Paris", random.Random(1))  # fmt: skip
    sim.new_exam()
    ledger.close()
    assert (sim.undelivered, sim.produced) == (1, 2)
    assert len((tmp_path / "ledger.jsonl").read_text().splitlines()) == 2


def test_the_bath_steps_through_its_points_with_the_probes_lag_and_offset() -> None:
    values = bath([0.0, 25.0], every_s=10.0, offset=0.5, tau_s=0.0, noise_c=0.0)
    assert [values(t)["temperature"] for t in (1.0, 11.0, 21.0)] == [0.5, 25.5, 0.5]
    assert values(3.0)["humidity"] == 50.0
    lagging = bath([0.0, 25.0], every_s=10.0, offset=0.0, tau_s=1.0, noise_c=0.0)
    assert lagging(10.0)["temperature"] == pytest.approx(0.0, abs=1e-9)
    assert lagging(15.0)["temperature"] == pytest.approx(25.0 - 25.0 * math.exp(-5), abs=1e-9)


def test_a_bath_scenario_serves_the_xy_md02_points() -> None:
    scenario = ModbusScenario(model="bath", bath_points=(4.0,), sensor_offset_c=-0.3)
    assert scenario.points == {"temperature", "humidity"}
    assert model_values(scenario, 1)(5.0)["temperature"] == pytest.approx(3.7, abs=0.1)
    with pytest.raises(ValidationError, match="bath_points"):
        ModbusScenario(model="bath", bath_points=())


# --------------------------------------------------------------------------- the CLI

CONFIG = """\
[gateway]
bus_id = "bus-1"
state_dir = "{state}"
[mqtt]
host = "127.0.0.1"
tls = false
[devices.nibp-1]
kind = "nibp"
transport = "serial:///dev/null"
serial_number = "NIBP-1"
[devices.tono-1]
kind = "ct80"
transport = "serial:///dev/null"
serial_number = "CT80-1"
[devices.cabin]
kind = "modbus"
transport = "modbus-tcp://127.0.0.1:5020"
map = "xy-md02"
[devices.power]
kind = "modbus"
transport = "modbus-tcp://127.0.0.1:5021"
unit = 100
map = "victron-gx"
"""


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., tuple[int, str]]:
    cfg = tmp_path / "bus.toml"
    cfg.write_text(CONFIG.format(state=tmp_path / "state"))

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["calibrate", *args, "--config", str(cfg)])
        return result.exit_code, " ".join(result.output.split())

    return invoke


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nibp-transducer", "--device", "nibp-1"), "nibp-transducer needs --reference"),
        (("nibp-transducer", "--device", "nibp-1", "--reference", "serial:///dev/null",
          "--levels", "10,20"), "--levels: not an option of nibp-transducer"),
        (("tonometer-model-eyes", "--device", "tono-1", "--reference", "manual://"),
         "takes no --reference: the model eyes are the reference"),
        (("tonometer-model-eyes", "--device", "tono-1", "--levels", "10,abc"),
         "mmHg values separated by commas"),
        (("tonometer-model-eyes", "--device", "tono-1", "--levels", "10,10"),
         "each model-eye level once"),
        (("tonometer-model-eyes", "--device", "cabin"), "applies to ct80 devices"),
        (("modbus-temperature-2pt", "--device", "cabin", "--yes"),
         "without a terminal (--yes) give them as manual://?values=V1,V2"),
        (("modbus-temperature-2pt", "--device", "cabin", "--reference", "serial:///dev/x"),
         "--reference: the reference thermometer is read by the technician"),
        (("modbus-temperature-2pt", "--device", "cabin", "--yes", "--reference",
          "manual://?values=0.1"), "1 reference values for 2 points"),
        (("modbus-temperature-2pt", "--device", "cabin", "--repeats", "4"),
         "--repeats: not an option of modbus-temperature-2pt"),
        (("modbus-temperature-2pt", "--device", "power"), "has no temperature point"),
        (("tonometer-model-eyes", "--device", "tono-1", "--reference-id", "x" * 65),
         "--reference-id: 1 to 64 characters"),
    ],
)  # fmt: skip
def test_run_refuses_what_a_procedure_cannot_use_before_touching_hardware(
    cli: Callable[..., tuple[int, str]], args: tuple[str, ...], message: str
) -> None:
    code, out = cli("run", *args)
    assert code == 2, out
    assert message in out


def test_list_shows_every_procedure_and_the_verifiable_modbus_units(
    cli: Callable[..., tuple[int, str]],
) -> None:
    code, out = cli("list")
    assert code == 0
    for name in ("nibp-transducer", "tonometer-model-eyes", "modbus-temperature-2pt"):
        assert f"procedure {name}" in out
    code, out = cli("list", "--json")
    rows = [json.loads(line) for line in out.replace("} {", "}\n{").splitlines()]
    assert [(r["device"], r["serial"], r["validity"]) for r in rows] == [
        ("nibp-1", "NIBP-1", "missing"), ("tono-1", "CT80-1", "missing"),
        ("cabin", "cabin", "missing"),  # no serial number configured: the device id
    ]  # fmt: skip
