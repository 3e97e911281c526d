"""Network faults between gateway and broker, through the loopback fault proxy.

Readings keep arriving during each fault; afterwards every one of them must be stored at the
backend exactly once (the backend counts the duplicate copies it de-duplicated).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from edge.outbox import Outbox
from edge.publish.forwarder import Forwarder, ForwarderSettings
from edge.publish.mqtt import PahoPublisher
from edge.publish.port import MqttSettings
from edge.publish.topics import Topics
from simulators.backend.store import BackendStore
from simulators.faultproxy import FaultProxy
from simulators.harness import Mosquitto
from tests.helpers import BUS, forwarding, obs_row

KEEPALIVE = 2


@pytest.mark.parametrize("fault", ["half-open", "reset", "partition", "pubacks lost"])
def test_network_fault_loses_nothing(
    fault: str,
    broker: Mosquitto,
    backend: BackendStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = FaultProxy(broker.port).start()
    box = Outbox(tmp_path / "outbox.sqlite")
    settings = MqttSettings(
        host="127.0.0.1", port=proxy.port, client_id="gw-chaos", tls=False, keepalive=KEEPALIVE
    )
    forwarder = Forwarder(
        box,
        lambda: PahoPublisher(settings),
        Topics(BUS),
        ForwarderSettings(resend_after=4.0, backoff_min=0.2, backoff_max=1.0, puback_timeout=5.0),
    )
    made: list[str] = []
    detected: list[float] = []

    async def produce(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            row = obs_row(len(made))
            box.add([row])
            made.append(row.msg_id)
            forwarder.wake.set()
            await asyncio.sleep(0.1)

    async def scenario() -> None:
        async with forwarding(forwarder):
            await produce(1.0)
            start = time.monotonic()
            if fault == "half-open":
                proxy.set_mode("blackhole")
            elif fault == "reset":
                proxy.reset()
            elif fault == "partition":
                proxy.set_mode("refuse")
                proxy.reset()
            else:
                proxy.set_mode("drop_down")
            while "mqtt link down" not in caplog.text and time.monotonic() - start < 15:
                await produce(0.1)
            detected.append(time.monotonic() - start)
            await produce(1.0)
            proxy.set_mode("pass")
            await produce(1.0)
            async with asyncio.timeout(40):
                while list(box.rows()):
                    await asyncio.sleep(0.1)

    with caplog.at_level(logging.INFO):
        try:
            asyncio.run(scenario())
        finally:
            proxy.stop()
    stored = backend.stored_ids()
    assert sorted(stored) == sorted(made)  # every reading, exactly once
    assert forwarder.stats.connects >= 2  # the fault really broke the link
    if fault in ("half-open", "pubacks lost"):
        assert "mqtt link silent" in caplog.text  # found by the keepalive watchdog
        # within 1.5 x keepalive, plus the watchdog's tick and a publish timeout margin
        assert detected[0] < 2.5 * KEEPALIVE, f"outage detected after {detected[0]:.1f}s"
    if fault == "pubacks lost":
        # at least one PUBACK never came, yet that reading is stored once: either the backend
        # ack queued in our persistent session deleted the row before it was re-sent, or the
        # re-sent copy was de-duplicated (test_backend_deduplicates_resent_copies)
        assert forwarder.stats.published < len(made)
