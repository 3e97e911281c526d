"""One BLE health device's link: find it, connect, pair when it asks, subscribe.

The production path is bleak's public API (``BleakScanner``, ``BleakClient``) on whichever
host stack the device's adapter names (drivers/ble/adapter.py): BlueZ on the bus, Bumble in
CI. What it does about the radio:

- Scan filtered by the profile's service UUID, and accept only the configured address (the
  allow-list: a patient's own monitor in the waiting room is never collected from).
- Scan without pause until the device shows up: health devices advertise only for a few
  seconds after a measurement to save their battery, and a gap between scan windows would
  miss them. The scan is passive listening; it costs the gateway nothing.
- Connect; retry at once on the transient BlueZ errors Raspberry Pi users report
  (``org.bluez.Error.InProgress``, ``le-connection-abort-by-local``: bleak issues #676, #859),
  anything else is a :class:`~drivers.errors.TransientDeviceError` for the supervisor's
  backoff.
- Pair (Just Works, bonding) before the first subscription if configured, or when the device
  answers a subscription with Insufficient Authentication or Insufficient Encryption (ATT
  0x05 / 0x0F, Core Vol 3 Part F 3.4.1.1): the profiles allow a sensor to require a bonded link
  (e.g. Glucose Service 1.0 3.x: "the Glucose Service shall require security").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from drivers.ble.adapter import BleAdapter
from drivers.ble.bleak_api import (
    BleakClient,
    BleakError,
    BleakGATTCharacteristic,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
    BleakScanner,
    BLEDevice,
)
from drivers.ble.profiles import HealthProfile
from drivers.errors import TransientDeviceError

log = logging.getLogger(__name__)

#: substrings of BlueZ errors that mean "try again now" (bleak issues #676, #859, #1100)
TRANSIENT_BLUEZ = (
    "InProgress",
    "Operation already in progress",
    "le-connection-abort-by-local",
    "br-connection-canceled",
    "Software caused connection abort",
)
_NEEDS_SECURITY = (
    BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION,
)

Received = Callable[[str, bytes], None]


@dataclass(frozen=True, slots=True)
class LinkSettings:
    profile: HealthProfile
    #: the device's address as bleak shows it (``AA:BB:CC:DD:EE:FF``)
    address: str
    #: pair before subscribing (else only when the device asks for it)
    pair: bool = False
    #: one scan window; scanning goes on window after window until the device is seen
    scan_window: float = 10.0
    #: connection, MTU exchange, pairing and service discovery together
    connect_timeout: float = 20.0
    #: immediate retries on transient BlueZ errors before giving up to the supervisor
    connect_attempts: int = 3


class BleLink:
    """A connected GATT client to one device, made by :meth:`open`.

    ``received(uuid, value)`` (set by the driver reading this link) is called for every
    notification or indication, in order, on the event loop; ``lost`` is set when the link
    drops.
    """

    def __init__(self, adapter: BleAdapter, settings: LinkSettings) -> None:
        self.adapter = adapter
        self.settings = settings
        self.received: Received = _ignore
        self.client: BleakClient | None = None
        self.lost = asyncio.Event()
        self.paired = False

    @property
    def url(self) -> str:
        return f"ble://{self.settings.address}?profile={self.settings.profile.name}"

    async def open(self) -> None:
        """Scan until the device advertises, then connect (and pair if configured)."""
        s = self.settings
        device = await self._scan()
        _, client_kwargs = await self.adapter.kwargs()
        for attempt in range(1, s.connect_attempts + 1):
            client = BleakClient(
                device,
                disconnected_callback=lambda _c: self.lost.set(),
                timeout=s.connect_timeout,
                pair=s.pair,
                **client_kwargs,
            )
            try:
                await client.connect()
            except (BleakError, TimeoutError) as exc:
                if attempt < s.connect_attempts and _transient(exc):
                    log.info("ble connect retry address=%s attempt=%d error=%r",
                             s.address, attempt, str(exc))  # fmt: skip
                    await asyncio.sleep(0.25 * attempt)
                    continue
                raise TransientDeviceError(f"connect to {s.address}: {exc or 'timeout'}") from exc
            self.client, self.paired = client, s.pair
            return

    async def _scan(self) -> BLEDevice:
        s = self.settings
        wanted = s.address.upper()
        while True:
            scanner_kwargs, _ = await self.adapter.kwargs()
            try:
                device = await BleakScanner.find_device_by_filter(
                    lambda d, _ad: d.address.upper() == wanted,
                    timeout=s.scan_window,
                    service_uuids=[s.profile.service],
                    **scanner_kwargs,
                )
            except BleakError as exc:
                raise TransientDeviceError(f"scan on {self.adapter.name}: {exc}") from exc
            if device is not None:
                return device
            log.debug("ble not advertising address=%s window=%.0fs", s.address, s.scan_window)

    def connected(self) -> BleakClient:
        if self.client is None or self.lost.is_set():
            raise TransientDeviceError(f"{self.settings.address}: link lost")
        return self.client

    def has(self, uuid: str) -> BleakGATTCharacteristic | None:
        """The characteristic if the device has it."""
        return self.connected().services.get_characteristic(uuid)

    async def subscribe(self, uuid: str) -> None:
        """Enable notifications/indications (CCCD write); pair once if the device asks."""
        client = self.connected()

        def deliver(characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
            self.received(characteristic.uuid, bytes(data))

        try:
            await client.start_notify(uuid, deliver)
        except BleakGATTProtocolError as exc:
            if exc.code not in _NEEDS_SECURITY or self.paired:
                raise
            log.info("ble device asks for a bonded link, pairing address=%s error=%s",
                     self.settings.address, exc.code.name)  # fmt: skip
            await client.pair()
            self.paired = True
            await client.start_notify(uuid, deliver)

    async def read(self, uuid: str) -> bytes:
        return bytes(await self.connected().read_gatt_char(uuid))

    async def write(self, uuid: str, value: bytes) -> None:
        await self.connected().write_gatt_char(uuid, value, response=True)

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.disconnect()
            except (BleakError, TimeoutError) as exc:  # the link may be gone already
                log.debug("ble disconnect address=%s error=%r", self.settings.address, str(exc))


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or any(t in str(exc) for t in TRANSIENT_BLUEZ)


def _ignore(_uuid: str, _value: bytes) -> None:
    """Until a driver takes the link's values (none arrive before a subscription)."""
