"""Raw recordings -> readings: sensor calibration, the signal core, refusals kept and archived."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from fhir.resources.R4B.observation import Observation

from drivers.readings import Delivery, RawRecording
from edge.pipeline import derive as derive_module
from edge.pipeline import fhir
from edge.pipeline.derive import RefusedArchive, SensorCalibration, derive, derived
from edge.pipeline.ingest import DeviceIdentity, Ingest
from edge.publish.topics import Topics
from edge.signal.results import Refusal
from simulators.physio.bp import BpCase, simulate_bp
from simulators.physio.iop import LIGHT_MAX, IopCase, simulate_iop

WHEN = datetime(2026, 11, 23, 10, 15, 42)
#: the simulated transducer's relation, which the sensor calibration must undo
SENSOR = SensorCalibration(gain=0.0102, offset=1.5)


def _counts(mmhg: np.ndarray) -> np.ndarray:
    return np.rint((mmhg - SENSOR.offset) / SENSOR.gain)


def _bp_recording(case: BpCase | None = None, **changes: object) -> tuple[RawRecording, object]:
    sample = simulate_bp(case or BpCase(), np.random.default_rng(3))
    fields: dict[str, object] = {
        "kind": "oscillometric-bp",
        "record_key": "nibp|SN|17|2026-11-23T10:15:42",
        "device_time": WHEN,
        "fs": sample.fs,
        "channels": {"pressure": _counts(sample.pressure)},
    }
    fields.update(changes)
    return RawRecording(**fields), sample.truth  # type: ignore[arg-type]


def _iop_recording(eye: str = "left") -> tuple[RawRecording, object]:
    sample = simulate_iop(IopCase(eye="left" if eye == "left" else "right"),
                          np.random.default_rng(5))  # fmt: skip
    assert sample.light.max() <= LIGHT_MAX
    rec = RawRecording(
        kind="airpuff-iop",
        record_key=f"airpuff|SN|4|{eye}",
        device_time=WHEN,
        fs=sample.fs,
        channels={"pressure": _counts(sample.pressure), "light": sample.light},
        site=eye,
    )
    return rec, sample.truth


def test_a_clean_cuff_record_gives_the_four_bp_readings_under_its_record_key() -> None:
    rec, truth = _bp_recording()
    outcome = derive(rec, SENSOR)
    assert outcome.refusal is None
    by_quantity = {r.quantity: r for r in outcome.readings}
    assert list(by_quantity) == ["bp.systolic", "bp.diastolic", "bp.mean", "pulse.rate"]
    sbp, dbp = by_quantity["bp.systolic"], by_quantity["bp.diastolic"]
    # the calibration was applied: without it the pressures would be ~2 % and 1.5 mmHg off
    assert sbp.value == pytest.approx(truth.systolic, abs=10)  # type: ignore[attr-defined]
    assert dbp.value == pytest.approx(truth.diastolic, abs=10)  # type: ignore[attr-defined]
    for r in outcome.readings:
        assert (r.record_key, r.device_time) == (rec.record_key, WHEN)
        assert r.decimals == 0
        assert r.value == round(r.value or 0)
        assert (r.method or "").startswith("Oscillometry")
        assert 0 <= (r.quality or -1) <= 1
        assert r.special is None


def test_a_refused_record_publishes_its_quantities_without_numbers_and_says_why() -> None:
    # deflation from below systolic: no envelope peak, nothing to estimate systolic from
    rec, _ = _bp_recording(BpCase(top_margin=-25.0))
    outcome = derive(rec, SENSOR)
    assert isinstance(outcome.refusal, Refusal)
    assert [r.quantity for r in outcome.readings] == [
        "bp.systolic", "bp.diastolic", "bp.mean", "pulse.rate"
    ]  # fmt: skip
    for r in outcome.readings:
        assert (r.value, r.special) == (None, "refused")
        assert outcome.refusal.reason in (r.absent_text or "")
        assert outcome.refusal.reason in r.remarks[0]


def test_a_device_abort_is_a_refusal_naming_the_device_reason() -> None:
    rec, _ = _bp_recording(refused="over-pressure")
    outcome = derive(rec, SENSOR)
    assert outcome.refusal == Refusal(
        "device-aborted", "the device aborted the measurement: over-pressure"
    )
    assert all(r.value is None for r in outcome.readings)


def test_a_fault_in_the_analysis_is_a_refusal_not_a_stuck_device(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(pressure: np.ndarray, fs: float) -> object:
        raise FloatingPointError("division by zero")

    monkeypatch.setattr(derive_module, "analyze_bp", broken)
    rec, _ = _bp_recording()
    outcome = derive(rec, SENSOR)
    assert outcome.refusal == Refusal("analysis-error", "the analysis failed (FloatingPointError)")
    assert "signal analysis failed record=nibp|SN|17" in caplog.text


def test_an_air_puff_gives_iopg_iopcc_and_hysteresis_of_its_eye() -> None:
    rec, truth = _iop_recording("left")
    outcome = derive(rec, SENSOR)
    assert outcome.refusal is None, outcome.refusal
    values = {r.quantity: r.value for r in outcome.readings}
    assert set(values) == {"iop.left", "iopcc.left", "ch.left"}
    assert values["iop.left"] == pytest.approx(truth.iopg, abs=2.0)  # type: ignore[attr-defined]
    assert values["ch.left"] == pytest.approx(truth.ch, abs=2.0)  # type: ignore[attr-defined]


def test_a_puff_without_an_eye_is_a_driver_bug_named_by_its_record() -> None:
    rec, _ = _iop_recording()
    bad = RawRecording(rec.kind, rec.record_key, rec.device_time, rec.fs, rec.channels)
    with pytest.raises(ValueError, match=r"airpuff\|SN\|4\|left names no eye"):
        derive(bad, SENSOR)


def _ingest() -> Ingest:
    return Ingest(None, Topics("bus-1"), "Europe/Paris")


async def _ack() -> None:
    return None


def test_derived_readings_become_valid_fhir_with_method_quality_and_reasons() -> None:
    good, _ = _bp_recording()
    bad, _ = _bp_recording(BpCase(top_margin=-25.0), record_key="nibp|SN|18|x")
    identity = DeviceIdentity("nibp-1", "SN")
    payloads = []
    for rec in (good, bad):
        delivery = Delivery((), "SB-NIBP", _ack)
        readings = derive(rec, SENSOR).readings
        prepared = _ingest().measurements(identity, Delivery(readings, delivery.device_model, _ack))
        payloads += [json.loads(fhir.encode(p.measurement)) for p in prepared]
    for payload in payloads:
        Observation.model_validate(payload)
    panel, pulse, refused_panel, _refused_pulse = payloads
    assert panel["code"]["coding"][0]["code"] == "85354-9"
    assert panel["method"]["text"].startswith("Oscillometry: the gateway's analysis")
    quality = [e for e in panel["extension"] if e["url"].endswith("signal-quality")]
    assert len(quality) == 1
    assert 0 <= quality[0]["valueDecimal"] <= 1
    assert pulse["code"]["coding"][0]["code"] == "8867-4"
    assert refused_panel["status"] == "preliminary"
    for component in refused_panel["component"]:
        dar = component["dataAbsentReason"]
        assert dar["coding"][0]["code"] == "error"
        assert dar["text"].startswith("Refused by the gateway's signal analysis: ")
    assert "was refused" in refused_panel["note"][0]["text"]


def test_iop_quantities_are_coded_per_eye_in_the_gateway_code_system() -> None:
    rec, _ = _iop_recording("right")
    prepared = _ingest().measurements(
        DeviceIdentity("ora-1", "SN"), Delivery(derive(rec, SENSOR).readings, "SB-AIRPUFF", _ack)
    )
    payloads = {p.measurement.quantity: json.loads(fhir.encode(p.measurement)) for p in prepared}
    for payload in payloads.values():
        Observation.model_validate(payload)
        assert payload["bodySite"]["coding"][0]["code"] == "18944008"
    assert payloads["iop.right"]["code"]["coding"][0]["code"] == "79892-6"
    assert payloads["ch.right"]["code"]["coding"][0] == {
        "system": "urn:santebus:fhir:CodeSystem:observation",
        "code": "corneal-hysteresis",
        "display": "Corneal hysteresis",
    }
    assert payloads["iopcc.right"]["code"]["coding"][0]["code"] == "iop-corneal-compensated"


def test_the_archive_keeps_the_newest_refused_records_as_analyzable_csv(tmp_path: Path) -> None:
    archive = RefusedArchive(tmp_path / "nibp-1", keep=2)
    paths = []
    for n in range(3):
        rec, _ = _bp_recording(device_time=WHEN.replace(minute=n), record_key=f"k{n}")
        paths.append(archive.add(rec, SENSOR.apply(rec.channels["pressure"])))
    assert [p.name[:15] for p in sorted((tmp_path / "nibp-1").iterdir())] == [
        "20261123T100142", "20261123T100242"
    ]  # fmt: skip
    assert paths[0] is not None
    assert not paths[0].exists()
    assert paths[2] is not None
    first = paths[2].read_text().splitlines()[:2]
    assert first[0] == "t,p"
    assert first[1].startswith("0,")
    puff, _ = _iop_recording()
    path = RefusedArchive(tmp_path / "ora-1", keep=5).add(puff, puff.channels["pressure"])
    assert path is not None
    assert path.read_text().startswith("t,pressure,light\n")


def test_an_unwritable_archive_loses_the_copy_not_the_reading(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    rec, _ = _bp_recording()
    assert (
        RefusedArchive(tmp_path / "file" / "sub", keep=5).add(rec, rec.channels["pressure"]) is None
    )


def test_derived_replaces_recordings_and_reports_refusals() -> None:
    good, _ = _bp_recording()
    bad, _ = _bp_recording(BpCase(top_margin=-25.0), record_key="nibp|SN|18|x")
    plain = Delivery((), "SB-NIBP", _ack)
    refusals: list[tuple[str, str]] = []

    async def source() -> AsyncIterator[Delivery]:
        yield plain
        yield Delivery((), "SB-NIBP", _ack, recordings=(good, bad))

    async def run() -> list[Delivery]:
        it = derived(
            source(), "nibp-1", SENSOR, lambda r, f: refusals.append((r.record_key, f.code))
        )
        return [d async for d in it]

    out = asyncio.run(run())
    assert out[0] is plain
    assert out[1].recordings == ()
    assert len(out[1].readings) == 8
    assert refusals == [("nibp|SN|18|x", "no-envelope-peak")]


def test_the_sensor_calibration_is_linear_per_device() -> None:
    counts = np.array([0.0, 100.0, 2048.0])
    np.testing.assert_allclose(SensorCalibration(0.05, -2.0).apply(counts), [-2.0, 3.0, 100.4])
