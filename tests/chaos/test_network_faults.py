"""Network faults between gateway and broker, through the loopback fault proxy.

Readings keep arriving during each fault; afterwards every one of them must be stored at the
backend exactly once (the backend counts the duplicate copies it de-duplicated).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.outbox import Outbox
from edge.publish.forwarder import Forwarder, ForwarderSettings
from edge.publish.mqtt import MqttSettings, PahoPublisher
from edge.publish.topics import Topics
from simulators.backend.service import ReferenceBackend
from simulators.backend.store import BackendStore
from simulators.faultproxy import FaultProxy
from simulators.harness import Mosquitto
from tests.integration.test_forwarder import BUS, _obs_row

KEEPALIVE = 2


@pytest.fixture
def backend(broker: Mosquitto, tmp_path: Path) -> Iterator[BackendStore]:
    store = BackendStore(tmp_path / "backend.sqlite")
    service = ReferenceBackend("127.0.0.1", broker.port, store, client_id="backend-chaos")
    stop = threading.Event()
    thread = threading.Thread(target=service.run_until, args=(stop,))
    thread.start()
    assert service.subscribed.wait(10), "reference backend did not subscribe"
    yield store
    stop.set()
    thread.join(10)
    store.close()


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
            row = _obs_row(len(made))
            box.add([row])
            made.append(row.msg_id)
            forwarder.wake.set()
            await asyncio.sleep(0.1)

    async def scenario() -> None:
        task = asyncio.create_task(forwarder.run())
        try:
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
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

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
