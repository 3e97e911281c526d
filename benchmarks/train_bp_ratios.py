"""Learn the variable characteristic ratios of edge/signal/ratios.py from a simulated cohort.

Simulates the clean records of ``bp_cohort(N, SEED)`` (Babbs-type arm/cuff model of
simulators/physio, default 6000 records, seed 7: a cohort disjoint from the accuracy benchmark's
seed 6), runs the gateway's front end on each, takes the envelope features and the
intra-arterial truth, and fits the ridge regression of :func:`edge.signal.ratios.fit_ratios`.
Prints the fit's residuals on the training records and, as a held-out check, the errors of the
new coefficients on the clean records of ``bp_cohort(600, 6)`` and of the asymmetric-Gaussian
envelope cohort (a different generator). With ``--write`` it rewrites
``edge/signal/ratio_table.py``.

Run: ``.venv/bin/python -m benchmarks.train_bp_ratios [--n N] [--seed S] [--write]``
(about a minute on two cores for the default cohort).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from collections.abc import Sequence
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from edge.signal.bprecord import prepare
from edge.signal.bpsettings import DEFAULT_SETTINGS
from edge.signal.ratios import LEVELS, RatioModel, envelope_features, fit_ratios
from edge.signal.results import Refusal
from simulators.physio.bp import BpCase, simulate_bp
from simulators.physio.cohort import bp_cohort, envelope_cohort

TABLE = Path(__file__).resolve().parent.parent / "edge" / "signal" / "ratio_table.py"
Row = tuple[list[float], float, tuple[float, float, float]]


def _row(job: tuple[int, BpCase, int]) -> Row | None:
    """(features, pressure of the maximum, truth) of one clean record, None otherwise."""
    index, case, seed = job
    sample = simulate_bp(case, np.random.default_rng(seed * 100_003 + index))
    if "clean" not in sample.labels:
        return None
    rec = prepare(sample.pressure, sample.fs, DEFAULT_SETTINGS)
    if isinstance(rec, Refusal):
        return None
    t = sample.truth
    return (
        envelope_features(rec.envelope).tolist(),
        rec.envelope.mean,
        (
            t.systolic,
            t.diastolic,
            t.mean,
        ),
    )


def rows(cases: Sequence[BpCase], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (n, F), pressures of the maxima (n,), truths (n, 3) of the clean records."""
    jobs = [(i, case, seed) for i, case in enumerate(cases)]
    with Pool(max(1, min(4, os.cpu_count() or 1))) as pool:
        got = [r for r in pool.map(_row, jobs, chunksize=16) if r is not None]
    return (
        np.array([g[0] for g in got]),
        np.array([g[1] for g in got]),
        np.array([g[2] for g in got]),
    )


def errors(model: RatioModel, x: np.ndarray, top: np.ndarray, truth: np.ndarray) -> str:
    """Mean ± SD of the SBP, DBP and MAP errors of ``model`` on the rows."""
    coef = np.array([model.systolic, model.diastolic, model.mean]).T
    err = top[:, None] + x @ coef - truth
    parts = [
        f"{name} {err[:, j].mean():+.2f} ± {err[:, j].std(ddof=1):.2f}"
        for j, name in enumerate(("SBP", "DBP", "MAP"))
    ]
    return f"n={len(err)}: " + ", ".join(parts) + " mmHg"


def render(model: RatioModel, n: int, seed: int, ridge: float, records: int, fit: str) -> str:
    """The source of edge/signal/ratio_table.py."""
    today = datetime.date.today().isoformat()

    def block(name: str, values: tuple[float, ...]) -> str:
        body = "".join(f"        {v!r},\n" for v in values)
        return f"    {name}=(\n{body}    ),\n"

    command = f"python -m benchmarks.train_bp_ratios --n {n} --seed {seed} --ridge {ridge:g}"
    return (
        '"""The coefficients of the variable characteristic ratios (generated, do not edit).\n\n'
        f"Learned by ``{command} --write``\non "
        f"{today} from the {records} clean records of ``bp_cohort({n}, {seed})`` (the Babbs-type\n"
        "arm/cuff simulator of simulators/physio, disjoint from the accuracy benchmark's seed 6).\n"
        f"Training residuals {fit}.\n"
        "Order of the coefficients: :func:`edge.signal.ratios.feature_names`. Re-learn them on\n"
        "recordings with a reference pressure before clinical use (edge/signal/ratios.py).\n"
        '"""\n\n'
        "from __future__ import annotations\n\n"
        "from edge.signal.ratios import RatioModel\n\n"
        "#: envelope levels the coefficients were learned for (checked against ratios.LEVELS)\n"
        f"LEVELS = {LEVELS!r}\n\n"
        "RATIO_MODEL = RatioModel(\n"
        + block("systolic", model.systolic)
        + block("diastolic", model.diastolic)
        + block("mean", model.mean)
        + ")\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6000, help="cohort size (records)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ridge", type=float, default=0.01)
    parser.add_argument("--write", action="store_true", help=f"rewrite {TABLE.name}")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_version()}, numpy {np.__version__}")
    x, top, truth = rows(bp_cohort(args.n, args.seed), args.seed)
    model = fit_ratios(x, truth - top[:, None], args.ridge)
    fit = errors(model, x, top, truth)
    print(f"training, bp_cohort({args.n}, {args.seed}) clean records: {fit}")
    held_out = rows(bp_cohort(600, 6), 6)
    print(f"held out, bp_cohort(600, 6) clean records: {errors(model, *held_out)}")
    other = rows(envelope_cohort(600, 6), 6)
    print(f"held out, envelope_cohort(600, 6) (other generator): {errors(model, *other)}")
    if args.write:
        source = render(model, args.n, args.seed, args.ridge, len(x), fit)
        TABLE.write_text(source, encoding="utf-8")
        print(f"wrote {TABLE}")


if __name__ == "__main__":
    main()
