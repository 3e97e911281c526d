"""A stored calibration record checked against itself: its model must give its points.

The sha256 catches a file altered after it was written (calibration/records.py); this catches a
record written wrong in the first place - an as-left value or an error its own model and
reference do not give, a pass beyond the tolerance.
"""

from __future__ import annotations

from calibration.models import Model
from calibration.records import CalibrationRecord

#: rounding of the stored values (3 decimals) and of the floats on the way
_SLACK = 0.002


def consistency(record: CalibrationRecord) -> list[str]:
    """What does not add up in ``record`` (empty: it is consistent)."""
    problems = []
    model = Model.from_dict(record.model) if record.model is not None else None
    for n, p in enumerate(record.points, start=1):
        if model is not None and p.as_left is not None:
            expected = float(model.apply(p.raw))
            if abs(expected - p.as_left) > _SLACK:
                problems.append(
                    f"point {n}: as-left {p.as_left} but its model gives {expected:.3f}"
                )
            if abs((p.as_left - p.reference) - p.error) > _SLACK:
                problems.append(f"point {n}: error {p.error} is not as-left - reference")
    if record.result == "pass" and record.tolerance is not None:
        worst = max((abs(p.error) for p in record.points), default=0.0)
        if worst > record.tolerance + _SLACK:
            problems.append(f"passed with an error of {worst} beyond ±{record.tolerance}")
    return problems
