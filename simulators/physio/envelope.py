"""A simpler oscillometric generator: an asymmetric-Gaussian envelope modulating a pulse train.

Used for robustness checks (``BpCase(model="envelope")``), not as the main accuracy cohort; the
physiological model is :mod:`simulators.physio.bp`. Everything but the oscillation is shared with
that model (beats, valve, artefacts, transducer, truth).

Envelope over the valve pressure ``P`` (mmHg), peak ``A`` (``case.env_amplitude``, peak-to-peak)
at the true mean pressure ``M``::

    A(P) = A exp(-(P - M)^2 / (2 s_hi^2))   for P >= M
    A(P) = A exp(-(P - M)^2 / (2 s_lo^2))   for P <  M

with the widths set so that the envelope at the true SBP/DBP equals ``Rs A`` / ``Rd A``:
``s_hi = (SBP - M) / sqrt(-2 ln Rs)``, ``s_lo = (M - DBP) / sqrt(-2 ln Rd)``. The characteristic
ratios are NOT fixed: following the observation that they depend on pulse pressure and on the
envelope's shape (Lim PK, Ng SC, Jassim WA et al., "Improved measurement of blood pressure by
extraction of characteristic features from the cuff oscillometric waveform", Sensors 2015;
15:14142-14161; Liu, Hahn & Mukkamala, Ann Biomed Eng 2013), our relation is::

    Rs = clip(0.57 - 0.004 (PP - 50) - 0.10 shape, 0.30, 0.80)
    Rd = clip(0.78 + 0.002 (PP - 50) + 0.07 shape, 0.50, 0.92)

where ``PP`` is the true pulse pressure and ``shape`` = ``case.env_shape`` in [-1, 1] (a
subject's envelope-shape factor: positive = narrow above the peak, broad below).

Each beat's oscillation is the arterial pulse itself (its shape, relative to the nominal pulse
pressure, so ectopic and respiratory amplitude changes pass through) times ``A(P)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from simulators.physio.artery import Beats

if TYPE_CHECKING:
    from simulators.physio.bp import BpCase, BpTruth

F64 = NDArray[np.float64]


def characteristic_ratios(pulse_pressure: float, shape: float) -> tuple[float, float]:
    """(Rs, Rd) of the envelope model for a pulse pressure (mmHg) and shape factor."""
    rs = float(np.clip(0.57 - 0.004 * (pulse_pressure - 50.0) - 0.10 * shape, 0.30, 0.80))
    rd = float(np.clip(0.78 + 0.002 * (pulse_pressure - 50.0) + 0.07 * shape, 0.50, 0.92))
    return rs, rd


def envelope_amplitude(case: BpCase, truth: BpTruth, cuff: F64) -> F64:
    """Peak-to-peak oscillation (mmHg) at valve pressures ``cuff``."""
    rs, rd = characteristic_ratios(truth.systolic - truth.diastolic, case.env_shape)
    s_hi = max(truth.systolic - truth.mean, 1.0) / np.sqrt(-2.0 * np.log(rs))
    s_lo = max(truth.mean - truth.diastolic, 1.0) / np.sqrt(-2.0 * np.log(rd))
    width = np.where(cuff >= truth.mean, s_hi, s_lo)
    return np.asarray(
        case.env_amplitude * np.exp(-0.5 * ((cuff - truth.mean) / width) ** 2), dtype=np.float64
    )


def envelope_oscillation(
    case: BpCase, truth: BpTruth, pa: F64, pb: F64, beats: Beats, t: F64
) -> F64:
    """Oscillation (mmHg) riding on the valve pressure ``pb``, for arterial pressure ``pa``."""
    k = np.clip(np.searchsorted(beats.onset, t, side="right") - 1, 0, beats.dia.size - 1)
    pulse = (pa - beats.dia[k]) / max(case.systolic - case.diastolic, 1.0)
    # Centre each beat roughly (form factor ~0.35) so the valve pressure stays the baseline.
    return np.asarray(envelope_amplitude(case, truth, pb) * (pulse - 0.35), dtype=np.float64)
