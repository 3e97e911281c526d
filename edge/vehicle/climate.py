"""Operating-condition gating: a reading is judged against the cabin climate when it was taken.

Devices give valid readings only within their operating conditions (e.g. a tonometer 10-40
Cel, 30-90 %RH; the accompanying documents state them, IEC 60601-1 section 7.9). The cabin
climate units report temperature and humidity every few seconds; :class:`Climate` keeps a few
hours of them so that a reading is judged against the climate *when it was taken* (a record a
device stored and sends later included). :class:`OperatingGate` is an Ingest gate: a reading
taken outside its device's conditions - or when no climate sample is close enough in time to
know - gets a note and is published preliminary (edge/pipeline/fhir.py), never dropped.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from drivers.readings import DeviceReading
from edge.config_modbus import OperatingConditions


@dataclass(frozen=True, slots=True)
class ClimateSample:
    """One reading of a cabin climate unit."""

    at: float  # POSIX seconds
    temperature: float  # Cel
    humidity: float  # %RH
    source: str


class Climate:
    """The cabin climate over the last hours (one sample per ``resolution`` seconds at most).

    4000 samples of 10 s: the last 11 hours, a bus's day.
    """

    def __init__(self, keep: int = 4000, resolution: float = 10.0) -> None:
        self.resolution = resolution
        self._samples: deque[ClimateSample] = deque(maxlen=keep)
        #: seconds a sample speaks for, on either side of it
        self.stale_after = 60.0
        self._bucket_start = -math.inf

    def record(self, sample: ClimateSample) -> None:
        """Keep ``sample``: the newest of each ``resolution`` bucket stands for the bucket."""
        last = self._samples[-1] if self._samples else None
        if last is not None and sample.at < last.at:
            return  # a late sample of another sensor: the history stays ordered
        if last is not None and sample.at - self._bucket_start < self.resolution:
            self._samples[-1] = sample
        else:
            self._samples.append(sample)
            self._bucket_start = sample.at

    def at(self, when: float) -> ClimateSample | None:
        """The sample nearest to ``when`` if within ``stale_after`` of it, else None."""
        if not self._samples:
            return None
        times = [s.at for s in self._samples]
        i = bisect.bisect_left(times, when)
        near = [self._samples[j] for j in (i - 1, i) if 0 <= j < len(times)]
        best = min(near, key=lambda s: abs(s.at - when))
        return best if abs(best.at - when) <= self.stale_after else None


def _outside(value: float, span: tuple[float, float] | None, name: str, unit: str) -> str | None:
    if span is None or span[0] <= value <= span[1]:
        return None
    return f"cabin {name} {value:.1f} {unit} (allowed {span[0]:g}-{span[1]:g} {unit})"


class OperatingGate:
    """An Ingest gate (edge/pipeline/ingest.py) over the devices' operating conditions.

    Called with each reading and its corrected time of measurement; returns the note that
    makes it preliminary, or None.
    """

    def __init__(self, climate: Climate, conditions: Mapping[str, OperatingConditions]) -> None:
        self.climate = climate
        self.conditions = dict(conditions)

    def __call__(self, device_id: str, reading: DeviceReading, effective: datetime) -> str | None:
        wanted = self.conditions.get(device_id)
        if wanted is None:
            return None
        sample = self.climate.at(effective.timestamp())
        if sample is None:
            return (
                "Operating conditions unknown: no cabin temperature and humidity within"
                f" {self.climate.stale_after:.0f} s of the measurement."
            )
        faults = [
            f
            for f in (
                _outside(sample.temperature, wanted.temperature, "temperature", "Cel"),
                _outside(sample.humidity, wanted.humidity, "humidity", "%RH"),
            )
            if f is not None
        ]
        if not faults:
            return None
        return "Taken outside the device's operating conditions: " + "; ".join(faults) + "."
