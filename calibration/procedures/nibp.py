"""The NIBP module's cuff-pressure transducer against a reference pressure controller.

The bench: the module's cuff port teed to a reference (a pressure controller, driven over its
serial line) and a rigid volume or a wrapped cuff. Steps:

1. **Static points** (default 0, 50, 100, 150, 200, 250 mmHg): the reference drives the
   circuit to each one; once it is in limits and its reading drifts less than
   ``stable_rate``, the module's transducer (service mode, drivers/devices/nibp/service.py)
   and the reference are averaged over ``sample_s``. The static-pressure accuracy required of
   automated sphygmomanometers is +-3 mmHg over the range (ISO 81060-1, IEC 80601-2-30); the
   record judges the error after adjustment against it (and shows the error as found).
2. **Leak**: at the highest point the reference stops controlling (the circuit is sealed);
   the pressure drop over ``leak_s`` is the leak rate, limit 6 mmHg/min (the air-leakage limit
   of OIML R 16-2 for automated sphygmomanometers, cuff and tubing included).
3. **Over-pressure**: the reference drives past the module's guard; the module must report
   its dump valve open (STATUS flag) before the reference ever reads above
   ``overpressure_max``. Then the circuit is vented.

The module leaves service mode whatever happens; the reference is vented.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass
from typing import Protocol

from calibration.procedures.base import (
    Check,
    Collected,
    Operator,
    PointReading,
    ProcedureAbortedError,
)


class Reference(Protocol):
    """The pressure controller (drivers/devices/manometer)."""

    async def read(self) -> float: ...

    async def set_pressure(self, mmhg: float) -> None: ...

    async def control(self, on: bool) -> None: ...

    async def in_limits(self) -> bool: ...

    async def vent(self) -> None: ...


class Reading(Protocol):
    """Transducer counts over a window, and whether the module's guard dumped meanwhile."""

    @property
    def counts(self) -> tuple[int, ...]: ...

    @property
    def dumped(self) -> bool: ...


class Transducer(Protocol):
    """The module in service mode (drivers/devices/nibp/service.NibpService)."""

    async def sample(self, seconds: float) -> Reading: ...


@dataclass(frozen=True, slots=True)
class NibpPlan:
    points: tuple[float, ...] = (0.0, 50.0, 100.0, 150.0, 200.0, 250.0)
    #: max |error| after adjustment, mmHg (ISO 81060-1 / IEC 80601-2-30 static accuracy)
    tolerance: float = 3.0
    stable_rate: float = 0.3  # mmHg/s, drift allowed before a point is read ...
    stable_window_s: float = 1.0  # ... over this window
    settle_timeout: float = 60.0  # s to reach and hold a point
    sample_s: float = 2.0
    leak_s: float = 60.0
    seal_settle_s: float = 3.0  # s between sealing and the start of the leak measurement
    leak_limit: float = 6.0  # mmHg/min
    overpressure_target: float = 330.0
    overpressure_max: float = 330.0  # the dump must come before the reference reads this
    overpressure_timeout: float = 30.0


async def _reference_series(ref: Reference, seconds: float, every: float = 0.1) -> list[float]:
    values: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end or not values:
        values.append(await ref.read())
        await asyncio.sleep(every)
    return values


async def _settle(ref: Reference, target: float, plan: NibpPlan) -> None:
    """Wait for the controller to be in limits and the reading to stop drifting."""
    deadline = time.monotonic() + plan.settle_timeout
    while time.monotonic() < deadline:
        if await ref.in_limits():
            window = await _reference_series(ref, plan.stable_window_s)
            if max(window) - min(window) <= plan.stable_rate * plan.stable_window_s:
                return
        await asyncio.sleep(0.2)
    raise ProcedureAbortedError(
        f"the reference did not hold {target:g} mmHg within {plan.settle_timeout:g} s"
        " (a leak in the circuit, or the controller cannot reach it)"
    )


async def _point(ref: Reference, device: Transducer, target: float, plan: NibpPlan) -> PointReading:
    await ref.set_pressure(target)
    await _settle(ref, target, plan)
    reading, refs = await asyncio.gather(
        device.sample(plan.sample_s), _reference_series(ref, plan.sample_s)
    )
    counts = [float(c) for c in reading.counts]
    return PointReading(
        target=target,
        reference=statistics.fmean(refs),
        reference_sd=statistics.pstdev(refs),
        raw=statistics.fmean(counts),
        raw_sd=statistics.pstdev(counts),
        samples=len(counts),
    )


async def _leak(ref: Reference, plan: NibpPlan, op: Operator) -> Check:
    await ref.control(False)  # sealed: only the circuit's leak changes the pressure now
    await asyncio.sleep(plan.seal_settle_s)  # the air's temperature settles after control
    p0, t0 = await ref.read(), time.monotonic()
    with op.progress(f"leak test ({plan.leak_s:g} s)", plan.leak_s) as advance:
        while (elapsed := time.monotonic() - t0) < plan.leak_s:
            advance(elapsed)
            await asyncio.sleep(min(0.5, plan.leak_s - elapsed))
    p1 = await ref.read()
    rate = (p0 - p1) / (time.monotonic() - t0) * 60.0
    return Check(
        "leak",
        round(rate, 2),
        plan.leak_limit,
        "mmHg/min",
        rate <= plan.leak_limit,
        f"{p0:.1f} -> {p1:.1f} mmHg over {plan.leak_s:g} s, sealed at the top point",
    )


async def _overpressure(ref: Reference, device: Transducer, plan: NibpPlan) -> Check:
    await ref.set_pressure(plan.overpressure_target)
    await ref.control(True)
    peak = 0.0
    deadline = time.monotonic() + plan.overpressure_timeout
    dumped = False
    while time.monotonic() < deadline and not dumped:
        reading, p = await asyncio.gather(device.sample(0.2), ref.read())
        peak = max(peak, p)
        dumped = reading.dumped
    await _vent(ref)
    passed = dumped and peak <= plan.overpressure_max
    if dumped:
        detail = f"dump valve opened; highest reference reading {peak:.1f} mmHg"
    else:
        detail = f"no dump within {plan.overpressure_timeout:g} s (peak {peak:.1f} mmHg)"
    return Check("over-pressure", round(peak, 1), plan.overpressure_max, "mmHg", passed, detail)


async def _vent(ref: Reference) -> None:
    """Vent first (it also ends the control), then switch the output off, each on its own.

    Whatever failed before, the circuit must not stay sealed at up to 330 mmHg: a failed
    ``control(False)`` never prevents the vent.
    """
    try:
        await ref.vent()
    finally:
        await ref.control(False)


async def run(ref: Reference, device: Transducer, plan: NibpPlan, op: Operator) -> Collected:
    """The bench steps of the module docstring; the fit and the verdict are the caller's."""
    out = Collected()
    op.say(
        "Tee the module's cuff port to the reference; close the circuit (rigid volume or a"
        " cuff wrapped on a mandrel)."
    )
    if not op.confirm("Is the circuit connected and closed?"):
        raise ProcedureAbortedError("the technician stopped before the first point")
    try:
        await ref.control(True)
        with op.progress("static points", len(plan.points)) as advance:
            for n, target in enumerate(plan.points, start=1):
                point = await _point(ref, device, target, plan)
                out.points.append(point)
                op.say(
                    f"{target:5.0f} mmHg: reference {point.reference:7.2f} mmHg,"
                    f" module {point.raw:9.1f} counts ({point.samples} readings)"
                )
                advance(n)
        out.checks.append(await _leak(ref, plan, op))
        op.say(f"leak: {out.checks[-1].detail}: {out.checks[-1].value} mmHg/min")
        out.checks.append(await _overpressure(ref, device, plan))
        op.say(f"over-pressure: {out.checks[-1].detail}")
    except BaseException:
        # vent whatever happened, but keep the original reason (not a vent failure's)
        with contextlib.suppress(Exception):
            await _vent(ref)
        raise
    await _vent(ref)
    return out
