"""Topcon CT-80 style non-contact (air-puff) tonometer over RS-232."""

from drivers.devices.ct80.codec import (
    FRAME_LENGTH,
    Ct80Record,
    EyeResult,
    IopValue,
    decode,
    encode,
    to_readings,
)
from drivers.devices.ct80.driver import Ct80Driver, Ct80Stats

__all__ = [
    "FRAME_LENGTH",
    "Ct80Driver",
    "Ct80Record",
    "Ct80Stats",
    "EyeResult",
    "IopValue",
    "decode",
    "encode",
    "to_readings",
]
