"""``spy+<url>``: wraps any transport and hexdumps its traffic to the log (as pyserial's spy://).

For a technician at the bench. Device records can carry a patient identifier typed on the
device, so the wrapper warns when it opens: never leave it on in service.
"""

from __future__ import annotations

import logging

from drivers.transport.base import ByteTransport

log = logging.getLogger("drivers.spy")


def hexdump(data: bytes, width: int = 16) -> list[str]:
    """Classic ``offset  hex  |ascii|`` lines."""
    lines = []
    for off in range(0, len(data), width):
        chunk = data[off : off + width]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:04x}  {hexpart:<{width * 3}} |{text}|")
    return lines


class SpyTransport(ByteTransport):
    """Delegates to ``inner`` and logs every chunk read (RX) and written (TX)."""

    def __init__(self, url: str, inner: ByteTransport) -> None:
        super().__init__(url)
        self.inner = inner

    async def _open(self) -> None:
        log.warning("spy enabled on %s: traffic is logged and may hold patient data", self.url)
        await self.inner.open()

    async def _close(self) -> None:
        await self.inner.close()

    async def _read(self, max_bytes: int) -> bytes:
        data = await self.inner.read(max_bytes)
        for line in hexdump(data):
            log.info("RX %s %s", self.inner.url, line)
        return data

    async def _write(self, data: bytes) -> None:
        for line in hexdump(data):
            log.info("TX %s %s", self.inner.url, line)
        await self.inner.write(data)
