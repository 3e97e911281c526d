"""The daemon closes an idle visit by itself (issue #4), as a real process on a real broker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from simulators.harness import Mosquitto, Stack
from tests.capture import capturing

CONFIG = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"
pytestmark = pytest.mark.e2e


def test_an_idle_visit_is_closed_by_the_daemon_with_an_event(
    tmp_path: Path, broker: Mosquitto
) -> None:
    stack = Stack(
        CONFIG,
        tmp_path,
        broker,
        [
            f"devices.tono-1.transport=serial://{tmp_path / 'no-such-port'}",
            'stations.eye.devices=["tono-1"]',
            "stations.eye.idle_close_s=3",
            "stations.bp.devices=[]",
            "stations.bp.idle_close_s=4",
        ],
    )
    try:
        with capturing(broker.port, "santebus/v1/+/events", client_id="idle-test") as events:
            stack.start_daemon()
            stack.run_cli("visit", "start", "--station", "eye", "--visit", "V-IDLE-0001")
            stack.run_cli("visit", "start", "--station", "bp", "--visit", "V-IDLE-0002")
            assert len(json.loads(stack.run_cli("visit", "list", "--json"))) == 2
            deadline = time.monotonic() + 30
            while json.loads(stack.run_cli("visit", "list", "--json")):
                assert time.monotonic() < deadline, "the idle visits were never closed"
                time.sleep(0.5)
            closed_at = time.monotonic()
            while len([e for e in events if b"visit.closed" in e.payload]) < 2:
                assert time.monotonic() < closed_at + 15, "no visit.closed event published"
                time.sleep(0.2)
        assert stack.daemon is not None
        assert stack.daemon.stop() == 0
    finally:
        stack.stop()
    closed = [json.loads(e.payload) for e in events if b"visit.closed" in e.payload]
    assert sorted(e["detail"]["station"] for e in closed) == ["bp", "eye"]
    assert {e["detail"]["by"] for e in closed} == {"idle"}
    # no visit id in events (they are operational, not clinical)
    assert all(b"V-IDLE" not in e.payload for e in events)
