"""A pseudo-terminal pair standing in for a serial cable, behind a stable symlink.

The simulator owns the master side; the daemon opens the symlinked slave with pyserial exactly
as it would open ``/dev/ttyUSB0``. ``unplug()`` closes both sides and removes the link (the
daemon's read fails as on a pulled USB adapter); ``plug()`` makes a new pair and relinks.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import tty
from pathlib import Path


class PtyPort:
    """Master side of a pty whose slave is reachable at ``link``."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self._master: int | None = None
        self._slave: int | None = None

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: a plain byte pipe like a UART
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.link.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link.with_name(f".{self.link.name}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.link)  # atomic: the daemon never sees a half-made link

    def unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def write(self, data: bytes) -> bool:
        """Write what the line accepts now; False when unplugged or the line is full."""
        if self._master is None:
            return False
        try:
            os.write(self._master, data)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EIO):
                return False
            raise
        return True

    async def read(self, timeout: float) -> bytes:
        """Bytes the gateway sent, or b"" after ``timeout`` s (or when unplugged)."""
        master = self._master
        if master is None:
            await asyncio.sleep(timeout)
            return b""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def _ready() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(master, _ready)
        try:
            async with asyncio.timeout(timeout):
                await ready
        except TimeoutError:
            return b""
        finally:
            loop.remove_reader(master)
        try:
            return os.read(master, 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EIO):
                return b""
            raise
