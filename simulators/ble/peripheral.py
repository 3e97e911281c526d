"""Simulated BLE health peripherals on a Bumble host: advertising, a GATT server, measurements.

A peripheral is described as data (:class:`Profile`: advertised name and services, GATT
services and characteristics, and which characteristic carries the measurements), so other
health profiles (glucose, thermometer, weight scale...) are new :class:`Profile` values, not
new code. :data:`BLOOD_PRESSURE_MONITOR` is the first.

Like a real monitor, the peripheral holds stored measurements (raw characteristic values
given by the caller) and sends them, oldest first, as soon as a central enables indications
(or notifications) on the measurement characteristic by writing its CCCD (Core Vol 3 Part G
3.3.3.3). Each indication is sent only after the previous one was confirmed (Part G 4.11.1:
one outstanding indication per bearer; Bumble's ``indicate_subscriber`` returns on the
confirmation); a confirmed measurement leaves the store and is appended to
:attr:`SimulatedPeripheral.confirmed`. Reads and writes follow the characteristic's
properties (else Read / Write Not Permitted, Core Vol 3 Part F 3.4.1.1: Bumble's server does
not check them); writes by the central update :attr:`SimulatedPeripheral.values` and are
recorded in :attr:`SimulatedPeripheral.writes`.

Workaround (bumble 0.0.236): when the link drops while an indication awaits its
confirmation, Bumble's GATT server forgets the pending confirmation without failing it, so the
sender would wait for the 30 s ATT transaction timeout (Core Vol 3 Part F 3.3.3); the
peripheral cancels its sender when the link drops instead, and the unconfirmed value stays
stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from bumble import hci
from bumble.att import ATT_Error, AttributeValue, ErrorCode
from bumble.core import UUID, AdvertisingData, BaseBumbleError
from bumble.device import AdvertisingType, Connection, Device
from bumble.gatt import Characteristic, Service
from bumble.transport.common import TransportSink, TransportSource

log = logging.getLogger(__name__)

Props = Characteristic.Properties


@dataclass(frozen=True)
class CharacteristicSpec:
    """One characteristic: SIG 16-bit UUID (or 128-bit string), properties, initial value."""

    uuid: int | str
    properties: Characteristic.Properties
    value: bytes = b""


@dataclass(frozen=True)
class ServiceSpec:
    uuid: int | str
    characteristics: tuple[CharacteristicSpec, ...]


@dataclass(frozen=True)
class Profile:
    """What a simulated device advertises and serves, and where its measurements go."""

    name: str
    advertised_services: tuple[int | str, ...]
    services: tuple[ServiceSpec, ...]
    measurement: int | str
    #: (company identifier, data) pairs (CSS Part A 1.4)
    manufacturer_data: tuple[tuple[int, bytes], ...] = ()
    #: (16-bit service UUID, data) pairs (CSS Part A 1.11)
    service_data: tuple[tuple[int, bytes], ...] = ()


def uuid_text(uuid: int | str) -> str:
    """The form Bumble's ``UUID`` parses: 4 hex digits for a SIG UUID, else as given."""
    return f"{uuid:04X}" if isinstance(uuid, int) else uuid


#: Blood Pressure Profile 1.1, sensor role: Blood Pressure Service (0x1810) with Blood Pressure
#: Measurement (0x2A35, indicate only) and Blood Pressure Feature (0x2A49, read; 0x0000: none
#: of the optional flags), plus the Current Time Service (0x1805) with Current Time (0x2A2B,
#: read/write/notify; Exact Time 256 + Adjust Reason, here 2026-01-01 00:00:00, a Thursday).
BLOOD_PRESSURE_MONITOR = Profile(
    name="SIM-BPM",
    advertised_services=(0x1810,),
    services=(
        ServiceSpec(
            0x1810,
            (
                CharacteristicSpec(0x2A35, Props.INDICATE),
                CharacteristicSpec(0x2A49, Props.READ, bytes.fromhex("0000")),
            ),
        ),
        ServiceSpec(
            0x1805,
            (
                CharacteristicSpec(
                    0x2A2B,
                    Props.READ | Props.WRITE | Props.NOTIFY,
                    bytes.fromhex("ea070101000000040000"),
                ),
            ),
        ),
    ),
    measurement=0x2A35,
)


def advertising_data(profile: Profile) -> bytes:
    """Flags, service UUIDs, service and manufacturer data, and the name, as AD structures.

    Core Vol 3 Part C 11 (format); CSS Part A 1.3 (Flags: LE General Discoverable, BR/EDR not
    supported), 1.1 (complete lists of 16-, 32- and 128-bit service UUIDs), 1.11 (service
    data), 1.4 (manufacturer data), 1.2 (complete local name). Legacy advertising PDUs carry
    at most 31 octets of it (Core Vol 6 Part B 2.3.1.1).
    """
    by_width: dict[int, bytes] = {2: b"", 4: b"", 16: b""}
    for service in profile.advertised_services:
        le = UUID(uuid_text(service)).to_bytes()
        by_width[len(le)] += le
    list_type = {
        2: AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        4: AdvertisingData.Type.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
        16: AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    }
    flags = (
        AdvertisingData.Flags.LE_GENERAL_DISCOVERABLE_MODE
        | AdvertisingData.Flags.BR_EDR_NOT_SUPPORTED
    )
    structures: list[tuple[int, bytes]] = [(AdvertisingData.Type.FLAGS, bytes([flags]))]
    structures += [(list_type[w], uuids) for w, uuids in by_width.items() if uuids]
    structures += [
        (AdvertisingData.Type.SERVICE_DATA_16_BIT_UUID, uuid.to_bytes(2, "little") + data)
        for uuid, data in profile.service_data
    ]
    structures += [
        (AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA, company.to_bytes(2, "little") + data)
        for company, data in profile.manufacturer_data
    ]
    structures.append((AdvertisingData.Type.COMPLETE_LOCAL_NAME, profile.name.encode()))
    payload = bytes(AdvertisingData(structures))
    if len(payload) > 31:
        raise ValueError(f"{profile.name}: {len(payload)} octets of advertising data, max 31")
    return payload


class SimulatedPeripheral:
    """A connectable advertiser with a GATT server built from a :class:`Profile`.

    ``hci_pair`` is the source and sink of a controller (e.g.
    :meth:`simulators.ble.link.VirtualRadio.hci`); ``address`` is the random static address
    it advertises with.
    """

    def __init__(
        self,
        profile: Profile,
        hci_pair: tuple[TransportSource, TransportSink],
        *,
        address: str = "D0:5A:4E:B9:00:01",
        measurements: Iterable[bytes] = (),
        advertising_interval_ms: float = 20.0,
        on_confirmed: Callable[[bytes], None] | None = None,
        on_write: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.profile = profile
        self.on_confirmed = on_confirmed
        self.on_write = on_write
        self.pending: deque[bytes] = deque(measurements)
        self.confirmed: list[bytes] = []
        self.writes: list[tuple[str, bytes]] = []
        self.values: dict[str, bytes] = {}
        self._interval = advertising_interval_ms
        self._confirmed_changed = asyncio.Condition()
        self._senders: dict[Connection, asyncio.Task[None]] = {}
        self.characteristics: dict[str, Characteristic[bytes]] = {}
        source, sink = hci_pair
        self.device = Device.with_hci(profile.name, hci.Address(address), source, sink)
        self.device.add_services([self._service(spec) for spec in profile.services])
        self.measurement = self.characteristics[uuid_text(profile.measurement)]

    @property
    def address(self) -> str:
        """The advertised address as bleak shows it (no type suffix)."""
        return self.device.random_address.to_string(with_type_qualifier=False)

    @property
    def connections(self) -> list[Connection]:
        return list(self.device.connections.values())

    def _service(self, spec: ServiceSpec) -> Service:
        characteristics = []
        for c in spec.characteristics:
            key = uuid_text(c.uuid)
            self.values[key] = c.value
            characteristic = Characteristic[bytes](
                key,
                c.properties,
                Characteristic.Permissions.READABLE | Characteristic.Permissions.WRITEABLE,
                AttributeValue[bytes](
                    read=lambda _conn, key=key, props=c.properties: self._read(key, props),
                    write=lambda _conn, value, key=key, props=c.properties: self._write(
                        key, props, value
                    ),
                ),
            )
            characteristic.on(Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)
            self.characteristics[key] = characteristic
            characteristics.append(characteristic)
        return Service(uuid_text(spec.uuid), characteristics)

    def _read(self, uuid: str, properties: Characteristic.Properties) -> bytes:
        # Bumble's server does not check the properties itself: a characteristic value that
        # cannot be read answers Read Not Permitted (Core Vol 3 Part F 3.4.1.1, code 0x02).
        if not properties & Props.READ:
            raise ATT_Error(ErrorCode.READ_NOT_PERMITTED)
        return self.values[uuid]

    def _write(self, uuid: str, properties: Characteristic.Properties, value: bytes) -> None:
        if not properties & (Props.WRITE | Props.WRITE_WITHOUT_RESPONSE):
            raise ATT_Error(ErrorCode.WRITE_NOT_PERMITTED)
        self.values[uuid] = bytes(value)
        self.writes.append((uuid, bytes(value)))
        if self.on_write is not None:
            self.on_write(uuid, bytes(value))

    async def start(self) -> Self:
        """Power on and advertise."""
        await self.device.power_on()
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)
        await self.advertise()
        return self

    async def advertise(self) -> None:
        """Advertise, connectable and undirected (ADV_IND), until a central connects.

        Advertising resumes by itself once that central has gone.
        """
        await self.device.start_advertising(
            advertising_type=AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE,
            advertising_data=advertising_data(self.profile),
            auto_restart=True,
            advertising_interval_min=self._interval,
            advertising_interval_max=self._interval,
        )

    async def stop_advertising(self) -> None:
        """Stop advertising (links stay up): a device switched off, or out of range."""
        await self.device.stop_advertising()

    def _on_connection(self, connection: Connection) -> None:
        connection.on(Connection.EVENT_DISCONNECTION, lambda _reason: self._stop_sender(connection))

    def _on_subscription(self, bearer: object, notify: bool, indicate: bool) -> None:
        if not isinstance(bearer, Connection):
            return  # EATT bearers are not offered (eatt_enabled is False)
        if not (notify or indicate):
            self._stop_sender(bearer)
        elif bearer not in self._senders or self._senders[bearer].done():
            self._senders[bearer] = asyncio.create_task(self._send_stored(bearer, indicate))

    async def _send_stored(self, connection: Connection, indicate: bool) -> None:
        while self.pending:
            value = self.pending[0]
            try:
                if indicate:
                    await self.device.indicate_subscriber(connection, self.measurement, value)
                else:
                    await self.device.notify_subscriber(connection, self.measurement, value)
            except (TimeoutError, BaseBumbleError) as error:
                log.warning("%s: measurement not delivered, kept: %s", self.profile.name, error)
                return
            self.pending.popleft()
            async with self._confirmed_changed:
                self.confirmed.append(value)
                self._confirmed_changed.notify_all()
            if self.on_confirmed is not None:
                self.on_confirmed(value)

    def _stop_sender(self, connection: Connection) -> None:
        if (task := self._senders.pop(connection, None)) is not None:
            task.cancel()

    def send(self, *values: bytes) -> None:
        """Store more measurements; send them now to a central that is subscribed."""
        self.pending.extend(values)
        for connection in self.connections:
            cccd = self.device.gatt_server.read_cccd(connection, self.measurement)
            if cccd[0] & 0x03:
                self._on_subscription(connection, bool(cccd[0] & 0x01), bool(cccd[0] & 0x02))

    async def wait_confirmed(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """Wait until ``count`` measurements in all were confirmed (or notified); those."""
        async with asyncio.timeout(timeout), self._confirmed_changed:
            await self._confirmed_changed.wait_for(lambda: len(self.confirmed) >= count)
        return self.confirmed[:count]

    async def disconnect(self) -> None:
        """Drop every link, as a monitor switching itself off would."""
        for connection in self.connections:
            with contextlib.suppress(hci.HCI_Error):
                await connection.disconnect(hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)

    async def close(self) -> None:
        for task in list(self._senders.values()):
            task.cancel()
        await asyncio.gather(*self._senders.values(), return_exceptions=True)
        self._senders.clear()
        await self.stop_advertising()
        await self.disconnect()
        await self.device.power_off()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
