"""The gateway's BLE driver (drivers/ble/link.py, driver.py) against simulated devices.

Production code end to end below the daemon: bleak's public API on the Bumble backend, a
virtual radio, Bumble peripherals serving the real GATT services; the driver's deliveries
are what the daemon commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.ble.adapter import BleAdapter
from drivers.ble.cursor import RecordCursor
from drivers.ble.driver import BleDriver, BleDriverSettings, BleStats
from drivers.ble.gatt.bp import BloodPressureMeasurement, encode_blood_pressure_measurement
from drivers.ble.gatt.clock import parse_current_time
from drivers.ble.link import BleLink, LinkSettings
from drivers.ble.profiles import PROFILES
from drivers.codec.ieee11073 import MedicalFloat
from drivers.errors import TransientDeviceError
from drivers.readings import Delivery
from simulators.ble.device import SimulatedBleDevice
from simulators.ble.link import VirtualRadio
from simulators.ble.peripheral import BLOOD_PRESSURE_MONITOR, SimulatedPeripheral
from simulators.ledger import Ledger
from simulators.scenario import BleScenario
from tests.ble_bench import run

ADDRESS = "D0:5A:4E:B9:00:01"
# a blood pressure of 122/80 (mean 94) mmHg, pulse 72, stamped 2026-01-01 10:00:00 by the
# device's clock (BLS 1.1 3.1, encoded by the production encoder)
STAMPED = encode_blood_pressure_measurement(
    BloodPressureMeasurement(
        unit="mm[Hg]",
        systolic=MedicalFloat(122, 0),
        diastolic=MedicalFloat(80, 0),
        mean_arterial_pressure=MedicalFloat(94, 0),
        time_stamp=datetime(2026, 1, 1, 10, 0, 0),
        pulse_rate=MedicalFloat(72, 0),
    )
)


@asynccontextmanager
async def gateway(
    radio: VirtualRadio, profile: str, address: str = ADDRESS
) -> AsyncIterator[BleLink]:
    adapter = BleAdapter(f"bumble:{radio.hci_transport}")
    link = BleLink(adapter, LinkSettings(PROFILES[profile], address, scan_window=2))
    try:
        async with asyncio.timeout(10):
            await link.open()
        yield link
    finally:
        await link.close()
        await adapter.close()


async def take(deliveries: AsyncIterator[Delivery], n: int) -> list[Delivery]:
    out = []
    async for d in deliveries:
        out.append(d)
        await d.acknowledge()
        if len(out) == n:
            break
    return out


def test_blood_pressure_readings_with_the_device_clock_measured_then_set() -> None:
    device_now = datetime(2026, 1, 1, 10, 0, 30)  # the simulated monitor's clock reads this

    async def scenario() -> None:
        async with VirtualRadio(peripherals=1) as radio:
            bpm = SimulatedPeripheral(
                BLOOD_PRESSURE_MONITOR, radio.hci(0), address=ADDRESS, measurements=[STAMPED]
            )
            async with bpm, gateway(radio, "blood-pressure") as link:
                gateway_now = datetime(2026, 1, 1, 9, 0, 30)
                stats = BleStats()
                driver = BleDriver(
                    link, "bpm-1", lambda: gateway_now, BleDriverSettings(quiet=0.3), stats=stats
                )
                bpm.values["2A2B"] = bytes.fromhex("ea070101") + bytes(
                    [device_now.hour, device_now.minute, device_now.second, 4, 0, 0]
                )
                deliveries = driver.deliveries()
                (first,) = await take(deliveries, 1)
                assert first.clock_offset == 3600.0
                quantities = [r.quantity for r in first.readings]
                assert quantities[:3] == ["bp.systolic", "bp.diastolic", "bp.mean"]
                # the device stamped 10:00:00 with a clock an hour fast
                assert first.readings[0].device_time - timedelta(seconds=3600) == datetime(
                    2026, 1, 1, 9, 0, 0
                )
                # waiting for more, after a quiet spell, the driver sets the clock
                waiting = asyncio.ensure_future(anext(deliveries))
                async with asyncio.timeout(5):
                    while stats.clock_writes == 0:
                        await asyncio.sleep(0.05)
                waiting.cancel()
                (uuid, written), *_ = bpm.writes
                assert uuid == "2A2B"
                assert parse_current_time(written).time == gateway_now

    run(scenario)


async def collect(
    radio: VirtualRadio, cursor: RecordCursor, want: int, settings: BleDriverSettings
) -> tuple[list[str], int]:
    """The supervisor's loop in miniature: connect, commit + acknowledge, reconnect on loss."""
    keys: list[str] = []
    links = 0
    while len(keys) < want:
        links += 1
        async with gateway(radio, "glucose", GLUCOMETER) as link:
            driver = BleDriver(link, "gluco-1", datetime.now, settings, cursor)
            with contextlib.suppress(TransientDeviceError):
                async for delivery in driver.deliveries():
                    keys += [r.record_key for r in delivery.readings]  # "committed"
                    await delivery.acknowledge()
                    if len(keys) == want:
                        break
    return keys, links


GLUCOMETER = "D0:5A:4E:B9:00:02"


def test_a_glucometer_dropping_the_link_mid_transfer_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    plan = BleScenario(measurements_per_hour=1, stored_at_start=6, racp_disconnect_after=4)
    settings = BleDriverSettings(racp_poll=0.2)

    async def scenario() -> None:
        ledger = Ledger(tmp_path / "ledger.jsonl")
        async with VirtualRadio(peripherals=1) as radio:
            paris = ZoneInfo("Europe/Paris")
            meter = SimulatedBleDevice(
                "gluco-1", "glucose", GLUCOMETER, radio.hci(0), plan, ledger, paris,
                random.Random(3),
            )  # fmt: skip
            running = asyncio.create_task(meter.run())
            cursor = RecordCursor(tmp_path / "ble", "gluco-1", GLUCOMETER)
            keys, links = await collect(radio, cursor, 6, settings)
            assert keys == [f"glucose|seq|{n}" for n in range(1, 7)]
            assert links == 2  # the meter dropped the first link after four records
            assert cursor.sequence == 6
            assert meter.glucometer is not None
            assert meter.glucometer.completed_transfers >= 1

            # a restarted gateway (a new cursor object on the same file) fetches only what
            # is new: the meter's seventh record
            meter.measure()
            restarted = RecordCursor(tmp_path / "ble", "gluco-1", GLUCOMETER)
            keys, _ = await collect(radio, restarted, 1, settings)
            assert keys == ["glucose|seq|7"]
            assert restarted.sequence == 7
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        ledger.close()

    run(scenario, timeout=30)


def test_a_device_advertising_for_half_a_second_after_a_measurement_is_caught() -> None:
    """Health devices advertise briefly to save battery: the gateway scans without gaps."""

    async def scenario() -> None:
        async with VirtualRadio(peripherals=1) as radio:
            bpm = SimulatedPeripheral(BLOOD_PRESSURE_MONITOR, radio.hci(0), address=ADDRESS)
            async with bpm:
                await bpm.stop_advertising()  # asleep
                adapter = BleAdapter(f"bumble:{radio.hci_transport}")
                # scan windows of 0.3 s: the advertising burst falls across two of them
                settings = LinkSettings(PROFILES["blood-pressure"], ADDRESS, scan_window=0.3)
                link = BleLink(adapter, settings)
                opening = asyncio.create_task(link.open())
                await asyncio.sleep(1.0)  # the gateway has been scanning for a while
                assert not opening.done()
                bpm.send(STAMPED)  # a measurement wakes the device ...
                await bpm.advertise()
                await asyncio.sleep(0.5)
                await bpm.stop_advertising()  # ... for half a second
                async with asyncio.timeout(2):
                    await opening
                assert link.client is not None
                assert link.client.is_connected
                await link.close()
                await adapter.close()

    run(scenario)
