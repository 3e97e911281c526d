"""Procedural non-mydriatic fundus photographs with known gradability (issue #10).

:func:`generate` draws one photograph from a seed: an 8-bit RGB array (circular field of view
on black; orange-red fundus with vignetting; optic disc on the nasal side for the eye's
laterality; tapering vessel arcades; darker macula; texture and sensor noise) and its
:class:`~simulators.fundus.case.FundusTruth`. Faults: ``blur``, ``underexposed``,
``overexposed``, ``eyelid``, ``off-centre`` (and ``clean``), each drawn over a severity range
that straddles the physical criterion of :mod:`simulators.fundus.case`, so borderline cases
exist on both sides. NumPy only; nothing here imports :mod:`edge`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from simulators.fundus.case import (
    FAULTS,
    FundusCase,
    FundusTruth,
    draw_case,
    truth_of,
)
from simulators.fundus.render import U8, render

__all__ = [
    "FAULTS",
    "FundusCase",
    "FundusTruth",
    "cohort",
    "draw_case",
    "generate",
    "render",
    "truth_of",
]


def generate(
    seed: int, fault: str | None = None, width: int = 1024, height: int = 1024
) -> tuple[U8, FundusTruth]:
    """The photograph drawn from ``seed`` (``fault`` None: drawn too) and its ground truth."""
    case = draw_case(np.random.default_rng(seed), fault)
    return render(case, width, height), truth_of(case)


def cohort(seeds: range, width: int = 1024, height: int = 1024) -> Iterator[tuple[U8, FundusTruth]]:
    """One photograph per seed, faults drawn with :data:`~simulators.fundus.case.FAULT_WEIGHTS`."""
    for seed in seeds:
        yield generate(seed, None, width, height)
