"""A bleak scanner backend on a Bumble host: advertising reports as bleak's device + data.

Get the class from :attr:`drivers.ble.bumble_backend.BumbleBle.scanner` (it is bound to one
opened Bumble host); bleak instantiates it: ``BleakScanner(..., backend=ble.scanner)``.

The advertising data is the AD structure list of Core Vol 3 Part C 11 (``length, AD type,
data``); the AD types themselves are defined in the Core Specification Supplement, Part A:
service UUID lists (1.1), local name (1.2), TX power level (1.5), service data (1.11) and
manufacturer specific data (1.4). As bleak's other backends do, service UUIDs come out as
lowercase 128-bit strings, manufacturer data is keyed by the 16-bit company identifier, and
an advertisement failing the ``service_uuids`` filter (:meth:`is_allowed_uuid`; short forms
such as ``"1810"`` accepted) is neither recorded nor called back. The controller filters
nothing: every advertisement is reported, duplicates included (RSSI updates).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from bumble.core import AdvertisingData
from bumble.device import Advertisement

from drivers.ble.bleak_api import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
    normalize_uuid_str,
)
from drivers.ble.bumble_backend import bumble_uuid_str

if TYPE_CHECKING:
    from drivers.ble.bumble_backend import BumbleBle

log = logging.getLogger(__name__)

_T = AdvertisingData.Type
_UUID_LISTS = {
    _T.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS: 2,
    _T.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS: 2,
    _T.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS: 4,
    _T.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS: 4,
    _T.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS: 16,
    _T.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS: 16,
}
_SERVICE_DATA = {
    _T.SERVICE_DATA_16_BIT_UUID: 2,
    _T.SERVICE_DATA_32_BIT_UUID: 4,
    _T.SERVICE_DATA_128_BIT_UUID: 16,
}


def advertisement_data(adv: Advertisement) -> AdvertisementData:
    """The ``AdvertisementData`` of one (accumulated ADV + SCAN_RSP) Bumble advertisement."""
    local_name: str | None = None
    shortened_name: str | None = None
    uuids: list[str] = []
    service_data: dict[str, bytes] = {}
    manufacturer_data: dict[int, bytes] = {}
    tx_power: int | None = None
    for ad_type, data in adv.data.ad_structures:
        if (width := _UUID_LISTS.get(ad_type)) is not None:
            for at in range(0, len(data) - width + 1, width):
                if (u := bumble_uuid_str(data[at : at + width])) not in uuids:
                    uuids.append(u)
        elif (width := _SERVICE_DATA.get(ad_type)) is not None and len(data) >= width:
            service_data[bumble_uuid_str(data[:width])] = bytes(data[width:])
        elif ad_type == _T.COMPLETE_LOCAL_NAME:
            local_name = data.decode("utf-8", errors="replace")
        elif ad_type == _T.SHORTENED_LOCAL_NAME:
            shortened_name = data.decode("utf-8", errors="replace")
        elif ad_type == _T.MANUFACTURER_SPECIFIC_DATA and len(data) >= 2:
            manufacturer_data[int.from_bytes(data[:2], "little")] = bytes(data[2:])
        elif ad_type == _T.TX_POWER_LEVEL and len(data) == 1:
            tx_power = int.from_bytes(data, "little", signed=True)
    return AdvertisementData(
        local_name=local_name if local_name is not None else shortened_name,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=uuids,
        tx_power=tx_power,
        rssi=adv.rssi,
        platform_data=(adv,),
    )


class BleakScannerBumble(BaseBleakScanner):
    """Scans with the Bumble host of the :class:`BumbleBle` this class is bound to."""

    ble: ClassVar[BumbleBle | None] = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        if self._service_uuids is not None:  # "1810" and "00001810-..." alike, as on BlueZ
            self._service_uuids = [normalize_uuid_str(u) for u in self._service_uuids]
        if self.ble is None:
            raise TypeError(
                "BleakScannerBumble is not bound to a Bumble host: pass `backend=ble.scanner`"
                " of an opened drivers.ble.bumble_backend.BumbleBle"
            )
        self._host: BumbleBle = self.ble
        self._active = scanning_mode != "passive"
        del kwargs  # bluez=/cb= arguments of the OS backends: nothing to configure here

    async def start(self) -> None:
        self.seen_devices = {}
        await self._host.start_scanning(self._on_advertisement, active=self._active)

    async def stop(self) -> None:
        await self._host.stop_scanning(self._on_advertisement)

    def _on_advertisement(self, adv: Advertisement) -> None:
        data = advertisement_data(adv)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        # Key with the address type: a public and a random address may share their 48 bits
        # (Core Vol 6 Part B 1.3). `details` keeps the typed address for the client.
        device = self.create_or_update_device(
            key=adv.address.to_string(with_type_qualifier=True),
            address=adv.address.to_string(with_type_qualifier=False),
            name=data.local_name,
            details=adv.address,
            adv=data,
        )
        self.call_detection_callbacks(device, data)
