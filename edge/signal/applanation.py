"""The signal steps of air-puff tonometry: smoothing, baseline, noise, applanation peaks.

Self-contained NumPy, no state: :mod:`edge.signal.tonometry` strings these steps together and
decides what they mean. Times are in samples here unless a name says ``_s``.

- Smoothing is a zero-phase Gaussian kernel: a symmetric kernel does not move the apex of a
  symmetric peak, so the applanation instants are not shifted (unlike a causal filter's delay).
- The light baseline is a morphological opening (a running minimum, then a running maximum, of
  the same width) smoothed by a running mean: it follows drifts and slow transients that are
  wider than the window and ignores the narrow applanation peaks (the classic rolling-ball
  baseline of spectroscopy and chromatography).
- The noise is robust: the median absolute second difference over the peak-free samples, scaled
  to a standard deviation for white noise (the second difference of white noise of standard
  deviation s has standard deviation s * sqrt(6)).
- An applanation instant is the apex (the mode) of a light peak, located below the sampling
  interval by a least-squares fit to the samples of the peak's top (above ``apex_fraction`` of
  its height) of a two-sided parabola: one curvature before the vertex, another after it.
  Applanation peaks are lopsided (the cornea flattens faster than it unflattens, and the
  outward peak is broader than the inward one); a symmetric parabola or a centroid puts the
  apex of a lopsided peak on its slow side, by a tenth of a millisecond or more, i.e. about a
  mmHg on the steep plenum pressure. For a fixed vertex the model is linear, so a grid of
  vertices (a quarter sample, then a hundredth) is solved in one batch of 3x3 systems; the same
  idea as a split-normal (two-piece) fit, taken on the linear scale so that noise near the
  foot is not amplified as it would be by a logarithm. A top too short for it falls back to a
  symmetric parabola, and a top that is not a cap to its centroid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.signal.filters import MAD_TO_SD, FloatArray, running_max, running_min


def gaussian_smooth(x: FloatArray, sigma: float) -> FloatArray:
    """``x`` convolved with a unit-area Gaussian of ``sigma`` samples (edges reflected)."""
    if sigma < 0.5 or x.size < 3:
        return x.astype(np.float64, copy=True)
    half = min(math.ceil(4.0 * sigma), x.size - 1)
    k = np.arange(-half, half + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (k / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(x, half, mode="reflect")
    return np.convolve(padded, kernel, mode="valid")


def opening_baseline(x: FloatArray, width: int) -> FloatArray:
    """The slow part of ``x``: features narrower than ``width`` samples are removed."""
    width = max(3, min(width, x.size))
    opened = running_max(running_min(x, width), width)
    half = width // 2
    kernel = np.full(2 * half + 1, 1.0 / (2 * half + 1))
    return np.convolve(np.pad(opened, half, mode="edge"), kernel, mode="valid")


def robust_noise(x: FloatArray, keep: npt.NDArray[np.bool_] | None = None) -> float:
    """The standard deviation of the white noise on ``x`` (over the samples ``keep`` marks)."""
    d2 = x[2:] - 2.0 * x[1:-1] + x[:-2]
    if keep is not None:
        mask = keep[2:] & keep[1:-1] & keep[:-2]
        if np.count_nonzero(mask) >= 16:
            d2 = d2[mask]
    if d2.size == 0:
        return 0.0
    return float(np.median(np.abs(d2)) * MAD_TO_SD / math.sqrt(6.0))


@dataclass(frozen=True, slots=True)
class Peak:
    """One light peak above the baseline (samples; ``apex`` is fractional)."""

    index: int
    apex: float
    height: float
    #: full width at half height, samples (one side mirrored when the record cuts the other;
    #: ``inf`` when neither side falls to half height)
    fwhm: float
    #: maxima of the smoothed light above half height in the search range, counted when
    #: separated by a dip (1 for a clean peak)
    humps: int
    #: how far the light falls on its lesser side within two widths, over the height (about 1
    #: for a peak, near 0 for a step that only looks like a peak once the baseline is removed)
    sides: float


def _half_crossing(y: FloatArray, index: int, level: float, step: int) -> float:
    """The fractional sample where ``y`` first falls to ``level`` walking from ``index``."""
    i = index
    while 0 <= i + step < y.size:
        j = i + step
        if y[j] <= level:
            frac = (y[i] - level) / (y[i] - y[j]) if y[i] != y[j] else 0.0
            return i + step * frac
        i = j
    return math.inf if step > 0 else -math.inf


def _count_humps(y: FloatArray, lo: int, hi: int, level: float, dip: float) -> int:
    """Maxima above ``level`` in ``y[lo:hi]`` separated by a dip to ``dip`` x the lower one."""
    seg = y[lo:hi]
    if seg.size < 3:
        return 1
    inner = (seg[1:-1] >= seg[:-2]) & (seg[1:-1] > seg[2:]) & (seg[1:-1] >= level)
    maxima = list(np.flatnonzero(inner) + 1)
    humps = 1 if maxima else 0
    last = maxima[0] if maxima else 0
    for m in maxima[1:]:
        lower = min(seg[last], seg[m])
        if seg[last : m + 1].min() < dip * lower:
            humps += 1
            last = m
        elif seg[m] > seg[last]:
            last = m
    return max(humps, 1)


def _split_fit(k: FloatArray, v: FloatArray, t0: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Least squares of ``v = c0 - c1 min(k - t0, 0)^2 - c2 max(k - t0, 0)^2`` for each t0.

    Returns the residual sum of squares and the coefficients (one row per t0). For a fixed
    vertex the model is linear, so all candidate vertices are solved at once.
    """
    u = k[None, :] - t0[:, None]
    a = np.stack([np.ones_like(u), -(np.minimum(u, 0.0) ** 2), -(np.maximum(u, 0.0) ** 2)], axis=-1)
    ata = np.einsum("mni,mnj->mij", a, a) + 1e-12 * np.eye(3)
    atb = np.einsum("mni,n->mi", a, v)
    coef = np.linalg.solve(ata, atb[..., None])[..., 0]
    resid = v[None, :] - np.einsum("mni,mi->mn", a, coef)
    return np.einsum("mn,mn->m", resid, resid), coef


def _split_vertex(k: FloatArray, v: FloatArray) -> float | None:
    """The vertex of the best two-sided parabola through (k, v), or None if it is not a cap."""
    if k.size < 5:
        return None
    coarse = np.arange(k[1], k[-2] + 1e-9, 0.25)
    cost, _ = _split_fit(k, v, coarse)
    best = coarse[int(np.argmin(cost))]
    fine = np.arange(best - 0.3, best + 0.3 + 1e-9, 0.01)
    cost, coef = _split_fit(k, v, fine)
    i = int(np.argmin(cost))
    if coef[i, 1] <= 0.0 or coef[i, 2] <= 0.0:
        return None
    return float(fine[i])


def apex(y: FloatArray, shape: FloatArray, index: int, fraction: float) -> float:
    """Sub-sample apex of the peak at ``index``: a least-squares parabola through ``y``.

    The parabola is fitted on the samples where ``shape`` (the smoothed ``y``) stays above
    ``fraction`` of its height around ``index``.
    """
    level = fraction * shape[index]
    lo = index
    while lo > 0 and shape[lo - 1] >= level:
        lo -= 1
    hi = index
    while hi < y.size - 1 and shape[hi + 1] >= level:
        hi += 1
    if hi - lo < 2:
        lo, hi = max(index - 1, 0), min(index + 1, y.size - 1)
        if hi - lo < 2:
            return float(index)
    k = np.arange(lo, hi + 1, dtype=np.float64) - index
    split = _split_vertex(k, y[lo : hi + 1])
    if split is not None:
        return index + split
    a, b, _ = np.polyfit(k, y[lo : hi + 1], 2)
    if a < 0.0:
        vertex = -b / (2.0 * a)
        if k[0] <= vertex <= k[-1]:
            return float(index + vertex)
    # not a cap (flat or noisy top): the centroid of the top is still a fair apex
    w = np.clip(shape[lo : hi + 1] - level, 0.0, None)
    total = float(w.sum())
    return float(index + (k * w).sum() / total) if total > 0.0 else float(index)


def _sides(light: FloatArray, index: int, reach: int, height: float) -> float:
    """How far ``light`` falls on both sides of ``index`` within ``reach``, over ``height``.

    The smaller of the two falls: a step looks like a peak once its baseline is removed but
    falls on one side only. A side the record cuts short (under half the reach) is not judged.
    """
    falls = []
    if index >= reach // 2:
        falls.append(light[index] - light[max(index - reach, 0) : index + 1].min())
    if light.size - 1 - index >= reach // 2:
        falls.append(light[index] - light[index : index + reach + 1].min())
    return float(min(falls)) / height if falls else 1.0


def find_peak(
    smooth: FloatArray,
    raw: FloatArray,
    light: FloatArray,
    span: tuple[int, int],
    apex_fraction: float,
) -> Peak | None:
    """The highest local maximum of ``smooth`` in ``span`` (baseline removed), or None.

    ``raw`` (baseline removed, not smoothed) is what the apex parabola is fitted to, so the
    smoothing cannot bias the apex of a lopsided peak; ``light`` (smoothed, baseline kept) is
    what the peak's two sides are measured on.
    """
    lo, hi = span
    lo, hi = max(lo, 1), min(hi, smooth.size - 1)
    if hi - lo < 1:
        return None
    seg = smooth[lo:hi]
    is_max = (seg >= smooth[lo - 1 : hi - 1]) & (seg >= smooth[lo + 1 : hi + 1])
    candidates = np.flatnonzero(is_max)
    if candidates.size == 0:
        return None
    index = int(lo + candidates[np.argmax(seg[candidates])])
    height = float(smooth[index])
    if height <= 0.0:
        return None
    left = _half_crossing(smooth, index, height / 2.0, -1)
    right = _half_crossing(smooth, index, height / 2.0, +1)
    # a peak cut by the record's edge: its other side, mirrored, is the best width estimate
    if math.isinf(left) and math.isfinite(right):
        left = index - (right - index)
    elif math.isinf(right) and math.isfinite(left):
        right = index + (index - left)
    fwhm = right - left
    # humps over the whole search range: a second maximum above half height, separated from
    # the first by a real dip, is a distorted (doubled) applanation whether or not the dip
    # reaches half height
    humps = _count_humps(smooth, lo, hi, height / 2.0, 0.8)
    reach = max(round(2.0 * fwhm), 3) if math.isfinite(fwhm) else light.size
    sides = _sides(light, index, reach, height)
    return Peak(index, apex(raw, smooth, index, apex_fraction), height, fwhm, humps, sides)


def local_value(x: FloatArray, at: float, half_width: int) -> float:
    """``x`` at fractional sample ``at`` from a least-squares quadratic over ``+-half_width``."""
    centre = round(at)
    lo, hi = max(centre - half_width, 0), min(centre + half_width + 1, x.size)
    if hi - lo < 4:
        return float(np.interp(at, np.arange(x.size, dtype=np.float64), x))
    k = np.arange(lo, hi, dtype=np.float64) - at
    coeffs = np.polyfit(k, x[lo:hi], 2)
    return float(coeffs[-1])
