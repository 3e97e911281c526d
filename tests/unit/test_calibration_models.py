"""Calibration models: least-squares fits, refusals, monotonicity, the GUM uncertainty budget."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from calibration.models import CalibrationFitError, Model, evaluate, fit

#: the NIBP procedure's static points (mmHg)
PRESSURES = np.array([0.0, 50.0, 100.0, 150.0, 200.0, 250.0])


@given(
    gain=st.floats(0.005, 0.02),
    offset=st.floats(-50.0, 50.0),
    noise=st.lists(st.floats(-0.5, 0.5), min_size=6, max_size=6),
)
def test_a_linear_fit_recovers_gain_and_offset_from_noisy_points(
    gain: float, offset: float, noise: list[float]
) -> None:
    counts = (PRESSURES - offset) / gain  # the transducer: mmHg = gain x counts + offset
    reference = PRESSURES + np.array(noise)  # the manometer, within +-0.5 mmHg
    model = fit("linear", counts, reference)
    c0, c1 = model.coefficients
    # with six equally spaced points the fitted slope moves by at most sum|p - mean| x 0.5 /
    # sum (p - mean)^2 = 0.5 % of the gain, and a fitted value by at most 1.48 x 0.5 mmHg
    # inside the range (the hat matrix's largest row sum), 1.93 x 0.5 at the offset (0 counts,
    # at most 50 mmHg outside it)
    assert c1 == pytest.approx(gain, rel=0.01)
    assert c0 == pytest.approx(offset, abs=1.0)
    span = np.linspace(counts.min(), counts.max(), 50)
    assert np.max(np.abs(model.apply(span) - (gain * span + offset))) <= 1.0
    assert model.is_monotonic(float(counts.min()), float(counts.max()))
    assert isinstance(model.apply(1000.0), float)


def test_a_quadratic_transducer_is_recovered_by_a_polynomial_fit() -> None:
    counts = np.linspace(300.0, 25000.0, 6)
    truth = Model("polynomial", (-3.0, 0.0101, 2e-8))
    model = fit("polynomial", counts, truth.apply(counts), degree=2)
    assert model.kind == "polynomial"
    assert model.coefficients == pytest.approx(truth.coefficients, rel=1e-6, abs=1e-9)
    assert model.describe("counts", "mmHg") == "mmHg = -3 + 0.0101 counts + 2e-08 counts^2"


@given(
    start=st.floats(-1e4, 1e4),
    dxs=st.lists(st.floats(0.01, 1000.0), min_size=1, max_size=11),
    steps=st.lists(st.floats(0.01, 100.0), min_size=12, max_size=12),
)
def test_a_piecewise_model_passes_through_its_knots_and_extends_its_end_segments(
    start: float, dxs: list[float], steps: list[float]
) -> None:
    x = start + np.concatenate([[0.0], np.cumsum(dxs)])
    assume(np.all(np.diff(x) > 0))  # distinct after rounding
    y = np.cumsum(steps[: x.size])
    shuffled = np.random.default_rng(0).permutation(x.size)
    model = fit("piecewise", x[shuffled], y[shuffled])  # the order of the points does not matter
    assert model.apply(x) == pytest.approx(y, rel=1e-12, abs=1e-9)
    slope = (y[1] - y[0]) / (x[1] - x[0])
    assert model.apply(float(x[0]) - 10.0) == pytest.approx(y[0] - 10.0 * slope, rel=1e-9)
    slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
    assert model.apply(float(x[-1]) + 10.0) == pytest.approx(y[-1] + 10.0 * slope, rel=1e-9)


def test_a_model_that_falls_over_the_range_is_refused_with_the_points_named() -> None:
    counts = (PRESSURES + 3.0) / 0.01
    with pytest.raises(CalibrationFitError, match="not increasing") as info:
        fit("linear", counts, PRESSURES[::-1])  # swapped: more pressure, fewer counts
    assert "rises with its input" in str(info.value)
    swapped = PRESSURES.copy()
    swapped[[2, 3]] = swapped[[3, 2]]  # two points typed in the wrong order
    with pytest.raises(CalibrationFitError, match=r"reference 150 at raw 10300, then 100 at raw"):
        fit("piecewise", counts, swapped)
    hump = np.array([0.0, 80.0, 120.0, 130.0, 120.0, 90.0])  # a transducer saturating, then worse
    with pytest.raises(CalibrationFitError, match="not increasing"):
        fit("polynomial", counts, hump, degree=2)
    assert fit("piecewise", counts, swapped, monotonic=False).kind == "piecewise"  # when asked


def test_monotonicity_of_a_polynomial_is_checked_between_its_stationary_points() -> None:
    cubic = Model("polynomial", (0.0, 0.0, 0.0, 1.0))  # x^3: flat at 0, still strictly rising
    assert cubic.is_monotonic(-2.0, 2.0)
    wiggle = Model("polynomial", (0.0, -3.0, 0.0, 1.0))  # x^3 - 3x: a maximum at -1, minimum at 1
    assert not wiggle.is_monotonic(-2.0, 2.0)
    assert wiggle.is_monotonic(1.1, 3.0)
    # a dip far narrower than the dense grid's spacing is still seen (its extrema are added)
    narrow = Model("polynomial", (0.0, 1e-9, -3e-3, 1.0))  # falls only on (1.7e-7, 2e-3)
    assert not narrow.is_monotonic(-1000.0, 1000.0)
    assert Model("linear", (1.0, -0.5)).is_monotonic(0.0, 1.0) is False
    with pytest.raises(ValueError, match="not a range"):
        cubic.is_monotonic(2.0, 1.0)


@pytest.mark.parametrize(
    ("kind", "x", "y", "message"),
    [
        ("linear", [1.0], [1.0], r"needs >= 2 points at >= 2 distinct raw values; got 1 points"),
        ("linear", [1.0, 1.0], [1.0, 2.0], "got 2 points at 1"),
        ("polynomial", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], "needs >= 4 points"),
        ("piecewise", [1.0], [1.0], r"needs >= 2 points; got 1"),
        ("piecewise", [1.0, 2.0, 2.0], [1.0, 2.0, 3.0], r"x \[2.0\] repeated"),
        ("linear", [1.0, math.nan, 3.0], [1.0, 2.0, 3.0], r"non-finite values at point\(s\) \[1\]"),
        ("linear", [1.0, 2.0], [1.0, math.inf], "non-finite"),
        ("linear", [1.0, 2.0], [1.0, 2.0, 3.0], "the same length"),
    ],
)
def test_too_few_or_bad_points_are_refused_clearly(
    kind: str, x: list[float], y: list[float], message: str
) -> None:
    with pytest.raises(CalibrationFitError, match=message):
        fit(kind, x, y)  # type: ignore[arg-type]  # kind: a str from the table


def test_the_uncertainty_budget_matches_a_hand_calculation() -> None:
    model = Model("linear", (0.0, 1.0))  # reading = raw, so the errors are chosen below
    x = np.array([0.0, 50.0, 100.0, 150.0])
    y = x - np.array([0.5, -0.5, 0.5, -1.0])
    stats = evaluate(model, x, y, reference_expanded=0.8, resolution=1.0, tolerance=1.0)
    assert stats.errors == pytest.approx((0.5, -0.5, 0.5, -1.0))  # reading - reference
    assert (stats.max_abs_error, stats.worst, stats.dof) == (1.0, 3, 2)
    assert stats.rms == pytest.approx(math.sqrt(1.75 / 4))
    # by hand: u_fit = sqrt(1.75 / (4 - 2)) = 0.935414; u_ref = 0.8 / 2 = 0.4;
    # u_res = 1 / sqrt(12) = 0.288675; u_c = sqrt(0.875 + 0.16 + 0.083333) = 1.057513
    assert stats.u_fit == pytest.approx(0.935414, abs=1e-6)
    assert stats.u_reference == pytest.approx(0.4)
    assert stats.u_resolution == pytest.approx(0.288675, abs=1e-6)
    assert stats.u_combined == pytest.approx(1.057513, abs=1e-6)
    assert stats.expanded == pytest.approx(2.115026, abs=1e-6)
    assert stats.k == 2.0
    # simple acceptance: |error| = 1.0 <= 1.0 passes even though U is larger than the tolerance
    assert stats.passed
    assert stats.uncertainty_ratio == pytest.approx(1.0 / 2.115026, rel=1e-6)
    assert not evaluate(model, x, y, reference_expanded=0.8, resolution=1.0, tolerance=0.99).passed


def test_a_model_through_every_point_says_its_fit_term_is_not_estimable() -> None:
    counts = (PRESSURES + 3.0) / 0.01
    model = fit("piecewise", counts, PRESSURES)
    stats = evaluate(model, counts, PRESSURES, reference_expanded=0.5, resolution=0.01,
                     tolerance=3.0)  # fmt: skip
    assert (stats.dof, stats.u_fit) == (0, None)
    assert stats.max_abs_error == pytest.approx(0.0)
    assert "0 degrees of freedom" in stats.notes[0]
    assert stats.u_combined == pytest.approx(math.hypot(0.25, 0.01 / math.sqrt(12)))


def test_a_verification_without_a_model_judges_the_readings_themselves() -> None:
    eyes = np.array([10.0, 20.0, 30.0])  # model eyes of known IOP
    readings = np.array([10.5, 19.0, 31.2])
    stats = evaluate(None, readings, eyes, reference_expanded=0.4, resolution=0.1, tolerance=2.0)
    assert stats.errors == pytest.approx((0.5, -1.0, 1.2))
    assert (stats.worst, stats.u_fit, stats.passed) == (2, None, True)
    assert stats.u_combined == pytest.approx(math.hypot(0.2, 0.1 / math.sqrt(12)))
    with pytest.raises(ValueError, match="tolerance is a finite number"):
        evaluate(None, readings, eyes, reference_expanded=0.4, resolution=0.1, tolerance=-1.0)


@pytest.mark.parametrize(
    "model",
    [
        Model("linear", (-3.2, 0.0101)),
        Model("polynomial", (-3.0, 0.0101, 2e-8)),
        Model("piecewise", knots=((0.0, -3.0), (10000.0, 98.0), (25000.0, 250.0))),
    ],
)
def test_models_round_trip_through_json(model: Model) -> None:
    back = Model.from_dict(json.loads(json.dumps(model.to_dict())))
    assert back == model


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "cubic", "coefficients": [0, 1]}, "not a calibration model"),
        ({"kind": "linear", "coefficients": [0, 1], "extra": 1}, "unknown keys"),
        ({"kind": "linear", "coefficients": [0, 1, 2]}, "exactly two coefficients"),
        ({"kind": "piecewise", "knots": [[0, 0], [0, 1]]}, "strictly rising x"),
        ({"kind": "linear", "coefficients": ["a", 1]}, "not a calibration model"),
        ({"kind": "linear", "coefficients": [math.nan, 1]}, "non-finite"),
    ],
)
def test_a_malformed_model_is_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Model.from_dict(data)
