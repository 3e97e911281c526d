"""Scenario fields every simulated raw-signal front-end shares (its link and its transducer).

Declared in data as simulators/scenario.py's models are (frozen, unknown keys refused); the
device modules add their ``kind`` and their own faults.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class RawDeviceScenario(BaseModel):
    """A raw-signal front-end in a screening session; subclasses add ``kind`` and the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patients_per_hour: Annotated[float, Field(gt=0, le=36000)] = 12.0
    #: wall-clock compression: a 40 s recording is streamed in 40/speed s
    speed: Annotated[float, Field(gt=0, le=1000)] = 1.0
    #: the transducer's true relation mmHg = sensor_gain * counts + sensor_offset (what the
    #: gateway's calibration must match)
    sensor_gain: Annotated[float, Field(gt=0)] = 0.01
    sensor_offset: float = 0.0
    #: share of transmitted frames with one flipped bit (line noise: the CRC must catch it)
    noise_rate: Rate = 0.0
    #: share of frames lost whole on the line (the sequence number must reveal it)
    drop_rate: Rate = 0.0
    #: seconds without an ACK after which the device sends its unacknowledged measurements
    ack_timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    #: completed measurements the device holds until ACK; when full it refuses to measure
    capacity: Annotated[int, Field(ge=1, le=64)] = 8
    #: pull the cable every N seconds (0: never) ...
    unplug_every: Annotated[float, Field(ge=0)] = 0.0
    #: ... for this long
    unplug_for: Annotated[float, Field(ge=0)] = 3.0
    model: Annotated[str, Field(pattern=r"^[ -~]{1,12}$")] = "SB-RAW"
    serial: Annotated[str, Field(pattern=r"^[ -~]{0,12}$")] = ""
