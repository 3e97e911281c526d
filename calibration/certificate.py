"""What a calibration record measured: its points and its additional checks.

Kept apart from records.py (which stores and reads records) so that each stays small. Pure:
pydantic and the standard library only. Values are in the record's units: ``unit`` for the
reference and the calibrated readings (mmHg), ``raw_unit`` for the raw device value (counts).
Non-finite numbers are refused: JSON has none, and a certificate must not carry one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class CalibrationPoint(BaseModel):
    """One static point: the reference value and what the device made of it.

    ``error`` is the value judged against the tolerance: the device's reading minus the
    reference, with the new calibration (``as_left``) in a calibration, as the device reported
    it in a verification; positive means the device reads high (calibration.models.evaluate).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    #: what the reference instrument read (unit)
    reference: float
    #: what the device measured, raw (raw_unit; a verification: its reading, in unit)
    raw: float
    #: the device's reading with the calibration it came in with (None: not taken)
    as_found: float | None = None
    #: the device's reading with the new calibration (None: a verification, nothing changed)
    as_left: float | None = None
    error: float


class CheckResult(BaseModel):
    """A pass/fail check besides the points: a leak test, an over-pressure cut-off."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    #: e.g. ``leak``, ``overpressure``
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    value: float
    limit: float
    #: ``max``: the value passes at or below the limit (a leak rate); ``min``: at or above
    bound: Literal["max", "min"] = "max"
    #: e.g. ``mmHg/min``
    unit: Annotated[str, Field(max_length=16)]
    passed: bool
    #: how it was measured, what was seen (for the technician and the auditor)
    detail: Annotated[str, Field(max_length=200)] = ""
