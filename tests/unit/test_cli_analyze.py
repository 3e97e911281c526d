"""``santebus analyze bp|iop``: JSON out, refusals exit 65, bad files named by line, plots.

The ``bp`` contract (JSON, exit codes, plot) is checked against a stand-in ``analyze_bp``; the
real oscillometry runs on a simulated record when :mod:`edge.signal.oscillometry` is present.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from edge.cli_analyze import EX_DATAERR, analyze, load_record
from edge.signal.results import BpEstimate, OscillogramTrace, Refusal
from simulators.physio.bp import BpCase, simulate_bp
from tests.unit.test_tonometry import Puff

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IOP_KEYS = {"iopg_mmHg", "iopcc_mmHg", "ch_mmHg", "p1_mmHg", "p2_mmHg", "quality", "flags"}
BP_KEYS = {"systolic_mmHg", "diastolic_mmHg", "map_mmHg", "pulse_rate_bpm", "quality", "flags"}


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(analyze, [str(a) for a in args])


def write_csv(path: Path, header: str | None, columns: list[np.ndarray], fmt: str) -> Path:
    lines = [header] if header is not None else []
    lines += [fmt.format(*row) for row in zip(*columns, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def puff_csv(path: Path, puff: Puff | None = None, t0: float = 0.0) -> Path:
    puff = puff or Puff()
    pressure, light, fs = puff.record()
    t = t0 + np.arange(pressure.size) / fs
    return write_csv(path, "t,pressure,light", [t, pressure, light], "{:.7f},{:.3f},{:.0f}")


def output(result: Result) -> dict[str, Any]:
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000  # axes, curves and text, not an empty canvas


# -- iop ------------------------------------------------------------------------------------


def test_iop_prints_one_json_object(tmp_path: Path) -> None:
    puff = Puff(iop=18.0, ch=9.0)
    result = run("iop", puff_csv(tmp_path / "puff.csv", puff))
    assert result.exit_code == 0, result.stderr
    found = output(result)
    assert set(found) == IOP_KEYS
    assert found["p1_mmHg"] == pytest.approx(puff.p1, abs=0.3)
    assert found["p2_mmHg"] == pytest.approx(puff.p2, abs=0.3)
    assert found["iopg_mmHg"] == pytest.approx(18.0, abs=0.3)
    assert found["ch_mmHg"] == pytest.approx(9.0, abs=0.5)
    assert found["flags"] == []
    assert 0.0 <= found["quality"] <= 1.0


def test_iop_time_offset_changes_nothing(tmp_path: Path) -> None:
    at_zero = run("iop", puff_csv(tmp_path / "a.csv"))
    at_100 = run("iop", puff_csv(tmp_path / "b.csv", t0=100.0))
    assert at_zero.exit_code == at_100.exit_code == 0
    assert output(at_zero) == output(at_100)


def test_iop_without_times_needs_fs(tmp_path: Path) -> None:
    pressure, light, fs = Puff().record()
    path = write_csv(tmp_path / "pl.csv", "pressure,light", [pressure, light], "{:.3f},{:.0f}")
    missing = run("iop", path)
    assert missing.exit_code == 2
    assert "--fs" in missing.stderr
    given = run("iop", path, "--fs", str(fs))
    assert given.exit_code == 0, given.stderr
    assert output(given) == output(run("iop", puff_csv(tmp_path / "t.csv")))


def test_iop_refusal_is_json_and_exit_65(tmp_path: Path) -> None:
    result = run("iop", puff_csv(tmp_path / "one-peak.csv", Puff(height2=0.0)))
    assert result.exit_code == EX_DATAERR
    found = output(result)
    assert found["error"] == "no-second-peak"
    assert "limit" in found["reason"]
    assert set(found) == {"error", "reason"}


def test_iop_plot(tmp_path: Path) -> None:
    out = tmp_path / "iop.png"
    result = run("iop", puff_csv(tmp_path / "puff.csv"), "--plot", out)
    assert result.exit_code == 0, result.stderr
    assert_png(out)


def test_refused_iop_is_still_plotted(tmp_path: Path) -> None:
    out = tmp_path / "refused.png"
    result = run("iop", puff_csv(tmp_path / "p.csv", Puff(height1=4600.0)), "--plot", out)
    assert result.exit_code == EX_DATAERR
    assert output(result)["error"] == "saturated"
    assert_png(out)


# -- bad files ------------------------------------------------------------------------------


def bad(tmp_path: Path, text: str, *args: str) -> Result:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return run(*args, path)


def test_unparsable_number_names_line_and_column(tmp_path: Path) -> None:
    text = "t,pressure,light\n0,1.0,500\n0.0001,1.1,500\n0.0002,abc,501\n"
    result = bad(tmp_path, text, "iop")
    assert result.exit_code == EX_DATAERR
    assert "line 4, column 2 (pressure): 'abc' is not a number" in result.stderr
    assert result.stdout == ""


def test_non_finite_value_is_refused(tmp_path: Path) -> None:
    result = bad(tmp_path, "p\n1\nnan\n3\n", "bp", "--fs", "100")
    assert result.exit_code == EX_DATAERR
    assert "line 3, column 1 (p)" in result.stderr


def test_wrong_field_count_names_the_line(tmp_path: Path) -> None:
    result = bad(tmp_path, "t,p\n0,1\n0.01,2,3\n", "bp")
    assert result.exit_code == EX_DATAERR
    assert "line 3: 3 fields, expected 2" in result.stderr


def test_time_going_backwards_names_the_line(tmp_path: Path) -> None:
    result = bad(tmp_path, "t,p\n0,1\n0.01,2\n0.02,3\n0.015,4\n", "bp")
    assert result.exit_code == EX_DATAERR
    assert "line 5: time 0.015 s does not increase" in result.stderr


def test_irregular_sampling_names_the_line(tmp_path: Path) -> None:
    t = [0.0, 0.01, 0.02, 0.03, 0.05, 0.06, 0.07, 0.08]
    text = "t,p\n" + "".join(f"{x},{i}\n" for i, x in enumerate(t))
    result = bad(tmp_path, text, "bp")
    assert result.exit_code == EX_DATAERR
    assert "line 6: irregular sampling" in result.stderr


def test_empty_and_single_sample_files(tmp_path: Path) -> None:
    for text in ("", "t,p\n", "t,p\n0,120\n", "\n\n"):
        result = bad(tmp_path, text, "bp", "--fs", "100")
        assert result.exit_code == EX_DATAERR, text
        assert "at least 2 needed" in result.stderr


def test_unknown_header_is_named(tmp_path: Path) -> None:
    result = bad(tmp_path, "time,p\n0,1\n1,2\n", "bp")
    assert result.exit_code == EX_DATAERR
    assert "line 1: header 'time,p', expected 't,p' or 'p'" in result.stderr


def test_fs_contradicting_the_times_is_a_usage_error(tmp_path: Path) -> None:
    result = bad(tmp_path, "t,p\n0,1\n0.01,2\n0.02,3\n", "bp", "--fs", "50")
    assert result.exit_code == 2
    assert "contradicts" in result.stderr


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run("bp", tmp_path / "nope.csv")
    assert result.exit_code == 2


def test_headerless_and_commented_files(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("# exported by the monitor\n120\n\n121\n122\n")
    record = load_record(path, ("p",), 250.0)
    np.testing.assert_array_equal(record.columns["p"], [120.0, 121.0, 122.0])
    assert record.fs == 250.0
    path.write_text("\ufeff0,120\n0.004,121\n0.008,122\n")  # with a byte-order mark
    record = load_record(path, ("p",), None)
    assert record.fs == pytest.approx(250.0)


def test_a_minute_at_1khz_loads(tmp_path: Path) -> None:
    t = 5.0 + np.arange(60_000) / 1000.0
    p = 150.0 - 2.0 * (t - 5.0)
    path = write_csv(tmp_path / "long.csv", "t,p", [t, p], "{:.3f},{:.2f}")
    record = load_record(path, ("p",), None)
    assert record.fs == pytest.approx(1000.0)
    assert record.columns["p"].size == 60_000


# -- bp against a stand-in analyzer -----------------------------------------------------------


def fake_bp_module(result: Callable[[np.ndarray, float], BpEstimate | Refusal]) -> Any:
    module = types.ModuleType("edge.signal.oscillometry")
    module.analyze_bp = result  # type: ignore[attr-defined]
    return module


def fake_estimate(pressure: np.ndarray, fs: float) -> BpEstimate:
    n = pressure.size
    t = np.arange(n) / fs
    beats = np.arange(1.0, n / fs - 1.0, 0.8)
    cuff_at = np.interp(beats, t, pressure)
    amp = 3.0 * np.exp(-(((cuff_at - 95.0) / 25.0) ** 2))
    env_p = np.linspace(60.0, 150.0, 50)
    trace = OscillogramTrace(
        cuff=pressure,
        oscillations=0.5 * np.sin(2 * np.pi * 1.25 * t),
        beat_time=beats,
        beat_pressure=cuff_at,
        beat_amplitude=amp,
        beat_kept=np.arange(beats.size) % 7 != 3,
        envelope_pressure=env_p,
        envelope=3.0 * np.exp(-(((env_p - 95.0) / 25.0) ** 2)),
    )
    return BpEstimate(121.04, 79.96, 93.449, 74.96, 0.876, ("motion-artefact",), "fake", trace)


def deflation_csv(path: Path, t0: float = 0.0) -> Path:
    fs = 100.0
    t = np.arange(int(40 * fs)) / fs
    p = np.where(t < 5, 36 * t, 180 - 3.5 * (t - 5))
    return write_csv(path, "t,p", [t0 + t, p], "{:.3f},{:.3f}")


def test_bp_json_from_the_estimate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "edge.signal.oscillometry", fake_bp_module(fake_estimate))
    out = tmp_path / "bp.png"
    result = run("bp", deflation_csv(tmp_path / "bp.csv"), "--plot", out)
    assert result.exit_code == 0, result.stderr
    assert output(result) == {
        "systolic_mmHg": 121.0,
        "diastolic_mmHg": 80.0,
        "map_mmHg": 93.4,
        "pulse_rate_bpm": 75.0,
        "quality": 0.88,
        "flags": ["motion-artefact"],
    }
    assert_png(out)


def test_bp_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pressure: np.ndarray, fs: float) -> Refusal:
        return Refusal("deflation-too-fast", "deflation too fast: 14.2 mmHg/s, limit 10 mmHg/s")

    monkeypatch.setitem(sys.modules, "edge.signal.oscillometry", fake_bp_module(refuse))
    out = tmp_path / "refused.png"
    result = run("bp", deflation_csv(tmp_path / "bp.csv"), "--plot", out)
    assert result.exit_code == EX_DATAERR
    assert output(result) == {
        "error": "deflation-too-fast",
        "reason": "deflation too fast: 14.2 mmHg/s, limit 10 mmHg/s",
    }
    assert_png(out)


def test_bp_single_column_uses_fs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []

    def spy(pressure: np.ndarray, fs: float) -> BpEstimate:
        seen.append(fs)
        return fake_estimate(pressure, fs)

    monkeypatch.setitem(sys.modules, "edge.signal.oscillometry", fake_bp_module(spy))
    path = write_csv(tmp_path / "p.csv", None, [np.linspace(180, 40, 500)], "{:.2f}")
    assert run("bp", path).exit_code == 2
    assert run("bp", path, "--fs", "125").exit_code == 0
    assert seen == [125.0]


# -- bp with the real oscillometry ----------------------------------------------------------


def simulated_bp_csv(path: Path, t0: float) -> tuple[Path, Any]:
    sample = simulate_bp(BpCase(), np.random.default_rng(6))
    t = t0 + np.arange(sample.pressure.size) / sample.fs
    return write_csv(path, "t,p", [t, sample.pressure], "{:.4f},{:.4f}"), sample.truth


def test_bp_real_analysis(tmp_path: Path) -> None:
    path, truth = simulated_bp_csv(tmp_path / "bp.csv", 0.0)
    result = run("bp", path, "--plot", tmp_path / "bp.png")
    assert result.exit_code == 0, result.stdout + result.stderr
    found = output(result)
    assert set(found) == BP_KEYS
    assert found["systolic_mmHg"] == pytest.approx(truth.systolic, abs=15)
    assert found["diastolic_mmHg"] == pytest.approx(truth.diastolic, abs=15)
    assert found["systolic_mmHg"] > found["map_mmHg"] > found["diastolic_mmHg"]
    assert found["pulse_rate_bpm"] == pytest.approx(truth.heart_rate, abs=5)
    assert_png(tmp_path / "bp.png")
    shifted, _ = simulated_bp_csv(tmp_path / "later.csv", 100.0)
    assert output(run("bp", shifted)) == found
