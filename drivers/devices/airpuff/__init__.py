"""Air-puff tonometer front-end streaming each puff's pressure and light (the gateway's IOP).

``codec`` is pure (our binary protocol on drivers/codec/sampleframes.py), ``driver`` wires it
to a transport, ``settings`` holds the link's tunables.
"""

from drivers.devices.airpuff.codec import (
    CHANNELS,
    AirpuffMessage,
    Eye,
    Outcome,
    PuffStart,
    decode,
    encode,
    parse,
)
from drivers.devices.airpuff.driver import AirpuffDriver
from drivers.devices.airpuff.settings import AirpuffSettings

__all__ = [
    "CHANNELS",
    "AirpuffDriver",
    "AirpuffMessage",
    "AirpuffSettings",
    "Eye",
    "Outcome",
    "PuffStart",
    "decode",
    "encode",
    "parse",
]
