"""Simulated BLE health devices as data: what each advertises and which GATT services it serves.

A :class:`Profile` names the advertised services, the GATT services with their characteristics
(SIG UUID, properties, initial value) and the characteristic that carries the stored
measurements, so a new device type is a new value here, not new code in
:mod:`simulators.ble.peripheral`. The five health devices of the bus are in :data:`PROFILES`,
keyed by service. Fixed characteristic values (features, temperature type) are made with the
production encoders of :mod:`drivers.ble.gatt` where one exists.

Every device with a clock also serves the Current Time Service 1.1 (0x1805) with Current Time
(0x2A2B: read, write, notify), through which the gateway reads and sets the device clock
(:mod:`simulators.ble.clock`); the pulse oximeter has no such service.
"""

from __future__ import annotations

from dataclasses import dataclass

from bumble.core import UUID, AdvertisingData
from bumble.gatt import Characteristic

from drivers.ble.gatt.plx import PlxFeature, PlxFeatures, encode_plx_features
from drivers.ble.gatt.thermometer import TemperatureType
from drivers.ble.gatt.weight import (
    WeightResolution,
    WeightScaleFeature,
    encode_weight_scale_feature,
)

Props = Characteristic.Properties

CURRENT_TIME = 0x2A2B
RECORD_ACCESS_CONTROL_POINT = 0x2A52


@dataclass(frozen=True)
class CharacteristicSpec:
    """One characteristic: SIG 16-bit UUID (or 128-bit string), properties, initial value."""

    uuid: int | str
    properties: Characteristic.Properties
    value: bytes = b""


@dataclass(frozen=True)
class ServiceSpec:
    """A primary service and its characteristics, in handle order."""

    uuid: int | str
    characteristics: tuple[CharacteristicSpec, ...]


@dataclass(frozen=True)
class Profile:
    """What a simulated device advertises and serves, and where its measurements go.

    ``measurement`` is the characteristic that delivers stored measurements once a central
    subscribes to it; ``None`` when measurements go out another way (the glucose meter sends
    its records on request of the Record Access Control Point).
    """

    name: str
    advertised_services: tuple[int | str, ...]
    services: tuple[ServiceSpec, ...]
    measurement: int | str | None
    #: (company identifier, data) pairs (CSS Part A 1.4)
    manufacturer_data: tuple[tuple[int, bytes], ...] = ()
    #: (16-bit service UUID, data) pairs (CSS Part A 1.11)
    service_data: tuple[tuple[int, bytes], ...] = ()

    def serves(self, uuid: int | str) -> bool:
        """Whether one of the services has characteristic ``uuid``."""
        key = uuid_text(uuid)
        return any(uuid_text(c.uuid) == key for s in self.services for c in s.characteristics)


def uuid_text(uuid: int | str) -> str:
    """The form Bumble's ``UUID`` parses: 4 hex digits for a SIG UUID, else as given."""
    return f"{uuid:04X}" if isinstance(uuid, int) else uuid


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


#: Current Time Service 1.1: Current Time (0x2A2B) is mandatory read + notify, write optional
#: (CTS 1.1 3.1); the initial value (2026-01-01 00:00:00, a Thursday) is served only by a
#: peripheral without a :class:`~simulators.ble.clock.DeviceClock`.
CURRENT_TIME_SERVICE = ServiceSpec(
    0x1805,
    (
        CharacteristicSpec(
            CURRENT_TIME,
            Props.READ | Props.WRITE | Props.NOTIFY,
            bytes.fromhex("ea070101000000040000"),
        ),
    ),
)

#: Blood Pressure Profile 1.1, sensor role: Blood Pressure Service (0x1810) with Blood Pressure
#: Measurement (0x2A35, indicate only, BLS 1.1 3.1) and Blood Pressure Feature (0x2A49, read;
#: 0x0000: none of the optional flags).
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
        CURRENT_TIME_SERVICE,
    ),
    measurement=0x2A35,
)

#: Glucose Profile 1.0, sensor role: Glucose Service (0x1808, GLS 1.0 3) with Glucose
#: Measurement (0x2A18, notify), Glucose Measurement Context (0x2A34, notify), Glucose Feature
#: (0x2A51, read; 0x0000: none of the optional sensor features, single bond) and the Record
#: Access Control Point (0x2A52, write + indicate), served by :mod:`simulators.ble.glucometer`.
GLUCOSE_METER = Profile(
    name="SIM-GLU",
    advertised_services=(0x1808,),
    services=(
        ServiceSpec(
            0x1808,
            (
                CharacteristicSpec(0x2A18, Props.NOTIFY),
                CharacteristicSpec(0x2A34, Props.NOTIFY),
                CharacteristicSpec(0x2A51, Props.READ, bytes.fromhex("0000")),
                CharacteristicSpec(RECORD_ACCESS_CONTROL_POINT, Props.WRITE | Props.INDICATE),
            ),
        ),
        CURRENT_TIME_SERVICE,
    ),
    measurement=None,
)

#: Health Thermometer Profile 1.0, thermometer role: Health Thermometer Service (0x1809) with
#: Temperature Measurement (0x2A1C, indicate) and Temperature Type (0x2A1D, read: tympanum, an
#: ear thermometer). HTS 1.0 (Temperature Type): a sensor whose body site does not change
#: exposes it in this characteristic and leaves the measurement's Temperature Type field out.
THERMOMETER = Profile(
    name="SIM-THERMO",
    advertised_services=(0x1809,),
    services=(
        ServiceSpec(
            0x1809,
            (
                CharacteristicSpec(0x2A1C, Props.INDICATE),
                CharacteristicSpec(0x2A1D, Props.READ, bytes([TemperatureType.TYMPANUM])),
            ),
        ),
        CURRENT_TIME_SERVICE,
    ),
    measurement=0x2A1C,
)

#: Weight Scale Profile 1.0, weight scale role: Weight Scale Service (0x181D) with Weight Scale
#: Feature (0x2A9E, read: time stamps, 0.05 kg / 0.1 lb resolution) and Weight Measurement
#: (0x2A9D, indicate, WSS 1.0 3.2).
WEIGHT_SCALE = Profile(
    name="SIM-SCALE",
    advertised_services=(0x181D,),
    services=(
        ServiceSpec(
            0x181D,
            (
                CharacteristicSpec(
                    0x2A9E,
                    Props.READ,
                    encode_weight_scale_feature(
                        WeightScaleFeature(
                            time_stamp_supported=True,
                            weight_resolution=WeightResolution.KG_0_05_OR_LB_0_1,
                        )
                    ),
                ),
                CharacteristicSpec(0x2A9D, Props.INDICATE),
            ),
        ),
        CURRENT_TIME_SERVICE,
    ),
    measurement=0x2A9D,
)

#: Pulse Oximeter Profile 1.0, sensor role: Pulse Oximeter Service 1.0.1 (0x1822) with PLX
#: Spot-check Measurement (0x2A5E, indicate), PLX Continuous Measurement (0x2A5F, notify) and
#: PLX Features (0x2A60, read: spot-checks stored and time stamped). No Current Time Service.
PULSE_OXIMETER = Profile(
    name="SIM-PLX",
    advertised_services=(0x1822,),
    services=(
        ServiceSpec(
            0x1822,
            (
                CharacteristicSpec(0x2A5E, Props.INDICATE),
                CharacteristicSpec(0x2A5F, Props.NOTIFY),
                CharacteristicSpec(
                    0x2A60,
                    Props.READ,
                    encode_plx_features(
                        PlxFeatures(
                            frozenset(
                                {PlxFeature.SPOT_CHECK_STORAGE, PlxFeature.SPOT_CHECK_TIMESTAMP}
                            )
                        )
                    ),
                ),
            ),
        ),
    ),
    measurement=0x2A5E,
)

#: The simulated health devices, by the service they are named after.
PROFILES: dict[str, Profile] = {
    "blood-pressure": BLOOD_PRESSURE_MONITOR,
    "glucose": GLUCOSE_METER,
    "thermometer": THERMOMETER,
    "weight-scale": WEIGHT_SCALE,
    "pulse-oximeter": PULSE_OXIMETER,
}

__all__ = [
    "BLOOD_PRESSURE_MONITOR",
    "CURRENT_TIME",
    "CURRENT_TIME_SERVICE",
    "GLUCOSE_METER",
    "PROFILES",
    "PULSE_OXIMETER",
    "RECORD_ACCESS_CONTROL_POINT",
    "THERMOMETER",
    "WEIGHT_SCALE",
    "CharacteristicSpec",
    "Profile",
    "Props",
    "ServiceSpec",
    "advertising_data",
    "uuid_text",
]
