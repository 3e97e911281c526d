"""Oscillometric blood pressure: estimates, refusals, flags, properties, cohort accuracy.

The records here come from a small forward model of our own (not the project's simulator):
a pulse of sin^2 upstroke and exponential run-off, an exponential-collapse / saturating-
distension artery, a cuff whose compliance follows the gas law, linear deflation, white noise.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.signal.baseline import fixed_ratio_bp, model_fit_bp
from edge.signal.beats import detect_beats
from edge.signal.filters import fft_bandpass
from edge.signal.oscillometry import BpSettings, analyze_bp
from edge.signal.ratios import N_FEATURES, RatioModel
from edge.signal.results import BpEstimate, Refusal
from simulators.physio.bp import simulate_bp
from simulators.physio.cohort import bp_cohort


def _volume(pt: np.ndarray) -> np.ndarray:
    b, d = 0.09, 0.03
    return np.where(pt < 0, np.exp(b * np.minimum(pt, 0)), 1 + (b / d) * -np.expm1(-d * pt))


def record(
    sbp: float = 130.0,
    dbp: float = 80.0,
    hr: float = 70.0,
    *,
    fs: float = 500.0,
    rate: float = 4.0,
    top: float | None = None,
    bottom: float | None = None,
    noise: float = 0.03,
    amp: float = 2.5,
    rr_jitter: float = 0.01,
    seed: int = 0,
    pre: float = 1.0,
    stutter: bool = False,
    slip_at: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(pressure, oscillatory component) of a whole record: baseline, inflation, deflation."""
    rng = np.random.default_rng(seed)
    top = sbp + 35.0 if top is None else top
    bottom = dbp - 30.0 if bottom is None else bottom
    t_up = pre + top / 25.0
    t_def = t_up + 0.3
    t_dump = t_def + (top - bottom) / rate
    dur = t_dump + 3.0
    t = np.arange(int(dur * fs)) / fs
    period = 60.0 / hr
    rr = period * (1.0 + rr_jitter * rng.standard_normal(int(dur / period * 2) + 10))
    onsets = np.concatenate([[-0.5], -0.5 + np.cumsum(np.clip(rr, 0.3 * period, 3 * period))])
    k = np.searchsorted(onsets, t, side="right") - 1
    tau = t - onsets[k]
    shape = np.where(tau < 0.12, np.sin(np.pi / 2 * tau / 0.12) ** 2, np.exp(-(tau - 0.12) / 0.35))
    pa = dbp + (sbp - dbp) * shape
    pc = np.interp(t, [0, pre, t_up, t_def, t_dump, t_dump + bottom / 100, dur],
                   [0, 0, top, top, bottom, 0, 0])  # fmt: skip
    if stutter:  # the valve holds for 2 s after every 2 s of deflation (at twice the rate)
        in_def = (t > t_def) & (t < t_dump)
        phase = (t - t_def) % 4.0
        done = 2.0 * rate * (np.floor((t - t_def) / 4.0) * 2.0 + np.minimum(phase, 2.0))
        pc = np.where(in_def, np.maximum(top - done, bottom), pc)
    if slip_at is not None:  # the valve slips 25 mmHg in 0.1 s when the cuff passes slip_at
        t_slip = t_def + (top - slip_at) / rate
        drop = 25.0 * np.clip((t - t_slip) / 0.1, 0.0, 1.0)
        pc = np.where((t > t_def) & (t < t_dump), np.maximum(pc - drop, bottom), pc)
    n = max(1, int(period * fs))
    mean_pa = np.convolve(pa, np.ones(n) / n, mode="same")
    osc = (_volume(pa - pc) - _volume(mean_pa - pc)) * (760.0 + pc) / 760.0
    osc *= amp / (np.percentile(np.abs(osc), 99.9) * 1.6)
    osc *= pc > 5.0
    return pc + osc + noise * rng.standard_normal(t.size), osc


def _estimate(pressure: np.ndarray, fs: float = 500.0) -> BpEstimate:
    result = analyze_bp(pressure, fs)
    assert isinstance(result, BpEstimate), result
    return result


@pytest.fixture(scope="module")
def clean() -> BpEstimate:
    return _estimate(record()[0])


def test_a_clean_record_gives_a_consistent_estimate(clean: BpEstimate) -> None:
    assert clean.systolic == pytest.approx(130.0, abs=6.0)
    assert clean.diastolic == pytest.approx(80.0, abs=6.0)
    assert clean.systolic > clean.mean > clean.diastolic
    assert clean.pulse_rate == pytest.approx(70.0, abs=2.0)
    assert clean.flags == ()
    assert 0.5 < clean.quality <= 1.0
    assert "variable characteristic ratios" in clean.method
    trace = clean.trace
    assert trace is not None
    assert trace.cuff.size == trace.oscillations.size == record()[0].size
    assert trace.beat_kept.sum() >= 8
    assert trace.envelope.size == trace.envelope_pressure.size


def test_the_trace_draws_the_smoothed_envelope_of_the_kept_beats(clean: BpEstimate) -> None:
    trace = clean.trace
    assert trace is not None
    kept = np.sort(trace.beat_pressure[trace.beat_kept])[::-1]
    assert np.allclose(trace.envelope_pressure, kept)
    # MAP is read by the regression, near (not exactly at) the envelope's maximum
    at_max = float(trace.envelope_pressure[int(np.argmax(trace.envelope))])
    assert abs(clean.mean - at_max) < 10.0


def test_the_model_fit_reads_the_same_beats(clean: BpEstimate) -> None:
    fit = model_fit_bp(record()[0], 500.0)
    assert isinstance(fit, BpEstimate)
    assert fit.systolic > fit.mean > fit.diastolic
    assert "Liu" in fit.method
    assert fit.pulse_rate == clean.pulse_rate


def test_the_baseline_reads_fixed_ratios_off_the_same_beats(clean: BpEstimate) -> None:
    base = fixed_ratio_bp(record()[0], 500.0)
    assert isinstance(base, BpEstimate)
    assert base.systolic > base.mean > base.diastolic
    assert "0.55" in base.method
    assert base.pulse_rate == clean.pulse_rate


def test_beats_of_a_known_pulse_train_are_all_found() -> None:
    fs, hr = 200.0, 75.0
    t = np.arange(int(20 * fs)) / fs
    onsets = np.arange(0.3, 20.0, 60.0 / hr)
    k = np.searchsorted(onsets, t, side="right") - 1
    tau = np.where(k >= 0, t - onsets[np.maximum(k, 0)], 10.0)
    pulse = np.where(tau < 0.1, np.sin(np.pi / 2 * tau / 0.1) ** 2, np.exp(-(tau - 0.1) / 0.3))
    x = 150.0 - 3.0 * t + 1.5 * pulse
    osc = fft_bandpass(x, fs, 0.6, 10.0)
    beats = detect_beats(osc, osc, 150.0 - 3.0 * t, fs)
    # every onset away from the ends is found, and every detection is a true onset
    inner = onsets[(onsets > 0.5) & (onsets < 19.5)]
    feet = t[beats.foot]
    assert np.max(np.min(np.abs(inner[:, None] - feet[None, :]), axis=1)) < 0.05
    assert np.max(np.min(np.abs(feet[:, None] - onsets[None, :]), axis=1)) < 0.05
    assert np.allclose(np.diff(feet), 60.0 / hr, atol=0.03)
    assert np.all(beats.amplitude > 1.3)


@pytest.mark.parametrize(
    ("make", "code", "figure"),
    [
        (lambda: record()[0][:2000], "too-short", "4.0 s"),
        # cut at ~100 mmHg, 24 s in: long enough, but the deflation below 100 mmHg is missing
        (lambda: record()[0][:12000], "too-short", "still inflated"),
        (lambda: record(rate=15.0)[0], "deflation-too-fast", "10 mmHg/s"),
        (lambda: record(stutter=True)[0], "deflation-uneven", "%"),
        # a slip is not the release: the deflation goes on after it, the cuff does not empty
        (lambda: record(slip_at=110.0)[0], "deflation-uneven", "valve slip"),
        (lambda: record(slip_at=75.0, rate=6.0)[0], "deflation-uneven", "valve slip"),
        (lambda: record(slip_at=80.0, rate=3.0, bottom=30.0)[0], "deflation-uneven", "at 8"),
        (lambda: record(amp=0.0, noise=0.05)[0], "too-few-beats", "need 8"),
        (lambda: np.minimum(record()[0], 150.0), "clipped", "150.0 mmHg"),
        (lambda: record(top=115.0)[0], "no-envelope-peak", "mmHg"),
    ],
)
def test_each_refusal_names_the_figure_and_the_limit(make, code: str, figure: str) -> None:  # type: ignore[no-untyped-def]
    result = analyze_bp(make(), 500.0)
    assert isinstance(result, Refusal), result
    assert result.code == code, result.reason
    assert figure in result.reason
    assert re.search(r"\d", result.reason)
    # the baseline shares the front end, so it refuses the same records
    base = fixed_ratio_bp(make(), 500.0)
    assert isinstance(base, Refusal)


def _flat_model(systolic: float, diastolic: float, mean: float) -> RatioModel:
    """A ratio model that reads the maximum's pressure plus constants (to force readings)."""
    zero = (0.0,) * (N_FEATURES - 1)
    return RatioModel((systolic, *zero), (diastolic, *zero), (mean, *zero))


@pytest.mark.parametrize(
    ("offsets", "figure"),
    [((-5.0, 5.0, 0.0), "pulse pressure of -10 mmHg"), ((30.0, -20.0, 35.0), "mean pressure")],
)
def test_readings_no_artery_gives_are_refused(
    offsets: tuple[float, float, float], figure: str
) -> None:
    result = analyze_bp(record()[0], 500.0, ratios=_flat_model(*offsets))
    assert isinstance(result, Refusal), result
    assert result.code == "envelope-shape"
    assert figure in result.reason
    # the same record with plausible offsets is read
    plausible = analyze_bp(record()[0], 500.0, ratios=_flat_model(30.0, -20.0, 5.0))
    assert isinstance(plausible, BpEstimate)


def test_irregular_rhythm_is_flagged_and_regular_is_not(clean: BpEstimate) -> None:
    irregular = analyze_bp(record(rr_jitter=0.3, seed=3)[0], 500.0)
    assert isinstance(irregular, BpEstimate)
    assert "irregular-rhythm" in irregular.flags
    assert "irregular-rhythm" not in clean.flags


def test_movement_is_flagged_or_refused() -> None:
    p, _ = record(seed=4)
    fs = 500.0
    t = np.arange(p.size) / fs
    for centre in (14.0, 19.0, 24.0):
        bump = np.abs(t - centre) < 0.4
        p[bump] += 12.0 * np.sin(np.pi * (t[bump] - centre + 0.4) / 0.8) ** 2
    result = analyze_bp(p, fs)
    if isinstance(result, Refusal):
        assert result.code == "motion"
    else:
        assert "motion-artefact" in result.flags


def test_non_finite_samples_are_refused() -> None:
    p = record()[0]
    p[100] = np.nan
    result = analyze_bp(p, 500.0)
    assert isinstance(result, Refusal)
    assert result.code == "invalid"


# -- properties -----------------------------------------------------------------------------

#: derandomized: a random search in every CI run would fail at random on a rare corner instead
#: of measuring it (benchmarks/signal_robustness.py measures how far harmless changes move the
#: reading)
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True)
pressures = st.tuples(st.floats(100.0, 170.0), st.floats(0.45, 0.75), st.floats(55.0, 100.0))


def _case(values: tuple[float, float, float], seed: int) -> tuple[np.ndarray, np.ndarray]:
    sbp, ratio, hr = values
    return record(sbp, max(50.0, sbp * ratio), hr, seed=seed)


@PROPERTY
@given(values=pressures, seed=st.integers(0, 10_000), cut=st.floats(0.0, 0.8))
def test_dropping_some_steady_baseline_changes_little(
    values: tuple[float, float, float], seed: int, cut: float
) -> None:
    p, _ = _case(values, seed)
    a = _estimate(p)
    b = _estimate(p[int(cut * 500.0) :])
    assert abs(a.systolic - b.systolic) < 1.5
    assert abs(a.diastolic - b.diastolic) < 1.5


@PROPERTY
@given(values=pressures, seed=st.integers(0, 10_000), offset=st.floats(-5.0, 20.0))
def test_a_constant_pressure_offset_shifts_the_estimate(
    values: tuple[float, float, float], seed: int, offset: float
) -> None:
    # the analysis has absolute floors (beats below 15 mmHg are ignored, the release is seen
    # below 15 mmHg), so the invariance holds for deflations that stay clear of them
    sbp, ratio, hr = values
    p, _ = record(sbp, max(50.0, sbp * ratio), hr, bottom=40.0, seed=seed)
    a = _estimate(p)
    b = _estimate(p + offset)
    assert b.systolic - a.systolic == pytest.approx(offset, abs=1.5)
    assert b.diastolic - a.diastolic == pytest.approx(offset, abs=1.5)


@PROPERTY
@given(values=pressures, seed=st.integers(0, 10_000), sigma=st.floats(0.0, 0.05))
def test_a_little_more_sensor_noise_moves_the_reading_little(
    values: tuple[float, float, float], seed: int, sigma: float
) -> None:
    # the stated bound, on these records (an ideal arm): up to 0.05 mmHg RMS of extra white
    # noise (a good transducer's floor; the records already carry 0.03) moves SBP and DBP by
    # less than 2 mmHg (measured on 48 such records: median 0.35, max 1.05 mmHg). On the
    # simulated cohort benchmarks/signal_robustness.py measures median 0.5, max 2.1 mmHg.
    p, _ = _case(values, seed)
    a = _estimate(p)
    b = _estimate(p + sigma * np.random.default_rng(seed + 1).standard_normal(p.size))
    assert abs(a.systolic - b.systolic) < 2.0
    assert abs(a.diastolic - b.diastolic) < 2.0


@pytest.mark.parametrize(("sbp", "dbp", "hr"), [(130.0, 80.0, 70.0), (150.0, 90.0, 80.0),
                                                (120.0, 75.0, 60.0)])  # fmt: skip
@pytest.mark.parametrize("scale", [0.5, 0.75, 1.5, 2.0])
def test_the_oscillation_scale_does_not_matter(
    sbp: float, dbp: float, hr: float, scale: float
) -> None:
    # a cuff wrapped looser or tighter scales the oscillations, not the pressures at which
    # they peak and fade (measured: at most 0.7 mmHg on these records; low-pressure records at
    # slow rates move more, benchmarks/signal_robustness.py)
    p, osc = record(sbp, dbp, hr, seed=0)
    a = _estimate(p)
    b = _estimate(p + (scale - 1.0) * osc)
    assert abs(a.systolic - b.systolic) < 1.5
    assert abs(a.diastolic - b.diastolic) < 1.5


def test_settings_carry_the_documented_limits() -> None:
    s = BpSettings()
    assert (s.max_deflation_rate, s.min_beats) == (10.0, 8)
    assert (s.systolic_ratio, s.diastolic_ratio) == (0.55, 0.85)


# -- accuracy on the project's synthetic cohort ------------------------------------------------


def _cohort_errors(count: int) -> tuple[np.ndarray, np.ndarray]:
    model: list[np.ndarray] = []
    base: list[np.ndarray] = []
    for i, case in enumerate(bp_cohort(n=600, seed=6)[:count]):
        sample = simulate_bp(case, np.random.default_rng(1000 + i))
        if not sample.labels <= {"clean", "stiff"}:
            continue
        truth = np.array([sample.truth.systolic, sample.truth.diastolic])
        for out, fn in ((model, analyze_bp), (base, fixed_ratio_bp)):
            r = fn(sample.pressure, sample.fs)
            if isinstance(r, BpEstimate):
                out.append(np.array([r.systolic, r.diastolic]) - truth)
    return np.array(model), np.array(base)


def test_clean_cohort_errors_stay_at_their_measured_level() -> None:
    """A regression guard at today's figures on a small slice of the benchmark's cohort.

    Measured on bp_cohort[:120] (79 clean records the gateway estimated; the fixed ratios on
    those they estimated): variable ratios SBP +0.7 ± 5.1, DBP -0.2 ± 3.9 mmHg; fixed ratios
    SBP +4.5 ± 7.5, DBP +5.1 ± 8.8. The
    issue's bound (|mean| <= 2, SD <= 5) is checked on the full cohort by
    benchmarks/signal_accuracy.py (benchmarks/README.md); on 79 records the SD itself is only
    known to about ± 0.4 mmHg, hence the margin here.
    """
    model, base = _cohort_errors(120)
    assert len(model) >= 70
    mean, sd = model.mean(axis=0), model.std(axis=0)
    assert np.all(np.abs(mean) <= 2.0), mean
    assert np.all(sd <= 6.0), sd
    # better than fixed ratios in both bias and scatter, for SBP and DBP alike
    assert np.all(np.abs(mean) < np.abs(base.mean(axis=0))), (mean, base.mean(axis=0))
    assert np.all(sd < base.std(axis=0) - 1.5), (sd, base.std(axis=0))


def test_a_shake_bigger_than_the_pulse_is_never_taken_for_the_envelope() -> None:
    # found in the demo: a 2 s, 9 Hz shake some 10 times the pulse, in the middle of the
    # deflation, passed every beat test (the 5-beat amplitude median rose with it) and was
    # published as the envelope maximum, with a pulse rate of 155 /min
    p, _ = record(130.0, 80.0, 65.0, seed=3)
    t = np.arange(p.size) / 500.0
    burst = (t > 16.0) & (t < 18.0)
    window = np.sin(np.pi * (t - 16.0) / 2.0) ** 2
    p = p + np.where(burst, 12.0 * window * np.sin(2 * np.pi * 9.0 * t), 0.0)
    result = analyze_bp(p, 500.0)
    if isinstance(result, Refusal):
        assert result.code == "motion", result.reason
    else:
        assert "motion-artefact" in result.flags
        assert 50.0 < result.pulse_rate < 80.0
