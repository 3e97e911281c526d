"""Typed serial line settings and their URL form (pure: no pyserial import)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from drivers.errors import DeviceConfigError

_PARITIES = {"N", "E", "O", "M", "S"}
_STOPBITS = {"1": 1.0, "1.5": 1.5, "2": 2.0}
_OPTIONS = {"baudrate", "bytesize", "parity", "stopbits", "rtscts", "xonxoff", "write_timeout"}
_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """RS-232 line settings; defaults are 9600 8N1 without flow control."""

    path: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1.0
    rtscts: bool = False
    xonxoff: bool = False
    write_timeout: float = 2.0

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise DeviceConfigError(f"serial path must be absolute, got {self.path!r}")
        if self.baudrate <= 0:
            raise DeviceConfigError(f"baudrate must be positive, got {self.baudrate}")
        if self.bytesize not in (5, 6, 7, 8):
            raise DeviceConfigError(f"bytesize must be 5..8, got {self.bytesize}")
        if self.parity not in _PARITIES:
            raise DeviceConfigError(f"parity must be one of N,E,O,M,S, got {self.parity!r}")
        if self.write_timeout < 0:
            raise DeviceConfigError(f"write_timeout must be >= 0, got {self.write_timeout}")
        if self.stopbits not in _STOPBITS.values():
            raise DeviceConfigError(f"stopbits must be 1, 1.5 or 2, got {self.stopbits}")


def parse_serial_url(url: str) -> SerialSettings:
    """Parse ``serial:///dev/ttyUSB0?baudrate=2400&stopbits=2`` into :class:`SerialSettings`."""
    parts = urlsplit(url)
    if parts.scheme != "serial":
        raise DeviceConfigError(f"not a serial:// URL: {url!r}")
    if parts.netloc:
        raise DeviceConfigError(
            f"serial URL needs an absolute path (serial:///dev/...), got host {parts.netloc!r}"
        )
    values: dict[str, object] = {"path": parts.path}
    for key, raw in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key not in _OPTIONS:
            raise DeviceConfigError(f"unknown serial URL option {key!r} in {url!r}")
        try:
            if key in ("baudrate", "bytesize"):
                values[key] = int(raw)
            elif key == "parity":
                values[key] = raw.upper()
            elif key == "stopbits":
                values[key] = _STOPBITS[raw]
            elif key in ("rtscts", "xonxoff"):
                values[key] = _BOOL[raw.lower()]
            else:
                values[key] = float(raw)
        except (KeyError, ValueError) as exc:
            raise DeviceConfigError(f"bad value {raw!r} for {key} in {url!r}") from exc
    return SerialSettings(**values)  # type: ignore[arg-type]
