"""Modbus URLs and the shared line: one client per RTU line or TCP endpoint, requests in turn.

``modbus-rtu:///dev/santebus/rs485?baudrate=9600&parity=E`` (the serial options of
``serial://`` URLs) and ``modbus-tcp://192.168.1.50:502``. Every device with the same URL shares
one :class:`SharedLine`: on RS-485 only one request may be on the wire at a time and the line
must stay silent for 3.5 character times between frames (Modbus over Serial Line v1.02,
section 2.5.1.1: 1.75 ms fixed above 19200 baud). A Modbus TCP server behind a gateway (the
GX device, unit 100) is likewise asked one request at a time per connection.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from drivers.errors import DeviceConfigError
from drivers.modbus.errors import ModbusLinkError
from drivers.modbus.port import RegisterClient, Table
from drivers.transport.settings import SerialSettings, parse_serial_url

SCHEMES = ("modbus-rtu", "modbus-tcp")
#: bits per RTU character: start, 8 data, parity or a second stop bit, stop (section 2.5.1)
BITS_PER_CHAR = 11


def frame_gap(baudrate: int) -> float:
    """The silence that separates RTU frames, s: 3.5 characters, 1.75 ms above 19200 Bd.

    Modbus over Serial Line v1.02, section 2.5.1.1.
    """
    return 0.00175 if baudrate > 19200 else 3.5 * BITS_PER_CHAR / baudrate


@dataclass(frozen=True, slots=True)
class ModbusTarget:
    """Where a Modbus client connects: a serial line (``serial``) or a TCP endpoint."""

    url: str
    serial: SerialSettings | None = None
    host: str = ""
    port: int = 502

    @property
    def frame_gap(self) -> float:
        """Silence between two frames, s (none on TCP)."""
        return 0.0 if self.serial is None else frame_gap(self.serial.baudrate)


def parse_modbus_url(url: str) -> ModbusTarget:
    """Parse a ``modbus-rtu://`` or ``modbus-tcp://`` URL; :class:`DeviceConfigError` if bad."""
    scheme = url.split(":", 1)[0]
    if scheme == "modbus-rtu":
        return ModbusTarget(url, serial=parse_serial_url("serial" + url[len("modbus-rtu") :]))
    if scheme == "modbus-tcp":
        parts = urlsplit(url)
        if not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise DeviceConfigError(f"expected modbus-tcp://HOST[:PORT], got {url!r}")
        try:
            port = parts.port or 502
        except ValueError as exc:
            raise DeviceConfigError(f"bad port in {url!r}") from exc
        return ModbusTarget(url, host=parts.hostname, port=port)
    raise DeviceConfigError(
        f"unsupported Modbus URL {url!r}: expected modbus-rtu:///dev/... or modbus-tcp://host:port"
    )


class SharedLine:
    """A :class:`RegisterClient` that serialises its users' requests on one inner client.

    Opens the inner client on first use and again after a link error (at most once per
    ``reopen_after`` seconds, so a dead line costs each poll one quick failure, not a connect
    attempt). A request waits for the line, then for the inter-frame silence.
    """

    def __init__(self, inner: RegisterClient, frame_gap: float, reopen_after: float = 2.0) -> None:
        self.inner = inner
        self.frame_gap = frame_gap
        self.reopen_after = reopen_after
        self._lock = asyncio.Lock()
        self._open = False
        self._last_attempt = -1e9
        self._quiet_from = 0.0
        self.requests = 0

    @property
    def url(self) -> str:
        return self.inner.url

    async def open(self) -> None:
        """Open the inner client now (it is also opened on first use)."""
        async with self._lock:
            await self._ensure_open()

    async def _ensure_open(self) -> None:
        if self._open:
            return
        now = time.monotonic()
        if now - self._last_attempt < self.reopen_after:
            raise ModbusLinkError(f"{self.url}: line down, next attempt in a moment")
        self._last_attempt = now
        await self.inner.open()
        self._open = True

    async def close(self) -> None:
        async with self._lock:
            self._open = False
            await self.inner.close()

    async def read(
        self, unit: int, table: Table, address: int, count: int, *, timeout: float
    ) -> list[int]:
        """Wait for the line and its silence, then read (the port's contract)."""
        async with self._lock:
            await self._ensure_open()
            wait = self._quiet_from - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.requests += 1
            try:
                return await self.inner.read(unit, table, address, count, timeout=timeout)
            except ModbusLinkError:
                self._open = False
                await self.inner.close()
                raise
            finally:
                self._quiet_from = time.monotonic() + self.frame_gap


def open_client(url: str) -> SharedLine:
    """The shared line for ``url``, over the pymodbus adapter (imported here, lazily)."""
    target = parse_modbus_url(url)
    module = importlib.import_module("drivers.modbus.pymodbus_client")
    inner: RegisterClient = module.PymodbusClient(target)
    return SharedLine(inner, target.frame_gap)
