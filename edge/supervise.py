"""Per-device supervision: a device failure is an event and a state, never the end of a loop."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from drivers.errors import DeviceConfigError, TransientDeviceError
from drivers.readings import Delivery
from drivers.transport import ByteTransport
from edge.outbox import OutboxError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeviceHealth:
    state: str = "starting"
    connects: int = 0
    failures: int = 0
    records: int = 0


async def supervise(
    device_id: str,
    make_transport: Callable[[], ByteTransport],
    deliveries: Callable[[ByteTransport], AsyncIterator[Delivery]],
    commit: Callable[[Delivery], int],
    reconnect_min: float = 0.5,
    reconnect_max: float = 30.0,
    health: DeviceHealth | None = None,
) -> None:
    """Open, read, commit then acknowledge, forever; reconnect with jittered backoff."""
    health = health if health is not None else DeviceHealth()
    delay = reconnect_min
    while True:
        transport = make_transport()
        try:
            await transport.open()
            health.state, health.connects = "connected", health.connects + 1
            log.info("device connected device=%s url=%s", device_id, transport.url)
            delay = reconnect_min
            async for delivery in deliveries(transport):
                commit(delivery)  # durable (fsync) before the device hears ACK
                health.records += 1
                await delivery.acknowledge()
        except TransientDeviceError as exc:
            health.state, health.failures = "lost", health.failures + 1
            log.warning("device lost device=%s error=%r retry_in=%.1fs", device_id, str(exc), delay)
        except OutboxError as exc:
            health.state, health.failures = "storage-error", health.failures + 1
            # Not acknowledged: the device keeps the record and sends it again.
            log.error("record not stored device=%s error=%r", device_id, str(exc))
        except DeviceConfigError as exc:
            health.state = "misconfigured"
            log.error("device misconfigured device=%s error=%r", device_id, str(exc))
            delay = reconnect_max
        finally:
            await transport.close()
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(delay * 2, reconnect_max)
