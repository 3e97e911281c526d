"""bleak's public API against simulated BLE health devices: real Bumble stack, real GATT bytes.

The gateway side is ``bleak.BleakScanner`` / ``bleak.BleakClient`` with the Bumble backend
(drivers/ble/bumble_backend.py); the devices are Bumble peripherals on a virtual radio
(simulators/ble). Nothing is mocked: every value below crossed HCI, the LocalLink, L2CAP and
ATT, and in the cross-process test a TCP socket between two Python processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble.transport.common import Transport

from drivers.ble.bumble_backend import BumbleBle
from simulators.ble.link import VirtualRadio
from simulators.ble.peripheral import (
    BLOOD_PRESSURE_MONITOR,
    CharacteristicSpec,
    Profile,
    Props,
    ServiceSpec,
    SimulatedPeripheral,
)

BPS = "00001810-0000-1000-8000-00805f9b34fb"
BPM = "00002a35-0000-1000-8000-00805f9b34fb"
BP_FEATURE = "00002a49-0000-1000-8000-00805f9b34fb"
CURRENT_TIME = "00002a2b-0000-1000-8000-00805f9b34fb"
THERMOMETER = "00001809-0000-1000-8000-00805f9b34fb"

# Blood Pressure Measurement values, opaque here: the transport must deliver them byte for
# byte (their encoding and decoding are drivers/ble/gatt's business and tests)
READINGS = [
    bytes.fromhex("1e7a00500068000000"),
    bytes.fromhex("1e7d00520069000000"),
    bytes.fromhex("1e8000540070000000"),
]

# a second, unrelated device on the same radio: only its service UUID differs in the ads
THERMOMETER_PROFILE = Profile(
    name="SIM-THERMO",
    advertised_services=(0x1809,),
    services=(ServiceSpec(0x1809, (CharacteristicSpec(0x2A1C, Props.INDICATE),)),),
    measurement=0x2A1C,
    manufacturer_data=((0xFFFF, b"\x5a\xb0"),),  # 0xFFFF: the SIG's id for tests
    service_data=((0x1809, b"\x01"),),
)

# a vendor service with 128-bit UUIDs: notifications and writes without response
VENDOR_SERVICE = "8e5a0001-5a3b-4c1e-9d2f-2b6f3a4c5d6e"
VENDOR_STREAM = "8e5a0002-5a3b-4c1e-9d2f-2b6f3a4c5d6e"
VENDOR_CONTROL = "8e5a0003-5a3b-4c1e-9d2f-2b6f3a4c5d6e"
VENDOR_PROFILE = Profile(
    name="SIM-VENDOR",
    advertised_services=(),
    services=(
        ServiceSpec(
            VENDOR_SERVICE,
            (
                CharacteristicSpec(VENDOR_STREAM, Props.NOTIFY | Props.INDICATE),
                CharacteristicSpec(VENDOR_CONTROL, Props.WRITE_WITHOUT_RESPONSE),
            ),
        ),
    ),
    measurement=VENDOR_STREAM,
)


def run(scenario: Callable[[], Awaitable[None]], timeout: float = 20) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await scenario()

    asyncio.run(bounded())


@asynccontextmanager
async def bench(
    *profiles: Profile, measurements: list[bytes] | None = None, via: str = "tcp"
) -> AsyncIterator[tuple[BumbleBle, list[SimulatedPeripheral]]]:
    """A radio with one simulated peripheral per profile and a gateway host on it.

    ``via="tcp"``: the gateway opens its controller by name (``tcp-client:127.0.0.1:PORT``),
    as the daemon does; ``via="pipe"``: through an in-process controller on the same link.
    """
    async with VirtualRadio(peripherals=len(profiles) + 1) as radio:
        peripherals = [
            SimulatedPeripheral(
                p,
                radio.hci(i),
                address=f"D0:5A:4E:B9:00:{i + 1:02X}",
                measurements=measurements or (),
            )
            for i, p in enumerate(profiles)
        ]
        for p in peripherals:
            await p.start()
        hci: str | Transport = (
            radio.hci_transport if via == "tcp" else Transport(*radio.hci(len(profiles)))
        )
        try:
            async with BumbleBle(hci) as ble:
                yield ble, peripherals
        finally:
            for p in peripherals:
                await p.close()


async def find(ble: BumbleBle, service: str = BPS) -> BLEDevice:
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: service in adv.service_uuids, timeout=5, backend=ble.scanner
    )
    assert device is not None, f"no device advertising {service}"
    return device


def test_scan_reports_advertisements_and_filters_by_service_uuid() -> None:
    async def scenario() -> None:
        vendor_profile = dataclasses.replace(
            VENDOR_PROFILE, name="SIM-V", advertised_services=(VENDOR_SERVICE,)
        )
        profiles = (BLOOD_PRESSURE_MONITOR, THERMOMETER_PROFILE, vendor_profile)
        async with bench(*profiles) as (ble, (bpm, thermo, vendor)):
            found = await BleakScanner.discover(
                timeout=0.5, return_adv=True, service_uuids=[BPS], backend=ble.scanner
            )
            assert list(found) == [bpm.address]
            device, adv = found[bpm.address]
            assert adv.local_name == "SIM-BPM"
            assert adv.service_uuids == [BPS]
            assert -127 <= adv.rssi <= 20
            assert device.name == "SIM-BPM"

            everything = await BleakScanner.discover(
                timeout=0.5, return_adv=True, backend=ble.scanner
            )
            assert {bpm.address, thermo.address, vendor.address} <= set(everything)
            thermo_adv = everything[thermo.address][1]
            assert thermo_adv.service_uuids == [THERMOMETER]
            assert thermo_adv.manufacturer_data == {0xFFFF: b"\x5a\xb0"}
            assert thermo_adv.service_data == {THERMOMETER: b"\x01"}
            assert thermo_adv.local_name == "SIM-THERMO"

            found = await BleakScanner.discover(
                timeout=0.5,
                return_adv=True,
                service_uuids=[VENDOR_SERVICE.upper()],
                backend=ble.scanner,
            )
            assert list(found) == [vendor.address]
            assert found[vendor.address][1].service_uuids == [VENDOR_SERVICE]

            seen: list[str] = []
            async with BleakScanner(
                lambda d, _adv: seen.append(d.address), [THERMOMETER], backend=ble.scanner
            ):
                async with asyncio.timeout(5):
                    while not seen:
                        await asyncio.sleep(0.01)
            assert set(seen) == {thermo.address}

    run(scenario)


@pytest.mark.parametrize("via", ["tcp", "pipe"])
def test_blood_pressure_session_over_gatt(via: str) -> None:
    async def scenario() -> None:
        async with bench(BLOOD_PRESSURE_MONITOR, measurements=READINGS, via=via) as (ble, (bpm,)):
            device = await find(ble)
            received: list[bytes] = []
            got_all = asyncio.Event()

            def on_measurement(char: BleakGATTCharacteristic, data: bytearray) -> None:
                assert char.uuid == BPM
                received.append(bytes(data))
                if len(received) == len(READINGS):
                    got_all.set()

            async with BleakClient(device, backend=ble.client, timeout=10) as client:
                assert client.is_connected
                assert client.mtu_size == 517
                measurement = client.services.get_characteristic(BPM)
                assert measurement is not None
                assert measurement.properties == ["indicate"]
                assert measurement.service_uuid == BPS
                assert [d.uuid for d in measurement.descriptors] == [
                    "00002902-0000-1000-8000-00805f9b34fb"
                ]
                assert bytes(await client.read_gatt_char(BP_FEATURE)) == bytes.fromhex("0000")

                new_time = bytes.fromhex("ea070b170e1e00010001")
                await client.write_gatt_char(CURRENT_TIME, new_time, response=True)
                assert bpm.writes == [("2A2B", new_time)]
                assert bytes(await client.read_gatt_char(CURRENT_TIME)) == new_time

                with pytest.raises(BleakGATTProtocolError) as refused:
                    await client.read_gatt_char(BPM)  # indicate only: Read Not Permitted
                assert refused.value.code == 0x02

                await client.start_notify(BPM, on_measurement)
                async with asyncio.timeout(5):
                    await got_all.wait()
                assert received == READINGS
                assert await bpm.wait_confirmed(len(READINGS)) == READINGS
                assert not bpm.pending
                await client.stop_notify(BPM)

            assert not client.is_connected
            async with asyncio.timeout(5):
                while bpm.connections:
                    await asyncio.sleep(0.01)

    run(scenario)


def test_two_monitors_at_once_each_deliver_their_own_readings() -> None:
    async def scenario() -> None:
        other = dataclasses.replace(BLOOD_PRESSURE_MONITOR, name="SIM-BPM-2")
        async with bench(BLOOD_PRESSURE_MONITOR, other, measurements=READINGS) as (ble, bpms):
            found = await BleakScanner.discover(
                timeout=0.5, return_adv=True, service_uuids=["1810"], backend=ble.scanner
            )
            assert set(found) == {p.address for p in bpms}

            async def session(device: BLEDevice) -> list[bytes]:
                received: list[bytes] = []
                async with BleakClient(device, backend=ble.client, timeout=10) as client:
                    await client.start_notify(BPM, lambda _c, d: received.append(bytes(d)))
                    async with asyncio.timeout(5):
                        while len(received) < len(READINGS):
                            await asyncio.sleep(0.01)
                return received

            results = await asyncio.gather(*(session(device) for device, _ in found.values()))
            assert results == [READINGS, READINGS]
            assert [p.confirmed for p in bpms] == [READINGS, READINGS]

    run(scenario)


def test_connect_times_out_cleanly_and_an_unknown_address_is_not_found() -> None:
    async def scenario() -> None:
        async with bench(BLOOD_PRESSURE_MONITOR) as (ble, (bpm,)):
            device = await find(ble)
            await bpm.stop_advertising()  # gone between scan and connect
            client = BleakClient(device, backend=ble.client, timeout=0.5)
            started = asyncio.get_running_loop().time()
            with pytest.raises(TimeoutError):
                await client.connect()
            assert asyncio.get_running_loop().time() - started < 2
            assert not client.is_connected

            await bpm.advertise()  # back: the controller was not left initiating, so this works
            await client.connect()
            assert client.is_connected
            await client.disconnect()

            with pytest.raises(BleakDeviceNotFoundError):
                await BleakClient("D0:5A:4E:B9:00:99", backend=ble.client, timeout=0.3).connect()

    run(scenario)


def test_disconnected_callback_fires_when_the_peripheral_drops_the_link() -> None:
    async def scenario() -> None:
        async with bench(BLOOD_PRESSURE_MONITOR) as (ble, (bpm,)):
            dropped = asyncio.Event()
            client = BleakClient(
                await find(ble), lambda _c: dropped.set(), backend=ble.client, timeout=10
            )
            await client.connect()
            assert client.is_connected
            await bpm.disconnect()
            async with asyncio.timeout(5):
                await dropped.wait()
            assert not client.is_connected
            await client.disconnect()  # harmless once the link is gone

            # the monitor advertises again, and the same client object reconnects
            await asyncio.sleep(0.1)
            await client.connect()
            assert bytes(await client.read_gatt_char(BP_FEATURE)) == bytes.fromhex("0000")
            received: list[bytes] = []
            await client.start_notify(BPM, lambda _c, data: received.append(bytes(data)))
            bpm.send(READINGS[2])  # a measurement taken while connected and subscribed
            assert await bpm.wait_confirmed(1) == [READINGS[2]]
            assert received == [READINGS[2]]  # the callback ran before the confirmation
            await client.disconnect()

    run(scenario)


def test_notifications_and_write_without_response_on_a_128_bit_vendor_service() -> None:
    async def scenario() -> None:
        values = [b"\x01", b"\x02\x03", bytes(range(200))]
        # no service UUID in its advertisement: found by address, client made from a str
        async with (
            bench(VENDOR_PROFILE, measurements=values) as (ble, (vendor,)),
            BleakClient(vendor.address, backend=ble.client, timeout=10) as client,
        ):
            stream = client.services.get_characteristic(VENDOR_STREAM)
            assert stream is not None
            assert stream.properties == ["notify", "indicate"]
            assert stream.service_uuid == VENDOR_SERVICE
            control = client.services.get_characteristic(VENDOR_CONTROL)
            assert control is not None
            assert control.max_write_without_response_size == 514

            received: list[bytes] = []
            await client.start_notify(stream, lambda _c, data: received.append(bytes(data)))
            # notifications are preferred when both are offered: nothing to confirm
            assert await vendor.wait_confirmed(len(values)) == values
            async with asyncio.timeout(5):
                while len(received) < len(values):
                    await asyncio.sleep(0.01)
            assert received == values

            await client.write_gatt_char(control, b"\xaa\x55", response=False)
            async with asyncio.timeout(5):
                while not vendor.writes:
                    await asyncio.sleep(0.01)
            assert vendor.writes == [(VENDOR_CONTROL, b"\xaa\x55")]

    run(scenario)


def test_just_works_pairing_bonds_and_unpair_forgets() -> None:
    async def scenario() -> None:
        async with bench(BLOOD_PRESSURE_MONITOR) as (ble, (bpm,)):
            client = BleakClient(await find(ble), backend=ble.client, pair=True, timeout=10)
            await client.connect()  # pairs before service discovery
            (link,) = bpm.connections
            assert link.is_encrypted
            keystore = ble.device.keystore
            assert keystore is not None
            assert len(await keystore.get_all()) == 1  # bonded: the keys are kept
            await client.pair()  # already paired and encrypted: nothing to do
            await client.disconnect()

            # a new link starts unencrypted; pair() re-encrypts with the bonded key
            await asyncio.sleep(0.1)
            client = BleakClient(await find(ble), backend=ble.client, timeout=10)
            await client.connect()
            (link,) = bpm.connections
            assert not link.is_encrypted
            await client.pair()
            assert link.is_encrypted
            assert bytes(await client.read_gatt_char(BP_FEATURE)) == bytes.fromhex("0000")

            await client.unpair()
            assert not client.is_connected
            assert await keystore.get_all() == []

    run(scenario)


# -- cross-process --------------------------------------------------------------------------


async def _next_event(stream: asyncio.StreamReader, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        line = await stream.readline()
    assert line, "the simulator exited"
    event: dict[str, Any] = json.loads(line)
    return event


@asynccontextmanager
async def simulator_process(
    log: Path, *measurements: bytes
) -> AsyncIterator[tuple[asyncio.subprocess.Process, asyncio.StreamReader, dict[str, Any]]]:
    """``python -m simulators.ble.serve`` in a child process; yields it, its stdout, "ready"."""
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "simulators.ble.serve",
            *[arg for m in measurements for arg in ("--measurement", m.hex())],
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            cwd=Path(__file__).resolve().parents[2],
        )
        try:
            assert proc.stdout is not None
            ready = await _next_event(proc.stdout, timeout=30)
            assert ready["event"] == "ready", ready
            yield proc, proc.stdout, ready
        finally:
            if proc.returncode is None:
                proc.terminate()
            async with asyncio.timeout(10):
                await proc.wait()


def test_a_gateway_in_another_process_receives_indications(tmp_path: Path) -> None:
    log = tmp_path / "simulator.log"

    async def scenario() -> None:
        async with simulator_process(log, *READINGS[:2]) as (proc, events, ready):
            assert ready["hci"].startswith("tcp-client:127.0.0.1:")
            async with BumbleBle(ready["hci"]) as ble:
                device = await find(ble)
                assert device.address == ready["address"]
                received: list[bytes] = []
                async with BleakClient(device, backend=ble.client, timeout=10) as client:
                    await client.start_notify(BPM, lambda _c, data: received.append(bytes(data)))
                    confirmed = [await _next_event(events) for _ in READINGS[:2]]
                    await client.write_gatt_char(CURRENT_TIME, b"\x00" * 10, response=True)
                    written = await _next_event(events)
            assert received == READINGS[:2]
            assert confirmed == [{"event": "confirmed", "value": r.hex()} for r in READINGS[:2]]
            assert written == {"event": "write", "uuid": "2A2B", "value": "00" * 10}
        assert proc.returncode == 0, log.read_text()  # SIGTERM: closed cleanly

    run(scenario, timeout=60)


def test_the_link_drops_when_the_simulator_process_dies(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            simulator_process(tmp_path / "simulator.log") as (proc, _events, ready),
            BumbleBle(ready["hci"]) as ble,
        ):
            dropped = asyncio.Event()
            client = BleakClient(
                await find(ble), lambda _c: dropped.set(), backend=ble.client, timeout=10
            )
            await client.connect()
            proc.kill()
            async with asyncio.timeout(5):
                await dropped.wait()
            assert not client.is_connected
            with pytest.raises(BleakError):  # the services went with the link
                await client.read_gatt_char(BP_FEATURE)

    run(scenario, timeout=60)
