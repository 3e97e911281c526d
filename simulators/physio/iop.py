"""Air-puff tonometry records (Ocular Response Analyzer style) with known applanation pressures.

One record is one puff, ``case.duration`` (25-35 ms) sampled at ``case.fs`` (10-20 kHz):

* **plenum pressure** (calibrated mmHg, quantised to 0.05 mmHg): an asymmetric raised-cosine
  pulse that starts 1.5-4 ms into the record, rises in 7-10 ms to a peak somewhat above P1 (the
  ORA shuts its piston off just after the first applanation, so the peak follows P1:
  ``peak = 1.15..1.6 P1 + 4..12 mmHg``), and falls in 9-14 ms; plus sensor noise, a small
  plenum ringing (1-2 kHz, decaying) and an offset.
* **applanation light** (photodetector, 12-bit ADC counts, saturating at 4095): a baseline
  (300-900 counts) with slow drift, a tall sharp peak at inward applanation (the cornea flattens
  while the pressure rises through P1), a dip while the cornea is concave, and a lower, broader
  peak at outward applanation (pressure falling through P2). Each peak is a two-sided Gaussian
  (sharper on the side it is approached from); its apex is at the applanation instant.

Ground truth: ``p1`` and ``p2`` are the noiseless plenum pressures at the two apexes (the
instants are placed where the noiseless pressure equals the eye's P1 and P2). Following Luce DA,
"Determining in vivo biomechanical properties of the cornea with an ocular response analyzer",
J Cataract Refract Surg 2005;31:156-162::

    iopg  = (p1 + p2) / 2                      Goldmann-correlated IOP
    ch    = p1 - p2                            corneal hysteresis
    iopcc = (p2 - 0.43 p1) / 0.57 + 13.17      corneal-compensated IOP

``iopcc`` keeps Luce's form ``P2 - 0.43 P1``; our scale ``1 / (1 - 0.43)`` and offset make it
equal ``iopg`` at the population-mean CH of 10.5 mmHg (``13.17 = 10.5 * 0.715 / 0.57``), i.e.
``iopcc = iopg - 1.2544 (ch - 10.5)``. ``IopTruth.crf`` (corneal resistance factor) is
``p1 - 0.7 p2`` (Luce's form, no offset).

Faults (labels): "noisy" (light noise 60-200 counts, pressure noise x5; peaks still there),
"blink" (the eyelid crosses the beam: the light collapses to a low level with a large transient,
the second or both peaks are absent), "saturated" (detector gain too high: flat at 4095 over the
peaks), "misaligned" (the beam misses the apex: peaks 15-40 % of normal, 2-3x broader,
distorted by a side lobe), "no-second-peak" (outward applanation not seen). "clean" only when
none applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
IopFault = Literal["none", "noisy", "blink", "saturated", "misaligned", "no-second-peak"]
IOP_FAULTS = frozenset({"noisy", "blink", "saturated", "misaligned", "no-second-peak"})
"""IOP labels other than "clean"; every record carries exactly one label."""
IOPCC_K = 0.43
IOPCC_OFFSET = 13.17
LIGHT_MAX = 4095.0
PRESSURE_LSB = 0.05  # mmHg, resolution of the calibrated plenum pressure


def iopcc(p1: float, p2: float) -> float:
    """Corneal-compensated IOP from the applanation pressures (formula in the module docstring)."""
    return (p2 - IOPCC_K * p1) / (1.0 - IOPCC_K) + IOPCC_OFFSET


@dataclass(frozen=True, slots=True)
class IopTruth:
    """Applanation pressures (mmHg) and the ORA quantities derived from them."""

    p1: float
    p2: float
    iopg: float
    ch: float
    iopcc: float

    @property
    def crf(self) -> float:
        return self.p1 - 0.7 * self.p2

    @classmethod
    def from_pressures(cls, p1: float, p2: float) -> IopTruth:
        return cls(p1=p1, p2=p2, iopg=(p1 + p2) / 2, ch=p1 - p2, iopcc=iopcc(p1, p2))


@dataclass(frozen=True, slots=True)
class IopCase:
    """One eye and one puff's settings (pressures mmHg, times s, light in ADC counts)."""

    eye: Literal["right", "left"] = "right"
    iopg: float = 16.0  # the eye's Goldmann-correlated IOP, (P1 + P2) / 2
    ch: float = 10.5  # corneal hysteresis, P1 - P2
    fs: float = 16000.0
    duration: float = 0.03
    onset: float = 0.003  # s, start of the puff
    rise: float = 0.0085  # s, onset to pressure peak
    fall: float = 0.012  # s, pressure peak to end of puff
    peak_gain: float = 1.35  # plenum peak = peak_gain * P1 + peak_offset
    peak_offset: float = 8.0
    baseline: float = 600.0  # counts
    drift: float = 40.0  # counts over the record (signed)
    peak1: float = 2000.0  # counts above baseline
    width1: float = 0.0005  # s (SD on the approach side)
    peak2_ratio: float = 0.65  # peak2 / peak1
    width2_ratio: float = 1.6  # width2 / width1
    dip: float = 150.0  # counts below baseline while the cornea is concave
    light_noise: float = 12.0  # counts RMS
    pressure_noise: float = 0.12  # mmHg RMS
    fault: IopFault = "none"

    @property
    def p1(self) -> float:
        return self.iopg + self.ch / 2

    @property
    def p2(self) -> float:
        return self.iopg - self.ch / 2


@dataclass(frozen=True, slots=True, eq=False)
class IopSample:
    """One puff record: plenum pressure (mmHg), light (counts), truth and labels."""

    pressure: F64
    light: F64
    fs: float
    truth: IopTruth
    labels: frozenset[str]
    case: IopCase


def plenum_pressure(case: IopCase, t: F64) -> F64:
    """Noiseless plenum pressure (mmHg): raised-cosine rise then fall."""
    peak = case.peak_gain * case.p1 + case.peak_offset
    u = t - case.onset
    rise = peak * np.sin(0.5 * np.pi * np.clip(u / case.rise, 0.0, 1.0)) ** 2
    fall = peak * np.cos(0.5 * np.pi * np.clip((u - case.rise) / case.fall, 0.0, 1.0)) ** 2
    return np.asarray(np.where(u <= case.rise, rise, fall), dtype=np.float64)


def applanation_times(case: IopCase) -> tuple[float, float]:
    """Instants where the noiseless pressure passes P1 (rising) and P2 (falling)."""
    peak = case.peak_gain * case.p1 + case.peak_offset
    t1 = case.onset + case.rise * np.arcsin(np.sqrt(case.p1 / peak)) / (0.5 * np.pi)
    t2 = case.onset + case.rise + case.fall * np.arccos(np.sqrt(case.p2 / peak)) / (0.5 * np.pi)
    return float(t1), float(t2)


def _peak(t: F64, apex: float, sd_before: float, sd_after: float) -> F64:
    sd = np.where(t < apex, sd_before, sd_after)
    return np.asarray(np.exp(-0.5 * ((t - apex) / sd) ** 2), dtype=np.float64)


def _light(case: IopCase, rng: np.random.Generator, t: F64, t1: float, t2: float) -> F64:
    """Noiseless, unclipped light signal (counts) for the case's fault."""
    w1 = case.width1
    w2 = w1 * case.width2_ratio
    a1, a2 = case.peak1, case.peak1 * case.peak2_ratio
    if case.fault == "misaligned":
        a1 *= rng.uniform(0.15, 0.4)
        a2 *= rng.uniform(0.15, 0.4)
        w1 *= rng.uniform(2.0, 3.0)
        w2 *= rng.uniform(2.0, 3.0)
    if case.fault == "no-second-peak":
        a2 *= rng.uniform(0.0, 0.04)
    if case.fault == "saturated":
        # Gain too high: the whole signal scales up so that both peaks exceed full scale.
        gain = rng.uniform(1.3, 1.9) * LIGHT_MAX / (case.baseline + a2)
        a1, a2 = a1 * gain, a2 * gain
    # Inward applanation is approached fast (rising pressure): sharp before, slower after;
    # outward applanation is reached from the concave state: broader on both sides.
    light = a1 * _peak(t, t1, w1, 1.5 * w1) + a2 * _peak(t, t2, 1.2 * w2, w2)
    concave = _peak(t, 0.5 * (t1 + t2), (t2 - t1) / 6, (t2 - t1) / 6)
    light -= case.dip * concave
    if case.fault == "misaligned":  # a side lobe distorts each peak
        lobe = rng.uniform(0.3, 0.7)
        light += lobe * a1 * _peak(t, t1 + 2.5 * w1, w1, w1)
        light += lobe * a2 * _peak(t, t2 - 2.0 * w2, w2, w2)
    base = case.baseline + case.drift * (t / t[-1] - 0.5)
    base += 0.3 * abs(case.drift) * np.sin(2 * np.pi * t / t[-1] * rng.uniform(0.5, 1.5))
    if case.fault == "saturated":
        base *= gain
    return np.asarray(base + light, dtype=np.float64)


def _blink(rng: np.random.Generator, light: F64, t: F64, t1: float, t2: float) -> F64:
    """The eyelid crosses the beam: light collapses over one or both peaks, with a transient."""
    both = rng.random() < 0.5
    start = (t1 - rng.uniform(1.0, 3.0) * 1e-3) if both else 0.5 * (t1 + t2)
    end = t2 + rng.uniform(2.0, 5.0) * 1e-3
    lid = 1.0 / (1.0 + np.exp(-(t - start) / 2e-4)) - 1.0 / (1.0 + np.exp(-(t - end) / 4e-4))
    low = rng.uniform(20.0, 250.0)
    out = light * (1.0 - lid) + low * lid
    # Eyelash / lid-margin reflection: a large, fast transient as the lid enters the beam.
    out += rng.uniform(800.0, 2500.0) * _peak(t, start + 3e-4, 1.5e-4, 4e-4)
    return np.asarray(out, dtype=np.float64)


def simulate_iop(case: IopCase, rng: np.random.Generator) -> IopSample:
    """Simulate one puff record for ``case``; noise, drift shape and faults from ``rng``."""
    t = np.arange(round(case.duration * case.fs)) / case.fs
    t1, t2 = applanation_times(case)
    p_clean = plenum_pressure(case, t)
    p_noise = case.pressure_noise * (5.0 if case.fault == "noisy" else 1.0)
    ring_hz = rng.uniform(1000.0, 2000.0)
    ring = rng.uniform(0.1, 0.6) * np.sin(2 * np.pi * ring_hz * (t - case.onset))
    ring *= np.exp(-np.maximum(t - case.onset, 0.0) / 0.004) * (t > case.onset)
    pressure = p_clean + ring + p_noise * rng.standard_normal(t.size) + rng.uniform(-0.2, 0.2)
    pressure = np.round(pressure / PRESSURE_LSB) * PRESSURE_LSB

    light = _light(case, rng, t, t1, t2)
    if case.fault == "blink":
        light = _blink(rng, light, t, t1, t2)
    noise = rng.uniform(60.0, 200.0) if case.fault == "noisy" else case.light_noise
    light = light + noise * rng.standard_normal(t.size)
    light = np.clip(np.round(light), 0.0, LIGHT_MAX)

    truth = IopTruth.from_pressures(case.p1, case.p2)
    labels = frozenset({"clean"} if case.fault == "none" else {case.fault})
    return IopSample(
        pressure=np.asarray(pressure, dtype=np.float64),
        light=np.asarray(light, dtype=np.float64),
        fs=case.fs,
        truth=truth,
        labels=labels,
        case=case,
    )
