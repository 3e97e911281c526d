"""The live cuff pressure of an NIBP module while it measures, shown in the device's health."""

from __future__ import annotations

from collections.abc import Callable

from edge.pipeline.derive import SensorCalibration
from edge.signal.filters import FloatArray
from edge.signal.streaming import LiveCuff
from edge.supervise import DeviceHealth


class LivePressure:
    """The live cuff pressure of an NIBP module while it measures, in the device's health.

    Fed each chunk of samples as it arrives (edge/signal/streaming.py: >= 10 updates per
    second of signal), so an operator sees the cuff inflate and deflate.
    """

    def __init__(self, sensor: Callable[[], SensorCalibration], health: DeviceHealth) -> None:
        self.sensor = sensor
        self.health = health
        self._live: LiveCuff | None = None
        self._fs = 0.0

    def feed(self, counts: FloatArray, fs: float) -> None:
        if self._live is None or fs != self._fs:
            self._live, self._fs = LiveCuff(fs), fs
        values = self._live.feed(self.sensor().apply(counts))
        if len(values):
            self.health.live_pressure = float(values[-1])
