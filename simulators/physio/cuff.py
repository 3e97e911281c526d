"""Cuff protocol, arm-motion artefacts and the pressure transducer chain of an NIBP monitor.

* :func:`valve_pressure` is the cuff pressure the pump and valve alone would produce: idle at
  atmospheric pressure, a decelerating inflation with pump ripple, a short hold during which the
  cuff creeps and the air cools, a controlled deflation (linear like a proportional valve, or
  slowing with pressure like a fixed orifice), with valve jitter and, as faults, stalls and
  jumps, then the exhaust dump to zero.
* :func:`motion` makes bursts of arm movement, tremor or coughing as seen by the cuff: slow
  squeezes of several mmHg and faster shaking, 0.3-3 s long (cf. the artefact classes of the
  IEC 80601-2-30 / ISO 81060-2 discussion of oscillometric robustness).
* :func:`transducer` is the measurement chain: tubing + sensor low-pass, white noise, a little
  50 Hz mains, offset, and an ADC that quantises and saturates.

The pressures are gauge mmHg. The arterial coupling that turns this into the oscillating cuff
pressure lives in :mod:`simulators.physio.bp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
DeflationLaw = Literal["linear", "orifice"]
_DT = 0.005  # s, step of the valve integration (then interpolated to the sampling rate)


@dataclass(frozen=True, slots=True, eq=False)
class Profile:
    """The valve-driven cuff pressure on the record's time base, with the phase boundaries."""

    t: F64
    pressure: F64
    deflation_start: float  # s, end of the hold
    deflation_end: float  # s, when the exhaust valve opens (stop pressure reached)
    top: float  # mmHg, pressure at the start of deflation


def _smooth(rng: np.random.Generator, n: int, width: int) -> F64:
    """Unit-variance low-pass noise (moving Hann window of ``width`` samples)."""
    win = np.hanning(width + 2)[1:-1]
    out = np.convolve(rng.standard_normal(n + width), win, mode="valid")[:n]
    return np.asarray(out / np.sqrt(np.sum(win**2)), dtype=np.float64)


def _deflate(
    rng: np.random.Generator,
    *,
    start: float,
    stop: float,
    rate: float,
    law: DeflationLaw,
    law_reference: float,
    jitter: float,
    stall_pressures: tuple[float, ...],
    jump_pressures: tuple[float, ...],
) -> F64:
    """Deflation from ``start`` to ``stop`` on a ``_DT`` grid (valve jitter, stalls, jumps)."""
    # Valve: coarse Euler integration (stalls and jumps are events on pressure thresholds).
    steps = int((start - stop) / max(rate, 0.5) * 3 / _DT) + 4000
    mult = 1.0 + jitter * _smooth(rng, steps, int(0.6 / _DT))
    stalls = sorted(stall_pressures, reverse=True)
    jumps = sorted(jump_pressures, reverse=True)
    stall_left = 0.0
    jump_left = 0.0
    p = start
    trace = [p]
    for i in range(steps):
        if stalls and p <= stalls[0]:
            stalls.pop(0)
            stall_left = rng.uniform(0.8, 2.5)
        if jumps and p <= jumps[0]:
            jumps.pop(0)
            jump_left = rng.uniform(10.0, 25.0)
        if stall_left > 0:
            stall_left -= _DT
            step = 0.0
        elif jump_left > 0:
            step = min(jump_left, 150.0 * _DT)  # ~0.1 s for a 15 mmHg slip
            jump_left -= step
        else:
            step = rate * max(mult[i], 0.2) * _DT
            if law == "orifice":
                step *= (max(p, 1.0) / law_reference) ** 0.8
        p -= step
        trace.append(p)
        if p <= stop:
            break
    return np.asarray(trace, dtype=np.float64)


def valve_pressure(
    rng: np.random.Generator,
    *,
    fs: float,
    top: float,
    inflate_rate: float,
    deflation_rate: float,
    law: DeflationLaw,
    law_reference: float,
    jitter: float,
    stop: float,
    stall_pressures: tuple[float, ...] = (),
    jump_pressures: tuple[float, ...] = (),
) -> Profile:
    """Cuff pressure produced by pump and valves (no arterial pulsation).

    ``deflation_rate`` is mmHg/s (at ``law_reference`` mmHg for the orifice law, whose rate
    scales as ``(P / law_reference) ** 0.8``: a bleed orifice's flow falls with cuff pressure).
    A stall holds the pressure for 0.8-2.5 s when the cuff passes the given pressure; a jump
    drops it by 10-25 mmHg within about 0.1 s (stick-slip of a worn valve).
    """
    idle = rng.uniform(0.3, 1.0)
    t_inf = top / inflate_rate
    hold = rng.uniform(0.2, 0.8)
    creep = rng.uniform(0.5, 3.0)  # mmHg lost during the hold (air cooling, cuff creep)
    defl = _deflate(
        rng,
        start=top - creep,
        stop=stop,
        rate=deflation_rate,
        law=law,
        law_reference=law_reference,
        jitter=jitter,
        stall_pressures=stall_pressures,
        jump_pressures=jump_pressures,
    )
    t_defl0 = idle + t_inf + hold
    t_stop = t_defl0 + (defl.size - 1) * _DT
    dump_tau = rng.uniform(0.12, 0.4)
    t_end = t_stop + rng.uniform(0.8, 1.6)
    t = np.arange(0.0, t_end, 1.0 / fs)

    out = np.zeros_like(t)
    # Inflation decelerates as the cuff stiffens: P = top * (1 - exp(-k u)) / (1 - exp(-k)).
    u = np.clip((t - idle) / t_inf, 0.0, 1.0)
    k = rng.uniform(0.4, 1.2)
    infl = top * (1 - np.exp(-k * u)) / (1 - np.exp(-k))
    pump_hz = min(rng.uniform(22.0, 45.0), 0.4 * fs)
    ripple = rng.uniform(0.1, 0.6) * np.sin(2 * np.pi * pump_hz * t) * (u > 0) * (u < 1)
    out = np.where(t >= idle, infl + ripple, 0.0)
    in_hold = (t >= idle + t_inf) & (t < t_defl0)
    settle = 1 - np.exp(-(t[in_hold] - idle - t_inf) / (0.3 * hold))
    out[in_hold] = top - creep * settle / (1 - np.exp(-1 / 0.3))
    in_defl = (t >= t_defl0) & (t < t_stop)
    out[in_defl] = np.interp(t[in_defl] - t_defl0, np.arange(defl.size) * _DT, defl)
    after = t >= t_stop
    out[after] = defl[-1] * np.exp(-(t[after] - t_stop) / dump_tau)
    return Profile(t=t, pressure=out, deflation_start=t_defl0, deflation_end=t_stop, top=top)


def motion(
    rng: np.random.Generator, t: F64, *, bursts: int, amplitude: float, window: tuple[float, float]
) -> F64:
    """Additive cuff-pressure disturbance: ``bursts`` artefacts, the first inside ``window``.

    Each burst lasts 0.3-3 s under a raised-cosine envelope and is one of: a squeeze (slow
    bump of the arm muscles against the cuff, 0.3-1.5 Hz), shaking (2-8 Hz), or a cough (a few
    sharp 60-150 ms spikes). ``amplitude`` (mmHg) is the typical peak; bursts vary around it.
    """
    out = np.zeros_like(t)
    lo, hi = window
    for j in range(bursts):
        dur = rng.uniform(0.3, 3.0)
        start = rng.uniform(lo, max(lo, hi - dur)) if j == 0 else rng.uniform(t[0], t[-1] - dur)
        sel = (t >= start) & (t < start + dur)
        x = t[sel] - start
        env = 0.5 - 0.5 * np.cos(2 * np.pi * x / dur)
        amp = amplitude * rng.uniform(0.5, 1.6)
        kind = rng.integers(3)
        if kind == 0:
            f = rng.uniform(0.3, 1.5)
            sig = np.sin(2 * np.pi * f * x + rng.uniform(0, 2 * np.pi))
            sig = 0.6 + 0.4 * sig if rng.random() < 0.6 else sig  # squeezes mostly push up
        elif kind == 1:
            f = rng.uniform(2.0, 8.0)
            sig = 0.6 * np.sin(2 * np.pi * f * x) + 0.4 * np.sin(2 * np.pi * 1.7 * f * x + 1.0)
        else:
            centres = np.sort(rng.uniform(0, dur, size=int(rng.integers(1, 5))))
            widths = rng.uniform(0.03, 0.075, size=centres.size)
            sig = np.sum(
                np.exp(-0.5 * ((x[:, None] - centres[None, :]) / widths[None, :]) ** 2), axis=1
            )
            env = np.ones_like(x)
        out[sel] += amp * env * sig
    return out


def transducer(
    rng: np.random.Generator,
    p: F64,
    *,
    fs: float,
    lowpass_hz: float,
    noise: float,
    mains: float,
    bits: int,
    full_scale: float,
) -> F64:
    """What the ADC reports, in mmHg: filtered, noisy, offset, quantised, saturating.

    The two-pole low-pass (tubing + sensor) is applied in the frequency domain; the record
    starts and ends near atmospheric pressure, so the circular wrap is harmless (the signal is
    first padded with its last value to keep truncated records clean too).
    """
    n = p.size
    pad = np.concatenate((p, np.full(int(fs), p[-1]), np.linspace(p[-1], p[0], int(fs))))
    f = np.fft.rfftfreq(pad.size, 1.0 / fs)
    h = 1.0 / (1.0 + 1j * f / lowpass_hz) ** 2
    y = np.fft.irfft(np.fft.rfft(pad) * h, n=pad.size)[:n]
    t = np.arange(n) / fs
    y = y + noise * rng.standard_normal(n)
    y = y + mains * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi))
    y = y + rng.uniform(-0.3, 0.3)  # residual offset after the device's auto-zero
    lsb = full_scale / (2**bits - 1)
    code = np.clip(np.round(y / lsb), 0, 2**bits - 1)
    return np.asarray(code * lsb, dtype=np.float64)
