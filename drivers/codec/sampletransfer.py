"""Reassembly of sample transfers: the sans-IO receiver of the raw-signal front-ends.

The frames and shared payloads are drivers/codec/sampleframes.py. Here :class:`Receiver`
(sans-IO, as h11's ``Connection``) turns a device's frames into whole measurements: it checks
sequence numbers and sample indexes, asks for a measurement again (RESEND) after any lost or
garbled frame, and never hands over a recording with a missing sample.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import numpy as np

from drivers.codec.sampleframes import (
    Ack,
    Counts,
    Frame,
    MeasurementEnd,
    Message,
    Resend,
    Samples,
    decode,
    encode,
    to_frame,
)
from drivers.errors import FrameError


class StartMessage(Message, Protocol):
    """A device's MEASUREMENT_START: what the receiver needs of it (it must be hashable)."""

    @property
    def measurement_id(self) -> int: ...

    @property
    def channels(self) -> int: ...

    @property
    def fs(self) -> int: ...

    @property
    def time(self) -> datetime: ...

    @property
    def model(self) -> str: ...

    @property
    def serial(self) -> str: ...


S = TypeVar("S", bound=StartMessage)
_K = TypeVar("_K")


@dataclass(slots=True)
class TransferStats:
    """Counters kept across reconnects (exposed to health/metrics)."""

    frames: int = 0
    measurements: int = 0
    #: bursts of bad frames between two good ones (CRC, length, a malformed payload)
    garbled_frames: int = 0
    noise_bytes: int = 0
    #: sequence number jumps: frames lost on the line
    gaps: int = 0
    resends: int = 0
    #: retransmissions of a measurement this link had already acknowledged (ACKed again)
    duplicates: int = 0
    #: measurements given up (over the sample limit); the device keeps them
    discarded: int = 0


@dataclass(frozen=True, slots=True)
class Send:
    """A message to send the device now (number it with :meth:`Receiver.command`)."""

    message: Message
    reason: str


@dataclass(frozen=True, slots=True, eq=False)
class SamplesArrived:
    """A block of samples of a measurement being assembled (for a live display)."""

    measurement_id: int
    counts: Counts
    #: the measurement's sampling rate, Hz
    fs: float


@dataclass(frozen=True, slots=True, eq=False)
class Completed(Generic[S]):
    """A measurement received whole: every sample from index 0 to ``end.total``, in order."""

    start: S
    counts: Counts
    end: MeasurementEnd


@dataclass(frozen=True, slots=True)
class Received:
    """Any other message (a status report, say)."""

    message: Message


@dataclass(frozen=True, slots=True)
class Discarded:
    """A measurement given up for good on this link (see :class:`TransferStats`)."""

    measurement_id: int
    reason: str


Event = Send | SamplesArrived | Completed[S] | Received | Discarded


@dataclass(slots=True)
class _Assembly(Generic[S]):
    start: S
    blocks: list[Counts] = field(default_factory=list)
    count: int = 0


class Receiver(Generic[S]):
    """The host side of a measurement transfer, sans-IO: bytes in, events out.

    A measurement is ``MEASUREMENT_START``, ``SAMPLES``... , ``MEASUREMENT_END``. Whenever a
    frame may have been lost - a sequence gap, a garbled frame, samples out of order, a total
    that does not match - every measurement being assembled is dropped and the device is asked
    to ``RESEND`` it; its frames are then ignored until it starts again. A measurement is thus
    delivered whole or not at all, never with a hole.

    ``parse`` turns a CRC-valid frame into a device message (the device codec's); messages of
    ``start_type`` open a measurement. ``max_samples`` bounds one measurement; ``memory``
    bounds the ids remembered as resent or acknowledged.
    """

    def __init__(
        self,
        parse: Callable[[Frame], Message],
        start_type: type[S],
        stats: TransferStats | None = None,
        max_samples: int = 200_000,
        memory: int = 64,
    ) -> None:
        self.stats = stats if stats is not None else TransferStats()
        self._parse = parse
        self._start_type = start_type
        self._max_samples = max_samples
        self._memory = memory
        self._buffer = bytearray()
        self._expected: int | None = None
        self._clean = True  # no error since the last good frame
        self._tx_seq = 0
        self._assembling: dict[int, _Assembly[S]] = {}
        #: measurements whose frames to ignore until they start again (resent or discarded)
        self._ignored: OrderedDict[int, None] = OrderedDict()
        self._acked: OrderedDict[S, None] = OrderedDict()

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame waiting for the rest."""
        return len(self._buffer)

    def command(self, message: Message) -> bytes:
        """Frame a host message with the next host sequence number."""
        data = encode(to_frame(message, self._tx_seq))
        self._tx_seq = (self._tx_seq + 1) & 0xFFFF
        return data

    def acknowledge(self, start: S) -> Ack:
        """The ACK releasing ``start``'s measurement; a later copy is re-ACKed, not delivered."""
        self._remember(self._acked, start)
        return Ack(start.measurement_id)

    def feed(self, data: bytes) -> list[Event[S]]:
        """Events for the bytes received (possibly none, possibly several frames' worth)."""
        self._buffer.extend(data)
        events: list[Event[S]] = []
        while self._buffer:
            try:
                frame, consumed = decode(self._buffer)
            except FrameError as exc:
                del self._buffer[: exc.consumed]
                events += self._on_error(exc)
                continue
            if frame is None:
                break
            del self._buffer[:consumed]
            events += self._on_frame(frame)
        return events

    def timeout(self) -> list[Event[S]]:
        """The line went quiet inside a frame: that frame is broken; decode what follows it."""
        if not self._buffer:
            return []
        del self._buffer[:1]
        events = self._on_error(FrameError("frame cut short by silence", 1))
        return events + self.feed(b"")

    # ----------------------------------------------------------------- internals

    def _remember(self, memory: OrderedDict[_K, None], key: _K) -> None:
        memory[key] = None
        memory.move_to_end(key)
        while len(memory) > self._memory:
            memory.popitem(last=False)

    def _on_error(self, exc: FrameError) -> list[Event[S]]:
        if exc.reason.startswith("noise") or not self._clean:
            # bytes of the same broken frame, or line noise: one burst counts once
            self.stats.noise_bytes += exc.consumed
            return []
        self._clean = False
        self.stats.garbled_frames += 1
        return self._resend_all(f"garbled frame ({exc.reason})")

    def _on_frame(self, frame: Frame) -> list[Event[S]]:
        self.stats.frames += 1
        self._clean = True
        gap = self._expected is not None and frame.seq != self._expected
        self._expected = (frame.seq + 1) & 0xFFFF
        events: list[Event[S]] = []
        if gap:
            self.stats.gaps += 1
        try:
            message = self._parse(frame)
        except FrameError as exc:
            self.stats.garbled_frames += 1
            return self._resend_all(f"malformed frame ({exc.reason})")
        if gap:
            # a restart of the very measurement needs no RESEND: it is already coming again
            keep = message.measurement_id if isinstance(message, self._start_type) else None
            events += self._resend_all("sequence gap", keep)
        if isinstance(message, self._start_type):
            self._ignored.pop(message.measurement_id, None)
            self._assembling[message.measurement_id] = _Assembly(message)
        elif isinstance(message, Samples):
            events += self._on_samples(message)
        elif isinstance(message, MeasurementEnd):
            events += self._on_end(message)
        else:
            events.append(Received(message))
        return events

    def _resend_all(self, reason: str, keep: int | None = None) -> list[Event[S]]:
        events: list[Event[S]] = []
        for mid in list(self._assembling):
            if mid != keep:
                del self._assembling[mid]
                events += self._resend(mid, reason)
        return events

    def _resend(self, mid: int, reason: str) -> list[Event[S]]:
        self._remember(self._ignored, mid)
        self.stats.resends += 1
        return [Send(Resend(mid), f"resend measurement {mid}: {reason}")]

    def _orphan(self, mid: int, what: str) -> list[Event[S]]:
        """A frame of a measurement whose start was not seen."""
        if mid in self._ignored or any(s.measurement_id == mid for s in self._acked):
            return []  # already asked for, or a late copy of one already stored
        return self._resend(mid, f"{what} without its start")

    def _on_samples(self, block: Samples) -> list[Event[S]]:
        mid = block.measurement_id
        assembly = self._assembling.get(mid)
        if assembly is None:
            return self._orphan(mid, "samples")
        n, channels = block.counts.shape
        if block.first_index != assembly.count or channels != assembly.start.channels:
            del self._assembling[mid]
            return self._resend(mid, "samples out of order")
        if assembly.count + n > self._max_samples:
            del self._assembling[mid]
            self.stats.discarded += 1
            self._remember(self._ignored, mid)  # its remaining frames are no orphans
            return [Discarded(mid, f"more than {self._max_samples} samples")]
        assembly.blocks.append(block.counts)
        assembly.count += n
        return [SamplesArrived(mid, block.counts, assembly.start.fs)]

    def _on_end(self, end: MeasurementEnd) -> list[Event[S]]:
        mid = end.measurement_id
        assembly = self._assembling.pop(mid, None)
        if assembly is None:
            return self._orphan(mid, "end")
        if end.total != assembly.count:
            return self._resend(mid, f"{assembly.count} of {end.total} samples")
        if assembly.start in self._acked:
            self.stats.duplicates += 1
            return [Send(Ack(mid), f"measurement {mid} again: already stored")]
        self.stats.measurements += 1
        channels = assembly.start.channels
        if assembly.blocks:
            counts = np.concatenate(assembly.blocks)
        else:
            counts = np.empty((0, channels), dtype=np.uint16)
        counts.flags.writeable = False
        return [Completed(assembly.start, counts, end)]
