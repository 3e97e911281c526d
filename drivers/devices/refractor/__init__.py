"""Autorefractor / keratometer over RS-232, modelled on Nidek's RS-232C text output."""

from drivers.devices.refractor.codec import (
    MAX_FRAME,
    EyeResult,
    Keratometry,
    Refraction,
    RefractorRecord,
    decode,
    encode,
)
from drivers.devices.refractor.driver import (
    RefractorDriver,
    RefractorSettings,
    RefractorStats,
    to_readings,
)

__all__ = [
    "MAX_FRAME",
    "EyeResult",
    "Keratometry",
    "Refraction",
    "RefractorDriver",
    "RefractorRecord",
    "RefractorSettings",
    "RefractorStats",
    "decode",
    "encode",
    "to_readings",
]
