"""Intra-arterial pressure beats and the brachial artery's pressure-volume curve.

Two pieces of the oscillometric simulator (:mod:`simulators.physio.bp`) that know nothing of the
cuff:

* :func:`beat_train` draws the sequence of heart beats of one recording (RR intervals, the
  end-diastolic and peak pressures of each beat, the shape parameters of each beat) for sinus
  rhythm, atrial-fibrillation-like irregular rhythm or sinus rhythm with premature ectopic beats;
  :func:`arterial_pressure` evaluates the brachial pressure waveform of that train at any times.
* :class:`VesselCurve` is a collapsible-tube lumen-volume curve ``V(Ptm)``: exponential buckling
  at negative transmural pressure, saturating distension (stiffening) at positive pressure.

Sources: the beat shape is the usual forward wave + reflected wave + dicrotic wave decomposition
of the peripheral pulse (e.g. Nichols & O'Rourke, "McDonald's Blood Flow in Arteries", ch. 11)
with a Windkessel diastolic run-off; ejection time from Weissler's regression
(LVET[ms] = 413 - 1.7 HR); the pulse pressure of a beat grows with the preceding RR interval
(Frank-Starling / mechanical restitution, which is what makes atrial fibrillation hard for
oscillometry); the compliance shape follows Drzewiecki G, Hood R, Apple H, "Theory of the
oscillometric maximum and the systolic and diastolic detection ratios", Ann Biomed Eng
1994;22:88-96 and Babbs CF, BioMed Eng OnLine 2012;11:56 (buckling below zero transmural
pressure, rising wall stiffness above it). Parameterisation is our own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Arrhythmia = Literal["none", "af", "ectopic"]
F64 = NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class Beats:
    """One recording's beats; beat ``i`` occupies ``[onset[i], onset[i + 1])``.

    ``dia[i]`` is the pressure at the onset of beat ``i`` (end-diastole of the previous one);
    ``pulse[i]`` the nominal pulse pressure of beat ``i``; the remaining arrays shape the beat.
    ``onset`` has one more element than the other arrays (the end of the last beat).
    """

    onset: F64
    dia: F64
    pulse: F64
    t_peak: F64
    refl_delay: F64
    refl_amp: F64
    t_ejection: F64
    dicrotic: F64
    runoff_tau: F64
    ectopic: NDArray[np.bool_]


def _smooth_noise(rng: np.random.Generator, n: int, corr: float) -> F64:
    """Unit-variance AR(1)-like noise (correlation ``corr`` per step), by FIR convolution."""
    taps = corr ** np.arange(max(2, int(6 / max(1e-3, 1 - corr))))
    white = rng.standard_normal(n + taps.size)
    out = np.convolve(white, taps, mode="valid")[:n]
    return np.asarray(out / np.sqrt(np.sum(taps**2)), dtype=np.float64)


def beat_train(
    rng: np.random.Generator,
    *,
    duration: float,
    systolic: float,
    diastolic: float,
    heart_rate: float,
    stiffness: float,
    arrhythmia: Arrhythmia,
    rr_cv: float,
    ectopic_rate: float,
    resp_rate: float,
    resp_mmhg: float,
    bp_sd: float,
) -> Beats:
    """Draw the beats covering ``[0, duration]`` (the first beat starts at or before 0)."""
    rr0 = 60.0 / heart_rate
    n = int(duration / rr0 * 1.8) + 12
    resp_phase = rng.uniform(0, 2 * np.pi)
    t_approx = np.arange(n) * rr0 - rng.uniform(0, rr0)
    resp = np.sin(2 * np.pi * resp_rate * t_approx + resp_phase)
    ectopic = np.zeros(n, dtype=bool)
    if arrhythmia == "af":
        # AF: nearly independent intervals, log-normal with the case's coefficient of variation.
        sig = np.sqrt(np.log1p(rr_cv**2))
        rr = rr0 * np.exp(sig * rng.standard_normal(n) - sig**2 / 2)
    else:
        # Sinus rhythm: respiratory sinus arrhythmia (RR longer on expiration) + slow HRV.
        rsa = rng.uniform(0.01, 0.05)
        rr = rr0 * (1 - rsa * resp + rng.uniform(0.01, 0.03) * _smooth_noise(rng, n, 0.8))
        if arrhythmia == "ectopic":
            # Premature beats (coupling interval 55-75 % RR) + compensatory pause.
            cand = rng.random(n) < ectopic_rate
            cand[:2] = False
            cand[1:] &= ~cand[:-1]  # never two in a row
            cand[-2:] = False
            for i in np.flatnonzero(cand):
                if ectopic[i - 1]:
                    continue
                ectopic[i] = True
                early = rr[i - 1] * rng.uniform(0.55, 0.75)
                rr[i] += rr[i - 1] - early  # compensatory pause after the ectopic beat
                rr[i - 1] = early
    rr = np.clip(rr, 0.28, 2.2)
    onset = np.concatenate(([0.0], np.cumsum(rr))) - rng.uniform(0, rr[0])
    while onset[-1] < duration + 0.5:  # pathological draws only; keep covering the record
        onset = np.append(onset, onset[-1] + rr0)
        rr = np.append(rr, rr0)
        resp = np.append(resp, 0.0)
        ectopic = np.append(ectopic, False)
    prev_rr = np.concatenate(([rr0], rr[:-1]))
    rel = prev_rr / rr0 - 1.0

    pp0 = systolic - diastolic
    gain = rng.uniform(0.4, 0.8)  # pulse pressure vs preceding interval (restitution)
    pulse = pp0 * np.clip(1 + gain * rel, 0.15, 1.7)
    pulse *= 1 + 0.02 * resp  # small pulsus-paradoxus-like modulation
    pulse[ectopic] *= rng.uniform(0.2, 0.6, size=int(ectopic.sum()))  # weak premature beats
    after = np.concatenate(([False], ectopic[:-1]))
    pulse[after] *= rng.uniform(1.05, 1.2, size=int(after.sum()))  # post-extrasystolic boost
    # End-diastolic pressure keeps running off for longer after a long interval.
    runoff_slope = rng.uniform(15, 35)  # mmHg per second of extra diastole
    dia = diastolic - runoff_slope * (prev_rr - rr0) * (pp0 / 50.0) ** 0.5
    # Beat-to-beat variability (correlated between SBP and DBP) and respiratory baseline swing.
    common = bp_sd * _smooth_noise(rng, rr.size, 0.6)
    dia = dia + resp_mmhg * resp + 0.6 * common
    pulse = np.maximum(pulse + 0.4 * common + 0.3 * bp_sd * rng.standard_normal(rr.size), 4.0)

    m = rr.size
    hr_beat = 60.0 / np.maximum(prev_rr, 0.3)
    t_ej = np.clip((413 - 1.7 * hr_beat) / 1000 + rng.normal(0, 0.01, m), 0.16, 0.62 * rr)
    t_ej[ectopic] *= 0.8
    return Beats(
        onset=onset,
        dia=dia,
        pulse=pulse,
        t_peak=np.full(m, rng.uniform(0.085, 0.125) - 0.015 * stiffness),
        # Stiff arteries: faster pulse wave velocity -> earlier, larger reflected wave.
        refl_delay=np.full(m, rng.uniform(0.10, 0.15) - 0.06 * stiffness),
        refl_amp=np.full(m, rng.uniform(0.15, 0.35) + 0.55 * stiffness),
        t_ejection=t_ej,
        dicrotic=np.full(m, rng.uniform(0.06, 0.16) * (1.2 - 0.7 * stiffness)),
        runoff_tau=np.full(m, rng.uniform(1.1, 1.8) * (1.0 - 0.15 * stiffness)),
        ectopic=ectopic,
    )


def _gauss(x: F64, mu: F64, sd: float | F64) -> F64:
    return np.asarray(np.exp(-0.5 * ((x - mu) / sd) ** 2), dtype=np.float64)


def _shape(tau: F64, b: Beats, k: NDArray[np.intp]) -> F64:
    """Un-normalised beat shape at time ``tau`` since onset of beat ``k``."""
    tp, ej = b.t_peak[k], b.t_ejection[k]
    # Fast upstroke, slower systolic decline: a two-sided Gaussian.
    forward = _gauss(tau, tp, np.where(tau < tp, 0.42 * tp, 0.1))
    reflected = b.refl_amp[k] * _gauss(tau, tp + b.refl_delay[k], 0.07)
    notch = -0.12 * _gauss(tau, ej, 0.014)
    dicrotic = b.dicrotic[k] * _gauss(tau, ej + 0.045, 0.03)
    # Windkessel run-off: pressure kept up by the compliant aorta, decaying with tau = RC.
    rise = 1.0 / (1.0 + np.exp(-(tau - 0.8 * tp) / 0.018))
    runoff = 0.5 * (1 + b.refl_amp[k]) * rise * np.exp(-np.maximum(tau - tp, 0.0) / b.runoff_tau[k])
    return np.asarray(forward + reflected + notch + dicrotic + runoff, dtype=np.float64)


def _detrended(tau: F64, length: F64, b: Beats, k: NDArray[np.intp]) -> F64:
    """Beat shape minus the chord between its two ends (zero at onset and at the next onset)."""
    at0 = _shape(np.zeros_like(tau), b, k)
    at_end = _shape(length, b, k)
    return _shape(tau, b, k) - (at0 + (at_end - at0) * (tau / length))


def arterial_pressure(t: F64, beats: Beats) -> F64:
    """Brachial pressure (mmHg) at times ``t`` (sorted, inside the train), vectorised.

    Each beat is its detrended shape scaled to a peak of one, times the pulse pressure, on top
    of a line from this beat's to the next beat's end-diastolic pressure, so consecutive beats
    join continuously.
    """
    m = beats.dia.size
    k = np.clip(np.searchsorted(beats.onset, t, side="right") - 1, 0, m - 1)
    length = beats.onset[k + 1] - beats.onset[k]
    tau = t - beats.onset[k]
    w = _detrended(tau, length, beats, k)
    # Normalise on a fixed fine grid per beat so the scale does not depend on the sampling rate.
    lengths = np.diff(beats.onset)
    grid = np.linspace(0.0, 1.0, 160)
    kg = np.broadcast_to(np.arange(m)[:, None], (m, grid.size))
    lg = np.broadcast_to(lengths[:, None], (m, grid.size))
    peak = np.max(_detrended(grid[None, :] * lg, lg, beats, kg), axis=1)
    nxt = beats.dia[np.minimum(k + 1, m - 1)]
    frac = tau / length
    out = beats.dia[k] + (nxt - beats.dia[k]) * frac + beats.pulse[k] * w / peak[k]
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class VesselCurve:
    """Lumen volume (ml) of the arterial bed under the cuff vs transmural pressure (mmHg).

    Compliance ``C(u) ∝ 1 / (exp(-a u) + exp(b u))`` with ``u = Ptm - knee``: it decays as
    ``exp(a u)`` below the knee (the wall buckles and the lumen collapses, Drzewiecki 1994) and as
    ``exp(-b u)`` above it (collagen recruitment stiffens the wall; larger ``b`` = stiffer
    artery). Volume is the integral, scaled to ``volume`` ml when fully distended. Tabulated once
    and interpolated, so any shape costs the same.
    """

    grid: F64
    vol: F64
    comp: F64

    @classmethod
    def make(cls, *, collapse: float, distension: float, knee: float, volume: float) -> VesselCurve:
        grid = np.arange(-320.0, 340.0, 0.05)
        u = grid - knee
        # Written as exp(a u)/(1 + exp((a + b) u)) to stay finite at both ends.
        e = np.exp(np.clip((collapse + distension) * u, -700, 700))
        comp = np.exp(np.clip(collapse * u, -700, 700)) / (1.0 + e)
        cum = np.concatenate(([0.0], np.cumsum((comp[1:] + comp[:-1]) * 0.025)))
        scale = volume / cum[-1]
        return cls(grid=grid, vol=cum * scale, comp=comp * scale)

    def volume(self, ptm: F64) -> F64:
        return np.asarray(np.interp(ptm, self.grid, self.vol), dtype=np.float64)

    def compliance(self, ptm: F64) -> F64:
        return np.asarray(np.interp(ptm, self.grid, self.comp), dtype=np.float64)
