"""The simulated pneumatic bench of a calibration: one sealed circuit, many instruments on it.

A cuff or rigid vessel, a T-piece, the reference manometer (a pressure controller) and the
device under test share one gauge pressure. The reference's simulator drives it
(:meth:`PneumaticBench.set_target`, :meth:`~PneumaticBench.control`,
:meth:`~PneumaticBench.vent`); a device under test reads it and may open its safety valve
(:meth:`~PneumaticBench.dump`). Pure Python: no I/O, deterministic given a seed and a clock.

The model, integrated in closed form so that the result does not depend on how often
:meth:`~PneumaticBench.pressure` is called:

* controlling: a rate-limited first-order approach to the target - at ``slew_mmhg_per_s`` while
  far from it, then exponentially with time constant ``settle_s`` once within
  ``slew * settle_s`` of it (the two meet with equal slopes); the controller's regulation
  ripple (``noise_mmhg``, Gaussian) is added to what :meth:`~PneumaticBench.pressure` returns;
* sealed (control off): the circuit leaks at ``leak_mmhg_per_min``, linearly, down to 0;
* vented by the controller: exponential fall to 0, time constant :data:`VENT_TAU_S`;
* dumped by a device's safety valve: exponential fall to 0, time constant :data:`DUMP_TAU_S`
  (under 1 mmHg within 0.5 s from 300 mmHg), and the controller's output goes off as the
  circuit opens; the next :meth:`~PneumaticBench.control` call ends a vent or a dump.

The pressure never goes below 0 (gauge; no vacuum source on the bench).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Literal

#: time constant of the controller's vent valve to atmosphere, s
VENT_TAU_S = 0.25
#: time constant of a device's safety (dump) valve, s
DUMP_TAU_S = 0.08
#: below this a venting or dumped circuit is at atmosphere, mmHg
ATMOSPHERE_MMHG = 1e-3

State = Literal["controlling", "sealed", "venting", "dumped"]


class PneumaticBench:
    """The circuit's true gauge pressure (mmHg), advanced on demand from ``clock``."""

    def __init__(
        self,
        *,
        leak_mmhg_per_min: float = 1.0,
        slew_mmhg_per_s: float = 40.0,
        noise_mmhg: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
        settle_s: float = 0.5,
    ) -> None:
        if leak_mmhg_per_min < 0 or noise_mmhg < 0:
            raise ValueError("leak and noise must be >= 0")
        if slew_mmhg_per_s <= 0 or settle_s <= 0:
            raise ValueError("slew and settle time must be > 0")
        self.leak_mmhg_per_min = leak_mmhg_per_min
        self.slew_mmhg_per_s = slew_mmhg_per_s
        self.noise_mmhg = noise_mmhg
        self.settle_s = settle_s
        self._clock = clock
        self._rng = random.Random(seed)
        self._t = clock()
        self._p = 0.0
        self._target = 0.0
        self._state: State = "venting"  # a fresh bench is open to atmosphere
        # the start of the current controlled approach: (time, |error|) when the target or the
        # state last changed; |error| only falls during one approach, so when it entered a
        # band is known in closed form
        self._approach = (self._t, 0.0)

    # ----------------------------------------------------------------- observed

    @property
    def target(self) -> float:
        return self._target

    @property
    def controlling(self) -> bool:
        return self._state == "controlling"

    @property
    def state(self) -> State:
        self._advance()
        return self._state

    def pressure(self) -> float:
        """The gauge pressure in the circuit now, mmHg (ripple included while controlling)."""
        self._advance()
        p = self._p
        if self._state == "controlling" and self.noise_mmhg > 0:
            p += self._rng.gauss(0.0, self.noise_mmhg)
        return max(0.0, p)

    def settled_for(self, band_mmhg: float) -> float:
        """Seconds the controller has held the pressure within ``band_mmhg`` of the target.

        The ripple-free pressure; 0.0 when it is not controlling or not within the band yet.
        """
        if band_mmhg <= 0:
            raise ValueError(f"band must be > 0, got {band_mmhg!r}")
        now = self._advance()
        if self._state != "controlling":
            return 0.0
        since = self._entered_band(band_mmhg)
        return max(0.0, now - since)

    # ----------------------------------------------------------------- driven

    def set_target(self, mmhg: float) -> None:
        if not math.isfinite(mmhg) or mmhg < 0:
            raise ValueError(f"the bench target is a gauge pressure >= 0, got {mmhg!r}")
        self._advance()
        if mmhg != self._target:
            self._target = mmhg
            self._restart_approach()

    def control(self, on: bool) -> None:
        """On: drive to the target. Off: seal the circuit (it leaks). Ends a vent or a dump."""
        self._advance()
        state: State = "controlling" if on else "sealed"
        if state != self._state:
            self._state = state
            self._restart_approach()

    def vent(self) -> None:
        """The controller vents the circuit to atmosphere (its output goes off)."""
        self._advance()
        self._state = "venting"

    def dump(self) -> None:
        """A device's safety valve opened: the circuit falls to ~0 within ~0.5 s."""
        self._advance()
        self._state = "dumped"

    # ----------------------------------------------------------------- model

    def _restart_approach(self) -> None:
        self._approach = (self._t, abs(self._target - self._p))

    def _advance(self) -> float:
        now = self._clock()
        dt = now - self._t
        if dt <= 0:  # a clock that did not move (or went back) moves nothing
            return self._t
        self._t = now
        if self._state == "controlling":
            self._p = self._controlled(dt)
        elif self._state == "sealed":
            self._p = max(0.0, self._p - self.leak_mmhg_per_min / 60.0 * dt)
        else:
            tau = VENT_TAU_S if self._state == "venting" else DUMP_TAU_S
            self._p *= math.exp(-dt / tau)
            if self._p < ATMOSPHERE_MMHG:
                self._p = 0.0
        return now

    def _controlled(self, dt: float) -> float:
        error = self._target - self._p
        gap = abs(error)
        knee = self.slew_mmhg_per_s * self.settle_s  # where slew limit and first order meet
        if gap > knee:
            linear = (gap - knee) / self.slew_mmhg_per_s
            if dt <= linear:
                return self._target - math.copysign(gap - self.slew_mmhg_per_s * dt, error)
            gap, dt = knee, dt - linear
        return self._target - math.copysign(gap * math.exp(-dt / self.settle_s), error)

    def _entered_band(self, band: float) -> float:
        """Clock time at which the current approach came within ``band`` of the target."""
        start, gap = self._approach
        if gap <= band:
            return start
        knee = self.slew_mmhg_per_s * self.settle_s
        if band >= knee:
            return start + (gap - band) / self.slew_mmhg_per_s
        linear = max(0.0, gap - knee) / self.slew_mmhg_per_s
        return start + linear + self.settle_s * math.log(min(gap, knee) / band)
