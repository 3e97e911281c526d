"""What the simulated Modbus devices measure: deterministic value models over time.

Each model is a pure function of t, the seconds since the server started: the same seed gives
the same curve whatever the polling, so a test (or an operator replaying a scenario) knows the
truth the gateway should report. ``speed`` is simulated seconds per real second: at 360 a bus
day passes in four minutes. The small measurement noise is a sum of a few sines with seeded
phases (smooth, repeatable), not a random draw per read.

* :func:`cabin_climate` - the xy-md02 map: the cabin of a bus parked in the sun, coolest at
  dawn, hottest mid-afternoon, relative humidity moving the other way.
* :func:`fridge` - the fridge-logger map: a medicine fridge's compressor cycling between 3 and
  7 C, door openings letting it climb towards the cabin's temperature, the logger's excursion
  alarm bits.
* :func:`power` - the victron-gx map: the house battery draining through the day, or charging
  while on shore power.
* :func:`bath` - the xy-md02 map on a verification bench: the probe moved from bath to bath
  (an ice bath, a warm bath), following each with a time constant, reading with an offset.
* :func:`scripted` and :func:`excursion` - values along known curves, for tests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence

Values = Callable[[float], dict[str, float]]

#: the victron-gx map's active input source codes (com.victronenergy.system, register 826)
SHORE_POWER = 3
NOT_CONNECTED = 240


def wobble(seed: int, amplitude: float, period_s: float = 600.0) -> Callable[[float], float]:
    """Smooth noise of about ``amplitude``: three sines with seeded phases, around ``period_s``."""
    rng = random.Random(seed)
    terms = [
        (rng.uniform(0.5, 1.5) / (period_s * k), rng.uniform(0, 2 * math.pi)) for k in (1, 3, 7)
    ]

    def noise(ts: float) -> float:
        return amplitude / 1.6 * sum(math.sin(2 * math.pi * f * ts + ph) for f, ph in terms)

    return noise


def _ease(frac: float) -> float:
    """0 -> 1 along half a cosine (the shape of a day's warming, of a transfer)."""
    return (1 - math.cos(math.pi * min(1.0, max(0.0, frac)))) / 2


def daily_temperature(
    hour: float, low: float, high: float, coldest: float = 6.0, warmest: float = 15.0
) -> float:
    """Temperature at ``hour`` (0-24, wraps) of a day from ``low`` at dawn to ``high``."""
    hour %= 24
    rise = warmest - coldest
    since_dawn = (hour - coldest) % 24
    if since_dawn <= rise:
        return low + (high - low) * _ease(since_dawn / rise)
    return high - (high - low) * _ease((since_dawn - rise) / (24 - rise))


def cabin_climate(
    speed: float = 1.0,
    seed: int = 0,
    *,
    start_hour: float = 8.0,
    low: float = 14.0,
    high: float = 27.0,
    humidity_at_low: float = 70.0,
    humidity_at_high: float = 35.0,
) -> Values:
    """Cabin temperature (C) and relative humidity (%) for the xy-md02 map."""
    temp_noise, rh_noise = wobble(seed, 0.15), wobble(seed + 1, 0.8)

    def values(t: float) -> dict[str, float]:
        ts = t * speed
        temperature = daily_temperature(start_hour + ts / 3600, low, high)
        share = (temperature - low) / (high - low)
        humidity = humidity_at_low + share * (humidity_at_high - humidity_at_low)
        return {
            "temperature": temperature + temp_noise(ts),
            "humidity": min(100.0, max(0.0, humidity + rh_noise(ts))),
        }

    return values


def fridge(
    speed: float = 1.0,
    seed: int = 0,
    door_every_s: float = 0.0,
    door_open_s: float = 45.0,
    *,
    high_limit: float = 8.0,
    low_limit: float = 2.0,
    cold: float = 3.0,
    warm: float = 7.0,
    cooling_s: float = 360.0,
    warming_s: float = 840.0,
    ambient: float = 12.0,
    rise_tau_s: float = 60.0,
    recover_tau_s: float = 240.0,
) -> Values:
    """Fridge-logger readings: probe temperature, door contact, excursion alarm bits.

    The compressor pulls the cabinet from ``warm`` to ``cold`` in ``cooling_s``, then it warms
    back in ``warming_s``. Every ``door_every_s`` simulated seconds (0: never; the first one
    after a seeded share of the interval) the door opens for ``door_open_s``: the probe climbs
    towards ``ambient`` (time constant ``rise_tau_s``), then recovers (``recover_tau_s``).
    ``alarm`` bit 0 is set above ``high_limit``, bit 1 below ``low_limit``.
    """
    noise = wobble(seed, 0.05, period_s=120.0)
    first_door = random.Random(seed).uniform(0.2, 0.8) * door_every_s
    cycle = cooling_s + warming_s

    def compressor(ts: float) -> float:
        phase = ts % cycle
        if phase < cooling_s:
            return warm - (warm - cold) * phase / cooling_s
        return cold + (warm - cold) * (phase - cooling_s) / warming_s

    def values(t: float) -> dict[str, float]:
        ts = t * speed
        temperature, door = compressor(ts), 0.0
        if door_every_s > 0 and ts >= first_door:
            opened = first_door + (ts - first_door) // door_every_s * door_every_s
            since = ts - opened
            gained = (ambient - compressor(opened)) * (
                1 - math.exp(-min(since, door_open_s) / rise_tau_s)
            )
            if since < door_open_s:
                door = 1.0
            else:
                gained *= math.exp(-(since - door_open_s) / recover_tau_s)
            temperature += gained
        temperature += noise(ts)
        alarm = (1 if temperature > high_limit else 0) | (2 if temperature < low_limit else 0)
        return {
            "temperature": temperature,
            "door": door,
            "alarm": float(alarm),
            "high_limit": high_limit,
            "low_limit": low_limit,
        }

    return values


def power(
    speed: float = 1.0,
    seed: int = 0,
    soc_start: float = 90.0,
    drain_pct_per_hour: float = 8.0,
    shore_power_until_s: float | None = None,
    *,
    charge_pct_per_hour: float = 15.0,
    capacity_ah: float = 200.0,
    empty_v: float = 11.8,
    full_v: float = 13.2,
) -> Values:
    """Victron GX readings: battery SOC (%), voltage (V), current (A), power (W), AC input.

    On shore power (from the start until ``shore_power_until_s`` simulated seconds) the battery
    charges at ``charge_pct_per_hour`` and the input source is 3; then it drains at
    ``drain_pct_per_hour`` with no input connected (240). The voltage follows the SOC from
    ``empty_v`` to ``full_v``, lower under load and higher while charging; the current is
    negative when discharging.
    """
    volt_noise, amp_noise = wobble(seed, 0.02), wobble(seed + 1, 0.3)
    shore_s = shore_power_until_s or 0.0
    soc_shore_end = min(100.0, soc_start + charge_pct_per_hour * shore_s / 3600)

    def values(t: float) -> dict[str, float]:
        ts = t * speed
        if ts < shore_s:
            soc = min(100.0, soc_start + charge_pct_per_hour * ts / 3600)
            rate, source = charge_pct_per_hour if soc < 100 else 0.0, SHORE_POWER
        else:
            soc = max(0.0, soc_shore_end - drain_pct_per_hour * (ts - shore_s) / 3600)
            rate, source = -drain_pct_per_hour if soc > 0 else 0.0, NOT_CONNECTED
        current = rate / 100 * capacity_ah
        # internal resistance about 12 mOhm: the terminal voltage follows the current
        voltage = empty_v + (full_v - empty_v) * soc / 100 + 0.012 * current
        volts = voltage + volt_noise(ts)
        amps = current + (amp_noise(ts) if current else 0.0)
        return {
            "battery_soc": soc,
            "battery_voltage": volts,
            "battery_current": amps,
            "battery_power": volts * amps,
            "input_source": float(source),
        }

    return values


def bath(
    points: Sequence[float],
    every_s: float,
    seed: int = 0,
    *,
    offset: float = 0.0,
    tau_s: float = 0.5,
    humidity: float = 50.0,
    noise_c: float = 0.02,
) -> Values:
    """A temperature sensor moved from bath to bath every ``every_s`` real seconds (cycling).

    At t = 0 the probe is settled in ``points[0]``; at each move it approaches the next bath's
    temperature exponentially (time constant ``tau_s``, 0: at once). It reads ``offset`` high,
    plus a smooth noise of about ``noise_c``; the humidity is constant. t is in real seconds:
    a bench runs in real time.
    """
    if not points or every_s <= 0 or tau_s < 0:
        raise ValueError("a bath needs points, every_s > 0 and tau_s >= 0")
    temps = list(points)
    noise = wobble(seed, noise_c, period_s=30.0)

    def values(t: float) -> dict[str, float]:
        step = max(0, int(t // every_s))
        now, before = temps[step % len(temps)], temps[(step - 1) % len(temps)]
        since = t - step * every_s
        lag = 0.0 if step == 0 or tau_s == 0 else (before - now) * math.exp(-since / tau_s)
        probe = now + lag
        return {"temperature": probe + offset + noise(t), "humidity": humidity}

    return values


def excursion(
    base: float, peak: float, start: float, duration: float, ramp: float = 0.0
) -> Callable[[float], float]:
    """``base``, except ``peak`` from ``start`` for ``duration`` s (reached over ``ramp`` s)."""

    def value(t: float) -> float:
        inside = t - start
        if inside < 0 or inside >= duration:
            return base
        edge = min(inside, duration - inside)
        return peak if ramp <= 0 or edge >= ramp else base + (peak - base) * edge / ramp

    return value


def scripted(points: Mapping[str, Callable[[float], float]], speed: float = 1.0) -> Values:
    """Each point along its own curve of simulated time (``speed`` as in the models)."""
    curves = dict(points)

    def values(t: float) -> dict[str, float]:
        return {name: curve(t * speed) for name, curve in curves.items()}

    return values
