"""The signals of one simulated measurement, and how a simulated transducer digitises them.

A generator (simulators/physio/, or any test function) returns a :class:`Waveform` in physical
units with the truth it was built from; the simulated device turns it into ADC counts through
its own, deliberately imperfect, transducer relation ``counts = (mmHg - offset) / gain`` - the
relation the gateway's sensor calibration (``mmHg = gain * counts + offset``) must recover.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ADC_MAX = 0xFFFF  # u16 counts on the wire


@dataclass(frozen=True, slots=True, eq=False)
class Waveform:
    """One measurement's signals and ground truth.

    ``pressure_mmhg``: the cuff pressure (NIBP) or the puff's plenum pressure (air puff).
    ``light``: the applanation detector's output as a fraction of full scale (0..1), air puff
    only. ``truth``: NIBP ``systolic``, ``diastolic``, ``mean`` (mmHg), ``heart_rate`` (/min);
    air puff ``iopg``, ``ch``, ``iopcc``, ``p1``, ``p2`` (mmHg). ``eye``: which eye the
    generator meant, for its own bookkeeping (the simulated tonometer fires right then left).
    """

    pressure_mmhg: FloatArray
    fs: float
    truth: dict[str, float] = field(default_factory=dict)
    light: FloatArray | None = None
    eye: str | None = None


#: what a simulated device calls for each measurement, with its own seeded generator
WaveformSource = Callable[[np.random.Generator], Waveform]


def resample(signal: FloatArray, fs: float, target_fs: float) -> FloatArray:
    """``signal`` sampled at ``target_fs`` (linear interpolation; unchanged if equal)."""
    if fs == target_fs:
        return np.asarray(signal, dtype=np.float64)
    n = int(len(signal) * target_fs / fs)
    out: FloatArray = np.interp(
        np.arange(n) / target_fs, np.arange(len(signal)) / fs, signal
    ).astype(np.float64)
    return out


def to_counts(values: FloatArray, gain: float, offset: float = 0.0) -> npt.NDArray[np.uint16]:
    """ADC counts of a transducer whose truth is ``values = gain * counts + offset``.

    Rounded to whole counts and clipped to the ADC's range, as a real converter saturates.
    """
    counts = np.rint((np.asarray(values, dtype=np.float64) - offset) / gain)
    return np.clip(counts, 0, ADC_MAX).astype(np.uint16)
