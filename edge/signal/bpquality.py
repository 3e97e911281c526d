"""Artefacts, rhythm and signal quality of an oscillometric record.

Movement shows in a cuff signal in three ways, each tested here (after the reviews of
oscillometric artefact handling by Forouzanfar et al., "Oscillometric blood pressure estimation:
past, present, and future", IEEE Rev Biomed Eng 2015;8:44-63):

* the cuff pressure RISES during the deflation (the arm pushes into the cuff): the low-passed
  trend climbing faster than ``max_rise_rate`` marks an interval as corrupted;
* high-frequency bursts (muscle tremor, knocks): the RMS of the band above 40 Hz in 0.25 s windows
  far above its median marks an interval as corrupted;
* beats of implausible amplitude or shape: the amplitude departs from the running median of its
  5 neighbours (a running median follows the rising and falling envelope, an isolated spike
  does not), or the shape correlates poorly with the median beat.

Beats in corrupted intervals and outlier beats are discarded. Irregular rhythm follows the
issue's rule (intervals deviating >= 25 % from the mean in >= 20 % of the intervals), measured
only on beats of the central part of the envelope where detection is reliable. The quality index
combines beat acceptance, the beats' scatter about the envelope and signal-to-noise ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.signal.beats import Beats
from edge.signal.bpsettings import BpSettings
from edge.signal.filters import FloatArray, fft_highpass, mad_sigma, running_median

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Noise:
    """Noise in the oscillation band, estimated from the band above the pulse harmonics."""

    #: the RMS in the amplitude band implied by the RMS above 40 Hz (mmHg)
    band_sigma: float


def estimate_noise(
    x: FloatArray, fs: float, s: BpSettings, top_hz: float
) -> tuple[Noise, FloatArray]:
    """Noise estimate and the high-frequency residual (x minus its 35 Hz low-pass).

    Above 40 Hz a cuff record holds almost no pulse energy, so the residual is noise (and the
    bursts of movement artefacts).
    """
    hf = fft_highpass(x, fs, 35.0, 10.0)
    sigma = mad_sigma(hf)
    # white noise: scale by the square root of the bandwidth ratio (band above: 40 Hz to the
    # top of the record's band, ``top_hz``: the anti-alias cut-off or the Nyquist frequency)
    ratio = (s.amplitude_high_hz - s.band_low_hz) / max(top_hz - 40.0, 1.0)
    return Noise(band_sigma=sigma * float(np.sqrt(ratio))), hf


def _dilate(mask: BoolArray, k: int) -> BoolArray:
    if k <= 0 or not mask.any():
        return mask
    csum = np.concatenate([[0], np.cumsum(mask.astype(np.int64))])
    idx = np.arange(mask.size)
    lo = np.maximum(idx - k, 0)
    hi = np.minimum(idx + k + 1, mask.size)
    return np.asarray(csum[hi] - csum[lo] > 0, dtype=np.bool_)


def motion_mask(
    trend: FloatArray, hf: FloatArray, fs: float, amplitude_scale: float, s: BpSettings
) -> BoolArray:
    """Samples of the range corrupted by movement: rising cuff pressure or HF bursts."""
    slope = np.gradient(trend) * fs
    rising = slope > s.max_rise_rate
    win = max(2, round(0.25 * fs))
    nwin = hf.size // win
    burst = np.zeros(hf.size, dtype=bool)
    if nwin >= 4:
        rms = np.sqrt(np.mean(hf[: nwin * win].reshape(nwin, win) ** 2, axis=1))
        # far above the typical HF level and not negligible next to the pulse
        limit = max(6.0 * float(np.median(rms)), 0.05 * amplitude_scale, 0.02)
        burst[: nwin * win] = np.repeat(rms > limit, win)
    return _dilate(rising | burst, round(0.3 * fs))


@dataclass(frozen=True, slots=True, eq=False)
class BeatVerdict:
    """Which beats are kept, why the others were not, and the central (core) beats."""

    kept: BoolArray
    #: discarded as movement (corrupted interval, amplitude or shape outlier)
    motion: BoolArray
    #: below the noise floor (not an artefact: the envelope tails)
    weak: BoolArray
    #: beats whose smoothed amplitude is >= 30 % of the maximum (reliably detected)
    core: BoolArray
    #: movement events: corrupted intervals touching beats + outlier beats
    motion_events: int


def _neighbour_correlation(shapes: FloatArray) -> FloatArray:
    """Correlation of each (unit-norm) shape with the median of its 4 nearest neighbours."""
    n = shapes.shape[0]
    if n < 3:
        return np.ones(n)
    offsets = np.array([-2, -1, 1, 2])
    nb = np.arange(n)[:, None] + offsets[None, :]
    # at the ends, take the nearest beats on the other side instead
    nb = np.where(nb < 0, nb + 5, nb)
    nb = np.where(nb >= n, nb - 5, nb)
    nb = np.clip(nb, 0, n - 1)
    template = np.median(shapes[nb], axis=1)
    norm = np.linalg.norm(template, axis=1)
    dot = np.einsum("ij,ij->i", shapes, template)
    return np.asarray(np.divide(dot, norm, out=np.ones(n), where=norm > 0), dtype=np.float64)


def judge_beats(
    beats: Beats, mask: BoolArray, noise: Noise, fs: float, s: BpSettings
) -> BeatVerdict:
    """Classify the detected beats (see the module docstring)."""
    n = beats.count
    amp = beats.amplitude
    weak = amp < s.min_beat_snr * noise.band_sigma
    lo = beats.foot
    hi = np.minimum(beats.peak + round(0.2 * fs), mask.size)
    csum = np.concatenate([[0], np.cumsum(mask.astype(np.int64))])
    in_mask = (csum[hi] - csum[lo]) > 0 if n else np.zeros(0, dtype=bool)
    # corrupted intervals that touch beats: count rising edges of the mask under beats
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8)])) == 1)
    events = int(sum(1 for e in edges if n and ((lo <= e + round(fs)) & (hi >= e)).any()))
    candidates = ~weak & ~in_mask
    outlier = np.zeros(n, dtype=bool)
    core = np.zeros(n, dtype=bool)
    if candidates.sum() >= 3:
        idx = np.flatnonzero(candidates)
        a = amp[idx]
        ref = running_median(a, 5)
        top = float(np.max(ref))
        core[idx] = ref >= 0.3 * top
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = a / ref
        big = ref >= 0.2 * top
        r = s.amplitude_outlier_ratio
        amp_out = big & ((ratio > r) | (ratio < 1.0 / r))
        # a burst of movement spans several detections, enough to lift a 5-beat median with
        # it; over 9 beats it cannot, and no envelope rises 3-fold within 4 beats
        # the window slides inwards at the ends: a burst at the start must be judged too
        wide = running_median(a, 9, shift_ends=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            amp_out |= a > s.burst_ratio * wide
        # shape: correlation with the median shape of the 4 nearest other beats (the shape
        # changes along the deflation, from a spike above systolic to a full pulse below)
        corr = _neighbour_correlation(beats.shape[idx])
        shape_out = (a >= 0.25 * top) & (corr < s.min_shape_correlation)
        outlier[idx] = amp_out | shape_out
        events += int(outlier.sum())
    motion = in_mask | outlier
    kept = ~weak & ~motion
    return BeatVerdict(kept=kept, motion=motion, weak=weak, core=core, motion_events=events)


def rhythm(beats: Beats, verdict: BeatVerdict, fs: float, s: BpSettings) -> tuple[float, bool]:
    """Pulse rate (per minute, median interval) and whether the rhythm is irregular.

    Intervals are taken between the peaks of consecutive detected beats that are both kept
    and both in the core of the envelope; an interval spanning a discarded beat is not used.
    Peaks, not feet: a foot lies on the flat stretch before a small beat and wanders (sinus
    records showed a 10 % interval scatter between feet, 4 % between peaks).

    Irregular when either rule holds: the intervals-deviating rule of the issue
    (:attr:`BpSettings.irregular_deviation` in :attr:`BpSettings.irregular_fraction` of the
    intervals), which catches frequent ectopic beats, or an irregularity index SD/mean of the
    intervals of at least :attr:`BpSettings.irregular_cv`, which catches atrial fibrillation
    whose intervals vary less than 25 % (Wiesel J et al., Am J Hypertens 2009;22:848-852).
    """
    good = verdict.kept & verdict.core
    both = good[1:] & good[:-1]
    intervals = np.diff(beats.peak)[both] / fs
    if intervals.size == 0:
        allk = np.diff(beats.peak[verdict.kept]) / fs
        intervals = allk if allk.size else np.array([1.0])
    rate = 60.0 / float(np.median(intervals))
    if intervals.size < 5:
        return rate, False
    mean = float(np.mean(intervals))
    deviating = np.abs(intervals - mean) >= s.irregular_deviation * mean
    index = float(np.std(intervals)) / mean
    return rate, bool(deviating.mean() >= s.irregular_fraction or index >= s.irregular_cv)


def quality_index(accepted: float, fit_residual: float, snr: float) -> float:
    """Signal-quality index 0..1: beat acceptance x envelope smoothness x signal-to-noise.

    ``accepted``: fraction of the core beats kept; ``fit_residual``: RMS of the kept beats
    about the envelope (the smoothed one, or a fitted model's) over its maximum; ``snr``:
    envelope maximum over the in-band noise RMS.
    """
    fit = float(np.clip(1.0 - fit_residual / 0.3, 0.0, 1.0))
    # 20 dB (x10) of peak amplitude over the noise RMS is poor, 40 dB (x100) is excellent
    noise = float(np.clip((np.log10(max(snr, 1e-9)) - 1.0) / 1.0, 0.0, 1.0))
    acc = float(np.clip(accepted, 0.0, 1.0))
    return float(np.clip(acc * fit * (0.5 + 0.5 * noise), 0.0, 1.0))
