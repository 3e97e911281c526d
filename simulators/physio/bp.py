"""Oscillometric blood-pressure recordings with known intra-arterial truth (Babbs-type model).

The chain follows Babbs CF, "Oscillometric measurement of systolic and diastolic blood
pressures validated in a physiologic mathematical model", BioMed Eng OnLine 2012;11:56:

1. brachial pressure ``Pa(t)``: beat by beat, with heart-rate variability, respiration,
   beat-to-beat variability and optionally AF-like or ectopic rhythm
   (:mod:`simulators.physio.artery`);
2. the cuff pressure ``Pc`` reaches the artery through the soft tissue attenuated by a
   transmission factor ``k`` (0.93-1.0 under the cuff's centre, 0.4-0.8 under its proximal
   edge, whose share ``e`` of the artery keeps pulsating above systolic: the envelope's tail);
3. lumen volume ``V = sum_j w_j V_j(Pa - k_j Pc)`` from a collapsible-tube curve (buckling at
   negative, stiffening at positive transmural pressure; Drzewiecki et al., Ann Biomed Eng
   1994;22:88-96), stiffer in older/hypertensive arms;
4. the cuff's air sees the artery's volume change through its own elastance, which rises with
   pressure as the bladder tightens round the arm: ``E(Pc) = E0 (1 + Pc / Pk)``. The coupled
   equation ``x = E(Pb) [V(Pa - k (Pb + x)) - V(MAPn - k Pb)]`` for the oscillation ``x`` on
   top of the valve pressure ``Pb`` is solved by Newton's method, sample by sample, vectorised.

The sensor then adds motion, low-pass, noise, 50 Hz mains and ADC quantisation
(:mod:`simulators.physio.cuff`). Because the envelope comes out of the vessel curve and the
pulse pressure, the "characteristic ratios" (envelope amplitude at the true SBP/DBP over its
maximum) vary between subjects, as Liu J, Hahn JO, Mukkamala R, "Error mechanisms of the
oscillometric fixed-ratio blood pressure measurement method", Ann Biomed Eng 2013;41:587-597
and Babbs 2012 report: no fixed ratio recovers the truth exactly.

**Record**: :attr:`BpSample.pressure` is the WHOLE record as the transducer reads it: idle at
atmospheric pressure, inflation (with oscillations and pump ripple), hold, deflation, exhaust dump
to ~0 and a short tail; a "too-short" record is cut mid-deflation.

**Truth** (:class:`BpTruth`): the measuring range is the stretch of the deflation while the valve
pressure is between ``case.systolic + 10`` and ``case.diastolic - 10`` mmHg (clipped to what was
recorded). The beats whose onset falls in it are averaged: ``systolic`` = mean of the beats'
maxima, ``diastolic`` = mean of their minima (end-diastolic pressure), ``mean`` = time-average
of the waveform over those whole beats, ``heart_rate`` = 60 / mean RR interval.

**Labels** (:attr:`BpSample.labels`): "stiff" (``case.stiffness >= 0.6``; still clean),
"arrhythmia" (AF-like or ectopic rhythm), "motion" (artefact bursts, the first inside the
measuring range), and the faults in :data:`BP_FAULTS`, which cannot support an estimate:
"too-short" (record cut mid-deflation, above DBP, no dump), "deflation-too-fast" (mean rate from
the top to the stop pressure > 10 mmHg/s), "deflation-uneven" (valve slips of 10-25 mmHg in
~0.1 s inside the measuring range, often with 0.8-2.5 s stalls), "clipped" (ADC full scale below
the top pressure: flat at the top code), "no-envelope-peak" (top pressure below the true SBP, or
stop pressure above the true DBP). "clean" when none of these but "stiff" applies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from simulators.physio.artery import (
    Arrhythmia,
    Beats,
    VesselCurve,
    arterial_pressure,
    beat_train,
)
from simulators.physio.cuff import DeflationLaw, motion, transducer, valve_pressure

F64 = NDArray[np.float64]

BP_FAULTS = frozenset(
    {"too-short", "deflation-too-fast", "deflation-uneven", "clipped", "no-envelope-peak"}
)
"""Labels of records that cannot support an estimate (an estimator should refuse them)."""


@dataclass(frozen=True, slots=True)
class BpTruth:
    """Intra-arterial truth over the measuring range (see the module docstring)."""

    systolic: float
    diastolic: float
    mean: float
    heart_rate: float


@dataclass(frozen=True, slots=True)
class BpCase:
    """One arm and one recording's settings (pressures mmHg, rates mmHg/s, times s)."""

    systolic: float = 120.0
    diastolic: float = 80.0
    heart_rate: float = 70.0
    model: Literal["babbs", "envelope"] = "babbs"
    # --- vessel and cuff mechanics (Babbs model) ---
    stiffness: float = 0.3  # 0 young/compliant .. 1 old/stiff; shapes the pulse and the curve
    collapse: float = 0.12  # 1/mmHg, e-fold rate of the lumen's buckling below the knee
    distension: float = 0.04  # 1/mmHg, e-fold rate of compliance loss above the knee
    knee: float = 0.0  # mmHg, transmural pressure of maximum compliance
    artery_volume: float = 1.6  # ml, lumen volume under the cuff when fully distended
    transmission: float = 0.97  # cuff -> artery pressure transmission under the cuff's centre
    edge_fraction: float = 0.12  # share of the artery under the cuff's proximal edge
    edge_transmission: float = 0.6
    cuff_elastance: float = 1.8  # mmHg/ml at 0 mmHg
    cuff_stiffening: float = 120.0  # mmHg: E = E0 (1 + Pc / this)
    # --- envelope model (simulators.physio.envelope) ---
    env_amplitude: float = 2.5  # mmHg, peak-to-peak oscillation at the maximum
    env_shape: float = 0.0  # -1..1, moves the characteristic ratios (see envelope.py)
    # --- rhythm and respiration ---
    arrhythmia: Arrhythmia = "none"
    rr_cv: float = 0.0  # AF: coefficient of variation of RR intervals (0.15-0.30)
    ectopic_rate: float = 0.0  # ectopic: probability per beat of a premature beat
    resp_rate: float = 0.25  # Hz
    resp_mmhg: float = 2.0  # respiratory swing of SBP/DBP (amplitude)
    bp_sd: float = 2.0  # beat-to-beat SD of SBP/DBP
    # --- artefacts ---
    motion_bursts: int = 0
    motion_mmhg: float = 0.0
    # --- protocol ---
    inflate_rate: float = 20.0
    top_margin: float = 30.0  # top = systolic + this (negative: deflation starts below SBP)
    deflation_rate: float = 3.0
    deflation_law: DeflationLaw = "linear"
    valve_jitter: float = 0.1  # relative SD of the valve's rate
    stalls: int = 0
    jumps: int = 0  # sudden 10-25 mmHg drops inside the measuring range ("deflation-uneven")
    stop_margin: float = 20.0  # stop = diastolic - this (negative: stops above DBP); >= 15 mmHg
    truncate_pressure: float | None = None  # record cut when deflation reaches this pressure
    # --- transducer ---
    fs: float = 500.0
    lowpass_hz: float = 30.0
    noise_mmhg: float = 0.05
    mains_mmhg: float = 0.03
    adc_bits: int = 16
    full_scale: float = 300.0  # mmHg at the top ADC code (below top pressure -> "clipped")


@dataclass(frozen=True, slots=True, eq=False)
class BpSample:
    """One simulated record: cuff pressure (mmHg, quantised), sampling rate, truth, labels."""

    pressure: F64
    fs: float
    truth: BpTruth
    labels: frozenset[str]
    case: BpCase


def _vessels(case: BpCase) -> list[tuple[float, float, VesselCurve]]:
    """(weight, transmission, curve) of the artery under the cuff's centre and proximal edge."""
    curve = VesselCurve.make(
        collapse=case.collapse,
        distension=case.distension,
        knee=case.knee,
        volume=case.artery_volume,
    )
    return [
        (1.0 - case.edge_fraction, case.transmission, curve),
        (case.edge_fraction, case.transmission * case.edge_transmission, curve),
    ]


def couple(case: BpCase, pa: F64, pb: F64, map_nominal: float) -> F64:
    """Oscillation ``x`` (mmHg) added to valve pressure ``pb`` by arterial pressure ``pa``."""
    vessels = _vessels(case)
    base = np.maximum(pb, 0.0)
    elast = case.cuff_elastance * (1.0 + base / case.cuff_stiffening)
    ref = sum(w * c.volume(map_nominal - k * base) for w, k, c in vessels)
    x = np.zeros_like(pa)
    for _ in range(5):  # f(x) = x - E (V(x) - Vref) is increasing: Newton converges fast
        ptm = [pa - k * (base + x) for _, k, _ in vessels]
        vol = sum(w * c.volume(p) for (w, _, c), p in zip(vessels, ptm, strict=True))
        dvol = sum(w * k * c.compliance(p) for (w, k, c), p in zip(vessels, ptm, strict=True))
        x = x - (x - elast * (vol - ref)) / (1.0 + elast * dvol)
    return np.asarray(x, dtype=np.float64)


def _train(case: BpCase, rng: np.random.Generator, duration: float) -> Beats:
    return beat_train(
        rng,
        duration=duration,
        systolic=case.systolic,
        diastolic=case.diastolic,
        heart_rate=case.heart_rate,
        stiffness=case.stiffness,
        arrhythmia=case.arrhythmia,
        rr_cv=case.rr_cv,
        ectopic_rate=case.ectopic_rate,
        resp_rate=case.resp_rate,
        resp_mmhg=case.resp_mmhg,
        bp_sd=case.bp_sd,
    )


def _truth(beats: Beats, t_from: float, t_to: float) -> BpTruth:
    """Average over whole beats whose onset is in ``[t_from, t_to]`` (see module docstring)."""
    on = beats.onset[:-1]
    idx = np.flatnonzero((on >= t_from) & (on <= t_to))
    if idx.size == 0:  # window shorter than one beat: the beat containing its start
        idx = np.array([max(0, int(np.searchsorted(on, t_from, side="right")) - 1)])
    t = np.arange(beats.onset[idx[0]], beats.onset[idx[-1] + 1], 0.001)
    p = arterial_pressure(t, beats)
    k = np.searchsorted(beats.onset, t, side="right") - 1
    seg = np.flatnonzero(np.diff(k)) + 1
    starts = np.concatenate(([0], seg))
    rr = np.diff(beats.onset)[idx]
    return BpTruth(
        systolic=float(np.mean(np.maximum.reduceat(p, starts))),
        diastolic=float(np.mean(np.minimum.reduceat(p, starts))),
        mean=float(np.mean(p)),
        heart_rate=float(60.0 / np.mean(rr)),
    )


def simulate_bp(case: BpCase, rng: np.random.Generator) -> BpSample:
    """Simulate one cuff record for ``case``; randomness (beats, noise, artefacts) from ``rng``."""
    sbp, dbp = case.systolic, case.diastolic
    map_nominal = dbp + 0.35 * (sbp - dbp)
    top = sbp + case.top_margin
    stop = max(15.0, dbp - case.stop_margin)
    lo, hi = max(dbp - 5.0, stop + 2.0), min(sbp + 5.0, top - 5.0)
    stall_at = tuple(rng.uniform(min(lo, hi), hi, size=case.stalls))
    jump_at = tuple(rng.uniform(min(lo, hi), hi, size=case.jumps))
    prof = valve_pressure(
        rng,
        fs=case.fs,
        top=top,
        inflate_rate=case.inflate_rate,
        deflation_rate=case.deflation_rate,
        law=case.deflation_law,
        law_reference=map_nominal,
        jitter=case.valve_jitter,
        stop=stop,
        stall_pressures=stall_at,
        jump_pressures=jump_at,
    )
    t, pb = prof.t, prof.pressure
    beats = _train(case, rng, float(t[-1]))
    pa = arterial_pressure(t, beats)

    # Measuring range on the valve pressure (module docstring), truth over its beats.
    defl = (t >= prof.deflation_start) & (t < prof.deflation_end)
    t_end = prof.deflation_end
    if case.truncate_pressure is not None:
        cut = np.flatnonzero(defl & (pb <= case.truncate_pressure))
        t_end = float(t[cut[0]]) if cut.size else t_end
    t_a = _first(t, defl & (pb <= sbp + 10.0), prof.deflation_start)
    t_b = min(_first(t, defl & (pb <= dbp - 10.0), t_end), t_end)
    truth = _truth(beats, t_a, t_b)
    if case.model == "envelope":
        from simulators.physio.envelope import envelope_oscillation

        x = envelope_oscillation(case, truth, pa, pb, beats, t)
    else:
        x = couple(case, pa, pb, map_nominal)
    resp = rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * case.resp_rate * t + rng.uniform(0, 6.3))
    cuff = pb + x + resp * (pb > 5.0)
    if case.motion_bursts > 0:
        cuff += motion(
            rng, t, bursts=case.motion_bursts, amplitude=case.motion_mmhg, window=(t_a, t_b)
        )
    meas = transducer(
        rng,
        cuff,
        fs=case.fs,
        lowpass_hz=case.lowpass_hz,
        noise=case.noise_mmhg,
        mains=case.mains_mmhg,
        bits=case.adc_bits,
        full_scale=case.full_scale,
    )
    if case.truncate_pressure is not None:
        meas = meas[: int(np.searchsorted(t, t_end))]
    rate = deflation_rate(prof.top, stop, prof.deflation_start, prof.deflation_end)
    labels = _labels(case, truth, meas, top=top, stop=stop, rate=rate)
    return BpSample(pressure=meas, fs=case.fs, truth=truth, labels=labels, case=case)


def _labels(
    case: BpCase, truth: BpTruth, meas: F64, *, top: float, stop: float, rate: float
) -> frozenset[str]:
    """The record's labels (semantics in the module docstring)."""
    labels: set[str] = set()
    if case.truncate_pressure is not None:
        labels.add("too-short")
    if case.stiffness >= 0.6:
        labels.add("stiff")
    if case.arrhythmia != "none":
        labels.add("arrhythmia")
    if case.motion_bursts > 0:
        labels.add("motion")
    if rate > 10.0:
        labels.add("deflation-too-fast")
    if case.jumps > 0:
        labels.add("deflation-uneven")
    if np.any(meas >= case.full_scale - 1e-9):
        labels.add("clipped")
    if top < truth.systolic or stop > truth.diastolic:
        labels.add("no-envelope-peak")
    if not labels - {"stiff"}:
        labels.add("clean")
    return frozenset(labels)


def deflation_rate(top: float, stop: float, t_start: float, t_stop: float) -> float:
    """Mean deflation rate (mmHg/s) from the top pressure to the stop pressure."""
    return (top - stop) / max(t_stop - t_start, 1e-6)


def _first(t: F64, mask: NDArray[np.bool_], default: float) -> float:
    idx = np.flatnonzero(mask)
    return float(t[idx[0]]) if idx.size else default


def oscillation_envelope(case: BpCase, cuff: F64) -> F64:
    """Noiseless peak-to-peak oscillation (mmHg) of the Babbs model at static cuff pressures.

    One nominal beat train (no variability, sinus rhythm) is run at each cuff pressure; the
    amplitude is the mean over beats of max - min of the oscillation. For tests and figures.
    """
    quiet = replace(case, arrhythmia="none", bp_sd=0.0, resp_mmhg=0.0)
    beats = _train(quiet, np.random.default_rng(0), 3.0)
    t = np.arange(beats.onset[1], beats.onset[3], 0.002)
    pa = arterial_pressure(t, beats)
    map_nominal = case.diastolic + 0.35 * (case.systolic - case.diastolic)
    pb = np.repeat(cuff, t.size)
    x = couple(case, np.tile(pa, cuff.size), pb, map_nominal).reshape(cuff.size, t.size)
    return np.asarray(np.ptp(x, axis=1), dtype=np.float64)
