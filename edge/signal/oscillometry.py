"""Oscillometric blood pressure from the raw cuff-pressure record of a deflation (issue #6).

The gateway computes the reading itself from the cuff pressure the NIBP module streams:

1. the shared front end (:mod:`edge.signal.bprecord`) finds the deflation, extracts the
   oscillations with zero-phase FFT filters, detects beats with a slope-sum function, measures
   foot-to-peak amplitudes, discards movement-corrupted beats and refuses records that cannot
   support an estimate;
2. the envelope of the kept beats is fitted with the patient-specific arterial model of Liu et
   al. (IEEE Trans Biomed Eng 2016;63:1220-1228): amplitude ~ V(SBP - Pc) - V(DBP - Pc) with an
   exponential collapse / saturating distension volume curve and a cuff-compliance term
   (:mod:`edge.signal.envelope`). SBP and DBP are parameters of the fit rather than fixed
   fractions of the maximum, so they follow pulse pressure and arterial stiffness, the two
   causes of fixed-ratio error identified by Liu, Hahn & Mukkamala (Ann Biomed Eng
   2013;41:587-597). MAP is the cuff pressure at the fitted envelope's maximum;
3. pulse rate is the median beat interval; rhythm, movement, fit and noise give the flags and
   a quality index 0..1.

The fixed-ratio reading used as a benchmark baseline is :func:`edge.signal.baseline
.fixed_ratio_bp`; it shares the front end.
"""

from __future__ import annotations

import numpy as np

from edge.signal.bpquality import quality_index
from edge.signal.bprecord import Record, prepare, trace
from edge.signal.bpsettings import DEFAULT_SETTINGS, BpSettings
from edge.signal.envelope import ModelFit, fit_model, ratio_crossing
from edge.signal.filters import FloatArray
from edge.signal.results import BpEstimate, Refusal

__all__ = ["BpSettings", "analyze_bp"]


METHOD = "oscillometric, model-based envelope fit (Liu et al. 2016), MAP at envelope maximum"
#: how far beyond the cuff pressures that carried beats an SBP/DBP may lie (mmHg)
EXTRAPOLATION_MARGIN = 5.0


def _guesses(rec: Record) -> list[tuple[float, float]]:
    """Fixed-ratio (SBP, DBP) starting points spanning the published ratio ranges."""
    env = rec.envelope
    out: list[tuple[float, float]] = []
    for ks, kd in ((0.45, 0.65), (0.65, 0.85)):
        sbp = ratio_crossing(env, ks, high_side=True)
        dbp = ratio_crossing(env, kd, high_side=False)
        out.append(
            (sbp if sbp is not None else env.mean + 30.0,
             dbp if dbp is not None else env.mean - 15.0)
        )  # fmt: skip
    return out


def _range_refusal(fit: ModelFit, rec: Record) -> Refusal | None:
    """Refuse an SBP/DBP extrapolated beyond the cuff pressures where beats were seen."""
    p = rec.envelope.pressure
    if fit.systolic > float(p.max()) + EXTRAPOLATION_MARGIN:
        return Refusal(
            "no-envelope-peak",
            f"no envelope peak above systolic: the fit places systolic at {fit.systolic:.0f} "
            f"mmHg, above the highest cuff pressure with beats ({p.max():.0f} mmHg)",
        )
    if fit.diastolic < float(p.min()) - EXTRAPOLATION_MARGIN:
        return Refusal(
            "no-envelope-peak",
            f"no envelope peak below diastolic: the fit places diastolic at "
            f"{fit.diastolic:.0f} mmHg, below the lowest cuff pressure with beats "
            f"({p.min():.0f} mmHg)",
        )
    return None


def flags_for(rec: Record, fit_residual: float, quality: float, s: BpSettings) -> tuple[str, ...]:
    """Flag codes of :data:`edge.signal.results.FLAG_TEXT` for this reading."""
    flags: list[str] = []
    if rec.irregular:
        flags.append("irregular-rhythm")
    if rec.verdict.motion_events > 0:
        flags.append("motion-artefact")
    if fit_residual > s.poor_fit_residual:
        flags.append("envelope-fit-poor")
    if quality < s.low_quality:
        flags.append("low-quality")
    return tuple(flags)


def analyze_bp(
    pressure: FloatArray, fs: float, settings: BpSettings = DEFAULT_SETTINGS
) -> BpEstimate | Refusal:
    """Blood pressure from a whole cuff record (mmHg sampled at ``fs`` Hz), or a refusal."""
    rec = prepare(pressure, fs, settings)
    if isinstance(rec, Refusal):
        return rec
    env = rec.envelope
    fit = fit_model(env, _guesses(rec), rec.noise.band_sigma)
    refusal = _range_refusal(fit, rec)
    if refusal is not None:
        return refusal
    snr = float(env.smooth[env.peak]) / max(rec.noise.band_sigma, 1e-9)
    quality = quality_index(rec.accepted, fit.residual, snr)
    grid = np.linspace(float(env.pressure.min()) - 10.0, float(env.pressure.max()) + 10.0, 200)
    return BpEstimate(
        systolic=fit.systolic,
        diastolic=fit.diastolic,
        mean=fit.mean,
        pulse_rate=rec.pulse_rate,
        quality=quality,
        flags=flags_for(rec, fit.residual, quality, settings),
        method=METHOD,
        trace=trace(rec, np.asarray(pressure).size, grid, fit.curve(grid)),
    )
