"""The readings the benchmark compares the gateway's with: fixed ratios and the model fit.

**Fixed ratios** (:func:`fixed_ratio_bp`, the issue's baseline). MAP is the cuff pressure at
the maximum ``A_max`` of the smoothed envelope; SBP is where the envelope falls to
0.55 ``A_max`` on the high-pressure side and DBP where it falls to 0.85 ``A_max`` on the
low-pressure side (Geddes et al., "Characterization of the oscillometric
method for measuring indirect blood pressure", Ann Biomed Eng 1982;10:271-280; the ratios are
``BpSettings.systolic_ratio`` / ``diastolic_ratio``). This is the "maximum amplitude algorithm"
that Sapinski describes as the standard (Med Biol Eng Comput 1996;34:82-88) and whose errors Liu,
Hahn & Mukkamala analyse (Ann Biomed Eng 2013;41:587-597): the right ratios change with pulse
pressure and arterial stiffness. It shares the front end (beats, artefacts, refusals) with
:func:`edge.signal.oscillometry.analyze_bp`, so a comparison isolates the envelope reading.

**Model fit** (:func:`model_fit_bp`): the patient-specific arterial model of Liu et al. (IEEE
Trans Biomed Eng 2016;63:1220-1228) fitted to the kept beats (:mod:`edge.signal.envelope_model`),
SBP and DBP as parameters of the fit, MAP at the fitted envelope's maximum. It was the gateway's
reading until it was measured against the variable ratios of :mod:`edge.signal.ratios`.
"""

from __future__ import annotations

import numpy as np

from edge.signal.bprecord import prepare
from edge.signal.bpsettings import DEFAULT_SETTINGS, BpSettings
from edge.signal.envelope import ratio_crossing
from edge.signal.envelope_model import fit_model
from edge.signal.filters import FloatArray
from edge.signal.oscillometry import build_estimate, envelope_scatter, range_refusal
from edge.signal.results import BpEstimate, Refusal

METHOD = "oscillometric, fixed ratios (Geddes 1982: 0.55 systolic, 0.85 diastolic)"
MODEL_METHOD = "oscillometric, model-based envelope fit (Liu et al. 2016), MAP at envelope maximum"


def fixed_ratio_bp(
    pressure: FloatArray, fs: float, settings: BpSettings = DEFAULT_SETTINGS
) -> BpEstimate | Refusal:
    """Blood pressure by fixed characteristic ratios, or a refusal (the gateway's front end)."""
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
    return build_estimate(
        rec,
        np.asarray(pressure).size,
        (sbp, dbp, env.mean),
        envelope_scatter(env),
        METHOD,
        (env.pressure.copy(), env.smooth.copy()),
        settings,
    )


def model_fit_bp(
    pressure: FloatArray, fs: float, settings: BpSettings = DEFAULT_SETTINGS
) -> BpEstimate | Refusal:
    """Blood pressure by the arterial-model fit, or a refusal (same front end and rules)."""
    rec = prepare(pressure, fs, settings)
    if isinstance(rec, Refusal):
        return rec
    env = rec.envelope
    guesses: list[tuple[float, float]] = []
    for ks, kd in ((0.45, 0.65), (0.65, 0.85)):  # fixed-ratio starts spanning published ratios
        sbp = ratio_crossing(env, ks, high_side=True)
        dbp = ratio_crossing(env, kd, high_side=False)
        guesses.append(
            (sbp if sbp is not None else env.mean + 30.0,
             dbp if dbp is not None else env.mean - 15.0)
        )  # fmt: skip
    fit = fit_model(env, guesses, rec.noise.band_sigma)
    refusal = range_refusal(fit.systolic, fit.diastolic, rec)
    if refusal is not None:
        return refusal
    grid = np.linspace(float(env.pressure.min()) - 10.0, float(env.pressure.max()) + 10.0, 200)
    return build_estimate(
        rec,
        np.asarray(pressure).size,
        (fit.systolic, fit.diastolic, fit.mean),
        fit.residual,
        MODEL_METHOD,
        (grid, fit.curve(grid)),
        settings,
    )
