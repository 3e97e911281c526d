"""Helpers shared by the integration and chaos tests: Observation rows, a running reference
backend, a running forwarder."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.events import Events
from edge.outbox import NewRow, Outbox
from edge.pipeline import fhir
from edge.pipeline.measurement import Measurement, message_id
from edge.pipeline.telemetry import Sample, TelemetryBuffer
from edge.publish.forwarder import Forwarder
from edge.publish.topics import Topics
from simulators.backend.service import ReferenceBackend
from simulators.backend.store import BackendStore

BUS = "bus-it"
TOPICS = Topics(BUS)


def obs_row(n: int) -> NewRow:
    """Observation row number ``n`` of bus ``bus-it``, as the pipeline makes them."""
    msg_id = message_id("tono-1", "SN", f"rec-{n}", "iop.right")
    m = Measurement(
        msg_id=msg_id,
        bus_id=BUS,
        device_id="tono-1",
        device_model="CT-80",
        device_serial="SN",
        quantity="iop.right",
        value=10.0 + n / 10,
        unit="mmHg",
        effective=datetime(2026, 11, 23, 9, 0, n % 60, tzinfo=ZoneInfo("Europe/Paris")),
        device_status="ok",
    )
    return NewRow(msg_id, "tono-1", TOPICS.obs("tono-1"), fhir.encode(m))


def _stored(make: Callable[[Outbox], object]) -> NewRow:
    """The one row ``make`` stores through the product's own code, in a scratch outbox."""
    with tempfile.TemporaryDirectory() as scratch:
        box = Outbox(Path(scratch) / "o.sqlite")
        make(box)
        (row,) = box.rows()
        box.close()
    return NewRow(row.msg_id, row.device, row.topic, row.payload, kind=row.kind)


def event_row() -> NewRow:
    """An event row as :class:`edge.events.Events` stores them."""
    return _stored(lambda box: Events(box, TOPICS).raise_event("visit.opened", "info", None,
                                                                station="eye"))  # fmt: skip


def telemetry_row(n: int) -> NewRow:
    """Telemetry pack number ``n`` of source ``cabin``, as the telemetry buffer makes them."""
    at = datetime(2026, 11, 23, 9, 0, n % 60, tzinfo=UTC)

    def make(box: Outbox) -> None:
        buffer = TelemetryBuffer(box, TOPICS)
        buffer.add(Sample("cabin", "temperature", 21.0 + n / 10, "Cel", at))
        buffer.flush()

    return _stored(make)


@contextlib.contextmanager
def running_backend(
    port: int,
    store: BackendStore,
    client_id: str,
    host: str = "127.0.0.1",
    tls: tuple[Path, Path, Path] | None = None,
) -> Iterator[ReferenceBackend]:
    """The reference backend in a thread, subscribed before the block starts."""
    service = ReferenceBackend(host, port, store, client_id=client_id, tls=tls)
    stop = threading.Event()
    thread = threading.Thread(target=service.run_until, args=(stop,))
    thread.start()
    try:
        assert service.subscribed.wait(10), "reference backend did not subscribe"
        yield service
    finally:
        stop.set()
        thread.join(10)


@contextlib.asynccontextmanager
async def forwarding(forwarder: Forwarder) -> AsyncIterator[None]:
    """``forwarder.run()`` as a task for the duration of the block, cancelled after it."""
    task = asyncio.create_task(forwarder.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_until(forwarder: Forwarder, done: Callable[[], bool], timeout: float) -> None:
    """Run the forwarder until ``done()``; TimeoutError after ``timeout`` seconds."""
    async with forwarding(forwarder), asyncio.timeout(timeout):
        while not done():
            await asyncio.sleep(0.1)
