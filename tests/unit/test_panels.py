"""Blood pressure as one panel Observation (PHD IG compound), LOINC + MDC codes, and IEEE 11073
special values as FHIR data-absent reasons."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation

from drivers.readings import Delivery, DeviceReading
from edge.outbox import Outbox
from edge.pipeline.ingest import DeviceIdentity, Ingest
from simulators.backend.validate import InvalidPayloadError, validate
from tests.contract import errors
from tests.helpers import TOPICS

AT = datetime(2026, 11, 23, 10, 0, 0)
MDC = "urn:iso:std:iso:11073:10101"


async def _ack() -> None:
    return None


def _r(quantity: str, value: float | None, unit: str, special: str | None = None) -> DeviceReading:
    return DeviceReading(quantity, value, unit, AT, "bpm-rec-17", special=special)


def _commit(tmp_path: Path, *readings: DeviceReading) -> tuple[Outbox, list[dict[str, Any]]]:
    box = Outbox(tmp_path / "outbox.sqlite")
    Ingest(box, TOPICS, "Europe/Paris").commit(
        DeviceIdentity("bpm-1", "BPM-SN-9"), Delivery(tuple(readings), "UA-651BLE", _ack)
    )
    obs = [json.loads(r.payload) for r in box.rows() if r.kind == "clinical"]
    for o in obs:
        Observation.model_validate(o)
        assert errors("Observation", o) == [], o
    return box, obs


def _codes(concept: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"].rsplit("/", 1)[-1], c["code"]) for c in concept["coding"]]


def test_a_blood_pressure_record_is_one_panel_and_a_pulse(tmp_path: Path) -> None:
    _, (panel, pulse) = _commit(
        tmp_path,
        _r("bp.systolic", 148, "mmHg"),
        _r("bp.diastolic", 92, "mmHg"),
        _r("bp.mean", 111, "mmHg"),
        _r("pulse.rate", 71, "/min"),
    )
    assert _codes(panel["code"]) == [("loinc.org", "85354-9"), (MDC, "150020")]
    assert "valueQuantity" not in panel
    assert "dataAbsentReason" not in panel
    parts = {c["code"]["coding"][0]["code"]: c for c in panel["component"]}
    assert _codes(parts["8480-6"]["code"]) == [("loinc.org", "8480-6"), (MDC, "150021")]
    assert _codes(parts["8462-4"]["code"]) == [("loinc.org", "8462-4"), (MDC, "150022")]
    assert _codes(parts["8478-0"]["code"]) == [("loinc.org", "8478-0"), (MDC, "150023")]
    assert parts["8480-6"]["valueQuantity"] == {
        "value": 148.0, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"
    }  # fmt: skip
    # each member judged against its own reference range: 148/92 is hypertensive
    assert parts["8480-6"]["interpretation"][0]["coding"][0]["code"] == "H"
    assert parts["8462-4"]["interpretation"][0]["coding"][0]["code"] == "H"
    assert "interpretation" not in parts["8478-0"]  # no screening range for the mean
    assert _codes(pulse["code"]) == [("loinc.org", "8867-4"), (MDC, "149546")]
    assert panel["identifier"] != pulse["identifier"]


def test_an_inconsistent_record_quarantines_the_whole_panel_not_the_pulse(
    tmp_path: Path,
) -> None:
    box, (pulse,) = _commit(
        tmp_path,
        _r("bp.systolic", 80, "mmHg"),
        _r("bp.diastolic", 85, "mmHg"),
        _r("bp.mean", 83, "mmHg"),
        _r("pulse.rate", 64, "/min"),
    )
    assert pulse["code"]["coding"][0]["code"] == "8867-4"
    (held,) = box.quarantined(None, 10)
    assert held.quantity == "bp"
    assert held.reason == "systolic 80 mmHg is not above diastolic 85 mmHg"
    assert [p["value"] for p in json.loads(held.detail)["parts"]] == [80, 85, 83]


def test_special_values_become_data_absent_reasons(tmp_path: Path) -> None:
    _, (panel, pulse) = _commit(
        tmp_path,
        _r("bp.systolic", 131, "mmHg"),
        _r("bp.diastolic", 84, "mmHg"),
        _r("bp.mean", None, "mmHg", special="nan"),
        _r("pulse.rate", None, "/min", special="+inf"),
    )
    mean = panel["component"][2]
    assert mean["dataAbsentReason"]["coding"][0]["code"] == "not-a-number"
    assert "valueQuantity" not in mean
    assert pulse["dataAbsentReason"]["coding"][0]["code"] == "positive-infinity"
    assert pulse["dataAbsentReason"]["text"] == "+INF: above the device's measuring range"


def test_a_kpa_reading_keeps_its_unit_and_is_judged_in_mmhg(tmp_path: Path) -> None:
    # 20.0 kPa = 150.0 mmHg and 12.0 kPa = 90.0 mmHg: hypertensive, plausible, consistent
    _, (panel,) = _commit(tmp_path, _r("bp.systolic", 20.0, "kPa"), _r("bp.diastolic", 12.0, "kPa"))
    sbp, dbp = panel["component"]
    assert (sbp["valueQuantity"]["unit"], sbp["valueQuantity"]["code"]) == ("kPa", "kPa")
    assert sbp["interpretation"][0]["coding"][0]["code"] == "H"
    assert dbp["interpretation"][0]["coding"][0]["code"] == "H"
    # the reference range is stated in the unit it is defined in
    assert sbp["referenceRange"][0]["high"]["code"] == "mm[Hg]"


def test_the_reference_backend_takes_a_panel_and_refuses_an_empty_member(tmp_path: Path) -> None:
    box, (panel,) = _commit(
        tmp_path, _r("bp.systolic", 120, "mmHg"), _r("bp.diastolic", 80, "mmHg")
    )
    (row,) = (r for r in box.rows() if r.kind == "clinical")
    assert validate(row.payload, row.msg_id)[0] == row.msg_id
    del panel["component"][1]["valueQuantity"]
    with pytest.raises(InvalidPayloadError, match="needs exactly one of valueQuantity"):
        validate(json.dumps(panel).encode(), row.msg_id)


def test_a_wrong_device_clock_is_corrected_and_the_offset_published(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    reading = _r("pulse.rate", 71, "/min")  # stamped 10:00:00 by a clock an hour fast
    Ingest(box, TOPICS, "Europe/Paris").commit(
        DeviceIdentity("bpm-1", "BPM-SN-9"),
        Delivery((reading,), "UA-651BLE", _ack, clock_offset=3600.0),
    )
    (row,) = box.rows()
    obs = json.loads(row.payload)
    assert errors("Observation", obs) == []
    Observation.model_validate(obs)
    assert obs["effectiveDateTime"] == "2026-11-23T09:00:00+01:00"
    (offset,) = [e for e in obs["extension"] if e["url"].endswith("device-clock-offset")]
    assert offset["valueQuantity"] == {
        "value": 3600.0, "unit": "s", "system": "http://unitsofmeasure.org", "code": "s"
    }  # fmt: skip
    assert obs["status"] == "final"  # a corrected time is not a doubtful reading
