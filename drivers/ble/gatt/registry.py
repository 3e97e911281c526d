"""Every characteristic this package decodes, by its 16-bit UUID, and UUID spelling rules.

A 16-bit SIG UUID stands for ``0000XXXX-0000-1000-8000-00805F9B34FB`` (Bluetooth Core
Specification Vol 3 Part B 2.5.1, the Bluetooth Base UUID); technicians paste either form,
from btmon or nRF Connect, with or without ``0x``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from drivers.ble.gatt import bp, clock, glucose, plx, racp, thermometer, weight
from drivers.ble.gatt.reader import GattParseError

Entry = tuple[str, Callable[[bytes], object], Callable[[Any], bytes]]

CHARACTERISTICS: dict[int, Entry] = {
    **bp.CHARACTERISTICS,
    **clock.CHARACTERISTICS,
    **glucose.CHARACTERISTICS,
    **plx.CHARACTERISTICS,
    **racp.CHARACTERISTICS,
    **thermometer.CHARACTERISTICS,
    **weight.CHARACTERISTICS,
}

_BASE = re.compile(r"^0000([0-9a-f]{4})-0000-1000-8000-00805f9b34fb$")
_SHORT = re.compile(r"^(?:0x)?([0-9a-f]{4})$")


def uuid16(text: str) -> int:
    """``2A35``, ``0x2a35`` or the 128-bit Base-UUID form -> 0x2A35; anything else: ValueError."""
    t = text.strip().lower()
    match = _SHORT.match(t) or _BASE.match(t)
    if match is None:
        raise ValueError(
            f"{text!r} is not a 16-bit characteristic UUID (2A35, 0x2A35) nor its 128-bit"
            " Bluetooth Base UUID form (00002a35-0000-1000-8000-00805f9b34fb)"
        )
    return int(match.group(1), 16)


def uuid128(short: int) -> str:
    """The 128-bit form bleak uses for a 16-bit SIG UUID."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


def decode(uuid: str, data: bytes) -> tuple[str, object]:
    """The characteristic's name and its parsed value; unknown UUID: ValueError."""
    short = uuid16(uuid)
    try:
        name, parse, _ = CHARACTERISTICS[short]
    except KeyError:
        known = ", ".join(f"{u:04X}" for u in sorted(CHARACTERISTICS))
        raise ValueError(f"no decoder for characteristic {short:04X} (known: {known})") from None
    return name, parse(data)


__all__ = ["CHARACTERISTICS", "GattParseError", "decode", "uuid16", "uuid128"]
