"""Telemetry group commit: samples buffered in memory, committed together as SenML packs.

Telemetry (cabin climate, fridge temperature, power) is not clinical data: one fsync'd
transaction per sample would spend the SD card on it, so samples wait in memory and are
committed in one transaction every ``flush_every`` seconds or ``max_rows`` samples, whichever
comes first. A power cut loses at most that window of telemetry, never a clinical reading (those
are committed one record per transaction before the device is acknowledged, see ingest.py).

A flush stores one outbox row (kind ``telemetry``) per source: a SenML pack (RFC 8428, JSON
representation, section 5) of that source's samples, published on
``santebus/v1/{bus}/telemetry/{source}`` (schema ``santebus-telemetry/1``), deleted on its
PUBACK, evicted oldest-first beyond the outbox's telemetry budget. One message per source every
few seconds rather than one per sample: twenty times fewer messages on the bus's 4G link and on
the fleet's broker, and a standard format integrators parse with existing libraries. When the
outbox refuses a flush (disk full, I/O error) the samples stay buffered, up to ``keep`` of them
(oldest dropped first and counted), and the next flush tries again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from edge.outbox import NewRow, Outbox, OutboxError
from edge.pipeline.measurement import MESSAGE_ID_NAMESPACE
from edge.publish.topics import Topics

log = logging.getLogger(__name__)

SCHEMA = "santebus-telemetry/1"


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a non-clinical source, e.g. ``cabin`` / ``temperature`` = 21.5 Cel."""

    source: str
    quantity: str  # the SenML record name within the source, e.g. "temperature"
    value: float
    unit: str  # a SenML unit (RFC 8428 section 12.1, UCUM-style), e.g. "Cel", "%RH", "V"
    at: datetime  # aware

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):  # JSON has no NaN / Infinity (RFC 8259 section 6)
            raise ValueError(f"telemetry {self.source}/{self.quantity}: value {self.value}")
        if self.at.tzinfo is None:
            raise ValueError(f"telemetry {self.source}/{self.quantity}: time without offset")


@dataclass(slots=True)
class TelemetryStats:
    samples: int = 0
    committed: int = 0
    commits: int = 0
    dropped: int = 0


class TelemetryBuffer:
    """Collects samples (from any task on the loop) and group-commits them to the outbox."""

    def __init__(
        self,
        outbox: Outbox,
        topics: Topics,
        *,
        flush_every: float = 5.0,
        max_rows: int = 500,
        keep: int = 10_000,
        wake: asyncio.Event | None = None,
    ) -> None:
        if flush_every <= 0 or max_rows < 1 or keep < max_rows:
            raise ValueError("need flush_every > 0, max_rows >= 1 and keep >= max_rows")
        self.outbox = outbox
        self.topics = topics
        self.flush_every = flush_every
        self.max_rows = max_rows
        self.wake = wake
        self.stats = TelemetryStats()
        self._pending: deque[Sample] = deque(maxlen=keep)

    def add(self, sample: Sample) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.stats.dropped += 1  # the deque drops the oldest
        self._pending.append(sample)
        self.stats.samples += 1
        if len(self._pending) >= self.max_rows:
            self.flush()

    def flush(self) -> int:
        """Commit everything buffered in one transaction; returns the packs (rows) stored."""
        if not self._pending:
            return 0
        batch = list(self._pending)
        rows = self._rows(batch)
        try:
            added = self.outbox.add(rows)
        except OutboxError as exc:
            log.warning(
                "telemetry not stored, kept in memory samples=%d dropped_so_far=%d error=%r",
                len(batch),
                self.stats.dropped,
                str(exc),
            )
            return 0
        for _ in batch:
            self._pending.popleft()
        self.stats.committed += len(batch) if added else 0
        self.stats.commits += 1
        if self.wake is not None and added:
            self.wake.set()
        return added

    async def run(self) -> None:
        """Flush every ``flush_every`` seconds until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(self.flush_every)
                self.flush()
        finally:
            self.flush()

    def _rows(self, batch: list[Sample]) -> list[NewRow]:
        by_source: dict[str, list[Sample]] = {}
        for sample in batch:
            by_source.setdefault(sample.source, []).append(sample)
        return [self._pack(source, samples) for source, samples in by_source.items()]

    def _pack(self, source: str, samples: list[Sample]) -> NewRow:
        """One source's samples as a SenML pack (RFC 8428).

        Base name and base time on the first record (section 4.1), then per record ``n``
        (name), ``u`` (unit), ``v`` (value), ``t`` (seconds after the base time; base time +
        time is absolute as it is >= 2**28, sections 4.5.3 and 4.6).
        """
        base = samples[0].at.timestamp()
        records: list[dict[str, object]] = [
            {"n": s.quantity, "u": s.unit, "v": s.value, "t": round(s.at.timestamp() - base, 3)}
            for s in samples
        ]
        records[0] = {"bn": f"urn:santebus:{self.topics.bus}:{source}:", "bt": base, **records[0]}
        payload = json.dumps(records, separators=(",", ":")).encode()
        last = samples[-1].at.timestamp()
        key = f"telemetry|{self.topics.bus}|{source}|{base}|{last}|{len(samples)}"
        msg_id = str(uuid.uuid5(MESSAGE_ID_NAMESPACE, key))  # the same samples, the same id
        return NewRow(msg_id, source, self.topics.telemetry(source), payload, "telemetry")
