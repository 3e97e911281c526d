"""Transports addressed by URL, as pyserial's ``serial_for_url``.

``serial:///dev/ttyUSB0?baudrate=9600`` (pyserial, imported lazily), ``loop://`` (in-memory
echo) and ``spy+<url>`` (hexdump wrapper). Unknown schemes are a :class:`DeviceConfigError`.
"""

from __future__ import annotations

import importlib

from drivers.errors import DeviceConfigError
from drivers.transport.base import ByteTransport
from drivers.transport.loop import LoopTransport
from drivers.transport.settings import SerialSettings, parse_serial_url
from drivers.transport.spy import SpyTransport

__all__ = [
    "ByteTransport",
    "LoopTransport",
    "SerialSettings",
    "SpyTransport",
    "open_transport",
    "parse_serial_url",
    "validate_url",
]

SCHEMES = ("serial", "loop")


def validate_url(url: str) -> None:
    """Raise :class:`DeviceConfigError` if ``url`` cannot name a transport (no I/O)."""
    inner = url.removeprefix("spy+")
    scheme = inner.split(":", 1)[0]
    if "://" not in inner or scheme not in SCHEMES:
        raise DeviceConfigError(
            f"unsupported transport URL {url!r}: expected serial:///dev/..., loop:// or spy+..."
        )
    if scheme == "serial":
        parse_serial_url(inner)


def open_transport(url: str) -> ByteTransport:
    """Build (not open) the transport a URL names."""
    validate_url(url)
    if url.startswith("spy+"):
        return SpyTransport(url, open_transport(url.removeprefix("spy+")))
    if url.startswith("loop://"):
        return LoopTransport(url)
    # Loaded lazily (STYLE habit 3): a missing pyserial fails only when serial:// is selected.
    module = importlib.import_module("drivers.transport.serial_port")
    transport: ByteTransport = module.SerialTransport(url, parse_serial_url(url))
    return transport
