"""Clinical validation: plausibility, cross-checks, interpretation; and the quarantine path."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner
from fhir.resources.R4B.observation import Observation

from drivers.readings import Delivery, DeviceReading
from edge.cli import main
from edge.events import Events
from edge.outbox import Outbox
from edge.pipeline.ingest import DeviceIdentity, Ingest
from edge.pipeline.validate import validate
from tests.contract import errors
from tests.helpers import TOPICS

AT = datetime(2026, 11, 23, 10, 0, 0)
EXAMPLE = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"


def _r(quantity: str, value: float | None, unit: str = "mmHg", *parts: float) -> DeviceReading:
    return DeviceReading(quantity, value, unit, AT, "k", components=parts)


def test_plausible_iop_is_interpreted_against_the_reference_range() -> None:
    verdicts = validate([_r("iop.right", 15), _r("iop.left", 26), _r("iop.left", 8)])
    assert [(v.quarantine, v.interpretation) for v in verdicts] == [
        (None, "N"),
        (None, "H"),
        (None, "L"),
    ]


def test_impossible_values_are_quarantined_with_the_range_in_the_reason() -> None:
    (v,) = validate([_r("iop.right", 95)])
    assert v.quarantine == "iop.right = 95 mmHg is outside the plausible range 0-80 mmHg"
    (v,) = validate([_r("iop.right", 15, "mmHg", 14, 250, 15)])
    assert v.quarantine is not None
    assert "reading 2 = 250 mmHg" in v.quarantine
    (v,) = validate([_r("spo2", 101, "%")])
    assert v.quarantine == "spo2 = 101 % is outside the plausible range 50-100 %"
    (v,) = validate([_r("glucose", 5.5, "mg/dL")])  # 5.5 mmol/L sent as mg/dL
    assert v.quarantine == (
        "glucose = 5.5 mg/dL (0.305 mmol/L) is outside the plausible range 0.5-40 mmol/L"
    )
    (v,) = validate([_r("glucose", 99, "mg/dL")])  # 5.5 mmol/L, correctly in mg/dL
    assert (v.quarantine, v.interpretation) == (None, "N")
    (v,) = validate([_r("glucose", 5.5, "g/L")])
    assert v.quarantine == "glucose: unit 'g/L', expected 'mmol/L'"


def test_systolic_not_above_diastolic_quarantines_both_and_nothing_else() -> None:
    verdicts = validate(
        [_r("bp.systolic", 80), _r("bp.diastolic", 85), _r("pulse.rate", 70, "/min")]
    )
    reasons = [v.quarantine for v in verdicts]
    assert reasons[:2] == ["systolic 80 mmHg is not above diastolic 85 mmHg"] * 2
    assert reasons[2] is None


def test_pulse_pressure_bounds() -> None:
    narrow = validate([_r("bp.systolic", 100), _r("bp.diastolic", 95)])
    assert narrow[0].quarantine == "pulse pressure 5 mmHg is outside 10-150 mmHg"
    wide = validate([_r("bp.systolic", 250), _r("bp.diastolic", 60)])
    assert wide[1].quarantine == "pulse pressure 190 mmHg is outside 10-150 mmHg"
    fine = validate([_r("bp.systolic", 152), _r("bp.diastolic", 94)])
    assert [(v.quarantine, v.interpretation) for v in fine] == [(None, "H"), (None, "H")]


def test_a_value_the_device_could_not_give_is_not_judged() -> None:
    (v,) = validate([_r("iop.right", None)])
    assert (v.quarantine, v.interpretation) == (None, None)


async def _ack() -> None:
    return None


def test_a_quarantined_reading_is_held_not_published_and_its_partner_is(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "state" / "outbox.sqlite")
    ingest = Ingest(box, TOPICS, "Europe/Paris", events=Events(box, TOPICS))
    delivery = Delivery((_r("iop.right", 17), _r("iop.left", 99)), "CT-80", _ack)
    identity = DeviceIdentity("tono-1", "SN1")
    assert ingest.commit(identity, delivery) == 1
    clinical = [json.loads(r.payload) for r in box.rows() if r.kind == "clinical"]
    (obs,) = clinical
    Observation.model_validate(obs)
    assert obs["interpretation"][0]["coding"][0]["code"] == "N"
    assert obs["referenceRange"][0]["high"]["value"] == 21
    (held,) = box.quarantined()
    assert (held.quantity, held.reason) == (
        "iop.left",
        "iop.left = 99 mmHg is outside the plausible range 0-80 mmHg",
    )
    assert json.loads(held.detail)["value"] == 99
    events = [json.loads(r.payload) for r in box.rows() if r.kind == "event"]
    assert [e["type"] for e in events] == ["reading.quarantined"]
    # a retransmission of the record holds nothing twice and raises nothing more
    ingest.commit(identity, delivery)
    assert len(box.quarantined()) == 1
    assert len([r for r in box.rows() if r.kind == "event"]) == 1
    box.close()

    args = ["--config", str(EXAMPLE), "--set", f"gateway.state_dir={tmp_path / 'state'}"]
    result = CliRunner().invoke(main, ["quarantine", "list", "--json", *args])
    assert result.exit_code == 0
    assert [q["quantity"] for q in json.loads(result.output)] == ["iop.left"]
    result = CliRunner().invoke(main, ["quarantine", "list", *args])
    assert "outside the" in result.output
    result = CliRunner().invoke(main, ["quarantine", "show", held.msg_id, *args])
    assert json.loads(result.output)["detail"]["value"] == 99
    result = CliRunner().invoke(main, ["quarantine", "show", "999", *args])
    assert result.exit_code == 1
    assert "no quarantined reading '999'" in result.output


def test_a_gate_makes_a_reading_preliminary_with_its_reason(tmp_path: Path) -> None:
    """The hook the environment and calibration checks use (operating conditions, lapsed
    calibration): the reading is still published, but as preliminary, saying why."""
    box = Outbox(tmp_path / "outbox.sqlite")
    ingest = Ingest(box, TOPICS, "Europe/Paris")
    cold = "outside the device's operating conditions: cabin 8.0 Cel (10-40 Cel)"
    ingest.gates.append(lambda device, r, at: cold if device == "tono-1" else None)
    ingest.gates.append(lambda device, r, at: None)
    delivery = Delivery((_r("iop.right", 17),), "CT-80", _ack)
    ingest.commit(DeviceIdentity("tono-1", "SN1"), delivery)
    ingest.commit(DeviceIdentity("tono-2", "SN2"), delivery)
    by_device = {
        o["device"]["identifier"]["value"]: o
        for o in (json.loads(r.payload) for r in box.rows() if r.kind == "clinical")
    }
    flagged, clean = by_device["tono-1"], by_device["tono-2"]
    assert (flagged["status"], flagged["note"]) == ("preliminary", [{"text": cold}])
    assert (clean["status"], "note" in clean) == ("final", False)
    for obs in (flagged, clean):
        Observation.model_validate(obs)
        assert errors("Observation", obs) == []
