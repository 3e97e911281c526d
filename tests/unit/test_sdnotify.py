"""The sd_notify protocol and the service task, against a real notification socket.

A real ``AF_UNIX`` datagram socket stands in for systemd's (sd_notify(3)): the tests read what
the daemon's code sends, exactly as the service manager would.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.sdnotify import Notifier
from edge.service import Service, ServiceView, rotate_stall_report, status_line
from edge.supervise import DeviceHealth


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    # sockaddr_un holds 108 bytes: pytest's tmp_path can be longer, so a short directory.
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="sdn") as work:
        path = str(Path(work) / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(5.0)
        try:
            yield path, sock
        finally:
            sock.close()


def fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().splitlines())


def test_messages_reach_the_socket_as_key_value_lines(
    notify_socket: tuple[str, socket.socket],
) -> None:
    path, sock = notify_socket
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.watchdog_interval is None
    assert notifier.ready("devices 1/1 connected")
    assert fields(sock.recv(4096)) == {"READY": "1", "STATUS": "devices 1/1 connected"}
    assert notifier.watchdog()
    assert fields(sock.recv(4096)) == {"WATCHDOG": "1"}
    assert notifier.extend_timeout(2.5)
    assert fields(sock.recv(4096)) == {"EXTEND_TIMEOUT_USEC": "2500000"}
    notifier.close()


def test_an_abstract_socket_name_is_addressed_with_a_leading_nul() -> None:
    name = f"santebus-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5.0)
    try:
        notifier = Notifier.from_environment({"NOTIFY_SOCKET": "@" + name})
        assert notifier.stopping("stopping: signal")
        assert fields(sock.recv(4096)) == {"STOPPING": "1", "STATUS": "stopping: signal"}
        notifier.close()
    finally:
        sock.close()


def test_watchdog_settings_follow_sd_watchdog_enabled() -> None:
    mine = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_environment(mine).watchdog_interval == 30.0
    # a value inherited from a parent is not for this process
    assert Notifier.from_environment({**mine, "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert Notifier.from_environment({"WATCHDOG_USEC": "0"}).watchdog_interval is None
    assert Notifier.from_environment({"WATCHDOG_USEC": "soon"}).watchdog_interval is None


def test_outside_systemd_nothing_is_sent_and_nothing_fails() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    assert not notifier.ready("x")
    assert not notifier.watchdog()


def test_a_vanished_socket_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert not notifier.watchdog()
    assert not notifier.watchdog()
    failures = [r for r in caplog.records if "systemd notification failed" in r.getMessage()]
    assert len(failures) == 1
    assert str(tmp_path / "gone") in failures[0].getMessage()
    notifier.close()


def _view(health: dict[str, DeviceHealth], settled: list[bool]) -> ServiceView:
    return ServiceView(health, lambda: settled[0], lambda: settled[0], lambda: 3)


def test_ready_waits_for_every_device_and_the_broker(
    notify_socket: tuple[str, socket.socket],
) -> None:
    path, sock = notify_socket
    health = {"tono-1": DeviceHealth(), "bp-1": DeviceHealth()}
    settled = [False]
    service = Service(Notifier(path, None), _view(health, settled), poll=0.01)

    async def scenario() -> None:
        task = asyncio.create_task(service.run())
        await asyncio.sleep(0.1)
        assert not service.ready.is_set()  # nothing settled yet
        health["tono-1"].state = "connected"
        settled[0] = True
        await asyncio.sleep(0.1)
        assert not service.ready.is_set()  # bp-1 still on its first attempt
        health["bp-1"].state = "lost"  # a failed attempt settles it: the daemon works on
        await asyncio.wait_for(service.ready.wait(), 2.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    service.notifier.close()
    ready = fields(sock.recv(4096))
    assert ready["READY"] == "1"
    assert ready["STATUS"] == (
        "devices 1/2 connected; 3 rows waiting in the outbox; mqtt connected"
    )


def test_a_device_still_connecting_does_not_hold_readiness_forever(
    notify_socket: tuple[str, socket.socket],
) -> None:
    path, sock = notify_socket
    health = {"tono-1": DeviceHealth(), "ble-1": DeviceHealth(state="connected")}
    service = Service(Notifier(path, None), _view(health, [True]), ready_within=0.2, poll=0.01)

    async def scenario() -> None:
        task = asyncio.create_task(service.run())
        await asyncio.wait_for(service.ready.wait(), 2.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    service.notifier.close()
    ready = fields(sock.recv(4096))
    assert ready["STATUS"].endswith("; still connecting: tono-1")


def test_status_line_counts_devices_and_survives_a_storage_error() -> None:
    from edge.outbox import OutboxError

    def broken() -> int:
        raise OutboxError("disk I/O error")

    view = ServiceView({"a": DeviceHealth(state="connected")}, lambda: True, lambda: False, broken)
    assert status_line(view) == "devices 1/1 connected; ? rows waiting in the outbox; mqtt offline"


def test_a_stall_report_of_the_previous_run_is_logged_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "stall.log").write_text('Thread 0x1 (most recent call first):\n  File "x.py"\n')
    kept = rotate_stall_report(tmp_path)
    assert kept is not None
    assert kept.name.startswith("stall-")
    assert kept.exists()
    assert not (tmp_path / "stall.log").exists()
    assert any(str(kept) in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    (tmp_path / "stall.log").write_bytes(b"")  # an empty report: a clean previous run
    assert rotate_stall_report(tmp_path) is None
