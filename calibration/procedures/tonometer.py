"""The CT-80 tonometer against model eyes of known IOP: a verification, nothing is adjusted.

The bench: a set of model eyes (artificial eyes whose intraocular pressure is set and stated by
their maker, or a manufacturer's verification device standing in for one) and the tonometer,
connected to the gateway as in service (its RS-232 line; the daemon stopped, after it has
delivered every stored exam). Steps, for each level (default 10, 20, 35 mmHg):

1. the technician places the model eye of that level and confirms;
2. they take ``repeats`` measurements (default 3); the tonometer transmits one record per exam
   and the procedure reads them as the daemon would (drivers/devices/ct80), acknowledging each
   one so that the device forgets it;
3. a measurement counts when its **right-eye** value is a plain number. A CT-80 record has both
   eyes; the model eye is measured in the right-eye position, so the right eye's value (the
   device's average of its three puffs) is the reading and the left eye is ignored. A record
   with a blank, ``OVER`` or unreliable (parenthesised) right eye is acknowledged and discarded
   (the technician measures again); too many of them, or no record within ``reading_timeout``,
   abort the verification with the reason.

A record stamped more than ``stale_s`` before the verification began was in the tonometer's
memory before it: it may be a patient's exam, so it is not acknowledged (the device keeps it)
and the verification stops, asking for it to be delivered first.

The verdict (made by the caller, edge/calibrate_more.py): at each level the mean of the
readings minus the level is the error (a verification: the model is None,
calibration.models.evaluate), judged against ``tolerance`` (default 2.0 mmHg). That default is
a manufacturer's verification tolerance for model eyes, not a figure quoted from a standard:
ISO 8612 (Ophthalmic instruments - Tonometers) sets the accuracy requirements of tonometers and
calls "verification" the demonstration that an individual instrument performs within defined
limits, but its numbers are not reproduced here - set the tolerance the model eyes' or the
tonometer maker's verification procedure states. The repeatability check (the sample standard
deviation of the readings at each level at most ``repeatability_sd``, default 1.0 mmHg) is our
choice: a tonometer that scatters more than that on a rigid model eye is not fit for
screening even if its mean is right.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from calibration.procedures.base import (
    Check,
    Collected,
    Operator,
    PointReading,
    ProcedureAbortedError,
)

NAME = "tonometer-model-eyes"


@dataclass(frozen=True, slots=True)
class Exam:
    """One record the tonometer transmitted, as the procedure needs it."""

    #: the right eye's IOP (mmHg) when it is a plain number; None: blank, OVER or unreliable
    right: float | None
    #: how the device qualified the right eye: ``ok``, ``unreliable``, ``over-range``, ``absent``
    right_status: str
    #: the device's own (naive, local) time stamp of the exam; None when it gave none
    taken_at: datetime | None
    #: tell the device the record is taken, so it forgets it
    acknowledge: Callable[[], Awaitable[None]]


class Tonometer(Protocol):
    """The tonometer's line (the runner wraps drivers.devices.ct80.Ct80Driver's deliveries)."""

    async def next_exam(self) -> Exam:
        """The next record the device transmits, in its order (waits for it)."""
        ...


@dataclass(frozen=True, slots=True)
class TonometerPlan:
    #: the model eyes' nominal IOPs, mmHg, in the order they are measured
    levels: tuple[float, ...] = (10.0, 20.0, 35.0)
    #: measurements on each model eye
    repeats: int = 3
    #: max |mean reading - level|, mmHg: the manufacturer's verification tolerance
    tolerance: float = 2.0
    #: max sample standard deviation of the readings on one model eye, mmHg (our choice)
    repeatability_sd: float = 1.0
    #: seconds to wait for each record (the technician positions and measures)
    reading_timeout: float = 120.0
    #: records without a usable right-eye value tolerated on one model eye
    max_discarded: int = 3
    #: a record stamped this long before the verification began is not the bench's
    stale_s: float = 600.0
    #: expanded uncertainty (k = 2) of the model eyes' stated IOP, mmHg (their certificate)
    reference_expanded: float = 0.0
    #: the tonometer's display resolution, mmHg
    resolution: float = 0.1

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("at least one model-eye level")
        if any(not (math.isfinite(v) and 0 < v < 100) for v in self.levels):
            raise ValueError(f"model-eye levels are mmHg between 0 and 100, got {self.levels}")
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"each model-eye level once, got {self.levels}")
        if self.repeats < 2:
            raise ValueError("at least 2 measurements per model eye (for their spread)")
        if self.reading_timeout <= 0 or self.tolerance < 0 or self.repeatability_sd < 0:
            raise ValueError("reading_timeout > 0, tolerance and repeatability_sd >= 0")


def repeatability(points: list[PointReading], limit: float) -> Check:
    """The largest sample standard deviation of the readings at one level, against ``limit``."""
    worst = max(points, key=lambda p: p.raw_sd)
    spreads = ", ".join(f"{p.target:g}: {p.raw_sd:.2f}" for p in points)
    detail = f"SD per eye of {worst.samples} readings (mmHg) {spreads} (our limit)"
    return Check(
        "repeatability",
        round(worst.raw_sd, 3),
        limit,
        "mmHg",
        worst.raw_sd <= limit,
        detail[:200],
    )


async def _next(device: Tonometer, plan: TonometerPlan, level: float, have: int) -> Exam:
    timer = asyncio.timeout(plan.reading_timeout)
    try:
        async with timer:
            return await device.next_exam()
    except TimeoutError:
        if not timer.expired():
            raise  # the line's own timeout (a driver error), not ours
        raise ProcedureAbortedError(
            f"no measurement from the tonometer within {plan.reading_timeout:g} s on the"
            f" {level:g} mmHg model eye ({have} of {plan.repeats} taken): is it connected and"
            " measuring?"
        ) from None


async def _level(
    device: Tonometer, plan: TonometerPlan, level: float, op: Operator, started: datetime
) -> PointReading:
    values: list[float] = []
    discarded = 0
    with op.progress(f"{level:g} mmHg model eye", plan.repeats) as advance:
        while len(values) < plan.repeats:
            exam = await _next(device, plan, level, len(values))
            if exam.taken_at is not None and exam.taken_at < started - timedelta(
                seconds=plan.stale_s
            ):
                raise ProcedureAbortedError(
                    f"the tonometer sent an exam of {exam.taken_at:%Y-%m-%d %H:%M}, from before"
                    " this verification: it may be a patient's, so it was not acknowledged. Let"
                    " the daemon deliver the stored exams (santebus run), stop it, start again"
                    " (if the tonometer's clock is wrong, set it)"
                )
            await exam.acknowledge()
            if exam.right is None:
                discarded += 1
                op.say(
                    f"  exam discarded: right eye {exam.right_status}, no usable value (measure"
                    " the model eye in the right-eye position); measure again"
                )
                if discarded > plan.max_discarded:
                    raise ProcedureAbortedError(
                        f"{discarded} exams without a usable right-eye value on the {level:g}"
                        " mmHg model eye: check its position and the tonometer's alignment"
                    )
                continue
            values.append(exam.right)
            advance(len(values))
            op.say(f"  {level:g} mmHg eye, measurement {len(values)}/{plan.repeats}:"
                   f" {exam.right:.1f} mmHg")  # fmt: skip
    return PointReading(
        target=level,
        reference=level,
        reference_sd=0.0,
        raw=statistics.fmean(values),
        raw_sd=statistics.stdev(values),  # sample SD (n - 1): the repeatability
        samples=len(values),
    )


async def run(
    device: Tonometer, plan: TonometerPlan, op: Operator, *, started: datetime
) -> Collected:
    """The bench steps of the module docstring; the verdict is the caller's.

    ``started`` is when the verification began, on the tonometer's clock's terms (naive local
    time in the bus's time zone): older records are not the bench's.
    """
    out = Collected()
    op.say(
        f"Tonometer verification on model eyes of {', '.join(f'{v:g}' for v in plan.levels)}"
        f" mmHg, {plan.repeats} measurements each, in the right-eye position. Every exam the"
        " tonometer sends is acknowledged: it then forgets it."
    )
    if not op.confirm(
        "Has the daemon delivered every stored patient exam, and is it stopped?"
    ):  # fmt: skip
        raise ProcedureAbortedError("the technician stopped before the first model eye")
    for n, level in enumerate(plan.levels, start=1):
        if not op.confirm(
            f"Place the {level:g} mmHg model eye ({n} of {len(plan.levels)}) in the right-eye"
            f" position, then take {plan.repeats} measurements. Ready?"
        ):
            raise ProcedureAbortedError(f"the technician stopped at the {level:g} mmHg model eye")
        point = await _level(device, plan, level, op, started)
        out.points.append(point)
        op.say(
            f"{level:5.1f} mmHg model eye: mean {point.raw:.2f} mmHg"
            f" (error {point.raw - level:+.2f}), SD {point.raw_sd:.2f}"
        )
    out.checks.append(repeatability(out.points, plan.repeatability_sd))
    return out
