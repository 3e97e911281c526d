"""The Prometheus exposition of a daemon snapshot: the one module importing prometheus_client.

A dedicated :class:`~prometheus_client.CollectorRegistry` (never the global one) holds a custom
collector that takes a :class:`~edge.health.snapshot.Snapshot` *at scrape time*, on the event
loop, and the standard process collector (``process_*``: memory, CPU, open files, start time,
read from ``/proc``). Nothing is cached between scrapes but the outbox breakdown by kind
(edge/health/backlog.py).

The body is the Prometheus text format 0.0.4, or what the scraper's ``Accept`` header asks for
(OpenMetrics 1.0.0, text 1.0.0), negotiated by :func:`prometheus_client.exposition.
choose_encoder` as prometheus_client's own handlers do. Metric names and meanings are listed
in docs/operations.md ("Health: status and metrics").
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from edge.health.snapshot import LatencyView, Snapshot

#: the states a device reports (edge/supervise.py, edge/vehicle/modbus.py); each is a series
#: of santebus_device_state so that a state never seen still reads 0 rather than absent
DEVICE_STATES = (
    "starting",
    "connected",
    "lost",
    "storage-error",
    "misconfigured",
    "failed",
    "silent",
    "line-down",
)
OUTBOX_STATES = ("pending", "in_flight", "rejected")


class DaemonCollector(Collector):
    """Reads the daemon through ``take`` each time Prometheus scrapes."""

    def __init__(self, take: Callable[[], Snapshot]) -> None:
        self.take = take

    def collect(self) -> Iterator[Metric]:
        snap = self.take()
        yield InfoMetricFamily(
            "santebus_build", "The gateway software.", {"version": snap.version, "bus": snap.bus}
        )
        yield GaugeMetricFamily(
            "santebus_start_time_seconds", "When the daemon started, Unix time.", snap.started
        )
        yield from _devices(snap)
        yield from _outbox(snap)
        yield from _mqtt(snap)


def _counter(name: str, doc: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["device"])
    for device, value in values.items():
        family.add_metric([device], value)
    return family


def _gauge(name: str, doc: str, values: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["device"])
    for device, value in values.items():
        family.add_metric([device], value)
    return family


def _devices(snap: Snapshot) -> Iterator[Metric]:
    d = snap.devices
    info = GaugeMetricFamily(
        "santebus_device_info", "A configured device.", labels=["device", "kind"]
    )
    state = GaugeMetricFamily(
        "santebus_device_state", "1 for the device's current state.", labels=["device", "state"]
    )
    for device, view in d.items():
        info.add_metric([device, view.kind], 1)
        for name in dict.fromkeys((*DEVICE_STATES, view.state)):
            state.add_metric([device, name], 1 if name == view.state else 0)
    yield info
    yield state
    yield _gauge(
        "santebus_device_up",
        "1 while the device's link is up (state connected).",
        {k: 1 if v.state == "connected" else 0 for k, v in d.items()},
    )
    yield _counter(
        "santebus_device_records",
        "Device records stored in the outbox (a CT-80 record holds both eyes).",
        {k: v.records for k, v in d.items()},
    )
    yield _counter(
        "santebus_device_connects",
        "Successful opens of the device's link.",
        {k: v.connects for k, v in d.items()},
    )
    yield _counter(
        "santebus_device_failures",
        "Link failures, crashed device tasks and failed polls.",
        {k: v.failures for k, v in d.items()},
    )
    yield _counter(
        "santebus_device_frame_errors",
        "Garbled or malformed frames the device's driver counted.",
        {k: v.frame_errors for k, v in d.items() if v.frame_errors is not None},
    )
    yield _gauge(
        "santebus_device_last_record_age_seconds",
        "Seconds since the device's last stored record (absent: none since start).",
        {k: v.last_record_age_s for k, v in d.items() if v.last_record_age_s is not None},
    )
    cal = {k: v.calibration for k, v in d.items() if v.calibration is not None}
    yield _gauge(
        "santebus_calibration_days_left",
        "Days until the device's calibration lapses: 0 its last day, negative lapsed;"
        " absent with no record, a failed or an unreadable one.",
        {k: c.days_left for k, c in cal.items() if c.days_left is not None},
    )
    yield _gauge(
        "santebus_calibration_valid",
        "1 when the device's current calibration record is valid today.",
        {k: 1 if c.validity == "valid" else 0 for k, c in cal.items()},
    )


def _outbox(snap: Snapshot) -> Iterator[Metric]:
    o = snap.outbox
    yield GaugeMetricFamily(
        "santebus_outbox_up", "1 when the outbox could be read for this scrape.", int(not o.error)
    )
    if o.error:
        return
    rows = GaugeMetricFamily(
        "santebus_outbox_rows",
        "Rows in the outbox by state (rejected: counted at most every 10 s).",
        labels=["state"],
    )
    for name, value in zip(OUTBOX_STATES, (o.pending, o.in_flight, o.rejected), strict=True):
        rows.add_metric([name], value)
    yield rows
    by_kind = GaugeMetricFamily(
        "santebus_outbox_rows_by_kind",
        "Rows in the outbox by kind and state (counted at most every 10 s).",
        labels=["kind", "state"],
    )
    for kind, states in sorted(o.by_kind.items()):
        for name in OUTBOX_STATES:
            by_kind.add_metric([kind, name], states.get(name, 0))
    yield by_kind
    yield GaugeMetricFamily(
        "santebus_outbox_oldest_age_seconds",
        "Age of the oldest row pending or in flight (0: nothing waiting).",
        o.oldest_age_s or 0.0,
    )
    if o.used_bytes is not None and o.budget_bytes is not None:
        yield GaugeMetricFamily(
            "santebus_outbox_used_bytes", "Outbox file bytes in use.", o.used_bytes
        )
        yield GaugeMetricFamily(
            "santebus_outbox_budget_bytes", "The outbox's page budget, bytes.", o.budget_bytes
        )


def _le(bound: float) -> str:
    """A bucket bound as the ``le`` label value (Prometheus text format 0.0.4: ``+Inf``)."""
    return "+Inf" if bound == float("inf") else repr(bound)


def _histogram(name: str, doc: str, latency: LatencyView) -> HistogramMetricFamily:
    buckets = [(_le(le), float(n)) for le, n in latency.buckets]
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=latency.total)


def _mqtt(snap: Snapshot) -> Iterator[Metric]:
    m = snap.mqtt
    yield GaugeMetricFamily(
        "santebus_mqtt_connected", "1 while the broker link is up.", 1 if m.connected else 0
    )
    yield CounterMetricFamily(
        "santebus_mqtt_connects", "Successful broker connections.", m.connects
    )
    if m.last_connect is not None:
        yield GaugeMetricFamily(
            "santebus_mqtt_last_connect_timestamp_seconds",
            "When the broker link last came up, Unix time.",
            m.last_connect,
        )
    yield CounterMetricFamily(
        "santebus_mqtt_publishes",
        "Outbox rows published and answered by a PUBACK (any reason code).",
        m.published,
    )
    yield CounterMetricFamily(
        "santebus_backend_confirmed", "Rows deleted on the backend's ack.", m.confirmed
    )
    yield CounterMetricFamily(
        "santebus_rejections", "Rows refused by the broker (PUBACK) or the backend.", m.rejected
    )
    yield _histogram(
        "santebus_mqtt_publish_latency_seconds",
        "PUBLISH to PUBACK of outbox rows.",
        m.puback_latency,
    )
    yield _histogram(
        "santebus_backend_ack_latency_seconds",
        "PUBLISH (the last, for a re-sent row) to the backend's ack, clinical rows.",
        m.backend_latency,
    )


def registry(take: Callable[[], Snapshot]) -> CollectorRegistry:
    """A registry of its own: the daemon's collector and the process collector."""
    reg = CollectorRegistry(auto_describe=False)  # no collect() at registration
    reg.register(DaemonCollector(take))
    reg.register(SelfCollector())
    return reg


class SelfCollector(Collector):
    """The standard ``process_*`` metrics, from /proc/self only.

    prometheus-client's ProcessCollector needs /proc/stat (the boot time), which the unit's
    ``ProcSubset=pid`` hides: it would then export nothing. This reads only the process's own
    entries and takes the start time from the moment it was created (the daemon's start).
    """

    def __init__(self) -> None:
        self.start = time.time()
        self.page = os.sysconf("SC_PAGESIZE")

    def collect(self) -> Iterator[Metric]:
        cpu = os.times()
        yield CounterMetricFamily(
            "process_cpu_seconds", "User and system CPU time spent.", cpu.user + cpu.system
        )
        yield GaugeMetricFamily(
            "process_start_time_seconds", "Start time of the process (Unix time).", self.start
        )
        try:
            statm = Path("/proc/self/statm").read_text(encoding="ascii").split()
            size, resident = int(statm[0]), int(statm[1])
            fds = sum(1 for _ in Path("/proc/self/fd").iterdir())
        except OSError:  # no /proc (not Linux): only what os.times() gives
            return
        yield GaugeMetricFamily(
            "process_virtual_memory_bytes", "Virtual memory size.", size * self.page
        )
        yield GaugeMetricFamily(
            "process_resident_memory_bytes", "Resident memory size.", resident * self.page
        )
        yield GaugeMetricFamily("process_open_fds", "Open file descriptors.", fds)


def exposition(reg: CollectorRegistry, accept: str = "") -> tuple[bytes, str]:
    """The scrape's body and its content type, negotiated on the ``Accept`` header."""
    encode, content_type = choose_encoder(accept)
    return encode(reg), content_type
