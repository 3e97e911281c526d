"""Storage faults on the real stack: a full outbox, and a corrupt outbox at start-up."""

from __future__ import annotations

import time
from pathlib import Path

from simulators.harness import Mosquitto, Stack
from tests.e2e.test_end_to_end import CONFIG, _assert_nothing_lost, _logs


def _stack(tmp_path: Path, broker: Mosquitto, *extra: str) -> Stack:
    port = f"serial://{tmp_path / 'dev' / 'tono-1'}?baudrate=9600"
    return Stack(
        CONFIG,
        tmp_path,
        broker,
        [
            f"devices.tono-1.transport={port}",
            "simulation.devices.tono-1.patients_per_hour=3600",
            "simulation.devices.tono-1.unplug_every=0",
            "simulation.drain_timeout=90",
            "mqtt.resend_after=3.0",
            *extra,
        ],
    )


def test_a_full_outbox_refuses_new_readings_then_recovers_without_restart(
    tmp_path: Path, broker: Mosquitto
) -> None:
    stack = _stack(tmp_path, broker, "outbox.max_bytes=65536", "outbox.reserve_bytes=0")
    try:
        stack.start_backend()
        daemon = stack.start_daemon()
        sim = stack.start_simulator(duration=25)
        time.sleep(2)
        broker.kill()  # nothing drains: the outbox fills up
        deadline = time.monotonic() + 60
        while "event type=outbox.full" not in _logs(stack, "daemon"):
            assert time.monotonic() < deadline, "the outbox never filled"
            time.sleep(0.5)
        time.sleep(3)
        broker.start()
        assert sim.wait(180) == 0, "readings refused while full were never stored"
        assert stack.wait_drained(90)
        assert daemon.alive()  # recovered without a restart
    finally:
        stack.stop()
    logs = _logs(stack, "daemon")
    assert "record not stored device=tono-1 error='outbox full:" in logs
    assert "event type=outbox.recovered" in logs
    assert "event type=outbox.high_water" in logs
    _assert_nothing_lost(stack)


def test_a_corrupt_outbox_is_moved_aside_alarmed_and_the_daemon_runs(
    tmp_path: Path, broker: Mosquitto
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    garbage = b"SQLite format 3\x00" + bytes(range(256)) * 40
    (state / "outbox.sqlite").write_bytes(garbage)
    stack = _stack(tmp_path, broker)
    try:
        stack.start_backend()
        stack.start_daemon()
        sim = stack.start_simulator(duration=10)
        assert sim.wait(120) == 0
        assert stack.wait_drained(60)
    finally:
        stack.stop()
    (aside,) = state.glob("outbox.sqlite.corrupt-*")
    assert aside.read_bytes() == garbage  # kept for forensics, never deleted
    logs = _logs(stack, "daemon")
    assert "outbox corrupt path=" in logs
    assert "event type=outbox.corrupt severity=critical" in logs
    _assert_nothing_lost(stack)
