"""Settings of an OEM NIBP module link.

Plain frozen values with defaults that suit the module's binary link; the daemon's
config may override them per device.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NibpSettings:
    """How the driver reads the module.

    ``read_chunk``: bytes per read. ``frame_timeout``: seconds of silence inside a frame after
    which the partial frame is dropped as broken (an inter-byte timeout, as Modbus RTU's
    t3.5). ``max_samples``: the longest recording accepted (180 s at 1000 Hz; a deflation
    lasts 20-60 s), so a faulty module cannot exhaust the gateway's memory.
    """

    read_chunk: int = 4096
    frame_timeout: float = 0.5
    max_samples: int = 180_000
