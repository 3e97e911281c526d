"""How far small, harmless changes to a cuff record move the oscillometric estimate.

Issue #6 asks for robustness "within stated bounds"; this program states them by measuring.
Each clean record of ``bp_cohort`` is analysed as simulated and again after one change that
should not move SBP/DBP (or should move them by exactly the offset):

* white noise of 0.05 mmHg RMS (a good transducer) and 0.3 mmHg (a poor one) added;
* a constant +9 mmHg pressure offset (an unzeroed transducer; expected shift +9);
* the oscillations halved or doubled (a looser or tighter cuff: the artery volume under the
  cuff scaled, the same beats, valve and noise drawn from the same seed).

It prints, per change, the median, 95th percentile and maximum over records of the larger of
|dSBP| and |dDBP| (after removing the expected shift), and how many records the change turned
into refusals. Run: ``.venv/bin/python -m benchmarks.signal_robustness [--records N]``.
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from edge.signal.oscillometry import analyze_bp
from edge.signal.results import BpEstimate, Refusal
from simulators.physio.bp import BpCase, BpSample, simulate_bp
from simulators.physio.cohort import bp_cohort

Change = Callable[[BpCase, BpSample, int], tuple[np.ndarray, float]]


def _noise(sd: float) -> Change:
    def change(case: BpCase, sample: BpSample, seed: int) -> tuple[np.ndarray, float]:
        rng = np.random.default_rng(seed + 1)
        return sample.pressure + sd * rng.standard_normal(sample.pressure.size), 0.0

    return change


def _offset(mmhg: float) -> Change:
    def change(case: BpCase, sample: BpSample, seed: int) -> tuple[np.ndarray, float]:
        return sample.pressure + mmhg, mmhg

    return change


def _scale(factor: float) -> Change:
    def change(case: BpCase, sample: BpSample, seed: int) -> tuple[np.ndarray, float]:
        looser = replace(case, artery_volume=case.artery_volume * factor)
        return simulate_bp(looser, np.random.default_rng(seed)).pressure, 0.0

    return change


CHANGES: dict[str, Change] = {
    "white noise 0.05 mmHg": _noise(0.05),
    "white noise 0.3 mmHg": _noise(0.3),
    "offset +9 mmHg": _offset(9.0),
    "oscillations x 0.5": _scale(0.5),
    "oscillations x 2": _scale(2.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=60, help="clean records to perturb")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_version()}, numpy {np.__version__}")
    base: list[tuple[BpCase, BpSample, int, BpEstimate]] = []
    for i, case in enumerate(bp_cohort(600, 6)):
        if len(base) == args.records:
            break
        seed = 6 * 100_003 + i
        sample = simulate_bp(case, np.random.default_rng(seed))
        if "clean" not in sample.labels:
            continue
        result = analyze_bp(sample.pressure, sample.fs)
        if isinstance(result, BpEstimate):
            base.append((case, sample, seed, result))
    print(f"{len(base)} clean records the analysis estimated (bp_cohort(600, 6))")
    print("change                     median    95 %     max  (max |dSBP|,|dDBP| mmHg)  refused")
    for name, change in CHANGES.items():
        moves, refused = [], 0
        for case, sample, seed, a in base:
            pressure, expected = change(case, sample, seed)
            b = analyze_bp(pressure, sample.fs)
            if isinstance(b, Refusal):
                refused += 1
                continue
            moves.append(
                max(
                    abs(b.systolic - a.systolic - expected),
                    abs(b.diastolic - a.diastolic - expected),
                )
            )
        m = np.asarray(moves)
        print(
            f"{name:24s} {np.median(m):7.1f} {np.percentile(m, 95):7.1f} {m.max():7.1f}"
            f"{'':29s}{refused:4d}"
        )


if __name__ == "__main__":
    main()
