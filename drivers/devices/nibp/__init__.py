"""OEM NIBP module streaming raw cuff pressure over RS-232 (the gateway computes the BP).

``codec`` is pure (our binary protocol on drivers/codec/sampleframes.py), ``driver`` wires it
to a transport, ``settings`` holds the link's tunables.
"""

from drivers.devices.nibp.codec import (
    CuffState,
    MeasurementStart,
    NibpFrameType,
    NibpMessage,
    Outcome,
    Service,
    ServiceMode,
    Start,
    Status,
    Stop,
    decode,
    encode,
    parse,
)
from drivers.devices.nibp.driver import NibpDriver
from drivers.devices.nibp.settings import NibpSettings

__all__ = [
    "CuffState",
    "MeasurementStart",
    "NibpDriver",
    "NibpFrameType",
    "NibpMessage",
    "NibpSettings",
    "Outcome",
    "Service",
    "ServiceMode",
    "Start",
    "Status",
    "Stop",
    "decode",
    "encode",
    "parse",
]
