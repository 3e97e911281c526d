"""The fixed-ratio maximum-amplitude reading: the benchmark baseline for the model fit.

MAP is the cuff pressure at the maximum ``A_max`` of the smoothed envelope; SBP is where the
envelope falls to 0.55 ``A_max`` on the high-pressure side and DBP where it falls to
0.85 ``A_max`` on the low-pressure side (Geddes et al., "Characterization of the oscillometric
method for measuring indirect blood pressure", Ann Biomed Eng 1982;10:271-280; the ratios are
``BpSettings.systolic_ratio`` / ``diastolic_ratio``). This is the "maximum amplitude algorithm"
that Sapinski describes as the standard (Med Biol Eng Comput 1996;34:82-88) and whose errors Liu,
Hahn & Mukkamala analyse (Ann Biomed Eng 2013;41:587-597): the right ratios change with pulse
pressure and arterial stiffness. It shares the front end (beats, artefacts, refusals) with
:func:`edge.signal.oscillometry.analyze_bp`, so a comparison isolates the envelope reading.
"""

from __future__ import annotations

import numpy as np

from edge.signal.bpquality import quality_index
from edge.signal.bprecord import prepare, trace
from edge.signal.bpsettings import DEFAULT_SETTINGS, BpSettings
from edge.signal.envelope import ratio_crossing
from edge.signal.filters import FloatArray
from edge.signal.oscillometry import flags_for
from edge.signal.results import BpEstimate, Refusal

METHOD = "oscillometric, fixed ratios (Geddes 1982: 0.55 systolic, 0.85 diastolic)"


def fixed_ratio_bp(
    pressure: FloatArray, fs: float, settings: BpSettings = DEFAULT_SETTINGS
) -> BpEstimate | Refusal:
    """Blood pressure by fixed characteristic ratios, or a refusal (same rules as the model)."""
    rec = prepare(pressure, fs, settings)
    if isinstance(rec, Refusal):
        return rec
    env = rec.envelope
    sbp = ratio_crossing(env, settings.systolic_ratio, high_side=True)
    dbp = ratio_crossing(env, settings.diastolic_ratio, high_side=False)
    if sbp is None or dbp is None:
        side = "systolic (high-pressure)" if sbp is None else "diastolic (low-pressure)"
        ratio = settings.systolic_ratio if sbp is None else settings.diastolic_ratio
        return Refusal(
            "no-envelope-peak",
            f"no envelope peak: on the {side} side the envelope never falls to {ratio:.2f} of "
            "its maximum",
        )
    top = float(env.smooth[env.peak])
    resid = float(np.sqrt(np.mean((env.amplitude - env.smooth) ** 2))) / max(top, 1e-12)
    snr = top / max(rec.noise.band_sigma, 1e-9)
    quality = quality_index(rec.accepted, resid, snr)
    return BpEstimate(
        systolic=sbp,
        diastolic=dbp,
        mean=env.mean,
        pulse_rate=rec.pulse_rate,
        quality=quality,
        flags=flags_for(rec, resid, quality, settings),
        method=METHOD,
        trace=trace(rec, np.asarray(pressure).size, env.pressure.copy(), env.smooth.copy()),
    )
