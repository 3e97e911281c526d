"""The calibration report: a PNG a technician reads at a glance, and the JSON certificate."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from matplotlib.image import imread

from calibration.certificate import CalibrationPoint, CheckResult
from calibration.models import evaluate, fit
from calibration.records import CalibrationBook, CalibrationRecord, seal
from calibration.report import BANNER, certificate_json, render

PRESSURES = np.array([0.0, 50.0, 100.0, 150.0, 200.0, 250.0])
COUNTS = (PRESSURES + 3.2) / 0.0101 + np.array([3.0, -20.0, 15.0, -10.0, 40.0, -5.0])


def _nibp(*, drift: float = 0.0, leak: float = 2.1) -> CalibrationRecord:
    """A transducer calibration; ``drift`` mmHg on the 200 mmHg point after it was fitted."""
    model = fit("linear", COUNTS, PRESSURES)
    stats = evaluate(model, COUNTS, PRESSURES, reference_expanded=0.5, resolution=0.0101,
                     tolerance=3.0)  # fmt: skip
    errors = np.array(stats.errors)
    errors[4] += drift
    left = PRESSURES + errors
    found = 0.0098 * COUNTS - 2.0  # the old calibration read low at the top
    points = [
        CalibrationPoint(reference=p, raw=c, as_found=f, as_left=a, error=e)
        for p, c, f, a, e in zip(PRESSURES, COUNTS, found, left, errors, strict=True)
    ]
    leak_test = CheckResult(name="leak", value=leak, limit=6.0, unit="mmHg/min",
                            passed=leak <= 6.0, detail="150 mmHg held 60 s")  # fmt: skip
    cut_off = CheckResult(name="overpressure", value=298.0, limit=300.0, unit="mmHg",
                          passed=True, detail="cut-off valve opened")  # fmt: skip
    checks = [leak_test, cut_off]
    max_error = float(np.abs(errors).max())
    passed = max_error <= 3.0 and leak <= 6.0
    return CalibrationRecord(
        id="CAL-NIBP1-0001",
        device_serial="NIBP1",
        device_model="NIBP-M2",
        kind="calibration",
        performed_at=datetime(2026, 6, 1, 9, 30, tzinfo=ZoneInfo("Europe/Paris")),
        valid_from=date(2026, 6, 1),
        valid_until=date(2026, 11, 30),
        result="pass" if passed else "fail",
        technician="tech-07",
        reference_id="DPI-620-1234",
        reference_due=date(2027, 1, 15),
        points=tuple(points),
        model=model.to_dict(),
        unit="mmHg",
        raw_unit="counts",
        tolerance=3.0,
        max_error=max_error,
        uncertainty_k2=stats.expanded,
        checks=tuple(checks),
        software_version="0.1.0",
        procedure="nibp-transducer",
    )


def _banner_colour(png: Path) -> tuple[float, float, float]:
    """The median colour inside the banner (its text, white, is a minority of the pixels)."""
    image = imread(png)
    height, width = image.shape[:2]
    left, bottom, w, h = BANNER
    rows = slice(int((1 - bottom - h) * height) + 2, int((1 - bottom) * height) - 2)
    cols = slice(int(left * width) + 2, int((left + w) * width) - 2)
    r, g, b = (float(np.median(image[rows, cols, i])) for i in range(3))
    return r, g, b


def _png_size(png: Path) -> tuple[int, int]:
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_a_passing_calibration_has_a_green_banner(tmp_path: Path) -> None:
    record = _nibp()
    assert record.result == "pass"
    out = render(record, tmp_path / "pass.png")
    assert out == tmp_path / "pass.png"
    width, height = _png_size(out)
    assert width >= 800
    assert height >= 600
    r, g, b = _banner_colour(out)
    assert g > 0.4
    assert g > r + 0.25
    assert g > b + 0.2


@pytest.mark.parametrize(
    "changes", [{"drift": 3.8}, {"leak": 7.4}], ids=["point beyond tolerance", "leak"]
)
def test_a_failed_calibration_has_a_red_banner(tmp_path: Path, changes: dict[str, Any]) -> None:
    record = _nibp(**changes)
    assert record.result == "fail"
    out = render(record, tmp_path / "fail.png")
    assert _png_size(out)[0] >= 800
    r, g, b = _banner_colour(out)
    assert r > 0.6
    assert r > g + 0.4
    assert r > b + 0.4


def test_a_verification_without_a_model_is_drawn_from_its_errors(tmp_path: Path) -> None:
    eyes = [(10.0, 10.5), (20.0, 19.0), (30.0, 31.2)]  # (model eye IOP, tonometer reading)
    record = CalibrationRecord(
        id="VER-CT80-0001",
        device_serial="CT80-1",
        device_model="CT-80",
        kind="verification",
        performed_at=datetime(2026, 6, 1, 9, 30, tzinfo=ZoneInfo("Europe/Paris")),
        valid_until=date(2026, 11, 30),
        result="pass",
        technician="tech-07",
        reference_id="EYE-SET-3",
        points=tuple(CalibrationPoint(reference=e, raw=r, error=r - e) for e, r in eyes),
        unit="mmHg",
        tolerance=2.0,
        procedure="tonometer-model-eyes",
    )
    out = render(record, tmp_path / "ver.png")
    assert _png_size(out)[0] >= 800
    r, g, _ = _banner_colour(out)
    assert g > r + 0.25


def test_a_record_without_points_is_refused(tmp_path: Path) -> None:
    old = _nibp().model_copy(update={"points": (), "checks": ()})
    with pytest.raises(ValueError, match="record CAL-NIBP1-0001 has no calibration points"):
        render(old, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_the_certificate_is_the_sealed_record_as_sorted_json(tmp_path: Path) -> None:
    record = _nibp()
    text = certificate_json(record)
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert text.startswith('{\n  "checks": [')
    content = {k: v for k, v in data.items() if k != "sha256"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert data["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    # the same digest as the book stores, and the stored record gives the same certificate
    book = CalibrationBook(tmp_path)
    book.add(record)
    assert certificate_json(book.get(record.id)) == text
    assert CalibrationRecord.model_validate(data) == seal(record)
    with pytest.raises(ValueError, match="sha256 does not match"):
        certificate_json(record.model_copy(update={"sha256": "0" * 64}))
