"""Beat detection in the cuff oscillations and per-beat foot-to-peak amplitude and shape.

Detection runs on the slope sum function (SSF) of Zong et al. ("An open-source algorithm to
detect onset of arterial blood pressure pulses", Computers in Cardiology 2003;30:259-262): the
sum of the positive first differences over a 100 ms window. It peaks once per beat at the end of
the systolic upstroke and is insensitive to the slower dicrotic wave. Because the oscillation
amplitude varies ten-fold along a deflation, the threshold is relative to the running maximum of
the SSF over 2 s (a beat or two: on the steep flanks of the envelope a longer window would
hide the small beats behind big ones), and a 300 ms refractory period (200 /min) keeps one
detection per upstroke; detections much closer than the median interval that are much weaker
than their neighbour (dicrotic waves) are dropped.

Around each SSF peak the beat's foot is the oscillation minimum in the 250 ms before it and the
peak is the maximum in the 250 ms after the upstroke began; the amplitude is their difference
(foot-to-peak, i.e. the volume swing between diastolic and systolic arterial pressure), and the
beat's cuff pressure is the low-passed cuff pressure halfway between foot and peak. The shape
(aligned on the upstroke, over 55 % of the beat interval, resampled to 24 points) serves the
artefact tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.signal.filters import FloatArray, running_max

IntArray = npt.NDArray[np.int64]

SHAPE_POINTS = 24


@dataclass(frozen=True, slots=True, eq=False)
class Beats:
    """Detected beats (indices into the analysed range at the work rate)."""

    foot: IntArray
    peak: IntArray
    amplitude: FloatArray
    #: the cuff pressure of the beat (low-passed, mmHg)
    pressure: FloatArray
    #: normalised beat shapes (rows, zero mean and unit norm), for the template test
    shape: FloatArray

    @property
    def count(self) -> int:
        return int(self.foot.size)


def slope_sum(osc: FloatArray, fs: float) -> FloatArray:
    """Zong's slope sum function: positive differences summed over the last 100 ms."""
    up = np.maximum(np.diff(osc, prepend=osc[:1]), 0.0)
    w = max(2, round(0.1 * fs))
    csum = np.concatenate([[0.0], np.cumsum(up)])
    lo = np.maximum(np.arange(1, osc.size + 1) - w, 0)
    return np.asarray(csum[1:] - csum[lo], dtype=np.float64)


def _upstrokes(ssf: FloatArray, fs: float, rel: float) -> IntArray:
    """SSF peaks above ``rel`` x the 2 s running maximum, one per 300 ms refractory period.

    An absolute floor of 3 x the median SSF (between upstrokes the SSF holds only noise, and
    that is most of the time) keeps noise out where no beat is near.
    """
    if ssf.size < 3:
        return np.zeros(0, dtype=np.int64)
    local = running_max(ssf, max(3, round(2.0 * fs)))
    floor = 3.0 * float(np.median(ssf))
    thr = np.maximum(rel * local[1:-1], floor)
    inner = ssf[1:-1]
    cand = np.flatnonzero((inner > ssf[:-2]) & (inner >= ssf[2:]) & (inner > thr))
    cand = cand + 1
    refractory = round(0.3 * fs)
    # greedy non-maximum suppression: the highest peaks claim their neighbourhood first
    order = cand[np.argsort(-ssf[cand], kind="stable")]
    taken = np.zeros(ssf.size, dtype=bool)
    kept: list[int] = []
    for i in order.tolist():
        lo, hi = max(0, i - refractory), min(ssf.size, i + refractory + 1)
        if not taken[lo:hi].any():
            kept.append(i)
            taken[i] = True
    return np.asarray(sorted(kept), dtype=np.int64)


def _drop_secondary(up: IntArray, ssf: FloatArray) -> IntArray:
    """Drop weak detections much closer to a neighbour than the median interval (dicrotic)."""
    if up.size < 4:
        return up
    med = float(np.median(np.diff(up)))
    keep = np.ones(up.size, dtype=bool)
    for k in range(1, up.size):
        prev = k - 1
        while prev >= 0 and not keep[prev]:
            prev -= 1
        if prev < 0 or up[k] - up[prev] >= 0.55 * med:
            continue
        weaker = k if ssf[up[k]] < ssf[up[prev]] else prev
        if ssf[up[weaker]] < 0.5 * max(ssf[up[k]], ssf[up[prev]]):
            keep[weaker] = False
    return up[keep]


def _arg_in_windows(signal: FloatArray, lo: IntArray, hi: IntArray, *, pick_max: bool) -> IntArray:
    """Index of the max (or min) of ``signal`` in each window ``[lo, hi)`` (vectorised)."""
    width = int(max(1, (hi - lo).max()))
    idx = lo[:, None] + np.arange(width)[None, :]
    valid = idx < hi[:, None]
    idx = np.clip(idx, 0, signal.size - 1)
    vals = np.where(valid, signal[idx], -np.inf if pick_max else np.inf)
    pos = np.argmax(vals, axis=1) if pick_max else np.argmin(vals, axis=1)
    return np.asarray(idx[np.arange(idx.shape[0]), pos], dtype=np.int64)


def detect_beats(
    osc: FloatArray, wide: FloatArray, cuff: FloatArray, fs: float, rel: float = 0.25
) -> Beats:
    """Detect beats in ``osc`` and measure them on ``wide`` (the same band, wider at the top).

    ``cuff`` is the low-passed cuff pressure. Beats whose search windows would leave the
    range are dropped (their feet or peaks would be cut off by the range edges).
    """
    ssf = slope_sum(osc, fs)
    up = _drop_secondary(_upstrokes(ssf, fs, rel), ssf)
    n = osc.size
    w = max(2, round(0.1 * fs))
    reach = round(0.25 * fs)
    up = up[(up - w - reach >= 0) & (up + reach < n)]
    if up.size == 0:
        empty_f = np.zeros(0, dtype=np.float64)
        empty_i = np.zeros(0, dtype=np.int64)
        return Beats(empty_i, empty_i, empty_f, empty_f, np.zeros((0, SHAPE_POINTS)))
    foot_lo = np.maximum(up - w - reach, 0)
    foot = _arg_in_windows(wide, foot_lo, up + 1, pick_max=False)
    # the peak may not run into the next upstroke
    nxt = np.concatenate([up[1:] - w, [n]])
    peak_hi = np.minimum(np.minimum(up + reach, nxt), n)
    peak_lo = np.maximum(up - w // 2, 0)
    peak = _arg_in_windows(wide, peak_lo, np.maximum(peak_hi, peak_lo + 1), pick_max=True)
    amplitude = wide[peak] - wide[foot]
    mid = (foot + peak) / 2.0
    pressure = np.interp(mid, np.arange(n, dtype=np.float64), cuff)
    # shapes: aligned on the end of the upstroke (the SSF peak, sharper than the foot, which
    # wanders along the flat stretch before a supra-systolic spike), from 150 ms before it over
    # 55 % of the typical interval
    interval = float(np.median(np.diff(up))) if up.size > 1 else fs
    span = max(4.0, 0.55 * interval)
    offsets = np.linspace(-0.15 * fs, span - 0.15 * fs, SHAPE_POINTS)
    grid = np.clip(np.rint(up[:, None] + offsets[None, :]).astype(np.int64), 0, n - 1)
    shape = osc[grid] - osc[grid].mean(axis=1, keepdims=True)
    norm = np.linalg.norm(shape, axis=1, keepdims=True)
    shape = np.divide(shape, norm, out=np.zeros_like(shape), where=norm > 0)
    return Beats(
        foot=foot,
        peak=peak,
        amplitude=np.asarray(amplitude, dtype=np.float64),
        pressure=np.asarray(pressure, dtype=np.float64),
        shape=np.asarray(shape, dtype=np.float64),
    )
