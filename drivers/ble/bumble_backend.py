"""A bleak backend whose BLE host is a Bumble ``Device`` on an HCI transport.

bleak's public API (:class:`bleak.BleakScanner`, :class:`bleak.BleakClient`) stays the only
API the gateway uses; this module swaps the operating system's host stack (BlueZ, WinRT,
CoreBluetooth) for Bumble's pure-Python host, which talks HCI to any controller Bumble can
reach: a virtual controller on a :class:`bumble.link.LocalLink` (CI has no radio), a
controller in another process over ``tcp-client:HOST:PORT``, or a real USB/serial HCI dongle
(``usb:0``, ``serial:/dev/ttyACM0``). Usage::

    async with BumbleBle("tcp-client:127.0.0.1:9001") as ble:
        device = await BleakScanner.find_device_by_filter(f, backend=ble.scanner)
        async with BleakClient(device, backend=ble.client) as client:
            ...

bleak instantiates backend *classes* itself, with fixed arguments, so a :class:`BumbleBle`
(one HCI transport, one Bumble ``Device``, opened once) hands out subclasses of
:class:`~drivers.ble.bumble_scanner.BleakScannerBumble` and
:class:`~drivers.ble.bumble_client.BleakClientBumble` bound to itself; every scanner and
client made from them shares that host. Use it from one event loop only (Bumble binds to the
loop that opened it).

Workarounds (bumble 0.0.236):

- Bumble's host can have one LE connection being created at a time (``connect_le`` raises
  "connection already pending"), so :meth:`BumbleBle.connect` serialises connection
  attempts; one scan is shared by every running scanner (reference counted), as the HCI LE
  scan (Core Vol 4 Part E 7.8.10/7.8.11) is a controller-wide state.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Self, cast

from bumble import hci
from bumble.core import PhysicalTransport
from bumble.device import Advertisement, Connection, Device
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport import open_transport
from bumble.transport.common import Transport

__all__ = ["BumbleBle", "bumble_uuid_str", "disconnect_quietly"]

log = logging.getLogger(__name__)

#: The gateway's own LE address: a random static address (Core Vol 6 Part B 1.3.2.1: the two
#: most significant bits are 1).
DEFAULT_ADDRESS = "C0:5A:4E:7E:B0:05"

AdvertisementListener = Callable[[Advertisement], None]


def bumble_uuid_str(value: bytes) -> str:
    """A little-endian 16-, 32- or 128-bit UUID as bleak's lowercase 128-bit string.

    16- and 32-bit UUIDs are aliases within the Bluetooth Base UUID (Core Vol 3 Part B 2.5.1).
    """
    if len(value) in (2, 4):
        short = int.from_bytes(value, "little")
        return f"{short:08x}-0000-1000-8000-00805f9b34fb"
    if len(value) == 16:
        return str(uuid.UUID(bytes=bytes(reversed(value))))
    raise ValueError(f"a UUID has 2, 4 or 16 bytes, not {len(value)}")


class BumbleBle:
    """One Bumble host on one HCI transport, and the bleak backend classes bound to it.

    ``hci_transport`` is any Bumble transport name (``tcp-client:127.0.0.1:PORT``, ``usb:0``,
    ``serial:/dev/ttyACM0,1000000``...); alternatively pass an already opened Bumble
    ``Transport`` (e.g. a pair of in-process pipes to a virtual controller), which this object
    then owns and closes.
    """

    def __init__(
        self,
        hci_transport: str | Transport,
        *,
        address: str = DEFAULT_ADDRESS,
        name: str = "santebus-gateway",
    ) -> None:
        self._spec = hci_transport
        self._address = address
        self._name = name
        self._transport: Transport | None = None
        self._device: Device | None = None
        self._scan_listeners: dict[AdvertisementListener, bool] = {}
        self._scan_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._lost = False
        # imported here: those modules import this one (for the helpers below)
        from drivers.ble.bumble_client import BleakClientBumble
        from drivers.ble.bumble_scanner import BleakScannerBumble

        ble = self
        self.scanner = cast(
            type[BleakScannerBumble],
            type(BleakScannerBumble.__name__, (BleakScannerBumble,), {"ble": ble}),
        )
        """The :class:`~bleak.backends.scanner.BaseBleakScanner` to pass as ``backend=``."""
        self.client = cast(
            type[BleakClientBumble],
            type(BleakClientBumble.__name__, (BleakClientBumble,), {"ble": ble}),
        )
        """The :class:`~bleak.backends.client.BaseBleakClient` to pass as ``backend=``."""

    @property
    def device(self) -> Device:
        """The Bumble host (raises if :meth:`open` has not been awaited)."""
        if self._device is None:
            raise RuntimeError("BumbleBle is not open: use `async with BumbleBle(...)`")
        return self._device

    async def open(self) -> Self:
        """Open the HCI transport, reset the controller and power the host on."""
        if self._device is not None:
            return self
        spec = self._spec
        transport = await open_transport(spec) if isinstance(spec, str) else spec
        self._transport = transport
        try:
            device = Device.with_hci(
                self._name, hci.Address(self._address), transport.source, transport.sink
            )
            # LE security mode 1 level 2 (Core Vol 3 Part C 10.2.1): unauthenticated pairing,
            # i.e. Just Works (Vol 3 Part H 2.3.5.1), with bonding (Part C 9.4). The health
            # devices have neither display nor keyboard, so passkeys are out anyway.
            # The identity distributed in pairing is the random static address the host
            # connects from (Core Vol 3 Part H 3.6.5): with Bumble's default (the controller's
            # public address) a peer never finds the bond again and every link re-pairs.
            device.pairing_config_factory = lambda _connection: PairingConfig(
                sc=True,
                mitm=False,
                bonding=True,
                delegate=PairingDelegate(PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT),
                identity_address_type=PairingConfig.AddressType.RANDOM,
            )
            await device.power_on()
        except BaseException:
            await transport.close()
            self._transport = None
            raise
        self._device = device
        transport.source.terminated.add_done_callback(self._on_transport_lost)
        log.debug("bumble host %s up on %s", device.random_address, spec)
        return self

    def _on_transport_lost(self, _terminated: asyncio.Future[None]) -> None:
        """The controller is gone (its process died, the dongle was pulled): so are the links.

        Bumble's host only fails the pending HCI command; its connections would stay "up"
        forever. Report them disconnected, with the reason a controller gives when a link's
        supervision timer expires (HCI error 0x08, Core Vol 1 Part F 2.9), so clients clean up
        and their disconnected callbacks run.
        """
        device = self._device
        if device is None:
            return  # closed by us
        self._lost = True
        log.warning(
            "HCI transport %s lost: %d link(s) dropped", self._spec, len(device.connections)
        )
        for handle in list(device.connections):
            device.on_disconnection(handle, hci.HCI_CONNECTION_TIMEOUT_ERROR)

    @property
    def lost(self) -> bool:
        """The HCI transport went away after :meth:`open`: close and open a new one."""
        return self._lost

    async def close(self) -> None:
        """Drop every connection, stop scanning and close the transport (idempotent)."""
        device, transport = self._device, self._transport
        self._device = self._transport = None
        self._scan_listeners.clear()
        try:
            if device is not None:
                for connection in list(device.connections.values()):
                    await disconnect_quietly(connection)
                if device.is_scanning:
                    await device.stop_scanning()
                await device.power_off()
        finally:
            if transport is not None:
                await transport.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- used by the bound backend classes ------------------------------------------------

    async def start_scanning(self, listener: AdvertisementListener, *, active: bool) -> None:
        """Deliver advertisements to ``listener``, starting the LE scan if it is not running.

        Active scanning (SCAN_REQ/SCAN_RSP, Core Vol 6 Part B 4.4.3) if any listener wants it.
        """
        async with self._scan_lock:
            device = self.device
            self._scan_listeners[listener] = active
            device.on(Device.EVENT_ADVERTISEMENT, listener)
            want_active = any(self._scan_listeners.values())
            if device.is_scanning and (device.scanning_is_passive == want_active):
                await device.stop_scanning()
            if not device.is_scanning:
                # Duplicates are not filtered: bleak reports every advertisement (RSSI).
                await device.start_scanning(active=want_active, filter_duplicates=False)

    async def stop_scanning(self, listener: AdvertisementListener) -> None:
        """Stop delivering to ``listener``; stop the LE scan when nobody listens any more."""
        async with self._scan_lock:
            if self._scan_listeners.pop(listener, None) is None or self._device is None:
                return
            self._device.remove_listener(Device.EVENT_ADVERTISEMENT, listener)
            if not self._scan_listeners and self._device.is_scanning:
                await self._device.stop_scanning()

    async def connect(self, address: hci.Address, *, timeout: float) -> Connection:
        """Create an LE connection as central (Core Vol 3 Part C 9.3), one attempt at a time."""
        async with self._connect_lock:
            return await self.device.connect(
                address, transport=PhysicalTransport.LE, timeout=timeout
            )


async def disconnect_quietly(connection: Connection, timeout: float = 5.0) -> None:
    """GAP Terminate Connection (Core Vol 3 Part C 9.3), whatever state the link is in."""
    try:
        async with asyncio.timeout(timeout):
            await connection.disconnect()
    except (hci.HCI_Error, TimeoutError) as error:
        log.debug("disconnect of %s: %s", connection.peer_address, error)
    except asyncio.CancelledError:
        # Bumble cancels its own futures when the link or the host goes away under them
        if cancelled_from_outside():
            raise
        log.debug("disconnect of %s: link already gone", connection.peer_address)


def cancelled_from_outside() -> bool:
    """Whether the current task was asked to stop (vs. Bumble cancelling a future of its own).

    Bumble cancels a pending ATT response or disconnection future when the link drops; that
    CancelledError must not be mistaken for the caller cancelling us.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
