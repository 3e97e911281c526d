"""The ``ByteTransport`` port: an async byte pipe to one device.

Modelled on python-can's ``BusABC``: the public methods are template methods that do timeouts,
tracing and error mapping once; an implementation overrides only the narrow ``_open``,
``_close``, ``_read`` and ``_write`` hooks.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from types import TracebackType

from drivers.errors import DeviceTimeoutError, TransientDeviceError

log = logging.getLogger(__name__)


class ByteTransport(ABC):
    """A byte stream to a device, opened from a URL (``serial://``, ``loop://``, ``spy+...``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._is_open = False

    @property
    def is_open(self) -> bool:
        return self._is_open

    async def open(self) -> None:
        """Open the link; raises :class:`TransientDeviceError` when the device is absent."""
        if self._is_open:
            return
        try:
            await self._open()
        except TransientDeviceError:
            raise
        except OSError as exc:
            raise TransientDeviceError(f"cannot open {self.url}: {exc}") from exc
        self._is_open = True
        log.debug("transport open url=%s", self.url)

    async def close(self) -> None:
        """Close the link; safe to call twice and after a failure."""
        if not self._is_open:
            return
        self._is_open = False
        try:
            await self._close()
        except OSError as exc:  # closing a vanished port must not mask the original error
            log.debug("transport close url=%s ignored=%s", self.url, exc)

    async def read(self, max_bytes: int = 4096, timeout: float | None = None) -> bytes:
        """Return at least one byte, at most ``max_bytes``.

        Raises :class:`DeviceTimeoutError` when nothing arrives within ``timeout`` seconds and
        :class:`TransientDeviceError` when the link goes away.
        """
        self._require_open()
        try:
            async with asyncio.timeout(timeout):
                data = await self._read(max_bytes)
        except TimeoutError as exc:
            raise DeviceTimeoutError(f"no data from {self.url} within {timeout} s") from exc
        except OSError as exc:
            raise TransientDeviceError(f"read from {self.url} failed: {exc}") from exc
        return data

    async def write(self, data: bytes) -> None:
        """Write all of ``data``."""
        self._require_open()
        try:
            await self._write(data)
        except OSError as exc:
            raise TransientDeviceError(f"write to {self.url} failed: {exc}") from exc

    async def __aenter__(self) -> ByteTransport:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _require_open(self) -> None:
        if not self._is_open:
            raise TransientDeviceError(f"{self.url} is not open")

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def _close(self) -> None: ...

    @abstractmethod
    async def _read(self, max_bytes: int) -> bytes:
        """Wait for and return 1..max_bytes bytes; raise OSError or TransientDeviceError."""

    @abstractmethod
    async def _write(self, data: bytes) -> None: ...
