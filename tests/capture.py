"""Record every message a bus publishes, through the product's own MQTT adapter, in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from edge.publish.mqtt import MqttSettings, PahoPublisher
from edge.publish.port import InboundMessage


@contextlib.contextmanager
def capturing(port: int, topic_filter: str) -> Iterator[list[InboundMessage]]:
    """Messages matching ``topic_filter`` (retained ones included) until the block ends."""
    seen: list[InboundMessage] = []
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop: asyncio.Event | None = None

    async def run() -> None:
        nonlocal stop
        stop = asyncio.Event()
        settings = MqttSettings(
            host="127.0.0.1", port=port, client_id="contract-capture", tls=False
        )
        link = PahoPublisher(settings)
        await link.connect()
        try:
            await link.subscribe(topic_filter)
            ready.set()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    seen.append(await asyncio.wait_for(link.state.messages.get(), 0.2))
        finally:
            await link.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(15), "capture client did not subscribe"
        yield seen
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()
