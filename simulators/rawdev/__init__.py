"""Shared parts of the simulated raw-signal front-ends (simulators/nibp.py, airpuff.py).

:class:`~simulators.rawdev.waveform.Waveform` is what a physiological generator hands a
simulated device; :class:`~simulators.rawdev.frontend.FrontEnd` is the device side of the
measurement transfer (memory of unacknowledged measurements, REPLAY/RESEND/ACK, line faults).
"""

from simulators.rawdev.device import RawDeviceSimulator, pick
from simulators.rawdev.frontend import FrontEnd, sample_blocks
from simulators.rawdev.scenario import RawDeviceScenario
from simulators.rawdev.waveform import Waveform, WaveformSource, to_counts

__all__ = [
    "FrontEnd",
    "RawDeviceScenario",
    "RawDeviceSimulator",
    "Waveform",
    "WaveformSource",
    "pick",
    "sample_blocks",
    "to_counts",
]
