"""The daemon snapshot and its Prometheus exposition, read from real components."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from calibration.records import CalibrationBook, CalibrationRecord
from drivers.ble.driver import BleStats
from drivers.devices.ct80 import Ct80Stats
from drivers.modbus.poller import PollStats
from edge.config import EdgeConfig
from edge.events import Events
from edge.health import metrics
from edge.health.backlog import BacklogReader
from edge.health.endpoints import HealthEndpoints
from edge.health.snapshot import DriverStats, Snapshots, Sources
from edge.outbox import NewRow, Outbox
from edge.publish.forwarder import Forwarder, Latency
from edge.publish.port import Publisher
from edge.supervise import DeviceHealth
from tests.helpers import TOPICS, obs_row

TODAY = datetime.now(ZoneInfo("Europe/Paris")).date()


def _config(state: Path, **health: Any) -> EdgeConfig:
    serial = "serial:///dev/null"
    return EdgeConfig.model_validate({
        "gateway": {"bus_id": "bus-it", "state_dir": str(state)},
        "mqtt": {"host": "127.0.0.1", "tls": False},
        "health": health,
        "devices": {
            "tono-1": {"kind": "ct80", "transport": serial, "serial_number": "SN-A"},
            "tono-2": {"kind": "ct80", "transport": serial, "serial_number": "SN-B"},
            "bp-1": {"kind": "nibp", "transport": serial, "serial_number": "SN-C"},
            "ble-1": {"kind": "ble", "profile": "thermometer", "address": "00:11:22:33:44:55",
                      "serial_number": "SN-D"},
            "cabin": {"kind": "modbus", "transport": "modbus-tcp://127.0.0.1:1502",
                      "map": "xy-md02", "role": "climate"},
        },
    })  # fmt: skip


def _record(serial: str, valid_until: Any, result: str = "pass") -> CalibrationRecord:
    return CalibrationRecord.model_validate({
        "id": f"VER-{serial}", "device_serial": serial, "device_model": "M", "kind": "verification",
        "performed_at": datetime(2026, 1, 1, tzinfo=UTC), "valid_until": valid_until,
        "result": result, "technician": "tech-1", "reference_id": "REF-1",
    })  # fmt: skip


def _no_link() -> Publisher:
    raise AssertionError("the forwarder does not run in these tests")


@pytest.fixture
def sources(tmp_path: Path) -> Iterator[Sources]:
    config = _config(tmp_path / "state")
    box = Outbox(config.outbox_path)
    book = CalibrationBook(config.calibration_dir)
    book.add(_record("SN-A", TODAY + timedelta(days=10)))
    book.add(_record("SN-B", TODAY - timedelta(days=3)))
    book.add(_record("SN-C", TODAY + timedelta(days=100), result="fail"))
    forwarder = Forwarder(box, _no_link, TOPICS)
    health = {d: DeviceHealth() for d in config.devices}
    health["tono-1"] = DeviceHealth("connected", connects=2, failures=1, records=5)
    health["tono-1"].last_record = time.monotonic() - 7
    health["cabin"] = DeviceHealth("silent", failures=4, records=3)
    stats: dict[str, DriverStats] = {
        "tono-1": Ct80Stats(records=5, garbled_frames=2),
        "ble-1": BleStats(malformed=4),
        "cabin": PollStats(frame_errors=1, last_good=time.monotonic() - 30),
    }
    yield Sources(config, health, stats, box, forwarder, book, started=time.time() - 60)
    box.close()


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_snapshot_reads_devices_calibrations_and_the_outbox(sources: Sources) -> None:
    box = sources.outbox
    box.add([obs_row(1), obs_row(2), NewRow("ev-1", "gateway", "t", b"{}", kind="event")])
    box.mark_sent([obs_row(1).msg_id])
    box.reject(obs_row(2).msg_id, "broker refused: Not authorized (135)")
    snapshots = Snapshots(sources)
    snap = snapshots.take()
    snapshots.close()
    assert snap.bus == "bus-it"
    assert 59 < snap.uptime_s < 70
    d = snap.devices
    assert (d["tono-1"].state, d["tono-1"].records, d["tono-1"].frame_errors) == ("connected", 5, 2)
    assert 6.5 < (d["tono-1"].last_record_age_s or 0) < 10
    assert 29 < (d["cabin"].last_record_age_s or 0) < 35  # a Modbus unit: its last good poll
    frames = {k: v.frame_errors for k, v in d.items()}
    assert frames == {"tono-1": 2, "tono-2": None, "bp-1": None, "ble-1": 4, "cabin": 1}
    cal = {
        k: None if v.calibration is None else (v.calibration.validity, v.calibration.days_left)
        for k, v in d.items()
    }
    assert cal == {
        "tono-1": ("valid", 10),
        "tono-2": ("expired", -3),
        "bp-1": ("failed", None),
        "ble-1": ("missing", None),
        "cabin": None,  # a Modbus unit: telemetry, not a measuring device
    }
    o = snap.outbox
    assert (o.pending, o.in_flight, o.rejected, o.error) == (1, 1, 1, None)
    assert o.by_kind == {"clinical": {"in_flight": 1, "rejected": 1}, "event": {"pending": 1}}
    assert o.oldest_age_s is not None
    assert 0 <= o.oldest_age_s < 5
    text = json.dumps(snap.to_json())
    # nothing of what the rows hold (subjects, values) - the snapshot has no payloads
    assert "subject" not in text
    assert "valueQuantity" not in text


def test_metrics_agree_with_the_snapshot(sources: Sources) -> None:
    sources.outbox.add([obs_row(1)])
    f = sources.forwarder
    f.stats.connects, f.stats.published, f.stats.confirmed, f.stats.rejected = 2, 9, 7, 1
    for seconds in (0.004, 0.01, 0.3):
        f.stats.puback_latency.observe(seconds)
    f.stats.backend_latency.observe(1.5)
    snapshots = Snapshots(sources)
    reg = metrics.registry(snapshots.take)
    body, content_type = metrics.exposition(reg)
    snapshots.close()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    m = _families(body.decode())
    assert m["santebus_device_up"] == {(("device", "tono-1"),): 1.0, **{
        (("device", d),): 0.0 for d in ("tono-2", "bp-1", "ble-1", "cabin")}}  # fmt: skip
    assert m["santebus_device_state"][(("device", "cabin"), ("state", "silent"))] == 1.0
    assert m["santebus_device_state"][(("device", "cabin"), ("state", "connected"))] == 0.0
    assert m["santebus_device_records_total"][(("device", "tono-1"),)] == 5.0
    assert m["santebus_device_frame_errors_total"] == {
        (("device", "tono-1"),): 2.0, (("device", "ble-1"),): 4.0, (("device", "cabin"),): 1.0,
    }  # fmt: skip
    assert m["santebus_calibration_days_left"] == {
        (("device", "tono-1"),): 10.0,
        (("device", "tono-2"),): -3.0,
    }
    assert m["santebus_calibration_valid"][(("device", "tono-1"),)] == 1.0
    assert m["santebus_calibration_valid"][(("device", "bp-1"),)] == 0.0
    assert m["santebus_outbox_rows"] == {
        (("state", "pending"),): 1.0,
        (("state", "in_flight"),): 0.0,
        (("state", "rejected"),): 0.0,
    }
    assert m["santebus_mqtt_connected"] == {(): 0.0}
    assert m["santebus_mqtt_publishes_total"] == {(): 9.0}
    assert m["santebus_backend_confirmed_total"] == {(): 7.0}
    assert m["santebus_rejections_total"] == {(): 1.0}
    latency = m["santebus_mqtt_publish_latency_seconds_bucket"]
    assert latency[(("le", "0.005"),)] == 1.0
    assert latency[(("le", "0.01"),)] == 2.0  # le: a value on the bound counts in its bucket
    assert latency[(("le", "0.5"),)] == 3.0
    assert latency[(("le", "+Inf"),)] == 3.0
    assert m["santebus_mqtt_publish_latency_seconds_count"] == {(): 3.0}
    assert m["santebus_backend_ack_latency_seconds_sum"] == {(): 1.5}
    assert "process_resident_memory_bytes" in m
    # OpenMetrics when the scraper asks for it (prometheus_client's own negotiation)
    body, content_type = metrics.exposition(reg, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    names = {f.name for f in openmetrics_families(body.decode())}  # type: ignore[no-untyped-call]
    assert {"santebus_device_records", "santebus_mqtt_publish_latency_seconds"} <= names


def test_latency_buckets() -> None:
    latency = Latency((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 7.0):
        latency.observe(seconds)
    assert (latency.counts, latency.count, latency.total) == ([2, 1, 1], 4, 7.65)


def test_the_breakdown_by_kind_is_scanned_at_most_every_interval(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    now = [0.0]
    reader = BacklogReader(box.path, breakdown_every=10.0, breakdown_max_age=60.0,
                           clock=lambda: now[0])  # fmt: skip
    try:
        assert reader.read().by_kind == {}
        box.add([obs_row(1)])
        box.reject(obs_row(1).msg_id, "backend refused: no")
        box.add([obs_row(2)])
        fresh = reader.read()
        assert (fresh.pending, fresh.rejected, fresh.by_kind) == (1, 0, {})  # cached breakdown
        now[0] = 10.0  # the totals moved: counted again
        later = reader.read()
        assert (later.rejected, later.by_kind) == (1, {"clinical": {"pending": 1, "rejected": 1}})
        box.add([obs_row(3)])
        box.reject(obs_row(3).msg_id, "broker refused: no")  # pending and in flight as counted
        now[0] = 69.0
        assert reader.read().rejected == 1  # unchanged totals: kept ...
        now[0] = 70.0
        assert reader.read().rejected == 2  # ... until it is a minute old
        # the oldest undelivered row skips the rejected one ahead of it
        assert later.oldest_created == box.get(obs_row(2).msg_id).created_at  # type: ignore[union-attr]
    finally:
        reader.close()
        box.close()


def test_a_port_in_use_is_an_error_event_and_the_rest_still_runs(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    config = _config(tmp_path / "state", metrics_port=port, status_socket=str(tmp_path / "s.sock"))
    box = Outbox(config.outbox_path)
    events = Events(box, TOPICS)
    forwarder = Forwarder(box, _no_link, TOPICS)
    sources = Sources(config, {}, {}, box, forwarder, CalibrationBook(config.calibration_dir))

    async def main() -> None:
        endpoints = HealthEndpoints(sources, events, env={})
        task = asyncio.create_task(endpoints.run())
        try:
            while endpoints.status is None:
                assert not task.done()
                await asyncio.sleep(0.01)
            assert endpoints.http is None
            reader, writer = await asyncio.open_unix_connection(str(tmp_path / "s.sock"))
            data = json.loads(await reader.read())
            writer.close()
            await writer.wait_closed()
            assert data["bus"] == "bus-it"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(main())
        (row,) = box.rows()
        event = json.loads(row.payload)
        assert (event["type"], event["severity"]) == ("health.unavailable", "error")
        detail = event["detail"]
        assert (detail["endpoint"], detail["address"]) == ("metrics", f"127.0.0.1:{port}")
        assert "address already in use" in detail["error"]
        assert not (tmp_path / "s.sock").exists()  # removed at stop
    finally:
        taken.close()
        box.close()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("health.metrics_port=0", "health.metrics_port: Input should be greater than or equal"),
        ('health.metrics_host="bus.local"', "health.metrics_host: an IP address or 'localhost'"),
        ('health.status_socket="run/s.sock"', "health.status_socket: the status socket path"),
        (f'health.status_socket="/{"x" * 120}"', "health.status_socket: a unix socket path"),
        ("health.metrics=maybe", "health.metrics: Input should be a valid boolean"),
    ],
)
def test_config_faults_name_the_field(override: str, message: str) -> None:
    from click.testing import CliRunner

    from edge.cli import main

    example = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"
    result = CliRunner().invoke(main, ["check-config", str(example), "--set", override])
    assert result.exit_code == 78
    assert message in result.stderr
