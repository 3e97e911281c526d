"""The physiological generators (simulators/physio) as waveform sources of simulated devices.

A simulated NIBP module or air-puff front-end (simulators/nibp.py, simulators/airpuff.py) asks
its source for each measurement's signals and truth; these sources draw a screening patient
(mostly clean records, some arrhythmia, movement or faults) and simulate the record.
"""

from __future__ import annotations

import numpy as np

from simulators.physio.bp import simulate_bp
from simulators.physio.cohort import draw_bp_case, draw_iop_case
from simulators.physio.iop import LIGHT_MAX, simulate_iop
from simulators.rawdev.waveform import Waveform


def screening_bp(rng: np.random.Generator) -> Waveform:
    """One patient's cuff record (Babbs-type arm and cuff model) and its intra-arterial truth."""
    sample = simulate_bp(draw_bp_case(rng), rng)
    t = sample.truth
    truth = {"systolic": t.systolic, "diastolic": t.diastolic, "mean": t.mean,
             "heart_rate": t.heart_rate}  # fmt: skip
    return Waveform(sample.pressure, sample.fs, truth)


class ScreeningEyes:
    """One puff per call, alternating right and left as the front-end fires them."""

    def __init__(self) -> None:
        self._right = True

    def __call__(self, rng: np.random.Generator) -> Waveform:
        eye = "right" if self._right else "left"
        self._right = not self._right
        sample = simulate_iop(draw_iop_case(rng, eye), rng)
        t = sample.truth
        truth = {"iopg": t.iopg, "ch": t.ch, "iopcc": t.iopcc, "p1": t.p1, "p2": t.p2}
        # the generator's light is in 12-bit detector counts; a waveform's is full-scale 0..1
        return Waveform(sample.pressure, sample.fs, truth, sample.light / LIGHT_MAX, eye)
