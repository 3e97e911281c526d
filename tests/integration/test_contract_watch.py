"""The contract watch itself: it sees what is published, across a broker restart, and it fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.publish.mqtt import PahoPublisher
from edge.publish.port import MqttSettings
from simulators.harness import Mosquitto
from tests.contract_watch import ContractWatch
from tests.helpers import TOPICS, event_row, obs_row


async def _publish(port: int, *messages: tuple[str, bytes]) -> None:
    link = PahoPublisher(MqttSettings(host="127.0.0.1", port=port, client_id="w", tls=False))
    await link.connect()
    try:
        for topic, payload in messages:
            assert (await link.publish(topic, payload)).accepted
    finally:
        await link.close()


def test_the_watch_checks_everything_published_even_across_a_restart(tmp_path: Path) -> None:
    watch = ContractWatch()
    Mosquitto.observers.append(watch)
    broker = Mosquitto(tmp_path / "broker")
    try:
        broker.start()
        good, event = obs_row(1), event_row()
        asyncio.run(_publish(broker.port, (good.topic, good.payload), (event.topic, event.payload)))
        broker.kill()  # a crash: the watch's session survives in the broker's persistence ...
        broker.start()
        asyncio.run(_publish(broker.port, (f"santebus/v1/{TOPICS.bus}/obs/x", b"not json"),
                             ("elsewhere/topic", b"{}")))  # fmt: skip
        broker.stop()
    finally:
        Mosquitto.observers.remove(watch)
        watch.close()
        broker.stop()
    assert sorted(m.topic for m in watch.seen) == sorted(
        [good.topic, event.topic, f"santebus/v1/{TOPICS.bus}/obs/x", "elsewhere/topic"]
    )
    found = watch.violations()
    assert len(found) == 2
    assert "payload is not JSON" in found[0]
    assert "'elsewhere/topic' is not in docs/asyncapi.yaml" in found[1]
