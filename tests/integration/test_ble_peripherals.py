"""The simulated BLE health devices, driven through bleak's public API over the virtual radio.

Real Bumble stacks on both sides (the gateway through drivers/ble/bumble_backend.py over TCP
HCI), real GATT bytes, and the production parsers of drivers/ble/gatt on what arrives: each
profile's services and features, its measurements, the device clock, bonding, garbled values,
leaving range, losing the gateway's controller, and the ledger a measuring device writes. The
glucose meter's Record Access Control Point is in test_ble_racp.py.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError
from bumble import hci

from drivers.ble.bumble_backend import BumbleBle
from drivers.ble.gatt.bp import BloodPressureFeature, BloodPressureMeasurement
from drivers.ble.gatt.clock import CurrentTime, encode_current_time, parse_current_time
from drivers.ble.gatt.plx import PlxFeature, PlxFeatures
from drivers.ble.gatt.reader import GattParseError
from drivers.ble.gatt.registry import decode, uuid128
from drivers.ble.gatt.weight import WeightResolution, WeightScaleFeature
from simulators.ble.clock import DeviceClock
from simulators.ble.device import LOINC, SimulatedBleDevice
from simulators.ble.draws import DRAWS, Units
from simulators.ble.link import VirtualRadio
from simulators.ble.profiles import PROFILES
from simulators.ledger import Ledger, read_ledger
from simulators.scenario import BleScenario
from tests.ble_bench import (
    CURRENT_TIME,
    MEASUREMENT,
    PARIS,
    bench,
    find,
    numbers,
    run,
    service_of,
    static_identity,
    time_stamp,
    until,
)

# -- profiles ---------------------------------------------------------------------------------

FEATURES: dict[str, dict[int, object]] = {
    "blood-pressure": {0x2A49: BloodPressureFeature()},
    "glucose": {0x2A51: b"\x00\x00"},  # no parser in drivers: no optional feature, bytes
    "thermometer": {0x2A1D: b"\x09"},  # Temperature Type: tympanum
    "weight-scale": {
        0x2A9E: WeightScaleFeature(
            time_stamp_supported=True, weight_resolution=WeightResolution.KG_0_05_OR_LB_0_1
        )
    },
    "pulse-oximeter": {
        0x2A60: PlxFeatures(
            frozenset({PlxFeature.SPOT_CHECK_STORAGE, PlxFeature.SPOT_CHECK_TIMESTAMP})
        )
    },
}


@pytest.mark.parametrize("kind", list(PROFILES))
def test_each_profile_advertises_its_service_and_serves_its_features(kind: str) -> None:
    profile = PROFILES[kind]

    async def scenario() -> None:
        clock = DeviceClock(zone=PARIS)
        async with bench(profile, clock=clock) as (_radio, ble, peripheral):
            found = await BleakScanner.discover(
                timeout=0.3, return_adv=True, service_uuids=[service_of(profile)],
                backend=ble.scanner,
            )  # fmt: skip
            assert list(found) == [peripheral.address]
            assert found[peripheral.address][1].local_name == profile.name
            async with BleakClient(found[peripheral.address][0], backend=ble.client) as client:
                served = {s.uuid for s in client.services}
                assert served >= {
                    uuid128(s.uuid) for s in profile.services if isinstance(s.uuid, int)
                }
                for uuid, expected in FEATURES[kind].items():
                    value = bytes(await client.read_gatt_char(uuid128(uuid)))
                    got = value if isinstance(expected, bytes) else decode(uuid128(uuid), value)[1]
                    assert got == expected
                if profile.serves(0x2A2B):
                    _, now = decode(CURRENT_TIME, bytes(await client.read_gatt_char(CURRENT_TIME)))
                    assert isinstance(now, CurrentTime)
                    assert now.time is not None
                    assert abs(now.time - datetime.now(PARIS).replace(tzinfo=None)) < timedelta(
                        seconds=2
                    )

    run(scenario)


@pytest.mark.parametrize("kind", list(MEASUREMENT))
def test_a_subscribed_client_receives_measurements_that_parse(kind: str) -> None:
    async def scenario() -> None:
        clock = DeviceClock(skew_s=-90, zone=PARIS)
        stamp = clock.now()
        drawn = [DRAWS[kind](random.Random(i), stamp, Units(), 0) for i in range(3)]
        stored = [d.value for d in drawn]
        async with bench(PROFILES[kind], clock=clock, measurements=stored) as (_, ble, device):
            received: list[bytes] = []
            async with BleakClient(await find(ble, PROFILES[kind]), backend=ble.client) as client:
                uuid = uuid128(MEASUREMENT[kind])
                await client.start_notify(uuid, lambda _c, data: received.append(bytes(data)))
                assert await device.wait_confirmed(3) == stored
            assert received == stored
            for value, expected in zip(received, drawn, strict=True):
                _, parsed = decode(uuid, value)
                assert numbers(parsed) == [(r.quantity, r.value) for r in expected.readings]
                assert time_stamp(parsed) == stamp

    run(scenario)


# -- device clock -----------------------------------------------------------------------------


def test_an_unset_clock_reads_as_unknown_and_a_written_time_then_stamps_measurements(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        ledger = Ledger(tmp_path / "ledger.jsonl")
        async with VirtualRadio(peripherals=1) as radio:
            bpm = SimulatedBleDevice(
                "bpm-1", "blood-pressure", "D0:5A:4E:B9:00:01", radio.hci(0),
                BleScenario(clock_unset=True), ledger, PARIS, random.Random(1),
            )  # fmt: skip
            running = asyncio.create_task(bpm.run())
            async with (
                BumbleBle(radio.hci_transport) as ble,
                BleakClient(await find(ble, PROFILES["blood-pressure"]), backend=ble.client) as c,
            ):
                unknown = parse_current_time(bytes(await c.read_gatt_char(CURRENT_TIME)))
                assert unknown == CurrentTime(None, None)
                received: list[bytes] = []
                await c.start_notify(uuid128(0x2A35), lambda _c, d: received.append(bytes(d)))
                bpm.measure()
                await until(lambda: len(received) == 1)
                _, first = decode(uuid128(0x2A35), received[0])
                assert isinstance(first, BloodPressureMeasurement)
                assert first.time_stamp is None  # left out (Flags bit 1 clear)

                with pytest.raises(BleakGATTProtocolError) as refused:
                    await c.write_gatt_char(CURRENT_TIME, bytes(9), response=True)
                assert refused.value.code == 0x0D  # Invalid Attribute Value Length
                impossible = bytes.fromhex("ea070d01000000040000")  # month 13
                with pytest.raises(BleakGATTProtocolError) as refused:
                    await c.write_gatt_char(CURRENT_TIME, impossible, response=True)
                assert refused.value.code == 0x80  # CTS: Data field ignored
                assert not bpm.clock.is_set

                # the gateway sets the clock an hour back: stamps follow it, the ledger does not
                written = (datetime.now(PARIS) - timedelta(hours=1)).replace(tzinfo=None)
                value = encode_current_time(CurrentTime.of(written))
                await c.write_gatt_char(CURRENT_TIME, value, response=True)
                _, read_back = decode(CURRENT_TIME, bytes(await c.read_gatt_char(CURRENT_TIME)))
                assert isinstance(read_back, CurrentTime)
                assert read_back.time is not None
                assert (
                    timedelta(0)
                    <= read_back.time - written.replace(microsecond=0)
                    < timedelta(seconds=2)
                )
                bpm.measure()
                await until(lambda: len(received) == 2)
            bpm.stop_producing()
            await running
            ledger.close()
            _, second = decode(uuid128(0x2A35), received[1])
            assert isinstance(second, BloodPressureMeasurement)
            assert second.time_stamp is not None
            lines = read_ledger(tmp_path / "ledger.jsonl")
            assert len(lines) == 8  # four readings per measurement
            true_instant = datetime.fromisoformat(lines[4]["time"])
            assert true_instant.tzinfo is not None
            shift = true_instant.replace(tzinfo=None) - second.time_stamp
            assert timedelta(minutes=59, seconds=58) <= shift <= timedelta(hours=1, seconds=2)

    run(scenario)


# -- faults -----------------------------------------------------------------------------------


def test_bonding_required_refuses_an_unpaired_subscription_until_paired() -> None:
    async def scenario() -> None:
        stored = [DRAWS["weight-scale"](random.Random(3), None, Units(), 0).value]
        weight, profile = uuid128(0x2A9D), PROFILES["weight-scale"]
        async with bench(profile, bonding_required=True, measurements=stored) as (_, ble, scale):
            static_identity(ble.device, scale.device)
            received: list[bytes] = []

            def keep(_c: object, data: bytearray) -> None:
                received.append(bytes(data))

            def refused_anyway(_c: object, _data: bytearray) -> None:
                """For the refused subscriptions (kept apart: nothing may arrive through them)."""

            client = BleakClient(await find(ble, profile), backend=ble.client)
            await client.connect()
            with pytest.raises(BleakGATTProtocolError, match="Authentication") as refused:
                await client.start_notify(weight, refused_anyway)
            assert refused.value.code == 0x05  # no keys for us: Insufficient Authentication
            assert list(scale.pending) == stored  # nothing left the scale
            await client.pair()  # Just Works, bonded
            await client.start_notify(weight, keep)
            assert await scale.wait_confirmed(1) == stored
            await client.disconnect()

            # bonded, on a new link not yet encrypted: Insufficient Encryption, then re-encrypt
            await until(lambda: not scale.connections)
            await client.connect()
            with pytest.raises(BleakGATTProtocolError, match="Encryption") as refused:
                await client.start_notify(weight, refused_anyway)
            assert refused.value.code == 0x0F
            (link,) = scale.connections
            await client.pair()  # encryption with the bonded key, no new pairing
            assert link.is_encrypted
            await client.start_notify(weight, keep)
            later = DRAWS["weight-scale"](random.Random(4), None, Units(), 0).value
            scale.send(later)
            assert await scale.wait_confirmed(2) == [*stored, later]
            await client.disconnect()
            assert received == [*stored, later]

    run(scenario)


def test_a_malformed_value_arrives_as_bytes_the_parser_refuses() -> None:
    async def scenario() -> None:
        real = DRAWS["thermometer"](random.Random(5), datetime(2026, 3, 1, 9, 30), Units(), 0)
        async with bench(PROFILES["thermometer"]) as (_radio, ble, thermometer):
            garbled = thermometer.malformed(real.value)
            thermometer.send(real.value)
            received: list[bytes] = []
            uuid = uuid128(0x2A1C)
            async with BleakClient(
                await find(ble, PROFILES["thermometer"]), backend=ble.client
            ) as c:
                await c.start_notify(uuid, lambda _c, d: received.append(bytes(d)))
                await thermometer.wait_confirmed(2)
        assert received == [garbled, real.value]
        assert len(garbled) < len(real.value)
        with pytest.raises(GattParseError, match="truncated"):
            decode(uuid, garbled)
        _, parsed = decode(uuid, real.value)
        assert numbers(parsed) == [("temperature", real.readings[0].value)]

    run(scenario)


def test_out_of_range_drops_the_link_and_the_device_comes_back() -> None:
    async def scenario() -> None:
        profile = PROFILES["pulse-oximeter"]
        async with bench(profile) as (_radio, ble, oximeter):
            dropped = asyncio.Event()
            client = BleakClient(
                await find(ble, profile), lambda _c: dropped.set(), backend=ble.client
            )
            await client.connect()
            away = asyncio.create_task(oximeter.out_of_range(0.5))
            async with asyncio.timeout(5):
                await dropped.wait()
            assert oximeter.disconnections == [hci.HCI_CONNECTION_TIMEOUT_ERROR]
            heard = await BleakScanner.discover(timeout=0.2, backend=ble.scanner)
            assert oximeter.address not in {d.address for d in heard}  # silent while away
            await away
            await client.connect()  # back in range, advertising again
            assert client.is_connected
            await client.disconnect()

    run(scenario)


def test_losing_the_gateway_controller_drops_links_and_devices_advertise_again() -> None:
    async def scenario() -> None:
        profile = PROFILES["blood-pressure"]
        async with bench(profile) as (radio, ble, bpm):
            # 1. the gateway's host resets its controller (a restarted daemon does)
            client = BleakClient(await find(ble, profile), backend=ble.client)
            await client.connect()
            await ble.device.host.send_command(hci.HCI_Reset_Command())
            await until(lambda: bpm.disconnections == [hci.HCI_CONNECTION_TIMEOUT_ERROR])
            assert radio.gateway.le_connections == {}
            await client.disconnect()  # the controller knows the link no more: refused at once
            assert (await find(ble, profile)).address == bpm.address  # advertising again

        async with bench(profile) as (radio, ble, bpm):
            # 2. the TCP connection to the controller is lost (dongle unplugged, daemon killed)
            dropped = asyncio.Event()
            client = BleakClient(
                await find(ble, profile), lambda _c: dropped.set(), backend=ble.client
            )
            await client.connect()
            radio.unplug_gateway()
            async with asyncio.timeout(5):
                await dropped.wait()  # the gateway's host hears its transport go
            await until(lambda: bpm.disconnections == [hci.HCI_CONNECTION_TIMEOUT_ERROR])
            assert not radio.gateway_connected
            async with (
                BumbleBle(radio.hci_transport) as restarted,
                BleakClient(await find(restarted, profile), backend=restarted.client) as again,
            ):
                assert again.is_connected

    run(scenario)


# -- a device that measures: what it sends is what its ledger says ---------------------------


def test_a_measuring_device_writes_one_ledger_line_per_reading_it_delivers(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        ledger = Ledger(tmp_path / "ledger.jsonl")
        plan = BleScenario(
            measurements_per_hour=36000,  # ten a second
            clock_skew_s=120,
            stored_at_start=3,
            malformed_rate=0.4,
        )
        async with VirtualRadio(peripherals=1) as radio:
            bpm = SimulatedBleDevice(
                "bpm-1", "blood-pressure", "D0:5A:4E:B9:00:07", radio.hci(0), plan, ledger,
                PARIS, random.Random(11),
            )  # fmt: skip
            running = asyncio.create_task(bpm.run())
            received: list[bytes] = []
            async with (
                BumbleBle(radio.hci_transport) as ble,
                BleakClient(await find(ble, PROFILES["blood-pressure"]), backend=ble.client) as c,
            ):
                await c.start_notify(uuid128(0x2A35), lambda _c, d: received.append(bytes(d)))
                await asyncio.sleep(0.5)
                bpm.stop_producing()
                async with asyncio.timeout(5):
                    await running  # returns once everything was confirmed
            assert bpm.undelivered == 0
        ledger.close()

        lines = read_ledger(tmp_path / "ledger.jsonl")
        assert len(lines) == bpm.produced >= 4 * 4
        parsed, garbled = [], 0
        for value in received:
            try:
                parsed.append(decode(uuid128(0x2A35), value)[1])
            except GattParseError:
                garbled += 1
        assert garbled > 0  # rate 0.4: with this seed the third stored value already is
        assert len(parsed) * 4 == len(lines)  # no line for a garbled value, none lost
        groups = [lines[i : i + 4] for i in range(0, len(lines), 4)]
        for measurement, readings in zip(parsed, groups, strict=True):
            assert [(line["code"], line["value"]) for line in readings] == [
                (LOINC[q], v) for q, v in numbers(measurement)
            ]
            assert {line["unit"] for line in readings} == {"mm[Hg]", "/min"}
            assert {line["device"] for line in readings} == {"bpm-1"}
            assert {line["status"] for line in readings} == {"ok"}
            (instant,) = {datetime.fromisoformat(line["time"]) for line in readings}
            assert instant.utcoffset() == datetime.now(PARIS).utcoffset()
            stamp = time_stamp(measurement)
            assert stamp is not None  # the device clock runs 2 min ahead of the true instant
            assert stamp - instant.replace(tzinfo=None) == timedelta(seconds=120)

    run(scenario)
