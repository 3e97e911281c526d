"""The front end shared by every oscillometric reading: record -> kept beats and envelope.

Steps, each refusing the record when it cannot support an estimate:

1. decimate to about 200 Hz behind a zero-phase anti-alias low-pass at 0.4 x that rate (the
   pulse content lies below 25 Hz; everything after this runs on fewer samples);
2. find the measuring range (inflation peak to dump) -> ``too-short``;
   raw samples stuck at a rail -> ``clipped``;
3. split the range into the cuff trend (low-pass 0.45 Hz) and the oscillations (band-pass
   0.6-10 Hz for detection, 0.6-25 Hz for amplitudes), zero phase; estimate the noise from
   the band above 40 Hz;
4. detect beats and measure them (:mod:`edge.signal.beats`);
5. mark movement and judge beats (:mod:`edge.signal.bpquality`); deflation rate ->
   ``deflation-too-fast`` / ``deflation-uneven``; too many corrupted beats -> ``motion``;
6. fewer than ``min_beats`` kept -> ``too-few-beats``; envelope maximum at an edge of the
   range, or not falling enough at either end -> ``no-envelope-peak``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.signal.beats import Beats, detect_beats
from edge.signal.bpquality import (
    BeatVerdict,
    Noise,
    estimate_noise,
    judge_beats,
    motion_mask,
    rhythm,
)
from edge.signal.bpsettings import BpSettings
from edge.signal.deflation import (
    check_clipping,
    check_rate,
    find_range,
    measure_deflation,
)
from edge.signal.envelope import RawEnvelope, raw_envelope
from edge.signal.filters import (
    FloatArray,
    cascaded_moving_average,
    decimate,
    fft_bandpass,
)
from edge.signal.results import OscillogramTrace, Refusal


@dataclass(frozen=True, slots=True, eq=False)
class Record:
    """Everything the readings need from one record."""

    fs: float  # work rate (Hz)
    factor: int  # decimation factor from the input rate
    start: int  # measuring range start (work-rate index)
    x: FloatArray  # the decimated record
    trend: FloatArray  # low-passed cuff pressure on the range
    osc: FloatArray  # oscillations on the range
    beats: Beats
    verdict: BeatVerdict
    noise: Noise
    envelope: RawEnvelope
    pulse_rate: float
    irregular: bool
    #: fraction of the beats of the measuring range kept (not discarded as movement)
    accepted: float


def _subset(beats: Beats, keep: npt.NDArray[np.bool_]) -> Beats:
    return Beats(
        foot=beats.foot[keep],
        peak=beats.peak[keep],
        amplitude=beats.amplitude[keep],
        pressure=beats.pressure[keep],
        shape=beats.shape[keep],
    )


def _edges(env: RawEnvelope, s: BpSettings) -> Refusal | None:
    """Refuse an envelope whose maximum sits at an edge or that does not fall at both ends."""
    n = env.smooth.size
    top = float(env.smooth[env.peak])
    if env.peak <= 0 or env.peak >= n - 1:
        where = "start (high pressure)" if env.peak <= 0 else "end (low pressure)"
        return Refusal(
            "no-envelope-peak",
            f"no envelope peak: the largest oscillation is at the {where} of the deflation, "
            f"{env.pressure[env.peak]:.0f} mmHg (the cuff must pass from above systolic to "
            "below diastolic)",
        )
    first = float(np.min(env.smooth[: max(1, min(2, env.peak))])) / top
    last = float(np.min(env.smooth[max(env.peak + 1, n - 2) :])) / top
    if first > s.max_start_ratio:
        return Refusal(
            "no-envelope-peak",
            f"no envelope peak: at the start ({env.pressure[0]:.0f} mmHg) the oscillations are "
            f"still {first:.0%} of their maximum, limit {s.max_start_ratio:.0%} (the cuff was "
            "not inflated above systolic)",
        )
    if last > s.max_end_ratio:
        return Refusal(
            "no-envelope-peak",
            f"no envelope peak: at the end ({env.pressure[-1]:.0f} mmHg) the oscillations are "
            f"still {last:.0%} of their maximum, limit {s.max_end_ratio:.0%} (the deflation "
            "stopped above diastolic)",
        )
    return None


def prepare(pressure: npt.ArrayLike, fs: float, s: BpSettings) -> Record | Refusal:
    """Run the front end on a whole record (mmHg at ``fs`` Hz); see the module docstring."""
    raw = np.asarray(pressure, dtype=np.float64).ravel()
    if fs <= 0 or not np.all(np.isfinite(raw)):
        return Refusal("invalid", "record holds non-finite samples or a non-positive rate")
    factor = max(1, int(fs // s.work_rate_hz))
    fw = fs / factor
    x = decimate(raw, fs, factor)
    found = find_range(x, fw, s)
    if isinstance(found, Refusal):
        return found
    start, stop = found
    clipped = check_clipping(raw, fs, min(raw.size, (stop + round(0.5 * fw)) * factor),
                             start * factor, s)  # fmt: skip
    if clipped is not None:
        return clipped
    deflation = measure_deflation(x, fw, start, stop)
    body = x[start:stop]
    osc = fft_bandpass(body, fw, s.band_low_hz, s.band_high_hz)
    wide = fft_bandpass(body, fw, s.band_low_hz, s.amplitude_high_hz, 0.3)
    noise, hf = estimate_noise(body, fw, s, 0.5 * fw if factor == 1 else 0.4 * fw)
    beats = detect_beats(osc, wide, deflation.trend, fw)
    beats = _subset(beats, beats.pressure >= s.min_cuff_pressure)
    scale = float(np.percentile(beats.amplitude, 90)) if beats.count else 0.0
    mask = motion_mask(deflation.trend, hf, fw, scale, s)
    uneven = check_rate(deflation, fw, mask.astype(np.float64), s)
    if uneven is not None:
        return uneven
    if beats.count < s.min_beats:
        return Refusal(
            "too-few-beats",
            f"too few beats: {beats.count} detected, need {s.min_beats}",
        )
    verdict = judge_beats(beats, mask, noise, fw, s)
    core_p = beats.pressure[verdict.core]
    if core_p.size:
        in_range = (beats.pressure >= core_p.min()) & (beats.pressure <= core_p.max())
    else:
        in_range = ~verdict.weak
    considered = int(np.sum(in_range & ~verdict.weak))
    corrupted = int(np.sum(in_range & verdict.motion))
    fraction = corrupted / considered if considered else 0.0
    if fraction > s.max_motion_fraction:
        return Refusal(
            "motion",
            f"movement artefacts: {fraction:.0%} of the beats in the measuring range corrupted "
            f"({corrupted} of {considered}), limit {s.max_motion_fraction:.0%}",
        )
    kept = int(verdict.kept.sum())
    if kept < s.min_beats:
        return Refusal(
            "too-few-beats",
            f"too few beats: {kept} usable beats in the envelope, need {s.min_beats}",
        )
    env = raw_envelope(beats.pressure[verdict.kept], beats.amplitude[verdict.kept])
    edge = _edges(env, s)
    if edge is not None:
        return edge
    pulse_rate, irregular = rhythm(beats, verdict, fw, s)
    return Record(
        fs=fw,
        factor=factor,
        start=start,
        x=x,
        trend=deflation.trend,
        osc=osc,
        beats=beats,
        verdict=verdict,
        noise=noise,
        envelope=env,
        pulse_rate=pulse_rate,
        irregular=irregular,
        accepted=1.0 - fraction,
    )


def trace(
    rec: Record, n_input: int, envelope_pressure: FloatArray, envelope: FloatArray
) -> OscillogramTrace:
    """The trace for plots: cuff and oscillations resampled to the input's rate and length."""
    fw, start = rec.fs, rec.start
    t_in = np.arange(n_input) / (fw * rec.factor)
    t_w = np.arange(rec.x.size) / fw
    cuff_w = cascaded_moving_average(rec.x, max(1, round(0.5 * fw)), passes=2)
    cuff_w[start : start + rec.trend.size] = rec.trend
    osc_w = np.zeros(rec.x.size)
    osc_w[start : start + rec.osc.size] = rec.osc
    b = rec.beats
    return OscillogramTrace(
        cuff=np.interp(t_in, t_w, cuff_w),
        oscillations=np.interp(t_in, t_w, osc_w),
        beat_time=(start + (b.foot + b.peak) / 2.0) / fw,
        beat_pressure=b.pressure.copy(),
        beat_amplitude=b.amplitude.copy(),
        beat_kept=rec.verdict.kept.copy(),
        envelope_pressure=envelope_pressure,
        envelope=envelope,
    )
