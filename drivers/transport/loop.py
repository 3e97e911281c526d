"""In-memory transports for unit tests: ``loop://`` (echo, as pyserial's) and connected pairs."""

from __future__ import annotations

import asyncio

from drivers.errors import TransientDeviceError
from drivers.transport.base import ByteTransport


class _Pipe:
    """One direction of an in-memory link."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.readable = asyncio.Event()
        self.broken = False


class LoopTransport(ByteTransport):
    """Reads what ``peer`` wrote. ``loop://`` is a transport whose peer is itself (echo)."""

    def __init__(self, url: str = "loop://", rx: _Pipe | None = None, tx: _Pipe | None = None):
        super().__init__(url)
        self._rx = rx if rx is not None else _Pipe()
        self._tx = tx if tx is not None else self._rx

    @classmethod
    def pair(cls, name: str = "pair") -> tuple[LoopTransport, LoopTransport]:
        """Two transports wired back to back: what one writes, the other reads."""
        a_to_b, b_to_a = _Pipe(), _Pipe()
        return (
            cls(f"loop://{name}/a", rx=b_to_a, tx=a_to_b),
            cls(f"loop://{name}/b", rx=a_to_b, tx=b_to_a),
        )

    def hang_up(self) -> None:
        """Simulate an unplugged cable: both ends' pending and future reads fail."""
        for pipe in (self._rx, self._tx):
            pipe.broken = True
            pipe.readable.set()

    async def _open(self) -> None:
        if self._rx.broken:
            raise TransientDeviceError(f"{self.url} is unplugged")

    async def _close(self) -> None:
        return None

    async def _read(self, max_bytes: int) -> bytes:
        while not self._rx.buffer:
            if self._rx.broken:
                raise TransientDeviceError(f"{self.url} hung up")
            self._rx.readable.clear()
            await self._rx.readable.wait()
        data = bytes(self._rx.buffer[:max_bytes])
        del self._rx.buffer[:max_bytes]
        return data

    async def _write(self, data: bytes) -> None:
        if self._tx.broken:
            raise TransientDeviceError(f"{self.url} hung up")
        self._tx.buffer.extend(data)
        self._tx.readable.set()
