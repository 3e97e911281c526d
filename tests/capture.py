"""Record every message a bus publishes, through the product's own MQTT adapter, in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from edge.publish.mqtt import PahoPublisher
from edge.publish.port import InboundMessage, MqttSettings


class Capture:
    """A subscriber on its own thread and event loop; :attr:`seen` grows until :meth:`stop`."""

    def __init__(self, port: int, topic_filter: str, client_id: str = "contract-capture") -> None:
        self.seen: list[InboundMessage] = []
        self._port = port
        self._filter = topic_filter
        self._client_id = client_id
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._run(),), daemon=True
        )

    def start(self) -> Capture:
        self._thread.start()
        if not self._ready.wait(15):
            self.stop()
            raise RuntimeError(f"capture client did not subscribe: {self._failure!r}")
        return self

    def stop(self) -> None:
        """Disconnect, keeping everything received up to now."""
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        if not self._thread.is_alive():
            self._loop.close()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        settings = MqttSettings(host="127.0.0.1", port=self._port, client_id=self._client_id,
                                tls=False)  # fmt: skip
        link = PahoPublisher(settings)
        try:
            await link.connect()
            await link.subscribe(self._filter)
        except Exception as exc:
            self._failure = exc
            await link.close()
            raise
        self._ready.set()
        try:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    self.seen.append(await asyncio.wait_for(link.state.messages.get(), 0.2))
            while not link.state.messages.empty():  # what arrived before the stop
                self.seen.append(link.state.messages.get_nowait())
        finally:
            await link.close()


@contextlib.contextmanager
def capturing(
    port: int, topic_filter: str, client_id: str = "contract-capture"
) -> Iterator[list[InboundMessage]]:
    """Messages matching ``topic_filter`` (retained ones included) until the block ends."""
    capture = Capture(port, topic_filter, client_id).start()
    try:
        yield capture.seen
    finally:
        capture.stop()
