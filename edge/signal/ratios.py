"""Variable characteristic ratios: SBP, DBP and MAP from the whole shape of the envelope.

The fixed-ratio method reads SBP where the envelope has fallen to 0.55 of its maximum on the
high-pressure side and DBP where it has fallen to 0.85 on the low-pressure side (Geddes et al.
1982). Liu, Hahn & Mukkamala (Ann Biomed Eng 2013;41:587-597) showed why that fails: the ratio
at the true pressure moves with pulse pressure and arterial stiffness, and both change the
envelope's shape. Lim et al. ("Oscillometric blood pressure estimation based on variable
characteristic ratios using the Gaussian mixture regression", IEEE Trans Biomed Eng 2015)
therefore predict the ratios from envelope features with a regression learned on recordings
with a reference pressure. This module does the same in its simplest form:

* the features are the pressures at which the smoothed envelope crosses 16 levels, 0.20 to
  0.95 of its maximum in steps of 0.05, on each side of the maximum (the envelope's width at
  every height: it carries pulse pressure, which widens the envelope, and stiffness, which
  skews it), each relative to the cuff pressure of the maximum, plus the lowest level the
  envelope reaches on each side (the tail left by the artery under the cuff's edge). A level
  the envelope never falls to is given the last cuff pressure with a beat on that side;
* SBP, DBP and MAP are each that maximum's pressure plus a linear function of the features,
  with coefficients fitted by ridge regression (:func:`fit_ratios`) on records with known
  intra-arterial pressure.

Properties that follow from the construction and that the tests hold: a constant pressure
offset shifts all three readings by the offset (every feature is a difference of pressures or
a ratio of amplitudes); scaling the oscillations changes nothing (only ratios of amplitudes
enter); and the reading is a fixed linear map, so a beat more or less moves it smoothly rather
than flipping between local optima as the model fit of :mod:`edge.signal.envelope_model` can.

The coefficients the gateway uses (:mod:`edge.signal.ratio_table`) were learned on a cohort of
the project's arm/cuff simulator (``benchmarks/train_bp_ratios.py`` regenerates them). Before
clinical use they must be re-learned on recordings paired with a reference (ISO 81060-2
protocol): this module's code does not change, the table does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.signal.envelope import RawEnvelope, ratio_crossing
from edge.signal.filters import FloatArray

#: envelope levels (fractions of the maximum) whose crossing pressures are the features
LEVELS: tuple[float, ...] = tuple(round(0.20 + 0.05 * i, 2) for i in range(16))
#: features per record: intercept, one width per level and side, the two tail levels
N_FEATURES = 1 + 2 * len(LEVELS) + 2


def feature_names() -> tuple[str, ...]:
    """Names of the features in the order of :func:`envelope_features` (for tables, checks)."""
    names = ["intercept"]
    for level in LEVELS:
        names += [f"high@{level:.2f}", f"low@{level:.2f}"]
    return (*names, "tail-high", "tail-low")


def envelope_features(env: RawEnvelope) -> FloatArray:
    """Feature vector of one envelope (see the module docstring), length :data:`N_FEATURES`.

    Widths are in mmHg (crossing pressure minus the pressure of the maximum: positive on the
    high-pressure side, negative on the low-pressure side); tails are fractions of the maximum.
    """
    top = float(env.smooth[env.peak])
    out = np.empty(N_FEATURES)
    out[0] = 1.0
    highest, lowest = float(env.pressure[0]), float(env.pressure[-1])
    for i, level in enumerate(LEVELS):
        high = ratio_crossing(env, level, high_side=True)
        low = ratio_crossing(env, level, high_side=False)
        out[1 + 2 * i] = (highest if high is None else high) - env.mean
        out[2 + 2 * i] = (lowest if low is None else low) - env.mean
    scale = max(top, 1e-12)
    out[-2] = float(np.min(env.smooth[: env.peak + 1])) / scale
    out[-1] = float(np.min(env.smooth[env.peak :])) / scale
    return out


@dataclass(frozen=True, slots=True)
class RatioModel:
    """Coefficients of the three linear readings (each of length :data:`N_FEATURES`)."""

    systolic: tuple[float, ...]
    diastolic: tuple[float, ...]
    mean: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("systolic", "diastolic", "mean"):
            got = len(getattr(self, name))
            if got != N_FEATURES:
                raise ValueError(
                    f"ratio model: {name} has {got} coefficients, the features are {N_FEATURES}"
                )

    def read(self, env: RawEnvelope) -> tuple[float, float, float]:
        """(SBP, DBP, MAP) in mmHg for one envelope."""
        x = envelope_features(env)
        return (
            env.mean + float(np.dot(self.systolic, x)),
            env.mean + float(np.dot(self.diastolic, x)),
            env.mean + float(np.dot(self.mean, x)),
        )


def fit_ratios(features: FloatArray, offsets: FloatArray, ridge: float = 0.01) -> RatioModel:
    """Ridge regression of ``offsets`` (rows: SBP, DBP, MAP minus the maximum's pressure).

    ``features`` is (records, N_FEATURES) from :func:`envelope_features`; ``offsets`` is
    (records, 3). The intercept is not penalised. A small ridge keeps the solution unique
    where two levels' crossings coincide (a short envelope tail gives several levels the same
    last-beat pressure).
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(offsets, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != N_FEATURES or y.shape != (x.shape[0], 3):
        raise ValueError(
            f"fit_ratios: features {x.shape} and offsets {y.shape} must be "
            f"(n, {N_FEATURES}) and (n, 3)"
        )
    penalty = ridge * np.eye(N_FEATURES)
    penalty[0, 0] = 0.0
    coef = np.linalg.solve(x.T @ x + penalty, x.T @ y)
    return RatioModel(
        systolic=tuple(float(c) for c in coef[:, 0]),
        diastolic=tuple(float(c) for c in coef[:, 1]),
        mean=tuple(float(c) for c in coef[:, 2]),
    )
