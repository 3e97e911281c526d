"""The forwarder's settings and statistics: plain data, no I/O.

Apart from the forwarder (edge/publish/forwarder.py) because they are read elsewhere - the
settings built by the application from its configuration (edge/app.py), the stats and their
latency buckets read at scrape time by the health endpoints (edge/health) - and shared with
the large-object flow (edge/publish/objects_flow.py), which must not import the forwarder.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

#: upper bounds (s) of the PUBLISH -> PUBACK buckets: loopback to a slow 4G link (timeout 30 s)
PUBACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: ... and of PUBLISH -> backend ack (the backend stores, then acks in batches)
BACKEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True, slots=True)
class ForwarderSettings:
    resend_after: float = 30.0
    max_in_flight: int = 20
    #: chunks of large objects outstanding at once (edge/outbox/queries.py): the rest of the
    #: window stays free for readings, which never wait behind a whole photograph
    max_object_in_flight: int = 2
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    #: seconds a PUBACK may take beyond sending the bytes before it at ``min_link_rate``
    puback_timeout: float = 30.0
    #: the slowest link (bytes/s) the PUBACK timeout allows for: 8000 (64 kbit/s) gives two
    #: 256 KiB chunks 66 s more, where a fixed 30 s tore a slow 4G session down in a loop
    min_link_rate: float = 8000.0


@dataclass(slots=True)
class Latency:
    """A latency distribution in fixed buckets, read by the metrics exporter at scrape time.

    Not a prometheus_client Histogram: only edge/health/metrics.py imports the exporter.
    """

    #: the buckets' upper bounds, seconds, increasing (a last one, +Inf, is implicit)
    bounds: tuple[float, ...]
    #: observations per bucket (not cumulative), the last for those above every bound
    counts: list[int] = field(init=False)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le = less or equal)
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds
        self.count += 1


@dataclass(slots=True)
class ForwarderStats:
    connects: int = 0
    #: PUBACKs received, whatever their reason code
    published: int = 0
    #: rows deleted on the backend's ack
    confirmed: int = 0
    rejected: int = 0
    #: wall-clock time of the last successful connection (None: never connected)
    last_connect: float | None = None
    #: PUBLISH -> PUBACK of outbox rows
    puback_latency: Latency = field(default_factory=lambda: Latency(PUBACK_BUCKETS))
    #: PUBLISH (the last one, for a re-sent row) -> the backend's ack, clinical rows
    backend_latency: Latency = field(default_factory=lambda: Latency(BACKEND_BUCKETS))
