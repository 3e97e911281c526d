"""Retinal photographs: is each one gradable? (issue #10, pure NumPy).

:func:`~edge.imaging.gradability.grade` turns the decoded pixels of a fundus photograph into a
:class:`~edge.imaging.gradability.Verdict` (gradable, or retake with reason codes and the
measured values). This package imports neither pydicom nor the drivers (an import-linter
contract): the DICOM adapter decodes, this package judges.
"""

from __future__ import annotations

from edge.imaging.gradability import REASONS, Measures, Verdict, grade, measure

__all__ = ["REASONS", "Measures", "Verdict", "grade", "measure"]
