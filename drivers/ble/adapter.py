"""Which BLE host stack the gateway's bleak calls run on, chosen by an adapter name.

- ``bluez:hci0`` (the default on the Raspberry Pi): bleak's own BlueZ backend over D-Bus,
  on that controller.
- ``bumble:<bumble transport>``: bleak on a Bumble host (drivers/ble/bumble_backend.py) whose
  controller is reached over any Bumble HCI transport: ``bumble:tcp-client:127.0.0.1:9101``
  for the simulated radio of ``santebus simulate``, ``bumble:usb:0`` for a USB dongle used
  without BlueZ.

Every device on one adapter shares one :class:`BleAdapter`; a Bumble host is opened on first
use and opened again after its transport was lost (the simulator restarted, the dongle was
pulled). Bumble is imported only when a ``bumble:`` adapter is configured.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from drivers.errors import DeviceConfigError, TransientDeviceError

if TYPE_CHECKING:
    from drivers.ble.bumble_backend import BumbleBle

_BLUEZ = re.compile(r"^bluez:(hci[0-9]{1,2})$")


def validate_adapter(name: str) -> str:
    """``name`` if it is a usable adapter name, else :class:`DeviceConfigError` saying why."""
    if _BLUEZ.match(name):
        return name
    if name.startswith("bumble:") and len(name) > len("bumble:"):
        return name
    raise DeviceConfigError(
        f"BLE adapter {name!r}: expected bluez:hciN (BlueZ) or bumble:<HCI transport>"
        " (e.g. bumble:tcp-client:127.0.0.1:9101, bumble:usb:0)"
    )


class BleAdapter:
    """One host stack: the keyword arguments every ``BleakScanner``/``BleakClient`` gets."""

    def __init__(self, name: str) -> None:
        self.name = validate_adapter(name)
        self._bumble: BumbleBle | None = None
        self._lock = asyncio.Lock()

    async def kwargs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Keyword arguments for ``BleakScanner`` and for ``BleakClient``, opening the host."""
        bluez = _BLUEZ.match(self.name)
        if bluez:
            args = {"bluez": {"adapter": bluez.group(1)}}
            return args, args
        ble = await self._open_bumble()
        return {"backend": ble.scanner}, {"backend": ble.client}

    async def _open_bumble(self) -> BumbleBle:
        async with self._lock:
            ble = self._bumble
            if ble is not None and ble.lost:
                await ble.close()
                ble = self._bumble = None
            if ble is None:
                from drivers.ble.bumble_backend import BumbleBle  # only for bumble: adapters

                ble = BumbleBle(self.name.removeprefix("bumble:"))
                try:
                    await ble.open()
                except (OSError, ConnectionError, TimeoutError) as exc:
                    raise TransientDeviceError(f"BLE adapter {self.name}: {exc}") from exc
                self._bumble = ble
            return ble

    async def close(self) -> None:
        async with self._lock:
            ble, self._bumble = self._bumble, None
            if ble is not None:
                await ble.close()
