"""Shared bench for the BLE simulator tests: a virtual radio, a gateway host, a collector.

A :class:`~simulators.ble.link.VirtualRadio` with simulated peripherals, a gateway-side Bumble
host reached over TCP HCI (drivers/ble/bumble_backend.py) and bleak's public API on top; the
RACP collector and the measurement readers use the production parsers of drivers/ble/gatt.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bumble.device import Device
from bumble.pairing import PairingConfig, PairingDelegate

from drivers.ble.bumble_backend import BumbleBle
from drivers.ble.gatt.bp import BloodPressureMeasurement
from drivers.ble.gatt.glucose import (
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    parse_glucose_measurement,
    parse_glucose_measurement_context,
)
from drivers.ble.gatt.plx import PlxSpotCheck
from drivers.ble.gatt.racp import (
    RacpGeneralResponse,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    encode_racp_request,
    parse_racp_response,
)
from drivers.ble.gatt.registry import uuid128
from drivers.ble.gatt.thermometer import TemperatureMeasurement
from drivers.ble.gatt.weight import WeightMeasurement
from simulators.ble.clock import DeviceClock
from simulators.ble.draws import DRAWS, Units
from simulators.ble.glucometer import Glucometer
from simulators.ble.link import VirtualRadio
from simulators.ble.peripheral import SimulatedPeripheral
from simulators.ble.profiles import PROFILES, Profile

PARIS = ZoneInfo("Europe/Paris")
MEASUREMENT = {"blood-pressure": 0x2A35, "thermometer": 0x2A1C, "weight-scale": 0x2A9D}
MEASUREMENT["pulse-oximeter"] = 0x2A5E
GLUCOSE, CONTEXT, RACP, CURRENT_TIME = (uuid128(u) for u in (0x2A18, 0x2A34, 0x2A52, 0x2A2B))


def run(scenario: Callable[[], Awaitable[None]], timeout: float = 20) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await scenario()

    asyncio.run(bounded())


def static_identity(*devices: Device) -> None:
    """Just Works bonding with the static random address each connects with as identity.

    Core Vol 3 Part H 3.6.4: the identity address a device distributes is how its peer finds
    the bond on the next link; Bumble gives its public address by default, which these hosts
    never connect with.
    """
    for device in devices:
        device.pairing_config_factory = lambda _connection: PairingConfig(
            sc=True,
            mitm=False,
            bonding=True,
            delegate=PairingDelegate(PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )


def service_of(profile: Profile) -> str:
    (service,) = profile.advertised_services
    assert isinstance(service, int)
    return uuid128(service)


async def find(ble: BumbleBle, profile: Profile, timeout: float = 5) -> BLEDevice:
    wanted = service_of(profile)
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: wanted in adv.service_uuids, timeout=timeout, backend=ble.scanner
    )
    assert device is not None, f"no device advertising {wanted}"
    return device


async def until(condition: Callable[[], object], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@asynccontextmanager
async def bench(
    profile: Profile, **options: Any
) -> AsyncIterator[tuple[VirtualRadio, BumbleBle, SimulatedPeripheral]]:
    """A radio, one simulated peripheral (``options`` for it), a gateway host over TCP HCI."""
    async with VirtualRadio(peripherals=1) as radio:
        peripheral = SimulatedPeripheral(profile, radio.hci(0), **options)
        await peripheral.start()
        try:
            async with BumbleBle(radio.hci_transport) as ble:
                yield radio, ble, peripheral
        finally:
            await peripheral.close()


class Collector:
    """The gateway's side of the glucose profile: RACP requests, records as they arrive."""

    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self.values: list[GlucoseMeasurement | GlucoseMeasurementContext] = []
        self.responses: asyncio.Queue[RacpResponse] = asyncio.Queue()

    async def subscribe(self, *, racp: bool = True) -> None:
        await self.client.start_notify(
            GLUCOSE, lambda _c, d: self.values.append(parse_glucose_measurement(bytes(d)))
        )
        await self.client.start_notify(
            CONTEXT, lambda _c, d: self.values.append(parse_glucose_measurement_context(bytes(d)))
        )
        if racp:
            await self.client.start_notify(
                RACP, lambda _c, d: self.responses.put_nowait(parse_racp_response(bytes(d)))
            )

    async def ask(self, op: RacpOpCode, operator: RacpOperator, *bounds: int) -> RacpResponse:
        low = high = None
        if operator in (RacpOperator.GREATER_THAN_OR_EQUAL, RacpOperator.WITHIN_RANGE):
            low, *rest = bounds
            high = rest[0] if rest else None
        elif operator == RacpOperator.LESS_THAN_OR_EQUAL:
            (high,) = bounds
        await self.send(encode_racp_request(RacpRequest(op, operator, low, high)))
        return await self.response()

    async def send(self, value: bytes) -> None:
        await self.client.write_gatt_char(RACP, value, response=True)

    async def response(self) -> RacpResponse:
        async with asyncio.timeout(5):
            return await self.responses.get()

    def sequence_numbers(self) -> list[int]:
        return [v.sequence_number for v in self.values if isinstance(v, GlucoseMeasurement)]


def success(op: RacpOpCode) -> RacpGeneralResponse:
    return RacpGeneralResponse(op, RacpResponseCode.SUCCESS)


def store_glucose(meter: Glucometer, count: int, clock: DeviceClock) -> None:
    rng = random.Random(7)
    for _ in range(count):
        drawn = DRAWS["glucose"](rng, clock.now(), Units(), meter.next_sequence_number)
        meter.store(drawn.value, drawn.context)


REPORT, COUNT = RacpOpCode.REPORT_STORED_RECORDS, RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS
ALL, AT_LEAST = RacpOperator.ALL_RECORDS, RacpOperator.GREATER_THAN_OR_EQUAL


def numbers(parsed: object) -> list[tuple[str, object]]:
    """What a parsed measurement says, in the quantities of simulators.ble.draws."""
    match parsed:
        case BloodPressureMeasurement(systolic=s, diastolic=d, mean_arterial_pressure=m):
            assert parsed.pulse_rate is not None
            fields = [("systolic", s), ("diastolic", d), ("mean", m), ("pulse", parsed.pulse_rate)]
        case TemperatureMeasurement(temperature=t):
            fields = [("temperature", t)]
        case WeightMeasurement(weight=w):
            fields = [("weight", w)]
        case PlxSpotCheck(spo2=s, pulse_rate=p):
            fields = [("spo2", s), ("spo2-pulse", p)]
        case _:
            raise AssertionError(parsed)
    return [(name, value.value()) for name, value in fields]


def time_stamp(parsed: object) -> datetime | None:
    stamp = getattr(parsed, "time_stamp", None) or getattr(parsed, "timestamp", None)
    assert stamp is None or isinstance(stamp, datetime)
    return stamp


@asynccontextmanager
async def glucose_bench(
    records: int, **faults: Any
) -> AsyncIterator[tuple[BumbleBle, SimulatedPeripheral, Glucometer]]:
    clock = DeviceClock(zone=PARIS)
    async with bench(PROFILES["glucose"], clock=clock) as (_radio, ble, peripheral):
        meter = Glucometer(peripheral, **faults)
        store_glucose(meter, records, clock)
        try:
            yield ble, peripheral, meter
        finally:
            await meter.close()
