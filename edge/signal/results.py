"""What the signal core returns: an estimate with its quality and flags, or a refusal.

Pure data (NumPy arrays for the traces a plot draws). A refusal carries no numbers at all: a
record that cannot support an estimate must never produce a plausible-looking one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.signal.filters import FloatArray


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a record supports no estimate.

    ``code`` is stable (``too-short``, ``deflation-too-fast``, ``deflation-uneven``,
    ``too-few-beats``, ``clipped``, ``no-envelope-peak``, ``envelope-shape``, ``motion``,
    ``no-second-peak``, ``blink``, ``saturated``, ``misaligned``...); ``reason`` is a sentence
    for a person, naming the measured figure and the limit it broke (``"deflation too fast:
    14.2 mmHg/s, limit 10 mmHg/s"``).
    """

    code: str
    reason: str


#: flag code -> the note published on the Observation (edge/pipeline/derive.py)
FLAG_TEXT: dict[str, str] = {
    "irregular-rhythm": "Irregular pulse detected by the gateway's analysis of the cuff signal.",
    "motion-artefact": "Movement artefacts in the cuff signal; some beats were discarded.",
    "low-quality": "Low signal quality; the estimate is less certain than usual.",
    "envelope-fit-poor": "Beat amplitudes scatter widely about the oscillation envelope.",
    "iop-asymmetric-peaks": "Applanation peaks of unusual shape (alignment or tear film).",
    "iop-noisy": "Noisy applanation signal; the estimate is less certain than usual.",
}


@dataclass(frozen=True, slots=True, eq=False)
class OscillogramTrace:
    """What the analysis saw, for plots and diagnostics (times in s from the record start)."""

    #: the cuff pressure, low-passed (mmHg), and the oscillations extracted from it (mmHg)
    cuff: FloatArray
    oscillations: FloatArray
    #: per detected beat: time, cuff pressure at the beat, peak-to-peak amplitude, kept or not
    beat_time: FloatArray
    beat_pressure: FloatArray
    beat_amplitude: FloatArray
    beat_kept: npt.NDArray[np.bool_]
    #: the envelope (smoothed kept beats, or a fitted model) sampled on ``envelope_pressure``
    envelope_pressure: FloatArray
    envelope: FloatArray


@dataclass(frozen=True, slots=True)
class BpEstimate:
    """An oscillometric blood pressure: mmHg, pulse rate per minute, quality 0..1."""

    systolic: float
    diastolic: float
    mean: float
    pulse_rate: float
    quality: float
    #: codes of :data:`FLAG_TEXT` (an empty tuple: nothing doubtful)
    flags: tuple[str, ...]
    #: the method that produced the numbers, for the Observation's method text
    method: str
    trace: OscillogramTrace | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, eq=False)
class ApplanationTrace:
    """What the tonometry analysis saw (times in s from the puff record start)."""

    pressure: FloatArray
    light: FloatArray
    #: sample times of the inward (1) and outward (2) applanation events
    t1: float
    t2: float


@dataclass(frozen=True, slots=True)
class IopEstimate:
    """An air-puff tonometry result for one eye, mmHg (ORA-style quantities).

    ``p1``/``p2``: the calibrated plenum pressures at inward and outward applanation;
    ``iopg`` = (P1 + P2) / 2 (Goldmann-correlated); ``ch`` = P1 - P2 (corneal hysteresis);
    ``iopcc``: corneal-compensated IOP.
    """

    p1: float
    p2: float
    iopg: float
    ch: float
    iopcc: float
    quality: float
    flags: tuple[str, ...]
    trace: ApplanationTrace | None = field(default=None, repr=False)
