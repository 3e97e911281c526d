"""Synthetic patient cohorts for the signal core's benchmarks, deterministic by seed.

:func:`bp_cohort` is the accuracy cohort of the oscillometric estimator (Babbs model), with a
fixed composition (fractions of ``n``, rounded; the remainder goes to "clean"):

=====================  ======  ===============================================
kind                   share   labels
=====================  ======  ===============================================
clean, compliant       35 %    ``clean``
clean, stiff arteries  20 %    ``clean``, ``stiff``
arrhythmia             15 %    ``arrhythmia`` (half AF-like, half ectopic)
motion                 15 %    ``motion``
arrhythmia + motion     5 %    ``arrhythmia``, ``motion``
faults                 10 %    2 % each: ``too-short``, ``deflation-too-fast``,
                               ``deflation-uneven``, ``clipped``, ``no-envelope-peak``
=====================  ======  ===============================================

(non-clean records may also be stiff). SBP 90-200, DBP 50-120, pulse pressure 20-100 (wider in
stiff arteries), HR 45-120, fs in {250, 300, 400, 500, 1000} Hz, 12-, 14- or 16-bit ADC over
0-300 mmHg. :func:`draw_bp_case` draws one screening patient (mostly clean). :func:`iop_cohort`
and :func:`draw_iop_case` do the same for the air-puff tonometer (see :mod:`.iop`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np

from simulators.physio.artery import Arrhythmia
from simulators.physio.bp import BpCase
from simulators.physio.cuff import DeflationLaw
from simulators.physio.iop import IopCase, IopFault

__all__ = [
    "bp_cohort",
    "draw_bp_case",
    "draw_iop_case",
    "envelope_cohort",
    "iop_cohort",
]

Eye = Literal["right", "left"]

BP_FAULT_KINDS = (
    "too-short",
    "deflation-too-fast",
    "deflation-uneven",
    "clipped",
    "no-envelope-peak",
)
_BP_SHARES = {
    "stiff": 0.20,
    "arrhythmia": 0.15,
    "motion": 0.15,
    "arrhythmia+motion": 0.05,
    **dict.fromkeys(BP_FAULT_KINDS, 0.02),
}
_SCREENING = {  # draw_bp_case: a day on the bus
    "clean": 0.60,
    "stiff": 0.15,
    "arrhythmia": 0.09,
    "motion": 0.11,
    "arrhythmia+motion": 0.02,
    **dict.fromkeys(BP_FAULT_KINDS, 0.006),
}


def _bp_case(rng: np.random.Generator, kind: str) -> BpCase:
    """One case of the given kind (see the module docstring)."""
    if kind == "stiff":
        stiff = rng.uniform(0.6, 1.0)
    elif kind == "clean":
        stiff = rng.uniform(0.0, 0.58)
    else:
        stiff = rng.uniform(0.0, 1.0)
    # Older, stiffer arteries: higher SBP and wider pulse pressure.
    sbp = float(np.clip(rng.uniform(90, 200) + 25 * (stiff - 0.5), 90, 200))
    pp_lo, pp_hi = max(20.0, sbp - 120.0), min(100.0, sbp - 50.0)
    pp = pp_lo + (pp_hi - pp_lo) * rng.beta(1.0 + 3.0 * stiff, 1.0 + 3.0 * (1.0 - stiff))
    arr: Arrhythmia = "none"
    rr_cv = ectopic_rate = 0.0
    if "arrhythmia" in kind:
        if rng.random() < 0.5:
            arr, rr_cv = "af", rng.uniform(0.15, 0.30)
        else:
            arr, ectopic_rate = "ectopic", rng.uniform(0.06, 0.2)
    fs = float(rng.choice([250.0, 300.0, 400.0, 500.0, 1000.0], p=[0.2, 0.15, 0.2, 0.3, 0.15]))
    law: DeflationLaw = "orifice" if rng.random() < 0.4 else "linear"
    case = BpCase(
        systolic=round(sbp, 1),
        diastolic=round(sbp - pp, 1),
        heart_rate=rng.uniform(60, 120) if arr == "af" else rng.uniform(45, 110),
        stiffness=stiff,
        collapse=rng.uniform(0.05, 0.10),
        distension=rng.uniform(0.02, 0.04) + 0.02 * stiff,
        knee=rng.uniform(0.0, 8.0),
        artery_volume=rng.uniform(1.1, 2.2) * (1.0 - 0.3 * stiff),
        transmission=rng.uniform(0.93, 1.0),
        edge_fraction=rng.uniform(0.05, 0.2),
        edge_transmission=rng.uniform(0.4, 0.8),
        cuff_elastance=rng.uniform(1.3, 2.6),
        cuff_stiffening=rng.uniform(300.0, 600.0),
        env_amplitude=rng.uniform(1.2, 4.0),
        env_shape=rng.uniform(-1.0, 1.0),
        arrhythmia=arr,
        rr_cv=rr_cv,
        ectopic_rate=ectopic_rate,
        resp_rate=rng.uniform(0.15, 0.35),
        resp_mmhg=rng.uniform(0.5, 4.0),
        bp_sd=rng.uniform(1.0, 4.0),
        motion_bursts=int(rng.integers(1, 4)) if "motion" in kind else 0,
        motion_mmhg=rng.uniform(2.0, 15.0) if "motion" in kind else 0.0,
        inflate_rate=rng.uniform(12.0, 35.0),
        top_margin=rng.uniform(20.0, 40.0),
        deflation_rate=rng.uniform(2.0, 6.0 if law == "orifice" else 8.0),
        deflation_law=law,
        valve_jitter=rng.uniform(0.03, 0.2),
        stop_margin=rng.uniform(15.0, 35.0),
        fs=fs,
        lowpass_hz=min(rng.uniform(15.0, 40.0), 0.4 * fs),
        noise_mmhg=rng.uniform(0.02, 0.15),
        mains_mmhg=rng.uniform(0.0, 0.1),
        adc_bits=int(rng.choice([12, 14, 16], p=[0.35, 0.15, 0.5])),
        full_scale=300.0,
    )
    return _with_fault(rng, case, kind)


def _with_fault(rng: np.random.Generator, case: BpCase, kind: str) -> BpCase:
    sbp, dbp = case.systolic, case.diastolic
    if kind == "too-short":
        return replace(case, truncate_pressure=rng.uniform(dbp + 5.0, sbp - 5.0))
    if kind == "deflation-too-fast":
        return replace(case, deflation_rate=rng.uniform(11.0, 20.0), deflation_law="linear")
    if kind == "deflation-uneven":
        return replace(case, jumps=int(rng.integers(1, 4)), stalls=int(rng.integers(0, 3)))
    if kind == "clipped":
        return replace(case, full_scale=rng.uniform(sbp - 15.0, sbp + 3.0))
    if kind == "no-envelope-peak":
        if rng.random() < 0.5:
            return replace(case, top_margin=-rng.uniform(8.0, 25.0))
        return replace(case, stop_margin=-rng.uniform(8.0, 20.0))
    return case


def _kinds(n: int, shares: dict[str, float], rng: np.random.Generator) -> list[str]:
    kinds: list[str] = []
    for kind, share in shares.items():
        kinds += [kind] * round(n * share)
    kinds = kinds[:n] + ["clean"] * max(0, n - len(kinds))
    return [str(k) for k in rng.permutation(np.array(kinds, dtype=object))]


def bp_cohort(n: int = 600, seed: int = 6) -> list[BpCase]:
    """The oscillometry accuracy cohort (Babbs model); same list for the same ``(n, seed)``."""
    rng = np.random.default_rng(seed)
    return [_bp_case(rng, kind) for kind in _kinds(n, _BP_SHARES, rng)]


def envelope_cohort(n: int = 200, seed: int = 6) -> list[BpCase]:
    """The same composition with the asymmetric-Gaussian envelope model (robustness only)."""
    return [replace(c, model="envelope") for c in bp_cohort(n, seed + 1000)]


def draw_bp_case(rng: np.random.Generator) -> BpCase:
    """One screening patient: mostly clean, some arrhythmia or motion, rare faults."""
    names = list(_SCREENING)
    p = np.array(list(_SCREENING.values()))
    return _bp_case(rng, names[int(rng.choice(len(names), p=p / p.sum()))])


IOP_FAULT_KINDS: tuple[IopFault, ...] = (
    "noisy",
    "blink",
    "saturated",
    "misaligned",
    "no-second-peak",
)


def _iop_case(rng: np.random.Generator, eye: Eye, fault: IopFault) -> IopCase:
    """One eye and puff: 70 % normal eyes, 30 % glaucoma / ocular hypertension."""
    if rng.random() < 0.7:
        iopg = float(np.clip(rng.normal(16.0, 3.5), 8.0, 40.0))
        ch = float(np.clip(rng.normal(10.5, 1.5), 5.0, 15.0))
    else:  # glaucoma: higher pressure, lower hysteresis
        iopg = rng.uniform(18.0, 40.0)
        ch = float(np.clip(rng.normal(8.8, 1.6), 5.0, 15.0))
    ch = round(ch, 2)
    iopg = max(round(iopg, 2), ch / 2 + 3.0)  # keeps P2 >= 3 mmHg
    fs = float(rng.choice([10000.0, 12500.0, 16000.0, 20000.0]))
    onset, rise, fall = (
        rng.uniform(0.0015, 0.004),
        rng.uniform(0.007, 0.01),
        rng.uniform(0.009, 0.014),
    )
    return IopCase(
        eye=eye,
        iopg=iopg,
        ch=ch,
        fs=fs,
        duration=max(rng.uniform(0.025, 0.035), onset + rise + fall + 0.003),
        onset=onset,
        rise=rise,
        fall=fall,
        peak_gain=rng.uniform(1.15, 1.6),
        peak_offset=rng.uniform(4.0, 12.0),
        baseline=rng.uniform(300.0, 900.0),
        drift=rng.uniform(-120.0, 120.0),
        peak1=rng.uniform(1200.0, 2800.0),
        width1=rng.uniform(0.0003, 0.0008),
        peak2_ratio=rng.uniform(0.4, 0.9),
        width2_ratio=rng.uniform(1.2, 2.5),
        dip=rng.uniform(50.0, 300.0),
        light_noise=rng.uniform(5.0, 25.0),
        pressure_noise=rng.uniform(0.05, 0.3),
        fault=fault,
    )


def iop_cohort(n: int = 400, seed: int = 6) -> list[IopCase]:
    """The tonometry cohort: 75 % clean, 5 % each fault; eyes alternate right/left."""
    rng = np.random.default_rng(seed)
    faults: list[IopFault] = []
    for fault in IOP_FAULT_KINDS:
        faults += [fault] * round(n * 0.05)
    faults = (faults + ["none"] * n)[:n]
    order = rng.permutation(n)
    eyes: tuple[Eye, Eye] = ("right", "left")
    return [_iop_case(rng, eyes[i % 2], faults[int(order[i])]) for i in range(n)]


def draw_iop_case(rng: np.random.Generator, eye: str) -> IopCase:
    """One screening measurement of ``eye`` ("right"/"left"): 90 % clean, rare faults."""
    if eye not in ("right", "left"):
        raise ValueError(f"eye must be 'right' or 'left', not {eye!r}")
    side: Eye = "right" if eye == "right" else "left"
    fault: IopFault = "none"
    if rng.random() >= 0.9:
        fault = IOP_FAULT_KINDS[int(rng.integers(len(IOP_FAULT_KINDS)))]
    return _iop_case(rng, side, fault)
