"""The judgement of a puff record: what refuses it, what flags it, how good it is.

:mod:`edge.signal.tonometry` calls these in order; each refusal names the measured figure and
the limit of :class:`~edge.signal.iopsettings.IopSettings` it broke.

- ``too-short``: fewer than 10 ms or 64 samples, or the pressure maximum within 2 ms of an end
  (the puff was cut off). ``no-puff``: the pressure rose less than any P1 could be.
  ``invalid-samples``: NaN or infinite samples.
- ``saturated``: two or more consecutive light samples at the ADC rail: the apex is unknown.
- ``blink``: the light collapses below half its starting level for 1 ms or more outside the two
  applanations (between them the cornea is concave and the light dips normally), the slow
  light swings by a quarter of the ADC range, or there is no applanation peak at all (a peak
  must stand 6 noise SDs and 40 counts over the baseline and the light must fall by half its
  height on both sides: an eyelid lifting is a step, not a peak).
- ``misaligned``: no inward peak; an inward peak that does not double the light over its
  baseline; an inward peak broader than 3 ms or an outward one broader than 6 ms at half
  height; a peak with two humps (an oblique or smeared reflection).
- ``no-second-peak``: the outward peak is absent or below 20 % of the inward one, or the
  "outward" peak came at a pressure not below P1 (the hysteresis is never negative).
- Flags: ``iop-noisy`` (peak-to-noise below 30, or pressure noise above 0.5 mmHg),
  ``iop-asymmetric-peaks`` (outward/inward height outside 0.3-1.2 or width outside 0.8-3),
  ``low-quality`` (quality below 0.5). The quality is the product of a peak-to-noise term, a
  pressure-noise term and a peak-shape term, each 0..1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.signal.applanation import Peak, gaussian_smooth, opening_baseline, robust_noise
from edge.signal.filters import FloatArray
from edge.signal.iopsettings import IopSettings
from edge.signal.results import Refusal


def longest_run(mask: npt.NDArray[np.bool_]) -> int:
    """The longest run of True in a boolean array."""
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((stops - starts).max())


@dataclass(frozen=True, slots=True)
class Seen:
    """The signals after smoothing and baseline removal."""

    pressure: FloatArray
    light: FloatArray
    #: light minus its baseline: smoothed, and raw
    peaks: FloatArray
    peaks_raw: FloatArray
    baseline: FloatArray
    #: the pressure maximum, and the first and last samples of the puff (pressure on the eye)
    top: int
    onset: int
    end: int
    noise: float


def record_faults(p: FloatArray, light: FloatArray, fs: float, s: IopSettings) -> Refusal | None:
    n = p.size
    if not (np.isfinite(p).all() and np.isfinite(light).all()):
        return Refusal("invalid-samples", "the record holds non-numeric samples (NaN or inf)")
    duration = n / fs
    if duration < s.min_duration_s or n < s.min_samples:
        return Refusal(
            "too-short",
            f"record too short: {duration * 1000:.1f} ms, {n} samples; "
            f"limit {s.min_duration_s * 1000:.0f} ms and {s.min_samples} samples",
        )
    return None


def prepare(p: FloatArray, light: FloatArray, fs: float, s: IopSettings) -> Seen | Refusal:
    n = p.size
    ps = gaussian_smooth(p, s.pressure_smooth_s * fs)
    top = int(np.argmax(ps))
    rise = float(ps[top] - ps[: max(top, 1)].min())
    if rise < s.min_puff_rise:
        return Refusal(
            "no-puff", f"no air puff: the pressure rose {rise:.1f} mmHg, limit {s.min_puff_rise:g}"
        )
    margin = round(s.edge_margin_s * fs)
    if top < margin or top >= n - margin:
        where, gap = ("start", top / fs) if top < margin else ("end", (n - 1 - top) / fs)
        return Refusal(
            "too-short",
            f"puff cut off: the pressure maximum is {gap * 1000:.1f} ms from the record's "
            f"{where}, limit {s.edge_margin_s * 1000:g} ms",
        )
    rail = s.light_full_scale - s.rail_margin_counts
    run = longest_run(light >= rail)
    if run >= s.saturation_run:
        return Refusal(
            "saturated",
            f"light saturated: {run} consecutive samples at the {s.light_full_scale:g}-count "
            f"rail, limit {s.saturation_run - 1}",
        )
    ls = gaussian_smooth(light, s.light_smooth_s * fs)
    baseline = opening_baseline(ls, round(s.baseline_window_s * fs))
    peaks = ls - baseline
    quiet = peaks < 0.1 * max(float(peaks.max()), 1.0)
    noise = max(robust_noise(light, quiet), 0.5)
    on = np.flatnonzero(ps - float(np.median(ps[: max(margin, 3)])) >= s.puff_on_pressure)
    onset, end = (int(on[0]), int(on[-1]) + 1) if on.size else (0, n)
    return Seen(p, ls, peaks, light - baseline, baseline, top, onset, end, noise)


def blink(
    seen: Seen, first: Peak | None, second: Peak | None, fs: float, s: IopSettings
) -> Refusal | None:
    """An eyelid in the light path: the light collapses outside the applanations, or swings."""
    start = float(np.median(seen.light[: max(round(0.001 * fs), 3)]))
    low = seen.light < start * s.collapse_fraction
    # between the inward and outward apexes the cornea is concave and the light dips normally
    begin = first.apex if first is not None else 0.0
    end = second.apex if second is not None else begin
    low[math.ceil(begin) : math.floor(end) + 1] = False
    run = longest_run(low) / fs
    if start >= s.detect_counts and run >= s.collapse_min_s:
        return Refusal(
            "blink",
            f"blink: the light fell below {s.collapse_fraction:.0%} of its starting "
            f"{start:.0f} counts for {run * 1000:.1f} ms outside the applanations, "
            f"limit {s.collapse_min_s * 1000:g} ms",
        )
    swing = float(seen.baseline.max() - seen.baseline.min())
    if swing > s.max_baseline_swing_counts:
        return Refusal(
            "blink",
            f"blink or eyelid transient: the slow light swung {swing:.0f} counts, "
            f"limit {s.max_baseline_swing_counts:g}",
        )
    return None


def _floor(seen: Seen, s: IopSettings) -> float:
    return max(s.detect_snr * seen.noise, s.detect_counts)


def real(peak: Peak | None, seen: Seen, s: IopSettings) -> Peak | None:
    """``peak`` if it stands clear of the noise and falls on both sides, else None."""
    if peak is None or peak.height < _floor(seen, s) or peak.sides < s.min_peak_sides:
        return None
    return peak


def presence(first: Peak | None, second: Peak | None, seen: Seen, s: IopSettings) -> Refusal | None:
    """Refuse a record without an inward or an outward applanation peak."""
    floor = _floor(seen, s)
    present1 = real(first, seen, s) is not None
    present2 = real(second, seen, s) is not None
    if not present1 and not present2:
        tallest = max((pk.height for pk in (first, second) if pk is not None), default=0.0)
        return Refusal(
            "blink",
            f"no applanation peak in the light: tallest {tallest:.0f} counts above the "
            f"baseline, limit {floor:.0f}",
        )
    if first is None or not present1:
        height = 0.0 if first is None else first.height
        return Refusal(
            "misaligned",
            f"no inward applanation peak: {height:.0f} counts above the baseline, "
            f"limit {floor:.0f}",
        )
    ratio = 0.0 if second is None or not present2 else second.height / first.height
    if ratio < s.min_second_ratio:
        return Refusal(
            "no-second-peak",
            f"no outward applanation peak: {ratio:.0%} of the inward peak's height, "
            f"limit {s.min_second_ratio:.0%}",
        )
    return None


def shape(first: Peak, second: Peak, seen: Seen, fs: float, s: IopSettings) -> Refusal | None:
    """Refuse small, broad or distorted applanation peaks: the eye was off the axis."""
    level = float(np.median(seen.baseline))
    need = max(s.min_peak_counts, s.min_peak_to_baseline * level)
    if first.height < need:
        return Refusal(
            "misaligned",
            f"inward applanation peak too small: {first.height:.0f} counts over a baseline "
            f"of {level:.0f}, limit {need:.0f}",
        )
    limits = (("inward", first, s.max_inward_fwhm_s), ("outward", second, s.max_outward_fwhm_s))
    for name, pk, limit in limits:
        width = pk.fwhm / fs
        if width > limit:
            shown = f"{width * 1000:.1f} ms" if math.isfinite(width) else "unbounded"
            return Refusal(
                "misaligned",
                f"{name} applanation peak too broad: {shown} at half height, "
                f"limit {limit * 1000:g} ms",
            )
        if pk.humps > 1:
            return Refusal(
                "misaligned",
                f"{name} applanation peak distorted: {pk.humps} humps above half height, limit 1",
            )
    return None


def _ramp(x: float, lo: float, hi: float) -> float:
    return min(max((x - lo) / (hi - lo), 0.0), 1.0)


def judge(first: Peak, second: Peak, seen: Seen, s: IopSettings) -> tuple[float, tuple[str, ...]]:
    """Quality 0..1 and flags for a record that passed every refusal."""
    flags: list[str] = []
    snr = min(first.height, second.height) / seen.noise
    p_noise = robust_noise(seen.pressure)
    if snr < s.noisy_snr or p_noise > s.noisy_pressure_sd:
        flags.append("iop-noisy")
    h_ratio = second.height / first.height
    w_ratio = second.fwhm / first.fwhm
    lo_h, hi_h = s.asymmetric_height
    lo_w, hi_w = s.asymmetric_width
    if not (lo_h <= h_ratio <= hi_h and lo_w <= w_ratio <= hi_w):
        flags.append("iop-asymmetric-peaks")
    q_snr = _ramp(snr, s.detect_snr, s.good_snr)
    q_pressure = 1.0 - _ramp(p_noise, s.noisy_pressure_sd / 2, 2 * s.noisy_pressure_sd)
    # distance from the expected shape on a log scale: 1 inside the usual ratios, 0 at 4x out
    off_h = max(math.log(lo_h / h_ratio), math.log(h_ratio / hi_h), 0.0)
    off_w = max(math.log(lo_w / w_ratio), math.log(w_ratio / hi_w), 0.0)
    q_shape = 1.0 - _ramp(off_h + off_w, 0.0, math.log(4.0))
    quality = round(q_snr**0.5 * q_pressure * (0.5 + 0.5 * q_shape), 3)
    if quality < s.low_quality:
        flags.append("low-quality")
    return quality, tuple(flags)
