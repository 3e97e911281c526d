"""Simulated BLE health peripherals on a Bumble host: advertising, stored measurements, faults.

A peripheral serves a :class:`~simulators.ble.profiles.Profile` (data: services,
characteristics, the measurement characteristic) through a
:class:`~simulators.ble.server.ProfileServer` (access rules, the device clock, bonding). Like
a real monitor it holds stored measurements (raw characteristic values given by the caller)
and sends them, oldest first, as soon as a central enables indications (or notifications) on
the measurement characteristic by writing its CCCD (Core Vol 3 Part G 3.3.3.3). Each
indication is sent only after the previous one was confirmed (Part G 4.11.1: one outstanding
indication per bearer); a confirmed measurement leaves the store and is appended to
:attr:`SimulatedPeripheral.confirmed`.

Faults: :meth:`~SimulatedPeripheral.malformed` (a truncated value, sent in turn),
:meth:`~SimulatedPeripheral.out_of_range` (links lost as a supervision timeout ends them, no
advertising for a while) and ``bonding_required`` (see the server). The peripheral accepts LE
Secure Connections Just Works pairing with bonding (Core Vol 3 Part H 2.3.5.1: it has neither
display nor keyboard).

Workarounds (bumble 0.0.236):

- Bumble's advertising ``auto_restart`` is bound to the advertiser object at connection time
  and restarts it on disconnection even after advertising was stopped: the peripheral
  restarts advertising itself, and only while it wants to advertise.
- When the link drops while an indication awaits its confirmation, Bumble's GATT server
  forgets the pending confirmation without failing it, so the sender would wait for the 30 s
  ATT transaction timeout (Core Vol 3 Part F 3.3.3): the sender is cancelled when the link
  drops, and the unconfirmed value stays stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, Self

from bumble import hci
from bumble.core import BaseBumbleError
from bumble.device import AdvertisingType, Connection, Device
from bumble.gatt import Characteristic
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import TransportSink, TransportSource

from simulators.ble.clock import DeviceClock
from simulators.ble.link import VirtualController
from simulators.ble.profiles import (
    BLOOD_PRESSURE_MONITOR,
    CharacteristicSpec,
    Profile,
    Props,
    ServiceSpec,
    advertising_data,
    uuid_text,
)
from simulators.ble.server import ProfileServer

__all__ = [
    "BLOOD_PRESSURE_MONITOR",
    "CharacteristicSpec",
    "Profile",
    "Props",
    "ServiceSpec",
    "SimulatedPeripheral",
    "advertising_data",
    "truncated",
    "uuid_text",
]

log = logging.getLogger(__name__)


def truncated(value: bytes, cut: int = 1) -> bytes:
    """``value`` without its last ``cut`` octets: the flags announce a field that is not there."""
    return value[: max(0, len(value) - cut)]


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
        clock: DeviceClock | None = None,
        bonding_required: bool = False,
    ) -> None:
        self.profile = profile
        self.on_confirmed = on_confirmed
        self.clock = clock
        self.pending: deque[bytes] = deque(measurements)
        self.confirmed: list[bytes] = []
        #: HCI reasons of the disconnections seen, in order (0x08: supervision timeout...)
        self.disconnections: list[int] = []
        #: called with (link, HCI reason) when a link ends
        self.disconnection_listeners: list[Callable[[Connection, int], None]] = []
        self._interval = advertising_interval_ms
        self._confirmed_changed = asyncio.Condition()
        self._senders: dict[Connection, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._advertising = asyncio.Lock()
        self._wants_advertising = False
        source, sink = hci_pair
        self._controller = source if isinstance(source, VirtualController) else None
        self.device = Device.with_hci(profile.name, hci.Address(address), source, sink)
        # LE Secure Connections, Just Works, bonding (Core Vol 3 Part H 2.3.5.1, Part C 9.4)
        self.device.pairing_config_factory = lambda _connection: PairingConfig(
            sc=True,
            mitm=False,
            bonding=True,
            delegate=PairingDelegate(PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT),
        )
        self.server = ProfileServer(
            self.device,
            profile,
            clock=clock,
            bonding_required=bonding_required,
            on_write=on_write,
        )
        #: what centrals wrote, as (UUID, value), and the current characteristic values
        self.writes, self.values = self.server.writes, self.server.values
        self.measurement = (
            None if profile.measurement is None else self.server.characteristic(profile.measurement)
        )
        if self.measurement is not None:
            self.measurement.on(Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)

    @property
    def address(self) -> str:
        """The advertised address as bleak shows it (no type suffix)."""
        return self.device.random_address.to_string(with_type_qualifier=False)

    @property
    def connections(self) -> list[Connection]:
        return list(self.device.connections.values())

    async def drain(self, connection: Connection) -> None:
        """Wait until the controller has taken every packet queued for ``connection``."""
        host_link = self.device.host.connections.get(connection.handle)
        if host_link is not None:
            with contextlib.suppress(ValueError):  # nothing was ever sent on it
                await host_link.acl_packet_queue.drain(connection.handle)

    def _enabled(self, connection: Connection, c: Characteristic[bytes]) -> tuple[bool, bool]:
        cccd = self.device.gatt_server.read_cccd(connection, c)
        return bool(cccd[0] & 0x01), bool(cccd[0] & 0x02)

    # -- stored measurements ----------------------------------------------------------------

    def _on_subscription(self, bearer: object, notify: bool, indicate: bool) -> None:
        if not isinstance(bearer, Connection):
            return  # EATT bearers are not offered (eatt_enabled is False)
        if not (notify or indicate):
            self._stop_sender(bearer)
        elif bearer not in self._senders or self._senders[bearer].done():
            self._senders[bearer] = asyncio.create_task(self._send_stored(bearer, indicate))

    async def _send_stored(self, connection: Connection, indicate: bool) -> None:
        assert self.measurement is not None
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
        if self.measurement is None:
            return
        for connection in self.connections:
            notify, indicate = self._enabled(connection, self.measurement)
            if notify or indicate:
                self._on_subscription(connection, notify, indicate)

    def malformed(self, value: bytes, cut: int = 1) -> bytes:
        """Send ``value`` truncated (a garbled measurement), in turn with the others; it."""
        garbled = truncated(value, cut)
        self.send(garbled)
        return garbled

    async def wait_confirmed(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """Wait until ``count`` measurements in all were confirmed (or notified); those."""
        async with asyncio.timeout(timeout), self._confirmed_changed:
            await self._confirmed_changed.wait_for(lambda: len(self.confirmed) >= count)
        return self.confirmed[:count]

    # -- advertising and links --------------------------------------------------------------

    async def start(self) -> Self:
        """Power on and advertise."""
        await self.device.power_on()
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)
        await self.advertise()
        return self

    async def advertise(self) -> None:
        """Advertise, connectable and undirected (ADV_IND), until a central connects.

        Advertising resumes by itself once that central has gone, until
        :meth:`stop_advertising`.
        """
        self._wants_advertising = True
        async with self._advertising:
            await self.device.start_advertising(
                advertising_type=AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE,
                advertising_data=advertising_data(self.profile),
                advertising_interval_min=self._interval,
                advertising_interval_max=self._interval,
            )

    async def stop_advertising(self) -> None:
        """Stop advertising (links stay up): a device switched off, or out of range."""
        self._wants_advertising = False
        async with self._advertising:
            await self.device.stop_advertising()

    def _on_connection(self, connection: Connection) -> None:
        connection.on(
            Connection.EVENT_DISCONNECTION,
            lambda reason: self._on_disconnection(connection, reason),
        )

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        self.disconnections.append(reason)
        self._stop_sender(connection)
        for listener in self.disconnection_listeners:
            listener(connection, reason)
        if self._wants_advertising:
            self._spawn(self._advertise_again())

    async def _advertise_again(self) -> None:
        if self._wants_advertising:
            with contextlib.suppress(hci.HCI_Error):  # powered off in the meantime
                await self.advertise()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def out_of_range(self, seconds: float) -> None:
        """Leave the central's range for ``seconds``: links lost, not heard advertising.

        The central sees Connection Timeout (0x08), as when its supervision timer expires
        (Core Vol 6 Part B 4.5.2); then the device comes back and advertises again.
        """
        await self.stop_advertising()
        if self._controller is not None:
            self._controller.lose_le_links()
        else:  # a controller that cannot fake a lost link: end it as a user would
            await self.disconnect()
        await asyncio.sleep(seconds)
        await self.advertise()

    async def disconnect(self) -> None:
        """Drop every link, as a monitor switching itself off would."""
        for connection in self.connections:
            with contextlib.suppress(hci.HCI_Error):
                await connection.disconnect(hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)

    async def close(self) -> None:
        self._wants_advertising = False
        tasks = [*self._senders.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
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
