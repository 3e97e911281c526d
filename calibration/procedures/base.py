"""What every procedure shares: the operator, timed waits for stability, the outcome.

Stability before a static point is read (the reference has reached its setpoint and the
reading no longer drifts) follows the usual calibrator practice: wait for the controller's
in-limits flag, then require the reference reading to change by less than ``stable_rate``
mmHg/s over a window before averaging (IEC 80601-2-30 and OIML R 16-2 test the cuff-pressure
indication at held static pressures; the drift bound here is our choice, a NibpPlan field).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol


class Operator(Protocol):
    """The person at the bench (or the script standing in for them in CI)."""

    def say(self, text: str) -> None:
        """Tell the technician something (a step, a result)."""

    def confirm(self, text: str) -> bool:
        """Ask a yes/no question; False aborts the procedure."""

    def progress(
        self, label: str, total: float
    ) -> contextlib.AbstractContextManager[Callable[[float], None]]:
        """A progress bar of ``total`` units; the callable advances it to a value."""


class ScriptedOperator:
    """Answers yes to everything and keeps what it was told (``--yes``, tests)."""

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self.said: list[str] = []
        self.echo = echo

    def say(self, text: str) -> None:
        self.said.append(text)
        if self.echo is not None:
            self.echo(text)

    def confirm(self, text: str) -> bool:
        self.say(f"{text} [yes: scripted]")
        return True

    @contextlib.contextmanager
    def progress(self, label: str, total: float) -> Iterator[Callable[[float], None]]:
        yield lambda value: None


class ProcedureAbortedError(Exception):
    """The technician said no, or the bench cannot go on (the reason says which)."""


@dataclass(frozen=True, slots=True)
class PointReading:
    """One static point: the reference and the device under test, averaged over a window."""

    target: float
    reference: float  # mmHg (or the quantity's unit), mean over the window
    reference_sd: float
    raw: float  # the device's raw value (counts), mean over the window
    raw_sd: float
    samples: int


@dataclass(frozen=True, slots=True)
class Check:
    """A pass/fail check besides the points (leak, over-pressure...)."""

    name: str
    value: float | None
    limit: float
    unit: str
    passed: bool
    detail: str


@dataclass(slots=True)
class Collected:
    """What a procedure measured; the CLI fits, judges and records it."""

    points: list[PointReading] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
