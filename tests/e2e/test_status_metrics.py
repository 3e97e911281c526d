"""``santebus status`` and ``/metrics`` of a real daemon, with a simulated tonometer on a pty.

The daemon, the simulator and the reference backend run as ``santebus`` processes around a
real mosquitto. Status and metrics are read while readings flow, compared with each other, and
read again once the broker is gone: the link reads down and the outbox's backlog ages.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from calibration.records import CalibrationBook, CalibrationRecord
from edge.health.status import DaemonNotRunningError, read_status
from simulators.harness import Mosquitto, Stack, free_port, santebus

CONFIG = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"
pytestmark = pytest.mark.e2e
VISIT = "V-STATUS-0001"
T = TypeVar("T")

Metrics = dict[str, dict[tuple[tuple[str, str], ...], float]]


def _scrape(port: int) -> Metrics:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    out: Metrics = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _until(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = probe()
        except DaemonNotRunningError:
            found = None
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def _moving(status: dict[str, Any]) -> tuple[object, ...]:
    """What may change between two reads while readings flow."""
    d, o, m = status["devices"]["tono-1"], status["outbox"], status["mqtt"]
    return (d["state"], d["records"], d["failures"], d["frame_errors"], d["connects"],
            o["pending"], o["in_flight"], o["rejected"], m["connected"], m["published"],
            m["confirmed"], m["puback_latency"]["count"])  # fmt: skip


def _agreeing(sock: Path, port: int) -> tuple[dict[str, Any], Metrics]:
    """A status and a scrape with nothing changed in between (read status, scrape, status)."""

    def probe() -> tuple[dict[str, Any], Metrics] | None:
        before = read_status(sock)
        scraped = _scrape(port)
        after = read_status(sock)
        return (after, scraped) if _moving(before) == _moving(after) else None

    return _until(probe, "a quiet moment to compare status and metrics")


def _assert_agree(status: dict[str, Any], m: Metrics) -> None:
    d, o, q = status["devices"]["tono-1"], status["outbox"], status["mqtt"]
    dev = (("device", "tono-1"),)
    assert m["santebus_device_up"][dev] == (1.0 if d["state"] == "connected" else 0.0)
    assert m["santebus_device_state"][(("device", "tono-1"), ("state", d["state"]))] == 1.0
    assert m["santebus_device_records_total"][dev] == d["records"]
    assert m["santebus_device_failures_total"][dev] == d["failures"]
    assert m["santebus_device_frame_errors_total"][dev] == d["frame_errors"]
    assert m["santebus_calibration_days_left"][dev] == d["calibration"]["days_left"]
    rows = m["santebus_outbox_rows"]
    assert (rows[(("state", "pending"),)], rows[(("state", "in_flight"),)]) == (
        o["pending"],
        o["in_flight"],
    )
    assert rows[(("state", "rejected"),)] == o["rejected"]
    assert m["santebus_mqtt_connected"][()] == (1.0 if q["connected"] else 0.0)
    assert m["santebus_mqtt_publishes_total"][()] == q["published"]
    assert m["santebus_backend_confirmed_total"][()] == q["confirmed"]
    assert m["santebus_mqtt_publish_latency_seconds_count"][()] == q["puback_latency"]["count"]


def test_status_and_metrics_of_a_running_daemon(tmp_path: Path, broker: Mosquitto) -> None:
    sock, port = tmp_path / "s.sock", free_port()
    stack = Stack(
        CONFIG,
        tmp_path,
        broker,
        [
            f"devices.tono-1.transport=serial://{tmp_path / 'dev' / 'tono-1'}?baudrate=9600",
            "simulation.devices.tono-1.patients_per_hour=3600",
            "simulation.devices.tono-1.unplug_every=0",
            "simulation.devices.tono-1.noise_rate=0.2",
            'stations.eye.devices=["tono-1"]',
            f"health.metrics_port={port}",
            f"health.status_socket={sock}",
        ],
    )
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    CalibrationBook(tmp_path / "state" / "calibration").add(CalibrationRecord(
        id="VER-STATUS-1", device_serial="SIM-CT80-0001", device_model="CT-80",
        kind="verification", performed_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        valid_until=today + timedelta(days=30), result="pass", technician="tech-e2e",
        reference_id="MODEL-EYE-1",
    ))  # fmt: skip
    try:
        stack.start_backend()
        stack.run_cli("visit", "start", "--station", "eye", "--visit", VISIT)
        daemon = stack.start_daemon()
        stack.start_simulator(duration=120)

        def acked() -> dict[str, Any] | None:
            s = read_status(sock)
            d = s["devices"]["tono-1"]
            ok = d["state"] == "connected" and d["records"] >= 1 and s["mqtt"]["confirmed"] >= 1
            return s if ok else None

        _until(acked, "a reading stored, published and acknowledged by the backend")
        cli = subprocess.run(
            santebus("status", "--json", "--config", str(CONFIG), *stack.sets),
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        data = json.loads(cli.stdout)
        tono = data["devices"]["tono-1"]
        assert (data["bus"], tono["kind"], tono["state"]) == ("bus-demo-01", "ct80", "connected")
        assert tono["records"] >= 1
        assert tono["last_record_age_s"] is not None
        assert tono["calibration"] == {"validity": "valid", "record": "VER-STATUS-1",
                                       "valid_until": str(today + timedelta(days=30)),
                                       "days_left": 30}  # fmt: skip
        assert data["mqtt"]["connected"] is True
        assert data["mqtt"]["last_connect"] is not None
        assert data["mqtt"]["backend_latency"]["count"] >= 1
        assert data["outbox"]["error"] is None
        assert data["outbox"]["rejected"] == 0
        assert min(data["outbox"]["pending"], data["outbox"]["in_flight"]) >= 0
        assert VISIT not in cli.stdout  # no patient identifier, though every reading has one
        table = subprocess.run(
            santebus("status", "--socket", str(sock)),
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip
        assert "bus bus-demo-01" in table
        assert "mqtt connected" in table
        assert [line for line in table.splitlines() if "tono-1" in line and "connected" in line]
        assert "valid, 30 d left" in table
        assert VISIT not in table

        status, scraped = _agreeing(sock, port)
        _assert_agree(status, scraped)
        build = (("bus", "bus-demo-01"), ("version", data["version"]))
        assert scraped["santebus_build_info"][build] == 1.0

        broker.kill()  # the 4G link is gone: readings keep coming, nothing leaves
        _until(
            lambda: read_status(sock)["mqtt"]["connected"] is False or None, "the link reads down"
        )
        assert _scrape(port)["santebus_mqtt_connected"][()] == 0.0
        waiting = _until(
            lambda: s if (s := read_status(sock))["outbox"]["pending"] >= 1 else None,
            "a reading waiting in the outbox",
        )
        time.sleep(1.0)
        status, scraped = _agreeing(sock, port)
        _assert_agree(status, scraped)
        o = status["outbox"]
        assert o["pending"] + o["in_flight"] >= waiting["outbox"]["pending"]
        aged = waiting["outbox"]["oldest_age_s"] + 0.9  # it ages: nothing leaves
        assert o["oldest_age_s"] >= aged
        assert scraped["santebus_outbox_oldest_age_seconds"][()] >= aged
        assert daemon.stop() == 0
    finally:
        stack.stop()
    assert not sock.exists()  # removed at a clean stop
