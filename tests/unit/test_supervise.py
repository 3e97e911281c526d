"""Device supervision over in-memory cables: commit before ACK, survive every failure."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from drivers.codec.framing import ACK
from drivers.devices.ct80 import Ct80Driver, encode
from drivers.readings import Delivery
from drivers.transport import ByteTransport, LoopTransport
from edge.outbox import OutboxFullError
from edge.supervise import DeviceHealth, supervise
from tests.unit.test_ct80_codec import RECORD


class Bench:
    """A device end that the supervisor reaches through fresh in-memory cables."""

    def __init__(self) -> None:
        self.device: LoopTransport | None = None
        self.opens = 0

    def make_transport(self) -> ByteTransport:
        self.opens += 1
        gateway, self.device = LoopTransport.pair(f"bench{self.opens}")
        return gateway

    async def send(self, frame: bytes) -> None:
        while self.device is None:
            await asyncio.sleep(0.01)
        await self.device.open()
        await self.device.write(frame)

    async def replies(self) -> bytes:
        assert self.device is not None
        return await self.device.read(timeout=2)


def _deliveries(transport: ByteTransport) -> AsyncIterator[Delivery]:
    return Ct80Driver(transport, "tono-1").deliveries()


async def _run(coro: Coroutine[Any, Any, None], bench_steps: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(coro)
    try:
        await bench_steps
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_ack_only_after_commit_and_no_ack_when_storage_refuses() -> None:
    bench = Bench()
    committed: list[Delivery] = []
    full = [True]

    def commit(d: Delivery) -> int:
        if full[0]:
            raise OutboxFullError("outbox full: 2 rows not stored")
        committed.append(d)
        return len(d.readings)

    async def steps() -> None:
        await bench.send(encode(RECORD))
        first = await bench.replies()
        assert ACK not in first  # ENQ only: the refused record was not acknowledged
        await asyncio.sleep(0.05)
        full[0] = False
        await bench.device.write(encode(RECORD))  # type: ignore[union-attr]
        reply = b""
        while ACK not in reply:
            reply += await bench.replies()
        assert reply.endswith(bytes([ACK]) + b"0007")

    health = DeviceHealth()
    asyncio.run(
        _run(supervise("tono-1", bench.make_transport, _deliveries, commit, health=health), steps())
    )
    assert len(committed) == 1
    assert bench.opens == 1  # a storage refusal does not drop the link
    assert health.records == 1


def test_a_crashing_commit_is_logged_and_the_device_task_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bench = Bench()
    calls = [0]

    def commit(d: Delivery) -> int:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("a bug")
        return 1

    async def steps() -> None:
        await bench.send(encode(RECORD))
        while bench.opens < 2:
            await asyncio.sleep(0.01)
        await bench.send(encode(dataclasses.replace(RECORD, machine_work_id="0009")))
        reply = b""
        while ACK not in reply:
            reply += await bench.replies()

    with caplog.at_level(logging.ERROR):
        asyncio.run(
            _run(
                supervise("tono-1", bench.make_transport, _deliveries, commit, reconnect_min=0.01),
                steps(),
            )
        )
    assert "device task failed device=tono-1" in caplog.text
    assert "RuntimeError: a bug" in caplog.text
    assert calls[0] == 2


def test_unplug_is_one_warning_and_reconnect_reports_the_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bench = Bench()

    async def steps() -> None:
        await bench.send(b"")
        assert bench.device is not None
        bench.device.hang_up()
        while bench.opens < 2:
            await asyncio.sleep(0.01)
        await bench.send(encode(RECORD))
        while "down_for=" not in caplog.text:
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.INFO):
        asyncio.run(
            _run(
                supervise(
                    "tono-1", bench.make_transport, _deliveries, lambda d: 1, reconnect_min=0.01
                ),
                steps(),
            )
        )
    assert caplog.text.count("device lost device=tono-1") == 1
