"""The GATT server of a simulated peripheral, built from a Profile, with its access rules.

Reads and writes follow each characteristic's properties (else Read / Write Not Permitted,
Core Vol 3 Part F 3.4.1.1); writes update :attr:`ProfileServer.values` and are recorded in
:attr:`ProfileServer.writes`; :meth:`ProfileServer.handle_writes` lets a service (the glucose
meter's Record Access Control Point) take a characteristic's writes. With a
:class:`~simulators.ble.clock.DeviceClock`, Current Time (0x2A2B) reads and sets that clock.

``bonding_required``: every CCCD write and characteristic write needs an encrypted link. Core
Vol 3 Part C 10.3.1: without an LTK for the peer the request fails with Insufficient
Authentication (0x05), with one but an unencrypted link with Insufficient Encryption (0x0F).

Workaround (bumble 0.0.236): Bumble's GATT server checks no characteristic properties, and the
CCCDs it adds by itself are open to every link (``READABLE | WRITEABLE``; its permission check
is a TODO). So every CCCD is declared here (the server then adds none), with a write that
checks the link's security first and then stores the configuration through the server's own
``write_cccd``: subscriptions behave exactly as with Bumble's CCCDs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bumble.att import ATT_Error, AttributeValue, AttributeValueV2, Bearer, ErrorCode
from bumble.device import Connection, Device
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    Characteristic,
    Descriptor,
    Service,
)

from simulators.ble.clock import CurrentTimeWriteError, DeviceClock, current_time_value
from simulators.ble.clock import write_current_time as set_clock
from simulators.ble.profiles import CURRENT_TIME, Profile, Props, ServiceSpec, uuid_text

log = logging.getLogger(__name__)

#: Takes a characteristic's writes: (link, value); raises ``ATT_Error`` to refuse one.
WriteHandler = Callable[[Connection, bytes], None]
_SUBSCRIBABLE = Props.NOTIFY | Props.INDICATE


class ProfileServer:
    """The services of ``profile`` on ``device``'s GATT server, and how they answer."""

    def __init__(
        self,
        device: Device,
        profile: Profile,
        *,
        clock: DeviceClock | None = None,
        bonding_required: bool = False,
        on_write: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.device = device
        self.profile = profile
        self.clock = clock
        self.bonding_required = bonding_required
        self.on_write = on_write
        self.writes: list[tuple[str, bytes]] = []
        self.values: dict[str, bytes] = {}
        self.characteristics: dict[str, Characteristic[bytes]] = {}
        self._handlers: dict[str, WriteHandler] = {}
        device.add_services([self._service(spec) for spec in profile.services])

    def characteristic(self, uuid: int | str) -> Characteristic[bytes]:
        return self.characteristics[uuid_text(uuid)]

    def handle_writes(self, uuid: int | str, handler: WriteHandler) -> None:
        """Give ``uuid``'s writes to ``handler`` (after the property and security checks)."""
        self._handlers[uuid_text(uuid)] = handler

    def _service(self, spec: ServiceSpec) -> Service:
        characteristics = []
        for c in spec.characteristics:
            key = uuid_text(c.uuid)
            self.values[key] = c.value

            async def write(connection: Connection, value: bytes, key: str = key) -> None:
                await self._write(connection, key, value)

            characteristic = Characteristic[bytes](
                key,
                c.properties,
                Characteristic.Permissions.READABLE | Characteristic.Permissions.WRITEABLE,
                AttributeValue[bytes](read=lambda _conn, key=key: self._read(key), write=write),
            )
            if c.properties & _SUBSCRIBABLE:
                characteristic.descriptors = [self._cccd(characteristic)]
            self.characteristics[key] = characteristic
            characteristics.append(characteristic)
        return Service(uuid_text(spec.uuid), characteristics)

    def _cccd(self, characteristic: Characteristic[bytes]) -> Descriptor:
        """The Client Characteristic Configuration descriptor (Core Vol 3 Part G 3.3.3.3)."""
        server = self.device.gatt_server

        async def write(bearer: Bearer, value: bytes) -> None:
            if isinstance(bearer, Connection):
                await self._check_security(bearer)
            server.write_cccd(bearer, characteristic, value)

        return Descriptor(
            GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
            Descriptor.Permissions.READABLE | Descriptor.Permissions.WRITEABLE,
            AttributeValueV2(lambda bearer: server.read_cccd(bearer, characteristic), write),
        )

    async def _check_security(self, connection: Connection) -> None:
        """With ``bonding_required``, refuse an unencrypted link (Core Vol 3 Part C 10.3.1)."""
        if not self.bonding_required or connection.is_encrypted:
            return
        # "an LTK is available": the one Bumble would give the controller for this link
        # (LE Secure Connections keys have Rand and EDIV 0, Core Vol 3 Part H 2.4.4.1)
        bonded = await self.device.get_long_term_key(connection.handle, bytes(8), 0) is not None
        raise ATT_Error(
            ErrorCode.INSUFFICIENT_ENCRYPTION if bonded else ErrorCode.INSUFFICIENT_AUTHENTICATION
        )

    def _read(self, uuid: str) -> bytes:
        # Bumble's server does not check the properties itself: a characteristic value that
        # cannot be read answers Read Not Permitted (Core Vol 3 Part F 3.4.1.1, code 0x02).
        if not self.characteristics[uuid].properties & Props.READ:
            raise ATT_Error(ErrorCode.READ_NOT_PERMITTED)
        if uuid == uuid_text(CURRENT_TIME) and self.clock is not None:
            return current_time_value(self.clock)
        return self.values[uuid]

    async def _write(self, connection: Connection, uuid: str, value: bytes) -> None:
        if not self.characteristics[uuid].properties & (Props.WRITE | Props.WRITE_WITHOUT_RESPONSE):
            raise ATT_Error(ErrorCode.WRITE_NOT_PERMITTED)
        await self._check_security(connection)
        value = bytes(value)
        if uuid == uuid_text(CURRENT_TIME) and self.clock is not None:
            try:
                set_clock(self.clock, value)
            except CurrentTimeWriteError as refused:
                log.info("%s: %s", self.profile.name, refused)
                raise ATT_Error(refused.att_error) from refused
        if (handler := self._handlers.get(uuid)) is not None:
            handler(connection, value)
        self.values[uuid] = value
        self.writes.append((uuid, value))
        if self.on_write is not None:
            self.on_write(uuid, value)

    def subscription(self, connection: Connection, uuid: int | str) -> tuple[bool, bool]:
        """(notifications, indications) enabled by ``connection`` on ``uuid``'s CCCD."""
        cccd = self.device.gatt_server.read_cccd(connection, self.characteristic(uuid))
        return bool(cccd[0] & 0x01), bool(cccd[0] & 0x02)

    async def notify(self, connection: Connection, uuid: int | str, value: bytes) -> bool:
        """Notify ``value`` if ``connection`` enabled notifications; whether it was sent."""
        if not self.subscription(connection, uuid)[0]:
            return False
        await self.device.notify_subscriber(connection, self.characteristic(uuid), value)
        return True

    async def indicate(self, connection: Connection, uuid: int | str, value: bytes) -> bool:
        """Indicate ``value`` and wait for its confirmation; False if indications are off."""
        if not self.subscription(connection, uuid)[1]:
            return False
        await self.device.indicate_subscriber(connection, self.characteristic(uuid), value)
        return True
