"""CT-80 driver over an in-memory cable: ENQ at connect, ACK after commit only, NAK on noise."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from drivers.codec.framing import ACK, ENQ, NAK
from drivers.devices.ct80 import Ct80Driver, encode
from drivers.errors import TransientDeviceError
from drivers.readings import Delivery
from drivers.transport import LoopTransport
from tests.unit.test_ct80_codec import RECORD, VECTOR


async def _take(driver: Ct80Driver, n: int) -> list[Delivery]:
    out = []
    async for delivery in driver.deliveries():
        out.append(delivery)
        if len(out) == n:
            break
    return out


def test_handshake_enq_then_ack_naming_the_record_only_when_asked() -> None:
    async def scenario() -> None:
        gateway, device = LoopTransport.pair()
        await gateway.open()
        await device.open()
        driver = Ct80Driver(gateway, "tono-1")
        await device.write(VECTOR)
        (delivery,) = await _take(driver, 1)
        assert await device.read() == bytes([ENQ])
        assert [r.quantity for r in delivery.readings] == ["iop.right", "iop.left"]
        assert delivery.device_model == "CT-80"
        with pytest.raises(TimeoutError):  # nothing acknowledged before the commit
            await device.read(timeout=0.05)
        await delivery.acknowledge()
        assert await device.read() == bytes([ACK]) + b"0007"

    asyncio.run(scenario())


def test_garbled_frame_is_counted_logged_nakked_and_neighbours_arrive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    second = encode(dataclasses.replace(RECORD, machine_work_id="0008"))
    garbled = bytearray(VECTOR)
    garbled[40] ^= 0x01

    async def scenario() -> None:
        gateway, device = LoopTransport.pair()
        await gateway.open()
        await device.open()
        driver = Ct80Driver(gateway, "tono-1")
        await device.write(VECTOR + b"\xff\xfe" + bytes(garbled) + second)
        got = await _take(driver, 2)
        eighth = dataclasses.replace(RECORD, machine_work_id="0008")
        assert [d.readings[0].record_key for d in got] == [RECORD.key, eighth.key]
        assert RECORD.key != eighth.key
        assert driver.stats.records == 2
        assert driver.stats.garbled_frames == 1
        assert driver.stats.noise_bytes >= 2
        sent = await device.read()
        assert bytes([NAK]) in sent

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    (warning,) = [r for r in caplog.records if "garbled" in r.getMessage()]
    assert "BCC mismatch" in warning.getMessage()
    assert "0000000000042" not in caplog.text  # never the patient ID


def test_hang_up_ends_the_delivery_stream_with_a_transient_error() -> None:
    async def scenario() -> None:
        gateway, device = LoopTransport.pair()
        await gateway.open()
        driver = Ct80Driver(gateway, "tono-1")
        device.hang_up()
        with pytest.raises(TransientDeviceError):
            await _take(driver, 1)

    asyncio.run(scenario())
