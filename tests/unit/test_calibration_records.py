"""Calibration records: append-only storage, the current record, validity; and what the daemon's
pipeline does with them (calibration id and due date on the Observation, lapsed -> flagged)."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from calibration.certificate import CalibrationPoint, CheckResult
from calibration.models import Model
from calibration.records import (
    CalibrationBook,
    CalibrationError,
    CalibrationRecord,
    days_left,
    seal,
)
from drivers.readings import Delivery, DeviceReading
from edge.events import Events
from edge.outbox import Outbox
from edge.pipeline.ingest import DeviceIdentity, Ingest
from tests.contract import errors
from tests.helpers import TOPICS

PARIS = ZoneInfo("Europe/Paris")


def _record(**changes: Any) -> CalibrationRecord:
    base: dict[str, Any] = {
        "id": "VER-SN1-0001",
        "device_serial": "SN1",
        "device_model": "CT-80",
        "kind": "verification",
        "performed_at": datetime(2026, 6, 1, 9, 0, tzinfo=PARIS),
        "valid_until": date(2026, 11, 30),
        "result": "pass",
        "technician": "tech-07",
        "reference_id": "EYE-MODEL-42",
    }
    return CalibrationRecord.model_validate({**base, **changes})


def test_the_current_record_is_the_latest_performed_and_history_is_append_only(
    tmp_path: Path,
) -> None:
    book = CalibrationBook(tmp_path)
    assert book.current("SN1") is None
    book.add(_record())
    # what comes back is what went in, sealed with its sha256 by the book
    assert book.current("SN1") == seal(_record())
    later_fail = _record(id="VER-SN1-0002", performed_at=datetime(2026, 9, 1, tzinfo=PARIS),
                         result="fail")  # fmt: skip
    book.add(later_fail)
    # a later failed verification supersedes the earlier pass (the device is out of tolerance)
    assert book.current("SN1") == seal(later_fail)
    assert [r.id for r in book.history("SN1")] == ["VER-SN1-0001", "VER-SN1-0002"]
    with pytest.raises(CalibrationError, match="exists; records are never rewritten"):
        book.add(_record(result="fail"))
    assert book.history("SN1")[0].result == "pass"  # the original is untouched


def test_validity_by_the_local_date_of_the_reading(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path)
    book.add(_record())
    assert book.status("SN1", date(2026, 11, 30)).validity == "valid"  # last valid day
    lapsed = book.status("SN1", date(2026, 12, 1))
    assert (lapsed.validity, lapsed.reason) == (
        "expired",
        "calibration VER-SN1-0001 expired on 2026-11-30",
    )
    assert book.status("SN9", date(2026, 12, 1)).validity == "missing"
    assert days_left(_record(), date(2026, 11, 23)) == 7


def test_a_corrupt_or_misfiled_record_is_an_error_naming_the_file(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path)
    (tmp_path / "SN1").mkdir()
    (tmp_path / "SN1" / "VER-SN1-0001.json").write_text('{"id": "VER-SN1-0001", "kind": ')
    with pytest.raises(CalibrationError, match=r"SN1/VER-SN1-0001\.json: not a calibration"):
        book.current("SN1")
    (tmp_path / "SN1" / "VER-SN1-0001.json").write_text(_record(id="OTHER").model_dump_json())
    with pytest.raises(CalibrationError, match="misfiled"):
        book.history("SN1")
    with pytest.raises(CalibrationError, match="not a valid record folder"):
        book.history("../etc")


LEAKING = CheckResult(name="leak", value=7.0, limit=6.0, unit="mmHg/min", passed=False)


def _calibration(**changes: Any) -> CalibrationRecord:
    """An NIBP transducer calibration with every issue #8 field."""
    points = [
        CalibrationPoint(reference=0.0, raw=320.0, as_found=1.1, as_left=0.03, error=0.03),
        CalibrationPoint(reference=150.0, raw=15170.0, as_found=146.5, as_left=150.2, error=0.2),
        CalibrationPoint(reference=250.0, raw=25060.0, as_found=243.6, as_left=249.9, error=-0.1),
    ]
    leak = CheckResult(name="leak", value=2.1, limit=6.0, unit="mmHg/min", passed=True,
                       detail="150 mmHg held 60 s, drop rate over the last 30 s")  # fmt: skip
    base: dict[str, Any] = {
        "id": "CAL-NIBP1-0001",
        "device_serial": "NIBP1",
        "device_model": "NIBP-M2",
        "kind": "calibration",
        "valid_from": date(2026, 6, 1),
        "points": points,
        "model": Model("linear", (-3.2, 0.0101)).to_dict(),
        "unit": "mmHg",
        "raw_unit": "counts",
        "tolerance": 3.0,
        "max_error": 0.2,
        "uncertainty_k2": 0.62,
        "checks": [leak],
        "reference_id": "DPI-620-1234",
        "reference_due": date(2027, 1, 15),
        "software_version": "0.1.0",
        "procedure": "nibp-transducer",
        "technician": "tech-07 (Zoé)",  # non-ASCII: stored as itself, hashed as UTF-8
    }
    return _record(**{**base, **changes})


def test_a_stored_record_is_sealed_with_the_sha256_of_its_canonical_json(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path)
    path = book.add(_calibration())
    stored = json.loads(path.read_text(encoding="utf-8"))
    # the documented canonical form, computed here independently: the stored object without
    # its sha256, sorted keys, no whitespace, UTF-8
    content = {k: v for k, v in stored.items() if k != "sha256"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert stored["sha256"] == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert "Zoé" in path.read_text(encoding="utf-8")
    loaded = book.current("NIBP1")
    assert loaded == seal(_calibration())
    assert loaded is not None
    assert loaded.sha256 == stored["sha256"]
    assert Model.from_dict(loaded.model or {}).apply(1000.0) == pytest.approx(6.9)
    # a record carrying a wrong sha256 is not stored
    forged = _calibration(id="CAL-NIBP1-0002", sha256="0" * 64)
    with pytest.raises(CalibrationError, match="sha256 does not match"):
        book.add(forged)


def test_an_altered_record_is_refused_naming_the_file(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path)
    path = book.add(_calibration())
    text = path.read_text(encoding="utf-8")
    assert '"error": 0.2' in text
    path.write_text(text.replace('"error": 0.2', '"error": 0.1'), encoding="utf-8")
    with pytest.raises(CalibrationError, match=r"NIBP1/CAL-NIBP1-0001\.json: sha256 mismatch"):
        book.history("NIBP1")
    with pytest.raises(CalibrationError, match="altered or corrupt"):
        book.get("CAL-NIBP1-0001")
    # re-indenting or reordering the keys is not an alteration
    data = json.loads(text)
    path.write_text(json.dumps(dict(reversed(data.items()))), encoding="utf-8")
    assert book.get("CAL-NIBP1-0001") == seal(_calibration())


def test_a_record_written_before_issue_8_still_loads(tmp_path: Path) -> None:
    old = {
        "id": "VER-SN1-0001",
        "device_serial": "SN1",
        "device_model": "CT-80",
        "kind": "verification",
        "performed_at": "2026-06-01T09:00:00+02:00",
        "valid_until": "2026-11-30",
        "result": "pass",
        "technician": "tech-07",
        "reference_id": "EYE-MODEL-42",
    }
    (tmp_path / "SN1").mkdir()
    (tmp_path / "SN1" / "VER-SN1-0001.json").write_text(json.dumps(old, indent=2))
    record = CalibrationBook(tmp_path).get("VER-SN1-0001")
    assert record == _record()
    assert (record.points, record.checks, record.model, record.sha256) == ((), (), None, None)


def test_get_and_devices_look_across_device_folders(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path)
    assert book.devices() == []
    with pytest.raises(CalibrationError, match="no calibration record CAL-NIBP1-0001"):
        book.get("CAL-NIBP1-0001")
    book.add(_calibration())
    book.add(_record())
    (tmp_path / "EMPTY").mkdir()  # a folder without records is not a device with records
    assert book.devices() == ["NIBP1", "SN1"]
    assert book.get("VER-SN1-0001") == seal(_record())
    assert book.get("CAL-NIBP1-0001").procedure == "nibp-transducer"
    with pytest.raises(CalibrationError, match="not a valid record id"):
        book.get("../SN1/VER-SN1-0001")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_error": 3.5}, "result pass with an error of 3.5 > 3.0"),
        ({"checks": [LEAKING]}, "result pass with failed check"),
        ({"valid_from": date(2027, 1, 1)}, "valid_from 2027-01-01 is after valid_until"),
        ({"model": {"kind": "linear", "coefficients": [1.0]}}, "exactly two coefficients"),
        ({"uncertainty_k2": math.inf}, "finite number"),
    ],
)
def test_an_inconsistent_record_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _calibration(**changes)
    if message.startswith("result pass"):
        assert _calibration(**changes, result="fail").result == "fail"  # honestly failed: fine


async def _ack() -> None:
    return None


def _delivery(day: date) -> Delivery:
    at = datetime(day.year, day.month, day.day, 10, 0, 0)
    reading = DeviceReading("iop.right", 16.0, "mmHg", at, f"rec-{day}")
    return Delivery((reading,), "CT-80", _ack)


def _published(box: Outbox) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in box.rows() if r.kind == "clinical"]


def _events(box: Outbox) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in box.rows() if r.kind == "event"]


def test_observations_carry_the_calibration_and_a_lapse_makes_them_preliminary(
    tmp_path: Path,
) -> None:
    book = CalibrationBook(tmp_path / "cal")
    book.add(_record())
    box = Outbox(tmp_path / "outbox.sqlite")
    ingest = Ingest(box, TOPICS, "Europe/Paris", events=Events(box, TOPICS), calibrations=book)
    device = DeviceIdentity("tono-1", "SN1", calibration_required=True)
    ingest.commit(device, _delivery(date(2026, 11, 29)))  # in calibration
    ingest.commit(device, _delivery(date(2026, 11, 30)))  # its last valid day
    assert _events(box) == []
    ingest.commit(device, _delivery(date(2026, 12, 1)))  # lapsed
    # a record from the device's memory, measured while it was in calibration
    ingest.commit(device, _delivery(date(2026, 11, 28)))
    obs = _published(box)
    assert [o["status"] for o in obs] == ["final", "final", "preliminary", "final"]
    assert obs[2]["note"] == [{"text": "calibration VER-SN1-0001 expired on 2026-11-30"}]
    for o in obs:
        (ext,) = o["contained"][0]["extension"]
        assert ext["extension"] == [
            {"url": "id", "valueString": "VER-SN1-0001"},
            {"url": "validUntil", "valueDate": "2026-11-30"},
        ]
        Observation.model_validate(o)
        assert errors("Observation", o) == []
    # one event when readings stop being backed by a valid calibration, one when they are again
    assert [(e["type"], e["detail"].get("validity")) for e in _events(box)] == [
        ("calibration.invalid", "expired"),
        ("calibration.valid", None),
    ]
    for e in _events(box):
        assert errors("Event", e) == []


def test_no_record_flags_only_devices_that_require_one(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path / "cal")
    box = Outbox(tmp_path / "outbox.sqlite")
    ingest = Ingest(box, TOPICS, "Europe/Paris", events=Events(box, TOPICS), calibrations=book)
    ingest.commit(DeviceIdentity("tono-1", "SN1", calibration_required=True),
                  _delivery(date(2026, 11, 23)))  # fmt: skip
    ingest.commit(DeviceIdentity("tono-2", "SN2"), _delivery(date(2026, 11, 23)))
    required, optional = _published(box)
    assert required["note"] == [{"text": "no calibration on record for this device"}]
    assert (required["status"], optional["status"]) == ("preliminary", "final")
    assert "extension" not in optional["contained"][0]  # nothing made up
    assert [e["device"] for e in _events(box)] == ["tono-1"]


def test_an_unreadable_record_flags_the_reading_and_keeps_it(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path / "cal")
    (tmp_path / "cal" / "SN1").mkdir(parents=True)
    (tmp_path / "cal" / "SN1" / "CAL-1.json").write_text("not json")
    box = Outbox(tmp_path / "outbox.sqlite")
    ingest = Ingest(box, TOPICS, "Europe/Paris", calibrations=book)
    assert ingest.commit(DeviceIdentity("tono-1", "SN1"), _delivery(date(2026, 11, 23))) == 1
    (obs,) = _published(box)
    assert obs["note"] == [{"text": "calibration record unreadable (see the gateway log)"}]
    assert (tmp_path / "cal" / "SN1" / "CAL-1.json").read_text() == "not json"  # left for a human
