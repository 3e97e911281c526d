"""The device side of a raw-signal measurement transfer, on a pty, through the production codec.

What an OEM module does between its measuring loop and its UART, modelled on the CT-80's
"repeat until ACK" (simulators/ct80.py) and on the protocol in drivers/codec/sampleframes.py:

* every frame gets the next device sequence number; line faults from the scenario flip a bit
  (``noise_rate``) or lose the frame whole (``drop_rate``) after it was numbered;
* a completed measurement is held (at most ``capacity``) until the host ACKs it, and sent
  again on REPLAY (all of them), RESEND (that one, from its start) or when no ACK came for
  ``ack_timeout`` seconds; RESEND of the measurement being taken is honoured once it ends;
* the cable is pulled every ``unplug_every`` seconds for ``unplug_for`` seconds.

Device-specific commands (the NIBP module's START and STOP) go to ``on_command``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from drivers.codec import sampleframes as sf
from drivers.codec.sampleframes import (
    Ack,
    MeasurementEnd,
    Message,
    Packet,
    Replay,
    Resend,
    Samples,
)
from drivers.errors import FrameError
from simulators.pty import PtyPort
from simulators.rawdev.scenario import RawDeviceScenario

log = logging.getLogger(__name__)

HostDecoder = Callable[[bytearray], tuple[Packet[Message] | None, int]]


def sample_blocks(measurement_id: int, counts: npt.NDArray[np.uint16]) -> list[Samples]:
    """``counts`` (n, channels) in as few SAMPLES frames as they fit: how stored data is sent."""
    step = sf.max_samples_per_frame(counts.shape[1])
    return [
        Samples(measurement_id, first, counts[first : first + step])
        for first in range(0, len(counts), step)
    ]


class _Port(PtyPort):
    """A pty that writes whole frames, as a UART does, while the other end reads."""

    #: how long a full line may stay full before the device gives up on the frame: a UART
    #: without flow control loses what nobody reads
    stall = 0.5

    def __init__(self, link: Path) -> None:
        super().__init__(link)
        self.generation = 0
        self._stalled = False  # the last frame found the line full: do not wait again

    def plug(self) -> None:
        super().plug()
        self.generation += 1

    async def send_all(self, data: bytes) -> bool:
        view = memoryview(data)
        deadline = time.monotonic() + (0.0 if self._stalled else self.stall)
        while view:
            master = self._master
            if master is None:
                return False
            try:
                view = view[os.write(master, view) :]
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                if exc.errno == errno.EIO or time.monotonic() > deadline:
                    self._stalled = True
                    return False
                await asyncio.sleep(0.002)
        self._stalled = False
        return True


class FrontEnd:
    """Frames, memory and link faults of one simulated front-end; see the module docstring."""

    def __init__(
        self,
        device_id: str,
        link: Path,
        scenario: RawDeviceScenario,
        decode_host: HostDecoder,
        rng: random.Random,
        on_command: Callable[[Message], None],
    ) -> None:
        self.device_id = device_id
        self.scenario = scenario
        self.port = _Port(link)
        self.rng = rng
        self._decode = decode_host
        self._on_command = on_command
        #: completed, unacknowledged measurements: id -> the frames that carry it
        self.held: OrderedDict[int, list[Message]] = OrderedDict()
        #: measurements to (re)transmit, oldest first
        self.queue: deque[int] = deque()
        #: the measurement being taken (streamed live), if any
        self.live: int | None = None
        self.sent_frames = self.dropped_frames = self.noisy_frames = 0
        self.acked = self.resends = self.replays = self.unplugs = 0
        self._resend_live = False
        self._sending: int | None = None
        self._abort = False
        self._tx_seq = 0
        self._lock = asyncio.Lock()
        self._last_end = time.monotonic()

    @property
    def full(self) -> bool:
        return len(self.held) + (self.live is not None) >= self.scenario.capacity

    @property
    def undelivered(self) -> int:
        return len(self.held) + (self.live is not None)

    # ----------------------------------------------------------------- measuring side

    def begin_live(self, measurement_id: int) -> None:
        self.live, self._resend_live = measurement_id, False

    def complete(self, measurement_id: int, messages: list[Message], send: bool) -> None:
        """Hold a finished measurement; ``send``: transmit it now (it was not streamed)."""
        self.held[measurement_id] = messages
        if self.live == measurement_id:
            self.live = None
        if send or self._resend_live:
            self.queue.append(measurement_id)
        self._resend_live = False

    async def send(self, message: Message) -> None:
        """Number and transmit one frame, with the scenario's line faults."""
        async with self._lock:
            seq, self._tx_seq = self._tx_seq, (self._tx_seq + 1) & 0xFFFF
            if isinstance(message, MeasurementEnd):
                self._last_end = time.monotonic()
            frame = bytearray(sf.encode(sf.to_frame(message, seq)))
            if self.rng.random() < self.scenario.drop_rate:
                self.dropped_frames += 1
                return
            if self.rng.random() < self.scenario.noise_rate:
                self.noisy_frames += 1
                frame[self.rng.randrange(len(frame))] ^= 1 << self.rng.randrange(8)
            if await self.port.send_all(bytes(frame)):
                self.sent_frames += 1

    # ----------------------------------------------------------------- link side

    async def run_link(self) -> None:
        """Serve the host and the cable until cancelled."""
        self.port.plug()
        tasks = [
            asyncio.create_task(self._commands(), name=f"{self.device_id}-commands"),
            asyncio.create_task(self._transmit(), name=f"{self.device_id}-transmit"),
            asyncio.create_task(self._cable(), name=f"{self.device_id}-cable"),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.port.unplug()

    def handle(self, message: Message) -> None:
        """Act on one host command (ACK, RESEND, REPLAY here; the rest to ``on_command``)."""
        if isinstance(message, Ack):
            if self.held.pop(message.measurement_id, None) is not None:
                self.acked += 1
            self._unqueue(message.measurement_id)
        elif isinstance(message, Resend):
            self._resend(message.measurement_id)
        elif isinstance(message, Replay):
            self.replays += 1
            self._abort = True
            self.queue = deque(self.held)
        else:
            self._on_command(message)

    def _unqueue(self, mid: int) -> None:
        with contextlib.suppress(ValueError):
            self.queue.remove(mid)
        if self._sending == mid:
            self._abort = True

    def _resend(self, mid: int) -> None:
        self.resends += 1
        if mid == self.live:
            self._resend_live = True
        elif mid in self.held:
            self._unqueue(mid)
            self.queue.appendleft(mid)

    async def _commands(self) -> None:
        buf = bytearray()
        generation = self.port.generation
        while True:
            data = await self.port.read(0.1)
            if generation != self.port.generation:  # a new cable: what was half read is gone
                buf.clear()
                generation = self.port.generation
            buf.extend(data)
            while buf:
                try:
                    packet, consumed = self._decode(buf)
                except FrameError as exc:
                    del buf[: exc.consumed]
                    continue
                if packet is None:
                    break
                del buf[:consumed]
                self.handle(packet.message)

    async def _transmit(self) -> None:
        while True:
            if not self.port.plugged:
                await asyncio.sleep(0.05)
            elif self.queue:
                await self._transmit_one(self.queue[0])
            elif self.held and time.monotonic() - self._last_end >= self.scenario.ack_timeout:
                log.debug("sim ack timeout device=%s held=%s", self.device_id, list(self.held))
                self.queue.extend(self.held)
                self._last_end = time.monotonic()
            else:
                await asyncio.sleep(0.02)

    async def _transmit_one(self, mid: int) -> None:
        messages = self.held.get(mid)
        if messages is None:
            self._unqueue(mid)
            return
        self._sending, self._abort = mid, False
        try:
            for message in messages:
                if self._abort or not self.port.plugged:
                    return  # ACKed, RESEND (it is at the front again), REPLAY, or unplugged
                await self.send(message)
                await asyncio.sleep(0)  # let host commands in between frames
            self._unqueue(mid)
        finally:
            self._sending = None

    async def _cable(self) -> None:
        s = self.scenario
        if not s.unplug_every:
            await asyncio.Event().wait()  # never: cancelled with the link
        while True:
            await asyncio.sleep(s.unplug_every)
            log.info("sim unplug device=%s for=%.1fs", self.device_id, s.unplug_for)
            self.unplugs += 1
            self.port.unplug()
            await asyncio.sleep(s.unplug_for)
            self.port.plug()
            log.info("sim replug device=%s", self.device_id)
