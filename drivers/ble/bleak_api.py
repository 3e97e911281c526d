"""The one module that imports bleak: every bleak name the gateway uses, re-exported.

ARCHITECTURE.md: each I/O library is imported in exactly one adapter module, so that a bleak
upgrade (its API changes between minor releases; bleak is pinned exactly) is reviewed in one
place. The bleak backend on Bumble (drivers/ble/bumble_scanner.py, bumble_client.py) and the
gateway's BLE driver import bleak's classes from here.
"""

from __future__ import annotations

from bleak import BleakClient, BleakScanner
from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import (
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak.uuids import normalize_uuid_str

__all__ = [
    "AdvertisementData",
    "AdvertisementDataCallback",
    "BLEDevice",
    "BaseBleakClient",
    "BaseBleakScanner",
    "BleakClient",
    "BleakDeviceNotFoundError",
    "BleakError",
    "BleakGATTCharacteristic",
    "BleakGATTDescriptor",
    "BleakGATTProtocolError",
    "BleakGATTProtocolErrorCode",
    "BleakGATTService",
    "BleakGATTServiceCollection",
    "BleakScanner",
    "CharacteristicPropertyName",
    "NotifyCallback",
    "SizedBuffer",
    "normalize_uuid_str",
]
