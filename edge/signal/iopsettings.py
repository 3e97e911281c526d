"""The limits and constants of air-puff tonometry (:mod:`edge.signal.tonometry`).

One frozen dataclass: every limit has a default and, next to it, why it has that value (the
physiology, the instrument, or what the tonometer simulator's cohort showed). A device's
calibration record may override any of them, e.g. its IOPcc scaling.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IopSettings:
    """The limits and constants of ``analyze_iop`` (seconds, mmHg, ADC counts)."""

    # -- the record --------------------------------------------------------------------------
    #: a puff holding both applanations lasts ~20 ms (ORA records are 25-35 ms); below 10 ms
    #: there is no room for the rise, the apex and the fall
    min_duration_s: float = 0.010
    #: the fewest samples an analysis is worth (about 3 ms at 20 kHz)
    min_samples: int = 64
    #: the pressure maximum must lie this far inside the record, or the puff was cut off
    edge_margin_s: float = 0.002
    #: a puff must rise this much (mmHg) above its start: no physiological P1 is lower, so a
    #: smaller rise cannot have applanated the cornea at all
    min_puff_rise: float = 15.0
    #: the puff is on the eye while the pressure exceeds its starting level by this (mmHg):
    #: applanation peaks are sought only then (no cornea flattens without pressure on it)
    puff_on_pressure: float = 1.0
    #: 12-bit photodetector ADC full scale, and the margin below it that counts as the rail
    light_full_scale: float = 4095.0
    rail_margin_counts: float = 5.0
    #: this many consecutive samples at the rail is a clipped (saturated) peak: one sample may
    #: be a noise spike, two means the true apex is unknown
    saturation_run: int = 2

    # -- smoothing and baseline ----------------------------------------------------------------
    #: light smoothing (Gaussian sigma): well under a quarter of an applanation peak's width
    #: (1-2.5 ms at half height) so no peak is flattened, enough to steady the peak search
    light_smooth_s: float = 0.0001
    #: pressure smoothing for finding its maximum (the plenum pressure is slow: ~10 ms ramps)
    pressure_smooth_s: float = 0.0005
    #: light baseline window: wider than the foot of the broadest peak worth measuring (a peak
    #: at the width limit below spans ~6 ms at its base), narrower than the ~12 ms between the
    #: two applanations, so slow drifts and eyelid transients go into the baseline, peaks not
    baseline_window_s: float = 0.008
    #: the apex is fitted to the samples above this fraction of the peak's height: the upper
    #: 60 % of a peak is still cap-shaped (two parabolas fit it) and holds enough samples to
    #: average the noise of a poor record (a higher fraction doubles the error at SNR ~10)
    apex_fraction: float = 0.4
    #: P1/P2 come from a quadratic fitted to the pressure over +-this window around the apex
    pressure_fit_s: float = 0.0005

    # -- refusals --------------------------------------------------------------------------
    #: a peak lower than this many noise standard deviations is not there (false-alarm odds of
    #: a 6-sigma excursion are negligible over a few hundred samples)
    detect_snr: float = 6.0
    #: nor is a peak below this height (1 % of the ADC range) whatever the noise ...
    detect_counts: float = 40.0
    #: ... nor one the light does not fall from on both sides by half its height within two
    #: widths: that is a step (an eyelid lifting, say) that the baseline removal made look
    #: like a peak
    min_peak_sides: float = 0.5
    #: an inward applanation peak must at least double the light over its baseline and rise
    #: 150 counts (~4 % of the ADC range): when the eye is on the instrument's axis the mirror
    #: reflection of the flattened cornea outshines the diffuse light several times over;
    #: a weaker one means the reflection mostly misses the detector (off-axis eye)
    min_peak_counts: float = 150.0
    min_peak_to_baseline: float = 1.0
    #: the inward applanation is brief (1-2.5 ms at half height in the simulated cohort); a
    #: broader inward peak is an oblique, smeared reflection (misaligned eye) ...
    max_inward_fwhm_s: float = 0.003
    #: ... the outward one is slower (the pressure falls more slowly than it rose and the
    #: cornea recovers viscously), so it gets twice the room
    max_outward_fwhm_s: float = 0.006
    #: an outward peak below this fraction of the inward one is missing (a lost second
    #: applanation), not merely small
    min_second_ratio: float = 0.2
    #: the outward applanation happens at a lower pressure than the inward one (the cornea's
    #: viscous loss makes CH positive, Luce 2005); a "peak" after the pressure maximum at a
    #: pressure within this of P1, or above it, is something else (an eyelid edge, say)
    min_hysteresis: float = 1.0
    #: blink: the light falls below this fraction of its starting level ...
    collapse_fraction: float = 0.5
    #: ... for at least this long, outside the two applanations (between them the cornea is
    #: concave and the light dips normally; an eyelid stays down for far longer than 1 ms)
    collapse_min_s: float = 0.001
    #: blink: the slow light (the baseline) swings by more than this (25 % of the ADC range)
    max_baseline_swing_counts: float = 1000.0

    # -- flags and quality ----------------------------------------------------------------------
    #: below this peak-to-noise ratio the record is usable but noisy (``iop-noisy``) ...
    noisy_snr: float = 30.0
    #: ... and so is a pressure noisier than this (mmHg, standard deviation)
    noisy_pressure_sd: float = 0.5
    #: peaks outside these height and width ratios (outward / inward) are ``iop-asymmetric-peaks``:
    #: the outward peak is normally lower (30-100 %) and broader (1-3x) than the inward one, as
    #: the pressure falls more slowly than it rose and the cornea recovers viscously
    asymmetric_height: tuple[float, float] = (0.3, 1.2)
    asymmetric_width: tuple[float, float] = (0.8, 3.0)
    #: a peak-to-noise ratio at which the quality term is full
    good_snr: float = 60.0
    #: below this quality the estimate is also flagged ``low-quality``
    low_quality: float = 0.5

    # -- corneal-compensated IOP (derivation in edge.signal.tonometry's docstring) -------------
    #: Luce's weight of P1 in IOPcc = P2 - k * P1
    iopcc_k: float = 0.43
    #: the linear scaling to Goldmann mmHg: 1 / (1 - k) = 1.7544
    iopcc_gain: float = 1.0 / (1.0 - 0.43)
    #: CH0 * (1 + k) / (2 * (1 - k)) with CH0 = 10.5 mmHg: 13.171 mmHg
    iopcc_offset: float = 10.5 * (1.0 + 0.43) / (2.0 * (1.0 - 0.43))
