"""A simulated RS-485 line: two pty pairs bridged by a relay that runs at the line's baud rate.

The gateway opens ``link`` (as it would open ``/dev/ttyUSB0``), the simulated slaves - one
pymodbus serial server answering for every unit on the line - open ``server_path``. The relay
copies requests one way and responses the other, each frame held for its transmission time
(11 bits per character: start, 8 data, parity or a second stop, stop; Modbus over Serial Line
v1.02 section 2.5.1), so a poll costs what it costs on a real 9600 or 19200 Bd line.

Responses are handled frame by frame (an RTU ADU is address, PDU, CRC-16 little-endian; section
2.5.1.1) so faults hit one unit: ``silent`` units' responses are swallowed (the request still
crosses the line, as with a slave that stopped answering), ``garble`` gives the probability a
unit's response arrives with a corrupted CRC (which the receiver must discard, section 2.5.1.2),
and :meth:`RtuLine.noise` puts stray bytes on the line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import random
import time
import tty
from pathlib import Path
from types import TracebackType

from drivers.modbus.lines import BITS_PER_CHAR, frame_gap

log = logging.getLogger(__name__)

#: an incomplete frame is closed after this much silence; a pty delivers a frame in one write,
#: so this only matters for function codes whose length the relay cannot compute
_PTY_GAP_FLOOR = 0.01
#: a full pty (nobody reading) drops what the relay cannot write within this time
_WRITE_PATIENCE = 1.0


def frame_length(data: bytes | bytearray, response: bool) -> int | None:
    """Length of the RTU frame at the start of ``data``, or None when it cannot be told yet.

    From the function code and byte counts of Modbus Application Protocol v1.1b3 section 6:
    reads (1-4) and single writes (5, 6) are requested in 8 bytes; multiple writes (15, 16)
    carry a byte count at offset 6. Read responses carry a byte count at offset 2, write
    responses echo 8 bytes, exception responses (function | 0x80, section 7) are 5 bytes.
    """
    if len(data) < 2:
        return None
    function = data[1]
    if response:
        if function & 0x80:
            return 5
        if function in (1, 2, 3, 4, 23):
            return 5 + data[2] if len(data) > 2 else None
        if function in (5, 6, 15, 16):
            return 8
        return None
    if function in (1, 2, 3, 4, 5, 6):
        return 8
    if function in (15, 16):
        return 9 + data[6] if len(data) > 6 else None
    return None


class _Inbox:
    """Bytes read from a pty master as they arrive (the fd is non-blocking)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self._arrived = asyncio.Event()
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EIO):
                return
            raise
        self.buffer += data
        self._arrived.set()

    async def wait(self, timeout: float | None = None) -> bool:
        """True once bytes are waiting; False if ``timeout`` s passed in silence."""
        if not self.buffer:
            self._arrived.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._arrived.wait()
            except TimeoutError:
                return False
        return True

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)


class RtuLine:
    """An RS-485 line between the gateway (``link``) and the simulated slaves (``server_path``)."""

    def __init__(self, link: Path, *, baudrate: int = 19200, seed: int = 0) -> None:
        self.link = link
        self.baudrate = baudrate
        #: units whose responses the line swallows
        self.silent: set[int] = set()
        #: unit -> probability that a response from it arrives with a corrupted CRC
        self.garble: dict[int, float] = {}
        self.counters: collections.Counter[str] = collections.Counter()
        self._rng = random.Random(seed)
        self._fds: list[int] = []
        self._inboxes: list[_Inbox] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._client: int | None = None

    @property
    def server_path(self) -> Path:
        """Where the simulated slaves open the line."""
        return self.link.with_name(self.link.name + ".server")

    @property
    def char_time(self) -> float:
        """Seconds one character takes on the wire."""
        return BITS_PER_CHAR / self.baudrate

    @property
    def frame_gap(self) -> float:
        """Silence that ends a frame: 3.5 characters, 1.75 ms above 19200 Bd (section 2.5.1.1)."""
        return frame_gap(self.baudrate)

    async def start(self) -> RtuLine:
        """Make both ptys and their links, start the relay."""
        client = self._pty(self.link)
        server = self._pty(self.server_path)
        self._client = client
        requests, responses = _Inbox(client), _Inbox(server)
        self._inboxes = [requests, responses]
        self._tasks = [
            asyncio.create_task(self._relay(requests, server, response=False), name="rtu-up"),
            asyncio.create_task(self._relay(responses, client, response=True), name="rtu-down"),
        ]
        log.info("rtu line link=%s server=%s baudrate=%d", self.link, self.server_path,
                 self.baudrate)  # fmt: skip
        return self

    async def stop(self) -> None:
        """Stop the relay, close both ptys and remove the links."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for inbox in self._inboxes:
            inbox.close()
        self._inboxes = []
        for path in (self.link, self.server_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        self._client = None

    async def __aenter__(self) -> RtuLine:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def noise(self, n: int) -> None:
        """Put ``n`` random bytes on the line towards the gateway (a burst of interference)."""
        if self._client is None:
            return
        self.counters["noise"] += n
        await self._write(self._client, self._rng.randbytes(n))

    # ------------------------------------------------------------------------- internals

    def _pty(self, link: Path) -> int:
        master, slave = os.openpty()
        # the slave stays open here too: a master reads EIO while no one holds its slave, and
        # the gateway closes and reopens the line after link errors
        tty.setraw(slave)  # no echo, no line discipline: a plain byte pipe like a UART
        os.set_blocking(master, False)
        self._fds += [master, slave]
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(link)  # atomic: the gateway never sees a half-made link
        return master

    async def _relay(self, inbox: _Inbox, dest: int, *, response: bool) -> None:
        pending = bytearray()
        while True:
            if not pending:
                await inbox.wait()
            pending += inbox.take()
            # one frame: complete by its own length, or ended by the inter-frame silence
            while (size := frame_length(pending, response)) is None or size > len(pending):
                if not await inbox.wait(max(self.frame_gap, _PTY_GAP_FLOOR)):
                    size = len(pending)
                    break
                pending += inbox.take()
            frame = bytes(pending[:size])
            del pending[:size]
            frame = self._fault(frame) if response else self._count("requests", frame)
            if frame:
                await asyncio.sleep(len(frame) * self.char_time)  # on the wire
                await self._write(dest, frame)

    def _count(self, what: str, frame: bytes) -> bytes:
        self.counters[what] += 1
        return frame

    def _fault(self, frame: bytes) -> bytes:
        """The response as the gateway gets it: whole, swallowed, or with a corrupted CRC."""
        unit = self._count("responses", frame)[0]
        if unit in self.silent:
            self.counters["swallowed"] += 1
            return b""
        chance = self.garble.get(unit, 0.0)
        if len(frame) >= 4 and chance > 0 and self._rng.random() < chance:
            self.counters["garbled"] += 1
            # XOR with a non-zero byte: the CRC's high byte (sent last) can no longer match
            return frame[:-1] + bytes([frame[-1] ^ self._rng.randrange(1, 256)])
        return frame

    async def _write(self, fd: int, data: bytes) -> None:
        deadline = time.monotonic() + _WRITE_PATIENCE
        while data:
            try:
                data = data[os.write(fd, data) :]
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EIO) or time.monotonic() > deadline:
                    self.counters["dropped"] += 1
                    log.warning("rtu line %s: dropped %d bytes (%s)", self.link, len(data), exc)
                    return
                await asyncio.sleep(self.char_time)
