"""Variable characteristic ratios: the features, the regression, the shipped table."""

from __future__ import annotations

import numpy as np
import pytest

from edge.signal import ratio_table
from edge.signal.envelope import raw_envelope
from edge.signal.ratios import (
    LEVELS,
    N_FEATURES,
    RatioModel,
    envelope_features,
    feature_names,
    fit_ratios,
)


def _envelope(shift: float = 0.0, scale: float = 1.0, low: float = 60.0):  # type: ignore[no-untyped-def]
    """A skewed bell of beats every 2.5 mmHg from 170 down to ``low``, peak at 100 mmHg."""
    p = np.arange(170.0, low - 0.01, -2.5)
    width = np.where(p > 100.0, 22.0, 14.0)
    a = scale * np.exp(-0.5 * ((p - 100.0) / width) ** 2)
    return raw_envelope(p + shift, a)


def test_the_features_are_named_and_the_table_matches_them() -> None:
    names = feature_names()
    assert len(names) == N_FEATURES == 1 + 2 * len(LEVELS) + 2
    assert names[:2] == ("intercept", "high@0.20")
    assert names[-1] == "tail-low"
    # the shipped coefficients were learned for these levels, in this order
    assert ratio_table.LEVELS == LEVELS
    assert len(ratio_table.RATIO_MODEL.systolic) == N_FEATURES


def test_features_are_widths_that_ignore_offsets_and_scale() -> None:
    base = envelope_features(_envelope())
    assert np.allclose(envelope_features(_envelope(shift=12.5)), base)
    assert np.allclose(envelope_features(_envelope(scale=3.0)), base)
    widths = base[1 : 1 + 2 * len(LEVELS)]
    high, low = widths[0::2], widths[1::2]
    assert np.all(high > 0)
    assert np.all(low < 0)
    # the higher the level, the narrower the envelope there; the high side is the wider one
    assert np.all(np.diff(high) < 0)
    assert np.all(np.diff(low) > 0)
    # half widths at 0.5 (the 3-beat smoothing widens the narrow side by about a mmHg)
    assert high[6] == pytest.approx(22.0 * np.sqrt(2 * np.log(2)), abs=1.5)
    assert low[6] == pytest.approx(-14.0 * np.sqrt(2 * np.log(2)), abs=1.5)


def test_a_level_the_envelope_never_reaches_takes_the_last_beat() -> None:
    env = _envelope(low=85.0)  # beats stop at 85 mmHg, where the bell is still at 0.56
    x = envelope_features(env)
    low_at_20 = x[2]
    assert low_at_20 == pytest.approx(85.0 - env.mean)
    assert x[-1] == pytest.approx(float(np.min(env.smooth[env.peak :])) / env.smooth[env.peak])


def test_the_regression_recovers_known_coefficients() -> None:
    rng = np.random.default_rng(3)
    x = np.column_stack([np.ones(400), rng.normal(0.0, 10.0, (400, N_FEATURES - 1))])
    truth = rng.normal(0.0, 0.5, (N_FEATURES, 3))
    model = fit_ratios(x, x @ truth, ridge=1e-9)
    got = np.array([model.systolic, model.diastolic, model.mean]).T
    assert np.allclose(got, truth, atol=1e-6)


def test_a_reading_moves_with_a_constant_offset() -> None:
    model = ratio_table.RATIO_MODEL
    a = np.array(model.read(_envelope()))
    b = np.array(model.read(_envelope(shift=9.0)))
    assert np.allclose(b - a, 9.0)
    sbp, dbp, mean = a
    assert sbp > mean > dbp


def test_mismatched_shapes_are_refused_with_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(n, 35\)"):
        fit_ratios(np.ones((5, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="systolic has 2 coefficients"):
        RatioModel(systolic=(1.0, 2.0), diastolic=(0.0,) * N_FEATURES, mean=(0.0,) * N_FEATURES)
