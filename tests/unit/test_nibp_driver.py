"""NIBP driver over an in-memory cable: REPLAY on open, RESEND on loss, ACK only after commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import numpy as np
import numpy.typing as npt
import pytest

from drivers.codec import sampleframes as sf
from drivers.codec.sampleframes import Ack, MeasurementEnd, Message, Replay, Resend, Samples
from drivers.devices.nibp import (
    CuffState,
    MeasurementStart,
    NibpDriver,
    NibpMessage,
    NibpSettings,
    Outcome,
    Start,
    Status,
    Stop,
    decode,
)
from drivers.devices.sampledriver import record_key
from drivers.errors import TransientDeviceError
from drivers.readings import Delivery
from drivers.transport import LoopTransport
from tests.unit.test_nibp_codec import START

PRESSURE = np.arange(18000, 18000 - 7 * 60, -60, dtype=np.uint16)  # 7 samples


def measurement(start: MeasurementStart = START, outcome: int = 0) -> list[Message]:
    mid = start.measurement_id
    return [
        Status(CuffState.INFLATING),
        start,
        Samples(mid, 0, PRESSURE[:4].reshape(-1, 1)),
        Status(CuffState.DEFLATING, int(PRESSURE[3])),
        Samples(mid, 4, PRESSURE[4:].reshape(-1, 1)),
        MeasurementEnd(mid, len(PRESSURE), outcome),
        Status(CuffState.DONE),
    ]


def wire(messages: list[Message], first_seq: int = 0) -> list[bytes]:
    return [sf.encode(sf.to_frame(m, (first_seq + i) & 0xFFFF)) for i, m in enumerate(messages)]


async def heard(device: LoopTransport, quiet: float = 0.05) -> list[NibpMessage]:
    """Every host message the device receives until the line is quiet for ``quiet`` s."""
    buf = bytearray()
    while True:
        try:
            buf.extend(await device.read(timeout=quiet))
        except TimeoutError:
            break
    out: list[NibpMessage] = []
    while buf:
        packet, consumed = decode(buf)
        assert packet is not None, "a partial host frame"
        out.append(packet.message)
        del buf[:consumed]
    return out


Scenario = Callable[[LoopTransport, NibpDriver, "asyncio.Queue[Delivery]"], Awaitable[None]]


def run(scenario: Scenario, **driver_args: object) -> None:
    """Run ``scenario`` as the device, with the driver collecting deliveries into a queue."""

    async def main() -> None:
        gateway, device = LoopTransport.pair()
        await gateway.open()
        await device.open()
        driver = NibpDriver(gateway, "nibp-1", **driver_args)  # type: ignore[arg-type]
        out: asyncio.Queue[Delivery] = asyncio.Queue()

        async def collect() -> None:
            async for delivery in driver.deliveries():
                out.put_nowait(delivery)

        task = asyncio.create_task(collect())
        try:
            await scenario(device, driver, out)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())


def pressure_of(delivery: Delivery) -> npt.NDArray[np.float64]:
    (recording,) = delivery.recordings
    return np.asarray(recording.channels["pressure"])


def test_replay_on_open_whole_measurement_live_samples_and_ack_only_when_asked() -> None:
    blocks: list[npt.NDArray[np.float64]] = []

    def on_samples(counts: npt.NDArray[np.float64], fs: float) -> None:
        assert fs == 500.0
        blocks.append(counts)

    async def device_side(
        device: LoopTransport, driver: NibpDriver, out: asyncio.Queue[Delivery]
    ) -> None:
        assert await heard(device) == [Replay()]
        await device.write(b"".join(wire(measurement())))
        delivery = await asyncio.wait_for(out.get(), 2)
        (rec,) = delivery.recordings
        assert delivery.readings == ()
        assert delivery.device_model == "SB-NIBP"
        assert rec.kind == "oscillometric-bp"
        assert rec.record_key == "nibp|SN0042|7|2026-11-23T10:15:42"
        assert rec.device_time == START.time
        assert rec.fs == 500.0
        assert rec.refused is None
        assert rec.site is None
        assert pressure_of(delivery).dtype == np.float64
        assert pressure_of(delivery).tolist() == PRESSURE.tolist()
        assert [b.tolist() for b in blocks] == [PRESSURE[:4].tolist(), PRESSURE[4:].tolist()]
        assert driver.status == Status(CuffState.DONE)
        assert await heard(device) == []  # nothing acknowledged before the commit
        await delivery.acknowledge()
        assert await heard(device) == [Ack(7)]
        assert driver.stats.measurements == 1

    run(device_side, on_samples=on_samples)


def test_a_lost_frame_asks_resend_and_the_copy_arrives_whole_under_the_same_key() -> None:
    async def device_side(
        device: LoopTransport, driver: NibpDriver, out: asyncio.Queue[Delivery]
    ) -> None:
        await heard(device)
        frames = wire(measurement())
        del frames[2]  # the first SAMPLES frame is lost on the line
        await device.write(b"".join(frames))
        assert await heard(device) == [Resend(7)]
        assert out.empty()  # never a recording with a hole
        await device.write(b"".join(wire(measurement()[1:], first_seq=7)))
        delivery = await asyncio.wait_for(out.get(), 2)
        assert pressure_of(delivery).tolist() == PRESSURE.tolist()
        assert delivery.recordings[0].record_key == record_key("nibp", START)
        assert (driver.stats.gaps, driver.stats.resends) == (1, 1)
        # no ACK came (the daemon crashed before its commit): the module repeats it
        await device.write(b"".join(wire(measurement(), first_seq=20)))
        again = await asyncio.wait_for(out.get(), 2)
        assert again.recordings[0].record_key == delivery.recordings[0].record_key

    run(device_side)


def test_a_garbled_frame_is_counted_logged_and_resent(caplog: pytest.LogCaptureFixture) -> None:
    async def device_side(
        device: LoopTransport, driver: NibpDriver, out: asyncio.Queue[Delivery]
    ) -> None:
        await heard(device)
        frames = [bytearray(f) for f in wire(measurement())]
        frames[4][15] ^= 0x04  # a bit flipped in the second SAMPLES frame
        await device.write(b"".join(bytes(f) for f in frames))
        assert await heard(device) == [Resend(7)]
        assert driver.stats.garbled_frames == 1
        await device.write(b"".join(wire(measurement(), first_seq=7)))
        delivery = await asyncio.wait_for(out.get(), 2)
        assert pressure_of(delivery).tolist() == PRESSURE.tolist()

    with caplog.at_level(logging.WARNING):
        run(device_side)
    assert "resend measurement 7: garbled frame (CRC mismatch)" in caplog.text


def test_an_aborted_measurement_is_delivered_refused_with_what_was_recorded() -> None:
    async def device_side(
        device: LoopTransport, driver: NibpDriver, out: asyncio.Queue[Delivery]
    ) -> None:
        await heard(device)
        mid = START.measurement_id
        frames: list[Message] = [
            START,
            Samples(mid, 0, PRESSURE[:3].reshape(-1, 1)),
            MeasurementEnd(mid, 3, 1),
        ]
        await device.write(b"".join(wire(frames)))
        delivery = await asyncio.wait_for(out.get(), 2)
        assert delivery.recordings[0].refused == "aborted-by-host"
        assert pressure_of(delivery).tolist() == PRESSURE[:3].tolist()
        for outcome, reason in ((Outcome.CUFF_LEAK, "cuff-leak"), (9, "unknown outcome 9")):
            empty: list[Message] = [START, MeasurementEnd(mid, 0, outcome)]
            await device.write(b"".join(wire(empty, 10 + 2 * outcome)))
            delivery = await asyncio.wait_for(out.get(), 2)
            assert delivery.recordings[0].refused == reason
            assert len(pressure_of(delivery)) == 0

    run(device_side)


def test_start_and_stop_reach_the_module() -> None:
    async def device_side(
        device: LoopTransport, driver: NibpDriver, out: asyncio.Queue[Delivery]
    ) -> None:
        await heard(device)
        await driver.start(180)
        await driver.stop()
        assert await heard(device) == [Start(180), Stop()]
        with pytest.raises(ValueError, match="target 20 mmHg"):
            await driver.start(20)

    run(device_side)


def test_a_copy_of_a_stored_measurement_is_acked_again_not_delivered_twice() -> None:
    async def device_side(
        device: LoopTransport, driver: NibpDriver, out: asyncio.Queue[Delivery]
    ) -> None:
        await heard(device)
        await device.write(b"".join(wire(measurement())))
        await (await asyncio.wait_for(out.get(), 2)).acknowledge()
        assert await heard(device) == [Ack(7)]
        # the ACK was lost on the line: the module sends the measurement again
        await device.write(b"".join(wire(measurement(), first_seq=7)))
        assert await heard(device) == [Ack(7)]
        assert out.empty()
        assert driver.stats.duplicates == 1

    run(device_side)


def test_a_frame_cut_short_by_silence_is_dropped_and_resent() -> None:
    async def device_side(
        device: LoopTransport, driver: NibpDriver, out: asyncio.Queue[Delivery]
    ) -> None:
        await heard(device)
        frames = wire(measurement())
        await device.write(frames[0] + frames[1] + frames[2][:9])  # the cable went quiet
        assert await heard(device, quiet=0.3) == [Resend(7)]

    run(device_side, settings=NibpSettings(frame_timeout=0.05))


def test_a_module_reboot_gives_a_new_key_for_a_reused_id() -> None:
    later = MeasurementStart(7, 500, START.time.replace(hour=11), "SB-NIBP", "SN0042")
    assert record_key("nibp", later) != record_key("nibp", START)
    anonymous = MeasurementStart(7, 500, START.time, "SB-NIBP")
    assert record_key("nibp", anonymous) == "nibp|SB-NIBP|7|2026-11-23T10:15:42"


def test_hang_up_ends_the_delivery_stream_with_a_transient_error() -> None:
    async def scenario() -> None:
        gateway, device = LoopTransport.pair()
        await gateway.open()
        driver = NibpDriver(gateway, "nibp-1")
        device.hang_up()
        with pytest.raises(TransientDeviceError):
            async for _ in driver.deliveries():
                pass

    asyncio.run(scenario())
