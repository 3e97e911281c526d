"""A Modbus temperature sensor against a reference thermometer at two points: a verification.

The bench: the sensor (an XY-MD02 or any unit whose register map has a ``temperature``
quantity) on its Modbus line as in service, a reference thermometer with its own certificate,
and two baths far apart - an ice bath (about 0 Cel) and a warm one (about 25-40 Cel). For
each point:

1. the technician puts the sensor and the reference thermometer's probe together in the bath
   and confirms;
2. the sensor is read every ``every_s`` (default 0.5 s) until its last ``samples`` readings
   (default 5) are stable - their spread at most ``stability`` (default 0.2 Cel) - and, from
   the second point on, at least ``min_step`` (5 Cel) away from the previous point (a sensor
   still reading the previous bath has not been moved, or has not followed yet). Not stable
   within ``settle_timeout`` aborts the verification with the reason;
3. the device value is the mean of that window; the reference value is the reference
   thermometer's reading then, typed by the technician at a prompt, or scripted
   (``manual://?values=0.05,25.10``: the values in order, :func:`parse_manual_url`).

The verdict (the caller's, edge/calibrate_more.py): at each point the error is the device value
minus the reference (a verification: no model), judged against ``tolerance``, default 0.5 Cel:
our choice, at the accuracy class the XY-MD02's sellers state for it (+-0.5 Cel at 25 Cel);
set the tolerance your use needs (a vaccine fridge's logger, say, may need better). The
stability of each window is recorded as a check.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from calibration.procedures.base import (
    Check,
    Collected,
    Operator,
    PointReading,
    ProcedureAbortedError,
)

NAME = "modbus-temperature-2pt"


class ReferenceUrlError(ValueError):
    """A ``--reference`` that is not a usable ``manual://`` URL; the message says why."""


def parse_manual_url(url: str) -> tuple[float, ...] | None:
    """The scripted values of a ``manual://`` reference URL, or None: typed at a prompt.

    ``manual://`` (or ``manual:``): the technician types the reference thermometer's reading at
    each point. ``manual://?values=0.05,25.10``: those readings, in the order of the points
    (CI, a scripted bench). Anything else is a :class:`ReferenceUrlError`.
    """
    parts = urlsplit(url)
    if parts.scheme != "manual":
        raise ReferenceUrlError(
            f"the reference thermometer is read by the technician: manual:// or"
            f" manual://?values=V1,V2, got {url!r}"
        )
    if parts.netloc or parts.path not in ("", "/") or parts.fragment:
        raise ReferenceUrlError(f"manual:// takes no host or path, got {url!r}")
    if not parts.query:
        return None
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - {"values"})
    if unknown or len(query.get("values", [])) != 1:
        raise ReferenceUrlError(f"manual:// takes one values=V1,V2,... parameter, got {url!r}")
    text = query["values"][0]
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ReferenceUrlError(
            f"manual:// values are numbers separated by commas, got {text!r}"
        ) from None
    if not all(math.isfinite(v) for v in values):
        raise ReferenceUrlError(f"manual:// values must be finite numbers, got {text!r}")
    return values


class Reference(Protocol):
    """The reference thermometer: its reading now, at point ``n`` (1-based) of ``total``."""

    async def reading(self, n: int, total: int, where: str) -> float: ...


class ScriptedReference:
    """``manual://?values=...``: the given readings, in order."""

    def __init__(self, values: tuple[float, ...]) -> None:
        self.values = values

    async def reading(self, n: int, total: int, where: str) -> float:
        if len(self.values) != total:
            raise ProcedureAbortedError(
                f"{len(self.values)} scripted reference values for {total} points"
            )
        return self.values[n - 1]


class Sensor(Protocol):
    """The unit under test: one reading of its temperature (Cel) per call."""

    async def temperature(self) -> float: ...


@dataclass(frozen=True, slots=True)
class ThermometerPlan:
    #: where each point is taken, for the prompts (two points: the procedure's name)
    points: tuple[str, ...] = ("an ice bath (about 0 °C)", "a warm bath (about 25-40 °C)")
    #: max |device - reference|, Cel (our choice: the XY-MD02's stated +-0.5 Cel class)
    tolerance: float = 0.5
    #: readings averaged at each point ...
    samples: int = 5
    #: ... this many seconds apart
    every_s: float = 0.5
    #: max spread (max - min) of the averaged readings, Cel
    stability: float = 0.2
    #: min distance between two points' device values, Cel
    min_step: float = 5.0
    #: seconds for the sensor to settle at a point
    settle_timeout: float = 180.0
    #: expanded uncertainty (k = 2) of the reference thermometer (its certificate), Cel
    reference_expanded: float = 0.0
    #: the sensor's resolution, Cel (None: the scale of its register, e.g. 0.1)
    resolution: float | None = None

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError("a two-point check has at least two points")
        if self.samples < 2 or self.every_s <= 0 or self.settle_timeout <= 0:
            raise ValueError("samples >= 2, every_s > 0 and settle_timeout > 0")
        if self.tolerance < 0 or self.stability < 0 or self.min_step < 0:
            raise ValueError("tolerance, stability and min_step are >= 0")


def stability(points: list[PointReading], spreads: list[float], limit: float) -> Check:
    """The largest spread of a point's averaged window (it passed, or no point was taken)."""
    worst = max(spreads)
    parts = ", ".join(
        f"{p.raw:.1f}: {s:.2f}" for p, s in zip(points, spreads, strict=True)
    )  # fmt: skip
    detail = f"spread of {points[0].samples} readings at each point (Cel) {parts}"
    return Check("stability", round(worst, 3), limit, "Cel", worst <= limit, detail[:200])


async def _settle(
    sensor: Sensor, plan: ThermometerPlan, op: Operator, n: int, previous: float | None
) -> list[float]:
    """The first window of ``samples`` readings that is stable (and moved from ``previous``)."""
    window: deque[float] = deque(maxlen=plan.samples)
    deadline = time.monotonic() + plan.settle_timeout
    waiting_said = False
    with op.progress(f"point {n}: sensor settling", plan.samples) as advance:
        while True:
            window.append(await sensor.temperature())
            advance(len(window))
            if len(window) == plan.samples:
                spread = max(window) - min(window)
                mean = statistics.fmean(window)
                moved = previous is None or abs(mean - previous) >= plan.min_step
                if spread <= plan.stability and moved:
                    return list(window)
                if not moved and not waiting_said:
                    op.say(
                        f"  the sensor reads {mean:.1f} °C, within {plan.min_step:g} °C of the"
                        " previous point: waiting for it to reach this bath"
                    )
                    waiting_said = True
                if time.monotonic() >= deadline:
                    if not moved:
                        raise ProcedureAbortedError(
                            f"point {n}: the sensor still reads {mean:.2f} °C, within"
                            f" {plan.min_step:g} °C of the previous point ({previous:.2f} °C),"
                            f" after {plan.settle_timeout:g} s: is it in the new bath?"
                        )
                    raise ProcedureAbortedError(
                        f"point {n}: the sensor did not settle within {plan.settle_timeout:g} s"
                        f" (its last {plan.samples} readings spread {spread:.2f} °C >"
                        f" {plan.stability:g} °C): stir the bath, check the probe's contact"
                    )
            await asyncio.sleep(plan.every_s)


async def run(
    sensor: Sensor, reference: Reference, plan: ThermometerPlan, op: Operator
) -> Collected:
    """The bench steps of the module docstring; the verdict is the caller's."""
    out = Collected()
    spreads: list[float] = []
    total = len(plan.points)
    op.say(
        f"Two-point check of the temperature sensor against the reference thermometer: "
        f"{' then '.join(plan.points)}."
    )
    previous: float | None = None
    for n, where in enumerate(plan.points, start=1):
        if not op.confirm(
            f"Point {n} of {total}: put the sensor and the reference thermometer's probe"
            f" together in {where}. Ready?"
        ):
            raise ProcedureAbortedError(f"the technician stopped before point {n}")
        window = await _settle(sensor, plan, op, n, previous)
        device = statistics.fmean(window)
        ref = await reference.reading(n, total, where)
        if not math.isfinite(ref):
            raise ProcedureAbortedError(f"point {n}: the reference reading {ref} is not a number")
        spreads.append(max(window) - min(window))
        out.points.append(
            PointReading(
                target=ref,
                reference=ref,
                reference_sd=0.0,
                raw=device,
                raw_sd=statistics.stdev(window),
                samples=len(window),
            )
        )
        op.say(
            f"point {n}: sensor {device:.2f} °C (spread {spreads[-1]:.2f}), reference"
            f" {ref:.2f} °C, error {device - ref:+.2f} °C"
        )
        previous = device
    out.checks.append(stability(out.points, spreads, plan.stability))
    return out
