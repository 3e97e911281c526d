"""A bleak client backend on a Bumble host: an LE link, the GATT client procedures, SMP pairing.

Get the class from :attr:`drivers.ble.bumble_backend.BumbleBle.client` (it is bound to one
opened Bumble host); bleak instantiates it: ``BleakClient(device, backend=ble.client)``.

What each bleak call does on the air (Core Vol 3 Part G, GATT; Part F, ATT):

- ``connect``: LE connection as central (Part C 9.3), then Exchange MTU (Part G 4.3.1,
  asking for :data:`REQUESTED_MTU`), optional pairing, then discovery: all primary services
  (4.4.1), all characteristics of each (4.6.1), all descriptors of each (4.7.1). The whole of
  it is bounded by the client's ``timeout``.
- Handles are ATT handles: a characteristic's ``handle`` is its *value* handle (as on WinRT
  and CoreBluetooth), a descriptor's its own; ``obj`` is the Bumble proxy.
- ``read_gatt_char``: Read (4.8.1), then Read Blob while the value fills the MTU (4.8.3).
- ``write_gatt_char``: Write (4.9.3) or Write Long (4.9.4) with response, Write Without
  Response (4.9.1) without.
- ``start_notify``: writes the Client Characteristic Configuration descriptor (3.3.3.3):
  notifications (0x0001) when the characteristic has both, indications (0x0002) otherwise,
  as bleak asks; indications are confirmed (4.11.1) by Bumble after the callback ran.
- ``pair``: SMP pairing and bonding (Vol 3 Part H 2.3), LE Secure Connections "just works"
  (no MITM: the devices have no I/O); keys stay in the host's key store until ``unpair``.
- ATT Error Responses raise :class:`bleak.exc.BleakGATTProtocolError`.

Limits: characteristic extended properties (``reliable-write``, ``writable-auxiliaries``, from
descriptor 0x2900) and the ``encrypt-*`` permissions are not reported (ATT does not expose
permissions); included services are not discovered; ``use_cached`` returns the last value
read or notified, if any. The disconnected callback runs for every disconnection after
``connect`` returned, requested or not, as on BlueZ.

Workaround: when the link drops with an ATT request outstanding, Bumble *cancels* the
request's future; the resulting CancelledError is turned into a BleakError unless the task
itself was being cancelled (see :func:`~drivers.ble.bumble_backend.cancelled_from_outside`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from bumble import att, core, hci
from bumble.device import Connection
from bumble.gatt import Characteristic
from bumble.gatt_client import CharacteristicProxy, Client

from drivers.ble.bleak_api import (
    BaseBleakClient,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTCharacteristic,
    BleakGATTDescriptor,
    BleakGATTProtocolError,
    BleakGATTService,
    BleakGATTServiceCollection,
    BleakScanner,
    BLEDevice,
    CharacteristicPropertyName,
    NotifyCallback,
    SizedBuffer,
)
from drivers.ble.bumble_backend import bumble_uuid_str, cancelled_from_outside, disconnect_quietly

if TYPE_CHECKING:
    from drivers.ble.bumble_backend import BumbleBle

log = logging.getLogger(__name__)

#: ATT_MTU the client offers (Core Vol 3 Part F 3.4.2.1); 517 carries a 512-octet attribute
#: value (the longest, Part F 3.2.9) in one Read Response.
REQUESTED_MTU = 517

_P = Characteristic.Properties
_PROPERTY_NAMES: tuple[tuple[_P, CharacteristicPropertyName], ...] = (
    (_P.BROADCAST, "broadcast"),
    (_P.READ, "read"),
    (_P.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (_P.WRITE, "write"),
    (_P.NOTIFY, "notify"),
    (_P.INDICATE, "indicate"),
    (_P.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (_P.EXTENDED_PROPERTIES, "extended-properties"),
)
_CCCD = bumble_uuid_str((0x2902).to_bytes(2, "little"))


def property_names(properties: int) -> list[CharacteristicPropertyName]:
    """Characteristic Properties bits (Core Vol 3 Part G 3.3.1.1) as bleak names them."""
    return [name for bit, name in _PROPERTY_NAMES if properties & bit]


class BleakClientBumble(BaseBleakClient):
    """A GATT client on an LE link made by the Bumble host this class is bound to."""

    ble: ClassVar[BumbleBle | None] = None

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        for os_specific in ("bluez", "winrt"):
            kwargs.pop(os_specific, None)
        super().__init__(address_or_ble_device, **kwargs)
        if self.ble is None:
            raise TypeError(
                "BleakClientBumble is not bound to a Bumble host: pass `backend=ble.client`"
                " of an opened drivers.ble.bumble_backend.BumbleBle"
            )
        self._host: BumbleBle = self.ble
        self._peer: hci.Address | None = None
        self._name = self.address
        if isinstance(address_or_ble_device, BLEDevice):
            self._name = address_or_ble_device.name or self.address
            if isinstance(address_or_ble_device.details, hci.Address):
                self._peer = address_or_ble_device.details
        self._wanted_services = services
        self._connection: Connection | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    # -- link -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def mtu_size(self) -> int:
        connection = self._connection
        return connection.att_mtu if connection is not None else att.ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        peer = self._peer or await self._find_peer()
        with _bleak_errors("connect"):
            # Bumble's own timeout, not a cancellation: on expiry it sends LE Create Connection
            # Cancel (Core Vol 4 Part E 7.8.13), so the controller is not left initiating.
            connection = await self._host.connect(peer, timeout=max(deadline - loop.time(), 0))
        try:
            self._connection = connection
            async with asyncio.timeout_at(deadline):
                with _bleak_errors("MTU exchange"):
                    await connection.gatt_client.request_mtu(REQUESTED_MTU)
                if pair:
                    await self.pair()
                self.services = await self._discover(connection.gatt_client)
        except BaseException:
            self._connection = None
            await disconnect_quietly(connection)
            raise
        # only now: a link that fails while connecting raises instead of calling back
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        log.debug("connected to %s, ATT_MTU %d", peer, connection.att_mtu)

    async def _find_peer(self) -> hci.Address:
        """An address alone does not say public or random: find its advertisement."""
        # the public API, with this very host
        found = await BleakScanner.find_device_by_address(
            self.address, timeout=self._timeout, backend=self._host.scanner
        )
        if found is None or not isinstance(found.details, hci.Address):
            raise BleakDeviceNotFoundError(self.address, f"{self.address} not advertising")
        self._name = found.name or self._name
        return found.details

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is not None:
            await disconnect_quietly(connection)
            # The disconnection event has run _on_disconnection by now, unless the link was
            # already half gone: make sure the client is left disconnected either way.
            if self._connection is connection:
                self._on_disconnection(hci.HCI_CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR)

    def _on_disconnection(self, reason: int) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        connection.remove_listener(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._subscribers.clear()
        self.services = None
        log.debug("disconnected from %s, HCI reason 0x%02X", self.address, reason)
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair and bond; on a bonded peer, re-encrypt with the stored key instead.

        The link is left encrypted either way (LE Security Mode 1 level 2, Core Vol 3 Part C
        10.2.1); already encrypted, nothing is done, as BlueZ does for a paired device.
        """
        connection = self._require_connection()
        if connection.is_encrypted:
            return
        keystore = self._host.device.keystore
        bonded = keystore is not None and await keystore.get(str(connection.peer_address))
        async with asyncio.timeout(self._timeout):
            with _bleak_errors("pairing"):
                if bonded:
                    # Encryption with the bonded LTK (Vol 3 Part H 2.4.4.2), no new pairing
                    await connection.encrypt()
                else:
                    await connection.pair()

    async def unpair(self) -> None:
        """Forget the bond (delete the keys) and disconnect, as bleak's other backends do."""
        keystore = self._host.device.keystore
        peer = self._connection.peer_address if self._connection is not None else self._peer
        if keystore is not None and peer is not None:
            await keystore.delete(str(peer))
        await self.disconnect()

    # -- GATT -------------------------------------------------------------------------------

    async def _discover(self, client: Client) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        with _bleak_errors("service discovery"):
            for service in await client.discover_services():
                uuid = bumble_uuid_str(service.uuid.to_bytes())
                if self._wanted_services and uuid not in self._wanted_services:
                    continue
                bleak_service = BleakGATTService(service, service.handle, uuid)
                collection.add_service(bleak_service)
                for characteristic in await client.discover_characteristics((), service):
                    bleak_char = BleakGATTCharacteristic(
                        characteristic,
                        characteristic.handle,
                        bumble_uuid_str(characteristic.uuid.to_bytes()),
                        property_names(characteristic.properties),
                        self._max_write_without_response_size,
                        bleak_service,
                    )
                    collection.add_characteristic(bleak_char)
                    for descriptor in await client.discover_descriptors(characteristic):
                        collection.add_descriptor(
                            BleakGATTDescriptor(
                                descriptor,
                                descriptor.handle,
                                bumble_uuid_str(descriptor.type.to_bytes()),
                                bleak_char,
                            )
                        )
        return collection

    def _max_write_without_response_size(self) -> int:
        # ATT_Write_Command: opcode (1) + handle (2) + value (Core Vol 3 Part F 3.4.5.3)
        return self.mtu_size - 3

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return await self._read(characteristic.handle, use_cached=use_cached)

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return await self._read(descriptor.handle, use_cached=use_cached)

    async def _read(self, handle: int, *, use_cached: bool) -> bytearray:
        client = self._require_connection().gatt_client
        if use_cached and (cached := client.cached_values.get(handle)) is not None:
            return bytearray(cached[1])
        with _bleak_errors(f"read of handle 0x{handle:04X}"):
            return bytearray(await client.read_value(handle))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        await self._write(characteristic.handle, bytes(data), response=response)

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        await self._write(descriptor.handle, bytes(data), response=True)

    async def _write(self, handle: int, value: bytes, *, response: bool) -> None:
        client = self._require_connection().gatt_client
        with _bleak_errors(f"write of handle 0x{handle:04X}"):
            await client.write_value(handle, value, with_response=response)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        proxy = self._proxy(characteristic)
        if characteristic.handle in self._subscribers:
            raise BleakError(f"notifications from {characteristic.uuid} are already started")
        if characteristic.get_descriptor(_CCCD) is None:
            raise BleakError(f"{characteristic.uuid} has no CCCD: it cannot notify or indicate")

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = deliver
        try:
            with _bleak_errors(f"subscription to {characteristic.uuid}"):
                # registers `deliver` before writing the CCCD: nothing sent at once is lost
                await self._require_connection().gatt_client.subscribe(
                    proxy, deliver, prefer_notify=True
                )
        except BaseException:
            self._subscribers.pop(characteristic.handle, None)
            self._forget(proxy, deliver)
            raise

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        deliver = self._subscribers.pop(characteristic.handle, None)
        if deliver is None:
            return
        with _bleak_errors(f"unsubscription from {characteristic.uuid}"):
            # writes 0x0000 to the CCCD once the last subscriber is gone
            await self._require_connection().gatt_client.unsubscribe(
                self._proxy(characteristic), deliver
            )

    # -- helpers ----------------------------------------------------------------------------

    def _forget(self, proxy: CharacteristicProxy[bytes], deliver: Callable[[bytes], None]) -> None:
        """Unregister a subscriber whose CCCD write failed, without writing the CCCD again.

        Bumble registers the subscriber before writing the CCCD and leaves it registered when
        the write fails (e.g. Insufficient Authentication): a later successful subscription
        would then deliver every value twice.
        """
        wrapper = proxy.subscribers.pop(deliver, None)
        connection = self._connection
        if wrapper is None or connection is None:
            return
        client = connection.gatt_client
        for registry in (client.notification_subscribers, client.indication_subscribers):
            subscribers = registry.get(proxy.handle)
            if subscribers is not None:
                subscribers.discard(wrapper)
                if subscribers <= {proxy}:
                    del registry[proxy.handle]

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError("Not connected")
        return self._connection

    @staticmethod
    def _proxy(characteristic: BleakGATTCharacteristic) -> CharacteristicProxy[bytes]:
        proxy = characteristic.obj
        if not isinstance(proxy, CharacteristicProxy):
            raise BleakError(f"{characteristic} was not discovered by the Bumble backend")
        return proxy


@contextlib.contextmanager
def _bleak_errors(what: str) -> Iterator[None]:
    """Bumble's errors as bleak's: ATT errors keep their code, the rest become BleakError."""
    try:
        yield
    except att.ATT_Error as error:
        raise BleakGATTProtocolError(error.error_code) from error
    except asyncio.CancelledError as error:
        if cancelled_from_outside():
            raise
        raise BleakError(f"{what}: the link was lost") from error
    except core.TimeoutError as error:
        raise TimeoutError(f"{what} timed out") from error
    except core.BaseBumbleError as error:
        raise BleakError(f"{what} failed: {error}") from error
