"""The physiological simulators (simulators/physio) keep their promises: truth, labels, cohorts."""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from simulators.physio.bp import BpCase, BpSample, oscillation_envelope, simulate_bp
from simulators.physio.cohort import (
    bp_cohort,
    draw_bp_case,
    draw_iop_case,
    envelope_cohort,
    iop_cohort,
)
from simulators.physio.envelope import characteristic_ratios, envelope_amplitude
from simulators.physio.iop import (
    IopSample,
    applanation_times,
    iopcc,
    plenum_pressure,
    simulate_iop,
)

F64 = NDArray[np.float64]
BP_FAULTS = {"too-short", "deflation-too-fast", "deflation-uneven", "clipped", "no-envelope-peak"}


@cache
def bp_records(n: int = 120, seed: int = 11) -> tuple[BpSample, ...]:
    return tuple(simulate_bp(c, np.random.default_rng(i)) for i, c in enumerate(bp_cohort(n, seed)))


def with_label(label: str) -> list[BpSample]:
    found = [s for s in bp_records() if label in s.labels]
    assert found, label
    return found


def smooth(x: F64, fs: float, seconds: float) -> F64:
    n = max(1, int(fs * seconds))
    return np.convolve(x, np.ones(n) / n, mode="same")


def deflation_span(s: BpSample) -> tuple[int, int]:
    """(index of the top of the cuff pressure, index where the deflation ends: dump or cut)."""
    p = smooth(s.pressure, s.fs, 0.25)
    top = int(np.argmax(p))
    rate = np.gradient(p) * s.fs
    # A dump falls fast and to near zero; a valve jump does not.
    for i in np.flatnonzero(rate[top:] < -40.0):
        if p[min(p.size - 1, top + int(i) + int(s.fs))] < 10.0:
            return top, top + int(i)
    return top, p.size - 1


# --- determinism ----------------------------------------------------------------------------------


def test_cohorts_and_records_are_deterministic_for_a_seed() -> None:
    assert bp_cohort(40, seed=3) == bp_cohort(40, seed=3)
    assert bp_cohort(40, seed=3) != bp_cohort(40, seed=4)
    case = bp_cohort(5, seed=3)[0]
    a = simulate_bp(case, np.random.default_rng(7))
    b = simulate_bp(case, np.random.default_rng(7))
    c = simulate_bp(case, np.random.default_rng(8))
    assert np.array_equal(a.pressure, b.pressure)
    assert a.truth == b.truth
    assert a.labels == b.labels
    assert not np.array_equal(a.pressure[: c.pressure.size], c.pressure[: a.pressure.size])
    assert draw_bp_case(np.random.default_rng(1)) == draw_bp_case(np.random.default_rng(1))


# --- truth ----------------------------------------------------------------------------------------


def test_bp_truth_is_consistent_and_near_the_case() -> None:
    for s in bp_records():
        t = s.truth
        assert t.systolic > t.mean > t.diastolic
        # mean is the time-average of the waveform, not a 1/3 rule: its form factor varies
        assert 0.2 < (t.mean - t.diastolic) / (t.systolic - t.diastolic) < 0.6
        assert abs(t.systolic - s.case.systolic) < 15
        assert abs(t.diastolic - s.case.diastolic) < 15
        if s.case.arrhythmia == "none":
            assert t.heart_rate == pytest.approx(s.case.heart_rate, rel=0.15)
        assert s.fs == s.case.fs
        assert 250 <= s.fs <= 1000


def test_the_cohort_spans_the_promised_physiology() -> None:
    cases = bp_cohort()
    sbp = np.array([c.systolic for c in cases])
    dbp = np.array([c.diastolic for c in cases])
    hr = np.array([c.heart_rate for c in cases])
    assert sbp.min() >= 90
    assert sbp.max() <= 200
    assert dbp.min() >= 50 - 1e-9
    assert dbp.max() <= 120 + 1e-9
    assert np.all(sbp - dbp >= 20 - 1e-9)
    assert np.all(sbp - dbp <= 100 + 1e-9)
    assert hr.min() >= 45
    assert hr.max() <= 120
    assert np.ptp(sbp) > 90
    assert len({c.fs for c in cases}) >= 4
    assert {c.adc_bits for c in cases} >= {12, 16}


# --- labels ---------------------------------------------------------------------------------------


def test_clean_means_no_artefact_and_faults_are_never_clean() -> None:
    for s in bp_records():
        assert s.labels
        if "clean" in s.labels:
            assert s.labels <= {"clean", "stiff"}
        if s.labels & (BP_FAULTS | {"arrhythmia", "motion"}):
            assert "clean" not in s.labels
        assert ("stiff" in s.labels) == (s.case.stiffness >= 0.6)


def test_a_too_fast_record_really_deflates_faster_than_10_mmhg_per_s() -> None:
    for s in bp_records():
        top, end = deflation_span(s)
        p = smooth(s.pressure, s.fs, 0.25)
        rate = (p[top] - p[end]) / ((end - top) / s.fs)
        if "deflation-too-fast" in s.labels:
            assert rate > 10.0
        elif not s.labels & BP_FAULTS:
            assert rate < 10.0


def test_a_clipped_record_really_saturates_below_its_top_pressure() -> None:
    for s in with_label("clipped"):
        top = s.pressure.max()
        assert top == pytest.approx(s.case.full_scale, abs=1e-6)
        assert top < s.case.systolic + s.case.top_margin
        assert np.sum(s.pressure >= top - 1e-9) > 0.5 * s.fs  # flat for a while, not one spike
    for s in bp_records():
        if "clipped" not in s.labels:
            assert s.pressure.max() < s.case.full_scale


def test_no_envelope_peak_starts_below_systolic_or_stops_above_diastolic() -> None:
    for s in with_label("no-envelope-peak"):
        top, end = deflation_span(s)
        p = smooth(s.pressure, s.fs, 1.0)
        assert p[top] < s.truth.systolic or p[end] > s.truth.diastolic


def test_a_too_short_record_is_cut_before_diastolic_without_a_dump() -> None:
    for s in with_label("too-short"):
        tail = s.pressure[-int(0.2 * s.fs) :]
        assert tail.mean() > s.truth.diastolic


def test_an_uneven_deflation_jumps_by_10_mmhg_or_more_within_a_fraction_of_a_second() -> None:
    for s in with_label("deflation-uneven"):
        top, end = deflation_span(s)
        p = smooth(s.pressure, s.fs, 0.1)[top : end - int(0.3 * s.fs)]
        lag = int(0.3 * s.fs)
        assert np.max(p[:-lag] - p[lag:]) >= 8.0


def test_motion_disturbs_the_measuring_range_beyond_the_oscillations() -> None:
    for s in with_label("motion"):
        hp = s.pressure - smooth(s.pressure, s.fs, 1.5)
        top, end = deflation_span(s)
        inner = hp[top + int(s.fs) : end - int(s.fs)]
        assert np.ptp(inner) > 3.0


def test_pressure_is_quantised_on_the_adc_grid() -> None:
    for s in bp_records()[:30]:
        lsb = s.case.full_scale / (2**s.case.adc_bits - 1)
        codes = s.pressure / lsb
        assert np.allclose(codes, np.round(codes), atol=1e-6)
        assert s.pressure.min() >= 0.0
        steps = np.diff(np.unique(s.pressure))
        assert steps.min() == pytest.approx(lsb, rel=1e-6)


def test_records_include_idle_inflation_deflation_and_dump() -> None:
    for s in bp_records()[:20]:
        if "too-short" in s.labels:
            continue
        p = s.pressure
        top = int(np.argmax(smooth(p, s.fs, 0.25)))
        assert p[: int(0.2 * s.fs)].max() < 3.0  # starts at atmospheric pressure
        assert top > 2 * s.fs  # inflation takes seconds
        assert p[-int(0.2 * s.fs) :].mean() < 10.0  # ends deflated


# --- the model: characteristic ratios are not fixed -----------------------------------------------


def test_characteristic_ratios_spread_with_pulse_pressure_and_stiffness() -> None:
    cases = [c for c in bp_cohort(200, seed=21) if c.arrhythmia == "none"][:40]
    pc = np.arange(20.0, 260.0, 1.0)
    rs, rd, pp, off = [], [], [], []
    for c in cases:
        amp = oscillation_envelope(c, pc)
        i = int(np.argmax(amp))
        rs.append(np.interp(c.systolic, pc, amp) / amp[i])
        rd.append(np.interp(c.diastolic, pc, amp) / amp[i])
        pp.append(c.systolic - c.diastolic)
        off.append(pc[i] - (c.diastolic + (c.systolic - c.diastolic) / 3))
        assert 0.5 < amp[i] < 8.0  # mmHg peak-to-peak, as real cuffs see
    rs_a, rd_a = np.array(rs), np.array(rd)
    # A realistic range (Geddes ~0.5/0.8; Liu 2013 and Babbs 2012: wide subject variation)
    assert rs_a.min() > 0.2
    assert rs_a.max() < 0.95
    assert rd_a.min() > 0.4
    assert rd_a.max() <= 1.0
    assert np.percentile(rs_a, 90) - np.percentile(rs_a, 10) > 0.15
    assert np.percentile(rd_a, 90) - np.percentile(rd_a, 10) > 0.1
    assert abs(np.corrcoef(rs_a, pp)[0, 1]) > 0.1  # depends on pulse pressure
    assert abs(float(np.median(off))) < 15.0  # the maximum sits near the mean pressure


def test_stiffer_arteries_change_the_envelope() -> None:
    soft = BpCase(systolic=150, diastolic=80, stiffness=0.1, distension=0.025)
    stiff = replace(soft, stiffness=0.9, distension=0.06)
    pc = np.arange(30.0, 230.0, 1.0)
    a, b = oscillation_envelope(soft, pc), oscillation_envelope(stiff, pc)
    ra = np.interp(150.0, pc, a) / a.max()
    rb = np.interp(150.0, pc, b) / b.max()
    assert abs(ra - rb) > 0.03


def test_the_envelope_model_honours_its_characteristic_ratios() -> None:
    for i, case in enumerate(envelope_cohort(12)):
        s = simulate_bp(case, np.random.default_rng(i))
        t = s.truth
        rs, rd = characteristic_ratios(t.systolic - t.diastolic, case.env_shape)
        amp = envelope_amplitude(case, t, np.array([t.systolic, t.mean, t.diastolic]))
        assert amp[0] / amp[1] == pytest.approx(rs, rel=1e-6)
        assert amp[2] / amp[1] == pytest.approx(rd, rel=1e-6)
        assert amp[1] == pytest.approx(case.env_amplitude)
        assert s.truth.systolic > s.truth.diastolic


# --- cohort composition ---------------------------------------------------------------------------


def test_bp_cohort_composition() -> None:
    cases = bp_cohort()
    assert len(cases) == 600
    arr = sum(c.arrhythmia != "none" for c in cases)
    mot = sum(c.motion_bursts > 0 for c in cases)
    both = sum(c.arrhythmia != "none" and c.motion_bursts > 0 for c in cases)
    assert (arr, mot, both) == (120, 120, 30)
    kinds = {"af": 0, "ectopic": 0}
    for c in cases:
        if c.arrhythmia != "none":
            kinds[c.arrhythmia] += 1
    assert min(kinds.values()) > 35
    counts = Counter(label for s in bp_records() for label in s.labels)
    n = len(bp_records())
    assert 0.45 < counts["clean"] / n < 0.65
    assert counts["stiff"] / n > 0.12
    assert all(counts[f] >= 1 for f in BP_FAULTS)


def test_screening_draws_are_mostly_clean() -> None:
    rng = np.random.default_rng(5)
    cases = [draw_bp_case(rng) for _ in range(300)]
    plain = sum(
        c.arrhythmia == "none" and c.motion_bursts == 0 and c.truncate_pressure is None
        for c in cases
    )
    assert plain / len(cases) > 0.65


# --- air-puff tonometry ---------------------------------------------------------------------------


@cache
def iop_records() -> tuple[IopSample, ...]:
    return tuple(simulate_iop(c, np.random.default_rng(i)) for i, c in enumerate(iop_cohort()))


def iop_with(label: str) -> list[IopSample]:
    found = [s for s in iop_records() if label in s.labels]
    assert found, label
    return found


def near(s: IopSample, at: float, ms: float) -> slice:
    i = round(at * s.fs)
    k = round(ms * 1e-3 * s.fs)
    return slice(max(0, i - k), i + k + 1)


def test_iop_truth_follows_the_documented_formulas() -> None:
    for s in iop_records():
        t = s.truth
        assert t.iopg == pytest.approx((t.p1 + t.p2) / 2)
        assert t.ch == pytest.approx(t.p1 - t.p2)
        assert t.iopcc == pytest.approx((t.p2 - 0.43 * t.p1) / 0.57 + 13.17)
        assert t.iopcc == pytest.approx(t.iopg - 1.2544 * (t.ch - 10.5), abs=0.01)
        assert t.crf == pytest.approx(t.p1 - 0.7 * t.p2)
        assert 8.0 <= t.iopg <= 40.0
        assert 5.0 <= t.ch <= 15.0
        assert t.p2 >= 3.0 - 1e-9
        assert t.p1 == pytest.approx(s.case.p1)
    assert iopcc(20.0, 10.0) == pytest.approx((10.0 - 8.6) / 0.57 + 13.17)


def test_applanation_instants_sit_where_the_plenum_pressure_equals_p1_and_p2() -> None:
    for s in iop_records()[:50]:
        t1, t2 = applanation_times(s.case)
        p = plenum_pressure(s.case, np.array([t1, t1 + 1e-4, t2, t2 + 1e-4]))
        assert p[0] == pytest.approx(s.truth.p1, abs=1e-9)
        assert p[2] == pytest.approx(s.truth.p2, abs=1e-9)
        assert p[1] > p[0]  # rising through P1
        assert p[3] < p[2]  # falling through P2
        assert 0 < t1 < t2 < s.pressure.size / s.fs
        assert s.pressure.max() > s.truth.p1 + 2.0  # the puff peaks above P1


def test_clean_light_apexes_give_the_truth_within_sampling_error() -> None:
    for s in iop_with("clean")[:60]:
        t1, t2 = applanation_times(s.case)
        for at, truth in ((t1, s.truth.p1), (t2, s.truth.p2)):
            w = near(s, at, 1.5)
            light = np.convolve(s.light, np.ones(3) / 3, mode="same")
            i = w.start + int(np.argmax(light[w]))
            assert abs(s.pressure[i] - truth) < 3.0


def test_light_is_12_bit_counts_and_pressure_is_quantised() -> None:
    for s in iop_records()[:80]:
        assert np.array_equal(s.light, np.round(s.light))
        assert s.light.min() >= 0
        assert s.light.max() <= 4095
        q = s.pressure / 0.05
        assert np.allclose(q, np.round(q), atol=1e-6)
        assert 10000 <= s.fs <= 20000
        assert 0.025 <= s.pressure.size / s.fs <= 0.04
        assert s.pressure.size == s.light.size


def test_iop_fault_labels_are_what_they_say() -> None:
    for s in iop_records():
        t1, t2 = applanation_times(s.case)
        base = s.case.baseline
        if "saturated" in s.labels:
            assert np.sum(s.light[near(s, t1, 1.0)] == 4095) >= 3
            assert np.sum(s.light[near(s, t2, 1.0)] == 4095) >= 3
        else:
            assert s.light.max() < 4095
        if "blink" in s.labels:
            assert np.median(s.light[near(s, t2, 0.3)]) < 0.6 * base
        if "no-second-peak" in s.labels:
            assert s.light[near(s, t2, 1.5)].max() < base + abs(s.case.drift) + 0.2 * s.case.peak1
        if "misaligned" in s.labels:
            assert s.light[near(s, t1, 1.0)].max() - base < 0.6 * s.case.peak1
        if "noisy" in s.labels:
            assert np.std(np.diff(s.light[: round(0.001 * s.fs)])) > 50
        if "clean" in s.labels:
            assert s.labels == {"clean"}
            assert s.light[near(s, t1, 0.5)].max() > base + 0.5 * s.case.peak1
            assert s.light[near(s, t2, 0.5)].max() > base + 0.25 * s.case.peak1


def test_iop_cohort_composition_and_determinism() -> None:
    cases = iop_cohort()
    assert cases == iop_cohort()
    assert len(cases) == 400
    faults = Counter(c.fault for c in cases)
    assert faults["none"] == 300
    assert all(faults[f] == 20 for f in ("noisy", "blink", "saturated", "misaligned"))
    assert faults["no-second-peak"] == 20
    assert Counter(c.eye for c in cases) == {"right": 200, "left": 200}
    a = simulate_iop(cases[0], np.random.default_rng(3))
    b = simulate_iop(cases[0], np.random.default_rng(3))
    assert np.array_equal(a.light, b.light)
    assert np.array_equal(a.pressure, b.pressure)
    assert np.ptp([c.iopg for c in cases]) > 20
    assert min(c.ch for c in cases) < 7.5


def test_draw_iop_case_is_mostly_clean_and_checks_the_eye() -> None:
    rng = np.random.default_rng(2)
    cases = [draw_iop_case(rng, "left") for _ in range(200)]
    assert all(c.eye == "left" for c in cases)
    assert sum(c.fault == "none" for c in cases) > 160
    with pytest.raises(ValueError, match="eye"):
        draw_iop_case(rng, "middle")


# --- architecture ---------------------------------------------------------------------------------


def test_simulators_never_import_edge() -> None:
    root = Path(__file__).resolve().parents[2] / "simulators" / "physio"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("edge"), path
            elif isinstance(node, ast.Import):
                assert all(not a.name.startswith("edge") for a in node.names), path
