"""Per-device supervision: a device failure is an event and a state, never the end of a loop."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from drivers.errors import DeviceConfigError, TransientDeviceError
from drivers.readings import Delivery
from edge.outbox import OutboxError

log = logging.getLogger(__name__)


class Link(Protocol):
    """What the supervisor opens and closes: a ByteTransport, a BLE link."""

    @property
    def url(self) -> str: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...


L = TypeVar("L", bound=Link)


@dataclass(slots=True)
class DeviceHealth:
    state: str = "starting"
    connects: int = 0
    failures: int = 0
    records: int = 0
    #: time.monotonic() of the last record stored (edge/health: the last reading's age)
    last_record: float | None = None
    #: an NIBP module's cuff pressure while it measures, mmHg (edge/app.py)
    live_pressure: float | None = None


async def supervise(
    device_id: str,
    make_transport: Callable[[], L],
    deliveries: Callable[[L], AsyncIterator[Delivery]],
    commit: Callable[[Delivery], int],
    reconnect_min: float = 0.5,
    reconnect_max: float = 30.0,
    health: DeviceHealth | None = None,
) -> None:
    """Open, read, commit then acknowledge, forever; reconnect with jittered backoff."""
    health = health if health is not None else DeviceHealth()
    delay = reconnect_min
    down_since: float | None = None
    while True:
        transport = make_transport()
        try:
            await transport.open()
            health.state, health.connects = "connected", health.connects + 1
            down = "" if down_since is None else f" down_for={time.monotonic() - down_since:.1f}s"
            log.info("device connected device=%s url=%s%s", device_id, transport.url, down)
            delay, down_since = reconnect_min, None
            async for delivery in deliveries(transport):
                try:
                    commit(delivery)  # durable (fsync) before the device hears ACK
                except OutboxError as exc:
                    # Not acknowledged: the device keeps the record and sends it again, by
                    # which time space may have come back. The link itself is fine.
                    health.state = "storage-error"
                    log.error("record not stored device=%s error=%r", device_id, str(exc))
                    continue
                health.state, health.records = "connected", health.records + 1
                health.last_record = time.monotonic()
                await delivery.acknowledge()
        except TransientDeviceError as exc:
            health.failures += 1
            if health.state != "lost":  # one warning per outage, not one per retry
                log.warning("device lost device=%s error=%r", device_id, str(exc))
                down_since = time.monotonic()
            else:
                log.debug("device still absent device=%s error=%r", device_id, str(exc))
            health.state = "lost"
        except DeviceConfigError as exc:
            health.state = "misconfigured"
            log.error("device misconfigured device=%s error=%r", device_id, str(exc))
            delay = reconnect_max
        except Exception:  # one device's bug must not stop the others or the daemon
            health.state, health.failures = "failed", health.failures + 1
            log.exception("device task failed device=%s retry_in=%.1fs", device_id, delay)
        finally:
            await transport.close()
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(delay * 2, reconnect_max)
