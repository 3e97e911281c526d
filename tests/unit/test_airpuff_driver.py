"""Air-puff driver over an in-memory cable: one delivery per puff, whole or not at all."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import numpy.typing as npt
import pytest

from drivers.codec import sampleframes as sf
from drivers.codec.sampleframes import Ack, MeasurementEnd, Message, Replay, Resend, Samples
from drivers.devices.airpuff import (
    AirpuffDriver,
    AirpuffMessage,
    Outcome,
    PuffStart,
    decode,
)
from drivers.devices.sampledriver import record_key
from drivers.errors import TransientDeviceError
from drivers.readings import Delivery
from drivers.transport import LoopTransport
from tests.unit.test_airpuff_codec import START

N = START.samples  # 480 pairs: two SAMPLES frames of 253 and 227
PAIRS = np.column_stack(
    [np.arange(1000, 1000 + N, dtype=np.uint16), np.arange(60000, 60000 - N, -1, dtype=np.uint16)]
)


def puff(start: PuffStart = START, outcome: int = 0) -> list[Message]:
    step = sf.max_samples_per_frame(2)
    blocks: list[Message] = [
        Samples(start.measurement_id, i, PAIRS[i : i + step]) for i in range(0, N, step)
    ]
    return [start, *blocks, MeasurementEnd(start.measurement_id, N, outcome)]


def wire(messages: list[Message], first_seq: int = 0) -> list[bytes]:
    return [sf.encode(sf.to_frame(m, (first_seq + i) & 0xFFFF)) for i, m in enumerate(messages)]


async def heard(device: LoopTransport, quiet: float = 0.05) -> list[AirpuffMessage]:
    buf = bytearray()
    while True:
        try:
            buf.extend(await device.read(timeout=quiet))
        except TimeoutError:
            break
    out: list[AirpuffMessage] = []
    while buf:
        packet, consumed = decode(buf)
        assert packet is not None, "a partial host frame"
        out.append(packet.message)
        del buf[:consumed]
    return out


Connected = tuple[LoopTransport, AirpuffDriver, "asyncio.Queue[Delivery]", "asyncio.Task[None]"]


async def connected() -> Connected:
    gateway, device = LoopTransport.pair()
    await gateway.open()
    await device.open()
    driver = AirpuffDriver(gateway, "tono-2", on_samples=lambda counts, fs: None)
    out: asyncio.Queue[Delivery] = asyncio.Queue()

    async def collect() -> None:
        async for delivery in driver.deliveries():
            out.put_nowait(delivery)

    return device, driver, out, asyncio.create_task(collect())


async def finish(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def channels(delivery: Delivery) -> dict[str, npt.NDArray[np.float64]]:
    (recording,) = delivery.recordings
    return dict(recording.channels)


def test_a_puff_split_over_frames_arrives_whole_with_its_eye() -> None:
    async def scenario() -> None:
        device, _, out, task = await connected()
        assert await heard(device) == [Replay()]
        frames = wire(puff())
        assert len(frames) == 4
        await device.write(b"".join(frames))
        delivery = await asyncio.wait_for(out.get(), 2)
        (rec,) = delivery.recordings
        assert (rec.kind, rec.site, rec.fs, rec.refused) == ("airpuff-iop", "left", 16000.0, None)
        assert rec.record_key == "airpuff|AP-0001|12|2026-11-23T10:16:05"
        assert delivery.device_model == "SB-AIRPUFF"
        assert channels(delivery)["pressure"].tolist() == PAIRS[:, 0].tolist()
        assert channels(delivery)["light"].tolist() == PAIRS[:, 1].tolist()
        assert await heard(device) == []
        await delivery.acknowledge()
        assert await heard(device) == [Ack(12)]
        await finish(task)

    asyncio.run(scenario())


def test_a_lost_frame_asks_resend_and_the_key_is_the_same_on_the_copy() -> None:
    async def scenario() -> None:
        device, driver, out, task = await connected()
        await heard(device)
        frames = wire(puff())
        await device.write(frames[0] + frames[2] + frames[3])  # the first block was lost
        assert await heard(device) == [Resend(12)]
        assert out.empty()
        await device.write(b"".join(wire(puff(), first_seq=4)))
        delivery = await asyncio.wait_for(out.get(), 2)
        assert delivery.recordings[0].record_key == record_key("airpuff", START)
        assert channels(delivery)["light"].tolist() == PAIRS[:, 1].tolist()
        assert (driver.stats.gaps, driver.stats.resends, driver.stats.measurements) == (1, 1, 1)
        await finish(task)

    asyncio.run(scenario())


def test_a_refused_or_inconsistent_puff_is_delivered_refused() -> None:
    async def scenario() -> None:
        device, _, out, task = await connected()
        await heard(device)
        await device.write(b"".join(wire(puff(outcome=Outcome.BLINK))))
        assert (await asyncio.wait_for(out.get(), 2)).recordings[0].refused == "blink"
        liar = dataclasses.replace(START, measurement_id=13, samples=500)
        await device.write(b"".join(wire(puff(liar), first_seq=4)))
        refused = (await asyncio.wait_for(out.get(), 2)).recordings[0].refused
        assert refused == "announced 500 samples, sent 480"
        await finish(task)

    asyncio.run(scenario())


def test_right_and_left_puffs_are_separate_deliveries_acknowledged_apart() -> None:
    async def scenario() -> None:
        device, _, out, task = await connected()
        await heard(device)
        right = dataclasses.replace(START, measurement_id=11, eye="right")
        await device.write(b"".join(wire(puff(right)) + wire(puff(), first_seq=4)))
        first = await asyncio.wait_for(out.get(), 2)
        second = await asyncio.wait_for(out.get(), 2)
        assert [first.recordings[0].site, second.recordings[0].site] == ["right", "left"]
        await second.acknowledge()
        await first.acknowledge()
        assert await heard(device) == [Ack(12), Ack(11)]
        await finish(task)

    asyncio.run(scenario())


def test_hang_up_ends_the_delivery_stream_with_a_transient_error() -> None:
    async def scenario() -> None:
        gateway, device = LoopTransport.pair()
        await gateway.open()
        await device.open()
        driver = AirpuffDriver(gateway, "tono-2")
        stream = driver.deliveries()
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.01)  # REPLAY sent, now waiting for the device
        device.hang_up()
        with pytest.raises(TransientDeviceError):
            await pending

    asyncio.run(scenario())
