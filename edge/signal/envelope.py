"""Oscillogram envelope: the smoothed beat amplitudes and the level crossings read off them.

The envelope is the beat amplitude as a function of cuff pressure ``Pc``, its beats sorted by
decreasing pressure and smoothed (median of 3, then mean of 3); its maximum ``A_max`` is located
by a parabolic vertex. :func:`ratio_crossing` finds where it falls to a fraction of ``A_max`` on
either side. The fixed-ratio method reads SBP at ``0.55 A_max`` on the high-pressure side and
DBP at ``0.85 A_max`` on the low-pressure side (Geddes et al., "Characterization of the
oscillometric method for measuring indirect blood pressure", Ann Biomed Eng 1982;10:271-280);
Liu, Hahn & Mukkamala ("Error mechanisms of the oscillometric fixed-ratio blood pressure
measurement method", Ann Biomed Eng 2013;41:587-597) showed that the right ratios drift with
pulse pressure and arterial stiffness.

Two readings use it: the gateway's variable characteristic ratios (:mod:`edge.signal.ratios`,
which replace the fixed ratios by a regression on the envelope's whole shape) and, for the
benchmark's comparison, a patient-specific arterial-model fit
(:mod:`edge.signal.envelope_model`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.signal.filters import FloatArray, moving_average, running_median


@dataclass(frozen=True, slots=True, eq=False)
class RawEnvelope:
    """Kept beats sorted by decreasing cuff pressure, and their smoothed amplitude."""

    pressure: FloatArray
    amplitude: FloatArray
    smooth: FloatArray
    #: index of the maximum of ``smooth`` and the MAP read from it (parabolic vertex)
    peak: int
    mean: float


def raw_envelope(pressure: FloatArray, amplitude: FloatArray) -> RawEnvelope:
    """Sort by decreasing pressure, smooth (median of 3, then mean of 3), locate the maximum."""
    order = np.argsort(-pressure, kind="stable")
    p = pressure[order]
    a = amplitude[order]
    sm = moving_average(running_median(a, 3), 3) if a.size >= 3 else a.copy()
    k = int(np.argmax(sm))
    mean = float(p[k])
    if 0 < k < sm.size - 1:
        # vertex of the parabola through the maximum and its neighbours (pressure axis)
        x = p[k - 1 : k + 2] - p[k]
        y = sm[k - 1 : k + 2]
        coef = np.polyfit(x, y, 2)
        if coef[0] < 0:
            vertex = -coef[1] / (2.0 * coef[0])
            mean = float(p[k] + np.clip(vertex, x.min(), x.max()))
    return RawEnvelope(pressure=p, amplitude=a, smooth=sm, peak=k, mean=mean)


def ratio_crossing(env: RawEnvelope, ratio: float, *, high_side: bool) -> float | None:
    """Cuff pressure where the smoothed envelope falls to ``ratio`` x max (linear interpolation).

    Searches outwards from the maximum; None if the envelope never falls that far.
    """
    level = ratio * float(env.smooth[env.peak])
    k = env.peak
    idx = range(k, -1, -1) if high_side else range(k, env.smooth.size)
    prev = k
    for i in idx:
        if env.smooth[i] <= level:
            a0, a1 = float(env.smooth[prev]), float(env.smooth[i])
            p0, p1 = float(env.pressure[prev]), float(env.pressure[i])
            if a0 == a1:
                return p1
            return p0 + (level - a0) * (p1 - p0) / (a1 - a0)
        prev = i
    return None
