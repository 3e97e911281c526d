"""Backlog drain: N Observations queued during an outage, drained through a real mosquitto.

Compares, in one run on one broker with the reference backend subscribed (as its own process,
as in production, so it does not share our interpreter):
* the limit - a bare paho QoS 1 publisher sending N Observations (window W), with no outbox;
* the gateway - Forwarder draining an outbox of N rows, each deleted only on the backend's
  (group-committed) ack.

Usage, from the repository root: ``python -m benchmarks.drain [N] [W] [B]`` (defaults 100000,
100, 1): B reference-backend processes sharing the subscription (MQTT 5 shared subscription),
for both runs. B = 0 runs no backend: the gateway figure is then its PUBACK rate alone (its
rows are never acked, so never deleted). Prints figures.
"""

from __future__ import annotations

import asyncio
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.outbox import NewRow, Outbox
from edge.publish.forwarder import Forwarder, ForwarderSettings
from edge.publish.mqtt import PahoPublisher
from edge.publish.port import MqttSettings
from edge.publish.topics import Topics
from simulators.harness import Mosquitto, Process, santebus
from tests.helpers import obs_row


def bare_publisher(port: int, payloads: list[bytes], window: int) -> float:
    done = threading.Event()
    acked = [0]
    # a sliding window, as the gateway's: paho queues beyond its in-flight limit in a list it
    # scans per PUBACK, which turns a 100,000-message burst quadratic (166 msg/s measured)
    window_slots = threading.Semaphore(window)

    def on_publish(*_: object) -> None:
        acked[0] += 1
        window_slots.release()
        if acked[0] == len(payloads):
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bare", protocol=paho.MQTTv5)
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    sock = client.socket()
    assert isinstance(sock, socket.socket)
    # as the gateway does: without it Nagle stalls a QoS 1 window against delayed ACKs
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    start = time.perf_counter()
    for payload in payloads:
        window_slots.acquire()
        client.publish("santebus/v1/bare/obs/x", payload, qos=1)
    done.wait(600)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return len(payloads) / elapsed


def gateway_drain(
    port: int, rows: list[NewRow], window: int, work: Path, acked: bool = True
) -> tuple[float, float]:
    """(rows PUBACKed per second, rows deleted on the backend's ack per second), one run."""
    box = Outbox(work / "outbox.sqlite")
    for i in range(0, len(rows), 1000):
        box.add(rows[i : i + 1000])
    settings = MqttSettings(
        host="127.0.0.1", port=port, client_id="bench-gw", tls=False, max_inflight=window
    )
    forwarder = Forwarder(
        box,
        lambda: PahoPublisher(settings),
        Topics("bus-it"),
        ForwarderSettings(max_in_flight=window),  # the product's resend_after (30 s)
    )

    async def run() -> tuple[float, float]:
        task = asyncio.create_task(forwarder.run())
        start = time.perf_counter()
        published_at = 0.0
        async with asyncio.timeout(900):
            while (forwarder.stats.confirmed if acked else forwarder.stats.published) < len(rows):
                await asyncio.sleep(0.01)
                if not published_at and forwarder.stats.published >= len(rows):
                    published_at = time.perf_counter() - start
        elapsed = time.perf_counter() - start
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return published_at or elapsed, elapsed

    published, elapsed = asyncio.run(run())
    box.close()
    if forwarder.stats.published > len(rows):
        print(f"re-sent after resend_after: {forwarder.stats.published - len(rows)} rows")
    return len(rows) / published, len(rows) / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    window = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rows = [obs_row(i) for i in range(n)]
    config = Path(__file__).parents[1] / "examples" / "simulated-bus.toml"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker")
        # Sized like a production broker for its backend: with mosquitto's default of 1,000
        # queued messages per subscriber, a backend lagging behind the drain has messages
        # dropped after their PUBACK; the gateway re-sends those after resend_after, which is
        # what tests/integration/test_forwarder.py checks and not what this measures.
        # and advertising a Receive Maximum (= max_inflight_messages) that admits the window
        broker.conf.write_text(
            broker.conf.read_text()
            + "max_queued_messages 1000000\n"
            + f"max_inflight_messages {window + 1}\n"
        )
        broker.start()
        share = ["--share", "ingest"] if workers > 1 else []
        backends = [
            Process(
                f"backend-{i}",
                santebus(
                    "backend",
                    "--config",
                    str(config),
                    "--db",
                    str(work / "backend.sqlite"),
                    "--set",
                    f"mqtt.port={broker.port}",
                    "--set",
                    "gateway.log_level=WARNING",
                    *share,
                    "--instance",
                    str(i),
                ),
                work,
            )
            for i in range(workers)
        ]
        time.sleep(1.5)
        try:
            bare = bare_publisher(broker.port, [r.payload for r in rows], window)
            sent, gateway = gateway_drain(broker.port, rows, window, work, acked=workers > 0)
        finally:
            for backend in backends:
                backend.stop()
            broker.stop()
    print(f"machine: {platform.machine()} python {platform.python_version()}")
    print(f"payload: {len(rows[0].payload)} bytes, N={n}, window={window}, backends={workers}")
    print(f"bare paho QoS1 publisher (limit): {bare:,.0f} msg/s")
    print(f"gateway, all rows PUBACKed:     {sent:,.0f} msg/s = {sent / bare:.2f} x limit")
    if workers:
        print(f"gateway drain, backend-acked:   {gateway:,.0f} msg/s")
        print(f"ratio gateway/limit: {gateway / bare:.2f}")


if __name__ == "__main__":
    main()
