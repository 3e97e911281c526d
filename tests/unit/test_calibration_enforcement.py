"""The daemon enforces calibration (issue #8): the valid record's model is applied to raw
samples, an expired or failed one never is; readings are flagged (or, per config, withheld)
with an event; the CLI shows and verifies validity and days left."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from calibration.certificate import CalibrationPoint
from calibration.records import CalibrationBook, CalibrationRecord
from drivers.readings import Delivery, DeviceReading
from edge.cli import main
from edge.events import Events
from edge.outbox import Outbox
from edge.pipeline.derive import SensorCalibration, active_sensor
from edge.pipeline.ingest import DeviceIdentity, Ingest
from edge.publish.topics import Topics

TODAY = date(2026, 12, 7)
NOMINAL = SensorCalibration(0.0100, 0.0)
MODEL = {"kind": "linear", "coefficients": [-5.0, 0.0106]}  # mmHg = -5 + 0.0106 counts
COUNTS = np.array([472.0, 9906.0, 24056.0])


def record(
    serial: str = "NIBP-1", *, until: date = TODAY + timedelta(days=30), result: str = "pass"
) -> CalibrationRecord:
    error = 0.01 if result == "pass" else 4.0
    return CalibrationRecord(
        id=f"CAL-{serial}-{until:%Y%m%d}-{result}",
        device_serial=serial,
        device_model="NIBP module",
        kind="calibration",
        performed_at=datetime(2026, 11, 1, 9, tzinfo=UTC),
        valid_from=min(until, date(2026, 11, 1)),
        valid_until=until,
        result=result,
        technician="tech-1",
        reference_id="REF-1",
        points=(CalibrationPoint(reference=100.0, raw=9906.0, as_left=100.0 + error, error=error),),
        model=MODEL,
        tolerance=3.0,
        max_error=error,
        procedure="nibp-transducer",
    )


def test_the_valid_records_model_is_applied_to_the_raw_samples(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path)
    book.add(record())
    sensor = active_sensor(NOMINAL, book, "NIBP-1", TODAY)
    assert sensor.source == "CAL-NIBP-1-20270106-pass"
    assert sensor.apply(COUNTS) == pytest.approx(-5.0 + 0.0106 * COUNTS)
    # no record for another device: the nominal relation
    assert active_sensor(NOMINAL, book, "OTHER", TODAY).apply(COUNTS) == pytest.approx(
        0.01 * COUNTS
    )


@pytest.mark.parametrize(
    ("until", "result"),
    [(TODAY - timedelta(days=1), "pass"), (TODAY + timedelta(days=30), "fail")],
    ids=["expired", "failed"],
)
def test_an_expired_or_failed_record_is_never_applied(
    tmp_path: Path, until: date, result: str
) -> None:
    book = CalibrationBook(tmp_path)
    book.add(record(until=until, result=result))
    sensor = active_sensor(NOMINAL, book, "NIBP-1", TODAY)
    assert sensor.source == "config"
    assert sensor.apply(COUNTS) == pytest.approx(0.01 * COUNTS)
    # the day before it lapsed, the same record did apply
    if result == "pass":
        assert active_sensor(NOMINAL, book, "NIBP-1", until).source != "config"


def test_a_tampered_record_is_not_applied(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path)
    path = book.add(record())
    data = json.loads(path.read_text())
    data["model"]["coefficients"][0] = -15.0  # someone "fixed" the offset by hand
    path.chmod(0o644)
    path.write_text(json.dumps(data))
    assert active_sensor(NOMINAL, CalibrationBook(tmp_path), "NIBP-1", TODAY).source == "config"


async def _ack() -> None:
    return None


def _ingest(tmp_path: Path, book: CalibrationBook) -> tuple[Ingest, Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite")
    topics = Topics("bus-1")
    return Ingest(box, topics, "UTC", events=Events(box, topics), calibrations=book), box


def _events(box: Outbox) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in box.rows() if r.kind == "event"]


@pytest.mark.parametrize("withhold", [False, True], ids=["flagged", "withheld"])
def test_readings_of_a_device_with_an_expired_calibration(tmp_path: Path, withhold: bool) -> None:
    book = CalibrationBook(tmp_path / "cal")
    book.add(record(serial="TONO-1", until=TODAY - timedelta(days=1)))
    ingest, box = _ingest(tmp_path, book)
    device = DeviceIdentity("tono-1", "TONO-1", calibration_withhold=withhold)
    taken = datetime.combine(TODAY, datetime.min.time()).replace(hour=10)
    reading = DeviceReading("iop.right", 16.0, "mmHg", taken, "rec-1")
    ingest.commit(device, Delivery((reading,), "CT-80", _ack))
    clinical = [json.loads(r.payload) for r in box.rows() if r.kind == "clinical"]
    kinds = [e["type"] for e in _events(box)]
    reason = "calibration CAL-TONO-1-20261206-pass expired on 2026-12-06"
    if withhold:
        assert clinical == []  # never published
        (held,) = box.quarantined()
        assert held.reason == f"withheld: {reason}"
        assert "reading.quarantined" in kinds
    else:
        (obs,) = clinical
        assert obs["status"] == "preliminary"
        assert obs["note"] == [{"text": reason}]
    assert "calibration.invalid" in kinds


def _cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    cfg = tmp_path / "bus.toml"
    cfg.write_text(
        f'[gateway]\nbus_id = "bus-1"\nstate_dir = "{tmp_path / "state"}"\n'
        '[mqtt]\nhost = "127.0.0.1"\ntls = false\n'
        '[devices.nibp-1]\nkind = "nibp"\ntransport = "serial:///dev/null"\n'
        'serial_number = "NIBP-1"\n'
    )
    result = CliRunner().invoke(main, ["calibrate", *args, "--config", str(cfg)])
    return result.exit_code, " ".join(result.output.split())


def test_the_cli_shows_days_left_and_refuses_to_verify_an_expired_record(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path / "state" / "calibration")
    expired = record(until=date(2026, 1, 31))
    book.add(expired)
    code, out = _cli(tmp_path, "list", "--json")
    listed = json.loads(out)
    assert code == 0
    assert (listed["validity"], listed["record"]) == ("expired", expired.id)
    assert listed["days_left"] < 0
    code, out = _cli(tmp_path, "verify", expired.id)
    assert code == 1
    assert "expired on 2026-01-31" in out
    code, out = _cli(tmp_path, "verify", "NO-SUCH-RECORD")
    assert code == 1
    assert "no calibration record NO-SUCH-RECORD" in out
