"""The daemon under a service manager: readiness, watchdog, a hung loop, the stop budget.

No systemd runs here (CI is a container), so the test plays its part over the real protocol:
it binds the ``AF_UNIX`` datagram socket systemd would pass in ``$NOTIFY_SOCKET`` and sets
``WATCHDOG_USEC`` as ``WatchdogSec=`` would (sd_notify(3), sd_watchdog_enabled(3)), then reads
what the real ``santebus run`` process sends. The hung loop is a real one: the test holds the
outbox's write lock (as a stuck operator command would), so the daemon's next commit blocks the
event loop inside SQLite's busy handler.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.harness import Mosquitto, Process, Stack, free_port, santebus, wait_for_paths

CONFIG = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"
UNIT = Path(__file__).parents[2] / "systemd" / "santebus.service"
WATCHDOG_S = 2.0
pytestmark = pytest.mark.e2e


class Manager:
    """The service manager's end of sd_notify: every datagram, timestamped."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(dir="/tmp", prefix="sdm")  # sockaddr_un: 108 B
        self.path = str(Path(self._dir.name) / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def env(self, logs: Path) -> dict[str, str]:
        return {
            "NOTIFY_SOCKET": self.path,
            "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6)),
            "LOGS_DIRECTORY": str(logs),
        }

    def collect(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))

    def wait_for(self, key: str, timeout: float) -> dict[str, str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for _, fields in self.messages:
                if key in fields:
                    return fields
            self.collect(min(0.5, end - time.monotonic()))
        raise AssertionError(f"no {key}= from the daemon in {timeout} s: {self.messages}")

    def pings_after(self, t: float) -> int:
        return sum(1 for at, f in self.messages if at > t and f.get("WATCHDOG") == "1")

    def close(self) -> None:
        self.sock.close()
        self._dir.cleanup()


@pytest.fixture
def manager() -> Iterator[Manager]:
    m = Manager()
    yield m
    m.close()


def _stop_budget() -> float:
    found = re.search(r"^TimeoutStopSec=(\d+)$", UNIT.read_text(), re.MULTILINE)
    assert found, "the unit declares no stop budget"
    return float(found.group(1))


def test_ready_reports_devices_and_broker_then_the_loop_feeds_the_watchdog_until_it_hangs(
    tmp_path: Path, broker: Mosquitto, manager: Manager
) -> None:
    port = tmp_path / "dev" / "tono-1"
    stack = Stack(CONFIG, tmp_path, broker, [
        f"devices.tono-1.transport=serial://{port}?baudrate=9600",
        "simulation.devices.tono-1.patients_per_hour=2400",
        "simulation.devices.tono-1.unplug_every=1000.0",
        "simulation.devices.tono-1.noise_rate=0.0",
    ])  # fmt: skip
    logs = tmp_path / "service-logs"
    logs.mkdir()
    try:
        stack.start_simulator(duration=60)
        wait_for_paths(port)
        argv = santebus("run", "--config", str(CONFIG), *stack.sets)
        daemon = Process("daemon", argv, stack.logs, env=manager.env(logs))
        # READY only once the device and the broker have been reached: its STATUS says so.
        ready = manager.wait_for("READY", 30)
        assert ready["STATUS"].startswith("devices 1/1 connected;"), ready
        assert ready["STATUS"].endswith("mqtt connected"), ready
        # WATCHDOG=1 every half interval, from the event loop
        t_ready = time.monotonic()
        manager.collect(2.5 * WATCHDOG_S)
        assert manager.pings_after(t_ready) >= 3, manager.messages

        # Hang the loop: hold the outbox's write lock; the next reading's commit waits in
        # SQLite's busy handler (5 s) on the loop thread, longer than the watchdog allows.
        db = sqlite3.connect(tmp_path / "state" / "outbox.sqlite", isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        try:
            code = daemon.wait(30)
        finally:
            db.execute("ROLLBACK")
            db.close()
        assert code == 1, "the stall guard did not end the hung daemon with a failure"
        # its stacks show where the loop hung: in an outbox write, under the ingest of the
        # reading or the forwarder marking it sent (whichever wrote first after the lock)
        report = (logs / "stall.log").read_text()
        assert "most recent call first" in report, report
        assert "edge/outbox/store.py" in report, report
        assert "edge/pipeline/ingest.py" in report or "edge/publish/forwarder.py" in report, report
        # the pings stopped with the loop, before the exit
        manager.collect(0.2)
        last_ping = max(at for at, f in manager.messages if f.get("WATCHDOG") == "1")
        assert not any("STOPPING" in f for at, f in manager.messages if at >= last_ping)

        # the restart systemd makes (Restart=on-failure) finds the report and says so
        again = Process("daemon-2", argv, stack.logs, env=manager.env(logs))
        manager.messages.clear()
        manager.wait_for("READY", 30)
        assert again.stop() == 0
        kept = sorted(logs.glob("stall-*.log"))
        assert len(kept) == 1
        assert kept[0].read_text() == report
        restarted = (stack.logs / "daemon-2.log").read_text()
        assert f"previous run stopped by the stall guard (event loop hung) stacks={kept[0]}" in (
            restarted
        )
    finally:
        stack.stop()


def test_ready_without_broker_or_device_and_a_clean_stop_within_the_budget(
    tmp_path: Path, manager: Manager
) -> None:
    # the bus starts with no 4G and the tonometer switched off: the daemon works offline
    sets = [
        "--set", f"mqtt.port={free_port()}",
        "--set", f"gateway.state_dir={tmp_path / 'state'}",
        "--set", f"devices.tono-1.transport=serial://{tmp_path / 'absent'}?baudrate=9600",
    ]  # fmt: skip
    logs = tmp_path / "service-logs"
    logs.mkdir()
    daemon = Process(
        "daemon", santebus("run", "--config", str(CONFIG), *sets), tmp_path, manager.env(logs)
    )
    try:
        ready = manager.wait_for("READY", 30)
        assert ready["STATUS"].startswith("devices 0/1 connected;"), ready
        assert ready["STATUS"].endswith("mqtt offline"), ready
        started = time.monotonic()
        code = daemon.stop(timeout=_stop_budget())
        took = time.monotonic() - started
    finally:
        if daemon.alive():
            daemon.kill()
    assert code == 0, f"SIGTERM did not end the daemon cleanly within the unit's budget: {code}"
    manager.collect(0.2)
    stopping = manager.wait_for("STOPPING", 1)
    assert stopping["STATUS"] == "stopping: signal"
    assert "daemon stopped outbox=" in (tmp_path / "daemon.log").read_text()
    print(f"clean stop took {took:.2f} s of a {_stop_budget():.0f} s budget")
    assert (logs / "stall.log").read_bytes() == b""  # armed, never fired
