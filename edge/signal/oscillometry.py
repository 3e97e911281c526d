"""Oscillometric blood pressure from the raw cuff-pressure record of a deflation (issue #6).

The gateway computes the reading itself from the cuff pressure the NIBP module streams:

1. the shared front end (:mod:`edge.signal.bprecord`) finds the deflation, extracts the
   oscillations with zero-phase FFT filters, detects beats with a slope-sum function, measures
   foot-to-peak amplitudes, discards movement-corrupted beats and refuses records that cannot
   support an estimate;
2. SBP, DBP and MAP are read off the smoothed envelope of the kept beats by variable
   characteristic ratios (:mod:`edge.signal.ratios`): the envelope's width at 16 heights on
   each side of its maximum, through a linear regression learned on records with known
   intra-arterial pressure (after Lim et al., IEEE Trans Biomed Eng 2015). Fixed ratios fail
   because the ratio at the true pressure drifts with pulse pressure and arterial stiffness
   (Liu, Hahn & Mukkamala, Ann Biomed Eng 2013;41:587-597); both change the envelope's width
   and skew, which the regression reads;
3. pulse rate is the median beat interval; rhythm, movement, the beats' scatter about the
   envelope and noise give the flags and a quality index 0..1.

The readings used as the benchmark's comparisons, fixed ratios and the patient-specific model
fit, are in :mod:`edge.signal.baseline`; they share the front end.
"""

from __future__ import annotations

import numpy as np

from edge.signal.bpquality import quality_index
from edge.signal.bprecord import Record, prepare, trace
from edge.signal.bpsettings import DEFAULT_SETTINGS, BpSettings
from edge.signal.envelope import RawEnvelope
from edge.signal.filters import FloatArray
from edge.signal.ratio_table import RATIO_MODEL
from edge.signal.ratios import RatioModel
from edge.signal.results import BpEstimate, Refusal

__all__ = ["BpSettings", "analyze_bp"]


METHOD = (
    "oscillometric, variable characteristic ratios (envelope-shape regression after Lim et "
    "al. 2015)"
)
#: how far beyond the cuff pressures that carried beats an SBP/DBP may lie (mmHg)
EXTRAPOLATION_MARGIN = 5.0
#: narrowest pulse pressure, and closest approach of MAP to SBP or DBP, a reading may show
#: (mmHg): below these the envelope is not one of a beating artery under a cuff
MIN_PULSE_PRESSURE = 10.0
MIN_MAP_MARGIN = 2.0


def range_refusal(systolic: float, diastolic: float, rec: Record) -> Refusal | None:
    """Refuse an SBP/DBP extrapolated beyond the cuff pressures where beats were seen."""
    p = rec.envelope.pressure
    if systolic > float(p.max()) + EXTRAPOLATION_MARGIN:
        return Refusal(
            "no-envelope-peak",
            f"no envelope peak above systolic: the envelope places systolic at {systolic:.0f} "
            f"mmHg, above the highest cuff pressure with beats ({p.max():.0f} mmHg)",
        )
    if diastolic < float(p.min()) - EXTRAPOLATION_MARGIN:
        return Refusal(
            "no-envelope-peak",
            f"no envelope peak below diastolic: the envelope places diastolic at "
            f"{diastolic:.0f} mmHg, below the lowest cuff pressure with beats "
            f"({p.min():.0f} mmHg)",
        )
    return None


def _order_refusal(systolic: float, diastolic: float, mean: float) -> Refusal | None:
    """Refuse readings no artery gives: a pulse pressure under 10 mmHg, MAP outside them."""
    if systolic - diastolic < MIN_PULSE_PRESSURE:
        return Refusal(
            "envelope-shape",
            f"envelope of unusual shape: it gives a pulse pressure of "
            f"{systolic - diastolic:.0f} mmHg ({systolic:.0f}/{diastolic:.0f}), minimum "
            f"{MIN_PULSE_PRESSURE:.0f} mmHg",
        )
    if not diastolic + MIN_MAP_MARGIN <= mean <= systolic - MIN_MAP_MARGIN:
        return Refusal(
            "envelope-shape",
            f"envelope of unusual shape: it gives a mean pressure of {mean:.0f} mmHg, not "
            f"between diastolic {diastolic:.0f} and systolic {systolic:.0f} mmHg",
        )
    return None


def envelope_scatter(env: RawEnvelope) -> float:
    """RMS of the kept beats about the smoothed envelope, over its maximum (0 = smooth)."""
    top = max(float(env.smooth[env.peak]), 1e-12)
    return float(np.sqrt(np.mean((env.amplitude - env.smooth) ** 2))) / top


def flags_for(rec: Record, scatter: float, quality: float, s: BpSettings) -> tuple[str, ...]:
    """Flag codes of :data:`edge.signal.results.FLAG_TEXT` for this reading."""
    flags: list[str] = []
    if rec.irregular:
        flags.append("irregular-rhythm")
    if rec.verdict.motion_events > 0:
        flags.append("motion-artefact")
    if scatter > s.poor_fit_residual:
        flags.append("envelope-fit-poor")
    if quality < s.low_quality:
        flags.append("low-quality")
    return tuple(flags)


def analyze_bp(
    pressure: FloatArray,
    fs: float,
    settings: BpSettings = DEFAULT_SETTINGS,
    ratios: RatioModel = RATIO_MODEL,
) -> BpEstimate | Refusal:
    """Blood pressure from a whole cuff record (mmHg sampled at ``fs`` Hz), or a refusal.

    ``ratios`` are the regression's coefficients (default: the shipped table).
    """
    rec = prepare(pressure, fs, settings)
    if isinstance(rec, Refusal):
        return rec
    env = rec.envelope
    systolic, diastolic, mean = ratios.read(env)
    refusal = range_refusal(systolic, diastolic, rec) or _order_refusal(systolic, diastolic, mean)
    if refusal is not None:
        return refusal
    return build_estimate(
        rec,
        np.asarray(pressure).size,
        (systolic, diastolic, mean),
        envelope_scatter(env),
        METHOD,
        (env.pressure.copy(), env.smooth.copy()),
        settings,
    )


def build_estimate(
    rec: Record,
    n_input: int,
    readings: tuple[float, float, float],
    scatter: float,
    method: str,
    envelope: tuple[FloatArray, FloatArray],
    settings: BpSettings,
) -> BpEstimate:
    """The estimate of one reading: (SBP, DBP, MAP), quality, flags, the trace to draw.

    ``scatter`` is the beats' RMS about the envelope the reading used, over its maximum;
    ``envelope`` the (pressures, amplitudes) of that envelope for the trace. Shared by the
    gateway's reading and the benchmark's comparisons (:mod:`edge.signal.baseline`).
    """
    env = rec.envelope
    snr = float(env.smooth[env.peak]) / max(rec.noise.band_sigma, 1e-9)
    quality = quality_index(rec.accepted, scatter, snr)
    systolic, diastolic, mean = readings
    return BpEstimate(
        systolic=systolic,
        diastolic=diastolic,
        mean=mean,
        pulse_rate=rec.pulse_rate,
        quality=quality,
        flags=flags_for(rec, scatter, quality, settings),
        method=method,
        trace=trace(rec, n_input, *envelope),
    )
