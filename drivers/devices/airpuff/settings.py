"""Settings of an air-puff tonometer front-end link.

Plain frozen values with defaults that suit the front-end's binary link; the daemon's config
may override them per device.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AirpuffSettings:
    """How the driver reads the front-end.

    ``read_chunk``: bytes per read. ``frame_timeout``: seconds of silence inside a frame after
    which the partial frame is dropped as broken (an inter-byte timeout, as Modbus RTU's
    t3.5). ``max_samples``: the longest puff record accepted (a puff lasts some 30 ms; 5 s at
    20 kHz is far beyond any), so a faulty front-end cannot exhaust the gateway's memory.
    """

    read_chunk: int = 4096
    frame_timeout: float = 0.5
    max_samples: int = 100_000
