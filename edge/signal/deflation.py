"""Find the measuring range of a cuff record and check its deflation and its samples.

A record is: steady baseline, inflation ramp, (hold), deflation at a few mmHg/s, final dump.
The measuring range runs from the inflation peak (plus a settling time) to the dump (a fall
faster than ``dump_rate``) or the end of the record. On it we measure the deflation rate in 2 s
windows of the low-passed cuff pressure (the "trend", pulses removed) and refuse records whose
deflation is too fast or uneven, as well as records with samples stuck at a rail (clipping).

Clipping is tested on the raw samples (before any filter smears a flat top): a rail is a value
the signal sits on exactly, for runs of several samples, at the record's maximum (or, inside the
measuring range, its minimum). A genuine cuff signal always carries pulses and noise, so it never
stays exactly constant at its extreme for tens of milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.signal.bpsettings import BpSettings
from edge.signal.filters import FloatArray, cascaded_moving_average, fft_lowpass
from edge.signal.results import Refusal

IntArray = npt.NDArray[np.intp]

#: a fall that leaves the cuff at least this far below the deflation's line is a valve slip
MIN_SLIP_MMHG = 10.0


@dataclass(frozen=True, slots=True, eq=False)
class Deflation:
    """The deflation over the measuring range ``[start, stop)`` at the work rate."""

    #: the cuff pressure on [start, stop) low-passed below the pulse rate (mmHg)
    trend: FloatArray
    #: median deflation rate over the range (mmHg/s, positive while deflating)
    rate: float
    #: local deflation rate in 2 s windows and the window centres (sample index on the range)
    local_rate: FloatArray
    local_centre: FloatArray


def _is_release(smooth: FloatArray, j: int, fs: float, s: BpSettings) -> bool:
    """Whether a fast fall at ``j`` is the release: the cuff empties within the next 3 s.

    A valve slip (10-25 mmHg in a tenth of a second) is as fast as a release when blurred by
    the smoother, but the deflation goes on after it; taking it for the release would cut the
    low-pressure side off the envelope instead of refusing the uneven deflation. Emptying means
    falling below ``min_cuff_pressure``: a deflation valve stops above it (NIBP modules dump
    from 20-40 mmHg), so only the exhaust takes the cuff there, and it does so in a second or
    two (a 0.1-0.4 s time constant). A record that ends during the fall counts as released.
    """
    window = max(1, round(3.0 * fs))
    if smooth[j] < s.min_cuff_pressure or j + window > smooth.size:
        return True
    return float(smooth[j : j + window].min()) < s.min_cuff_pressure


def _step(smooth: FloatArray, slope: FloatArray, at: int, end: int, lo: int, fs: float) -> float:
    """How far the cuff pressure stands lower after ``[at, end)`` than the deflation explains.

    The levels are medians over 1-3 s before and after the fall (outside the smoother's blur),
    the deflation the median rate of the range. A slip leaves the cuff lower by its size; a
    movement (the arm squeezes the cuff, then lets go) returns it to the deflation's line.
    """
    one, three = round(1.0 * fs), round(3.0 * fs)
    a0, a1 = max(lo, at - three), max(lo, at - one)
    b0, b1 = min(end + one, smooth.size - 1), min(end + three, smooth.size)
    if a1 <= a0 or b1 <= b0:
        return 0.0
    rate = -float(np.median(slope[lo:end]))
    elapsed = ((b0 + b1) - (a0 + a1)) / 2.0 / fs
    return float(np.median(smooth[a0:a1]) - np.median(smooth[b0:b1])) - rate * elapsed


def _slip(
    smooth: FloatArray, slope: FloatArray, fast: IntArray, release: int, start: int, fs: float
) -> Refusal | None:
    """Refuse a fall as fast as a release that was not one: the valve slipped mid-deflation.

    ``fast`` (offsets from ``start``) holds the fast falls, ``release`` the one that emptied
    the cuff. A slip skips a stretch of the envelope, so the record cannot be read. A fast
    fall that leaves the cuff on the deflation's line (under :data:`MIN_SLIP_MMHG` lower) is a
    movement, left to the artefact tests.
    """
    run = release
    members = set(fast.tolist())
    while run - 1 in members:  # the release's own fall began here
        run -= 1
    earlier = fast[fast < run]
    while earlier.size:
        at = start + int(earlier[0])
        own = earlier[earlier - earlier[0] < round(1.0 * fs)]  # this fall's samples
        end = start + int(own[-1]) + 1
        step = _step(smooth, slope, at, end, start, fs)
        if step >= MIN_SLIP_MMHG:
            return Refusal(
                "deflation-uneven",
                f"deflation uneven: the cuff pressure fell {step:.0f} mmHg more than the "
                f"deflation at {smooth[max(start, at - round(0.5 * fs))]:.0f} mmHg, within about "
                f"a second (fastest {-float(slope[at:end].min()):.0f} mmHg/s), and the "
                "deflation went on: a valve slip, not the release",
            )
        earlier = earlier[own.size :]
    return None


def find_range(x: FloatArray, fs: float, s: BpSettings) -> tuple[int, int] | Refusal:
    """The measuring range ``[start, stop)`` of the work-rate record ``x``, or a refusal."""
    n = x.size
    if n < 3 or n / fs < s.min_record_s:
        return Refusal("too-short", f"record too short: {n / fs:.1f} s, need {s.min_record_s:g} s")
    smooth = cascaded_moving_average(x, max(1, round(0.5 * fs)), passes=2)
    top = int(np.argmax(smooth))
    slope = np.gradient(smooth) * fs
    start = min(n, top + round(s.settle_s * fs))
    fast = np.flatnonzero((slope[start:] < -s.dump_rate) | (smooth[start:] < s.min_cuff_pressure))
    release = next((int(j) for j in fast if _is_release(smooth, start + int(j), fs, s)), None)
    if release is None:
        # NIBP modules release the cuff at the end of every measurement, completed or not: a
        # record that ends inflated was cut off, and what lies below its end is unknown
        return Refusal(
            "too-short",
            f"record cut short: it ends at {smooth[-1]:.0f} mmHg with the cuff still inflated "
            "(no release seen), so the deflation below that pressure is missing",
        )
    slip = _slip(smooth, slope, fast, release, start, fs)
    if slip is not None:
        return slip
    # the dump is blurred by the smoother: stop half a second before it is first seen
    stop = start + release - round(0.5 * fs)
    span = (stop - start) / fs
    if span < s.min_record_s:
        return Refusal(
            "too-short",
            f"measuring range too short: {max(span, 0.0):.1f} s of deflation, "
            f"need {s.min_record_s:g} s",
        )
    return start, stop


def measure_deflation(x: FloatArray, fs: float, start: int, stop: int) -> Deflation:
    """Low-pass the range and measure the deflation rate in 2 s windows (1 s apart)."""
    # pass below 0.3 Hz, stop above 0.6 Hz: pulses (>= 0.6 Hz at 36 /min) do not leak in
    trend = fft_lowpass(x[start:stop], fs, 0.45, 0.3)
    win = max(3, round(2.0 * fs))
    hop = max(1, round(1.0 * fs))
    starts = np.arange(0, max(trend.size - win, 0) + 1, hop)
    t = (np.arange(win) - (win - 1) / 2.0) / fs
    idx = starts[:, None] + np.arange(min(win, trend.size))[None, :]
    seg = trend[idx]
    tt = t[: idx.shape[1]]
    slopes = ((seg - seg.mean(axis=1, keepdims=True)) @ tt) / float(tt @ tt)
    local = -slopes
    return Deflation(
        trend=trend,
        rate=float(np.median(local)),
        local_rate=np.asarray(local, dtype=np.float64),
        local_centre=np.asarray(starts + idx.shape[1] / 2.0, dtype=np.float64),
    )


def check_rate(d: Deflation, fs: float, corrupted: FloatArray, s: BpSettings) -> Refusal | None:
    """Refuse a deflation that is too fast or uneven; windows touching artefacts are skipped.

    ``corrupted`` is a 0/1 mask on the range (1 = movement artefact), see
    :func:`edge.signal.bpquality.motion_mask`.
    """
    if d.rate > s.max_deflation_rate:
        return Refusal(
            "deflation-too-fast",
            f"deflation too fast: {d.rate:.1f} mmHg/s over the measuring range, "
            f"limit {s.max_deflation_rate:g} mmHg/s",
        )
    if d.rate <= 0.0:
        return Refusal(
            "deflation-uneven",
            f"the cuff did not deflate: median rate {d.rate:.1f} mmHg/s over the measuring range",
        )
    half = round(1.0 * fs)
    centres = d.local_centre.astype(np.int64)
    clean = np.array(
        [not corrupted[max(0, c - half) : c + half].any() for c in centres], dtype=bool
    )
    if clean.sum() < 4:
        return None
    t = d.local_centre[clean] / fs
    r = d.local_rate[clean]
    # the smooth trend of the rate: a quadratic in time allows a passive bleed valve
    coef = np.polyfit(t - t.mean(), r, 2 if r.size >= 6 else 1)
    dev = np.abs(r - np.polyval(coef, t - t.mean())) / d.rate
    unevenness = float(np.percentile(dev, 90))
    if unevenness > s.max_rate_unevenness:
        return Refusal(
            "deflation-uneven",
            f"deflation uneven: the local rate departs from its trend by {unevenness:.0%} "
            f"(90th percentile, median rate {d.rate:.1f} mmHg/s), limit "
            f"{s.max_rate_unevenness:.0%}",
        )
    return None


def stuck_seconds(raw: FloatArray, fs: float, level: float) -> tuple[float, int, float]:
    """Total time, number of runs and longest run (s) of samples stuck exactly at ``level``."""
    tol = 1e-9 + 1e-9 * abs(level)
    at = np.abs(raw - level) <= max(tol, 1e-6)
    flat = np.concatenate([[False], (np.abs(np.diff(raw)) <= tol) & at[1:] & at[:-1], [False]])
    edges = np.flatnonzero(np.diff(flat.astype(np.int8)))
    runs = edges[1::2] - edges[0::2] + 1  # samples per run of equal consecutive values
    min_run = max(3, round(0.01 * fs))
    runs = runs[runs >= min_run]
    if runs.size == 0:
        return 0.0, 0, 0.0
    return float(runs.sum() / fs), int(runs.size), float(runs.max() / fs)


def check_clipping(
    raw: FloatArray, fs: float, stop: int, range_start: int, s: BpSettings
) -> Refusal | None:
    """Refuse a record whose raw samples sit on a rail (its maximum, or its range minimum).

    ``stop`` and ``range_start`` are raw-sample indices (the dump and the range start).
    """
    head = raw[:stop]
    if head.size < 3:
        return None
    checks = [("maximum", head, float(head.max()))]
    body = raw[range_start:stop]
    if body.size >= 3:
        checks.append(("minimum", body, float(body.min())))
    for name, part, level in checks:
        total, count, longest = stuck_seconds(part, fs, level)
        # a flat top: long in total, and either recurring (clipped pulse peaks) or one long run
        if total >= s.clip_min_s and (count >= 3 or longest >= 2.5 * s.clip_min_s):
            return Refusal(
                "clipped",
                f"signal clipped: {total:.2f} s of samples stuck at the {name} "
                f"{level:.1f} mmHg ({count} runs), limit {s.clip_min_s:g} s",
            )
    return None
