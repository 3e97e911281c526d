"""The NIBP module in static-pressure service mode: what its transducer reads, for calibration.

A technician tees the module's cuff port to a reference manometer (issue #8); the reference
sets static pressures and the module, in service mode (SERVICE 0x92, mode 1: pump off, valves
closed), reports its transducer's counts in a STATUS frame every 100 ms. Leaving the block
sends mode 0 (best effort: a module that lost power is back in measuring mode anyway). Frames
that fail their CRC are dropped and counted; measurement frames (a record the module still
holds) are ignored here - the daemon collects those, not the technician's bench.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from types import TracebackType

from drivers.codec import sampleframes as sf
from drivers.devices.nibp.codec import CuffState, Service, ServiceMode, Status, parse
from drivers.errors import DeviceTimeoutError, DriverError, FrameError, TransientDeviceError
from drivers.transport.base import ByteTransport

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StaticReading:
    """Counts the transducer reported over a window, and whether the guard dumped meanwhile."""

    counts: tuple[int, ...]
    dumped: bool
    seconds: float

    @property
    def mean(self) -> float:
        return sum(self.counts) / len(self.counts)


class NibpService:
    """``async with NibpService(transport) as svc:`` then :meth:`sample` / :meth:`status`."""

    def __init__(self, transport: ByteTransport, *, status_timeout: float = 1.0) -> None:
        self.transport = transport
        self.status_timeout = status_timeout
        self.garbled = 0
        #: a STATUS with the dump flag arrived since the last :meth:`sample` began
        self.dumped_seen = False
        self._buf = bytearray()
        self._seq = 0

    async def __aenter__(self) -> NibpService:
        await self._send(Service(ServiceMode.STATIC))
        first = await self.status()  # the module answers: it is in service mode
        if first.state not in (CuffState.SERVICE, CuffState.ERROR):
            raise TransientDeviceError(
                f"{self.transport.url}: the module did not enter service mode"
                f" (state {first.state.name})"
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._send(Service(ServiceMode.MEASURE))
        except DriverError as failure:
            log.warning("nibp service mode not left url=%s error=%s", self.transport.url, failure)

    async def _send(self, message: Service) -> None:
        data = sf.encode(sf.to_frame(message, self._seq))
        self._seq = (self._seq + 1) & 0xFFFF
        await self.transport.write(data)

    async def status(self) -> Status:
        """The next STATUS frame with a pressure; DeviceTimeoutError if none comes."""
        deadline = time.monotonic() + self.status_timeout
        while True:
            while self._buf:
                try:
                    packet, used = sf.decode_packet(self._buf, parse)
                except FrameError as exc:
                    self.garbled += 1
                    del self._buf[: exc.consumed]
                    continue
                if packet is None:
                    break
                del self._buf[:used]
                message = packet.message
                if isinstance(message, Status):
                    # a dump is reported once by some modules: never lose it with its frame
                    self.dumped_seen |= message.dumped
                    if message.pressure is not None:
                        return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceTimeoutError(f"{self.transport.url}: no STATUS from the module")
            self._buf += await self.transport.read(4096, timeout=left)

    async def drain(self) -> int:
        """Skip the pressures the module sent before now; returns the frames skipped.

        Its STATUS frames queue up while the bench settles: averaged, they would mix the ramp
        into the point. They are parsed all the same, so a dump flag among them is kept.
        """
        skipped = 0
        while True:
            try:
                self._buf += await self.transport.read(4096, timeout=0.02)
            except DeviceTimeoutError:
                break
        saved, self.status_timeout = self.status_timeout, 0.0
        try:
            while True:
                await self.status()
                skipped += 1
        except DeviceTimeoutError:
            return skipped
        finally:
            self.status_timeout = saved

    async def sample(self, seconds: float) -> StaticReading:
        """Every pressure the module reports during the next ``seconds``.

        ``dumped`` says whether the module reported its dump valve open since the previous
        sample (during the drain included).
        """
        self.dumped_seen = False
        await self.drain()
        counts: list[int] = []
        start = time.monotonic()
        while time.monotonic() - start < seconds or not counts:
            status = await self.status()
            assert status.pressure is not None  # status() returns only those
            counts.append(status.pressure)
        return StaticReading(tuple(counts), self.dumped_seen, time.monotonic() - start)
