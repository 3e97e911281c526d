"""The Bluetooth SIG health profiles the gateway collects from, as data.

Each profile names the primary service the device advertises (the scan filter), the
characteristics whose values are measurements (subscribed to), and what else the collector
role of the profile uses: the Glucose Measurement Context and the Record Access Control Point
(Glucose Profile 1.0 3.x), and the Current Time Service (Current Time Service 1.1) that the
Blood Pressure, Glucose, Health Thermometer and Weight Scale profiles recommend for setting the
device's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.ble.gatt.registry import uuid128

#: Current Time (CTS 1.1 3.1): read for the device's clock, written to set it
CURRENT_TIME = uuid128(0x2A2B)
#: Date Time (GSS 3.70), writable on some devices that have no Current Time Service
DATE_TIME = uuid128(0x2A08)
#: Device Information Service (DIS 1.1 3.x): Model Number String, Serial Number String
MODEL_NUMBER = uuid128(0x2A24)
SERIAL_NUMBER = uuid128(0x2A25)


@dataclass(frozen=True, slots=True)
class HealthProfile:
    """What the gateway does with one kind of health device."""

    name: str
    #: the primary service, advertised by the device and used to filter the scan
    service: str
    #: characteristics carrying measurements (indicated or notified), subscribed to in order
    measurements: tuple[str, ...]
    #: shown as the device model when the device has no Device Information Service
    model: str
    #: Glucose Measurement Context (notified after its measurement), glucose only
    context: str | None = None
    #: Record Access Control Point (indicated responses), glucose only
    racp: str | None = None


PROFILES: dict[str, HealthProfile] = {
    p.name: p
    for p in (
        # Blood Pressure Profile 1.1: Blood Pressure Measurement is indicated (BLS 1.1 3.1)
        HealthProfile(
            "blood-pressure", uuid128(0x1810), (uuid128(0x2A35),), "BLE blood pressure monitor"
        ),
        # Glucose Profile 1.0: stored records are fetched through the RACP (GLS 1.0 3.4);
        # measurements and contexts are notified, RACP responses indicated
        HealthProfile(
            "glucose",
            uuid128(0x1808),
            (uuid128(0x2A18),),
            "BLE glucose meter",
            context=uuid128(0x2A34),
            racp=uuid128(0x2A52),
        ),
        # Health Thermometer Profile 1.0: Temperature Measurement is indicated (HTS 1.0 3.1)
        HealthProfile("thermometer", uuid128(0x1809), (uuid128(0x2A1C),), "BLE thermometer"),
        # Weight Scale Profile 1.0: Weight Measurement is indicated (WSS 1.0 3.2)
        HealthProfile("weight-scale", uuid128(0x181D), (uuid128(0x2A9D),), "BLE weight scale"),
        # Pulse Oximeter Profile 1.0: Spot-check Measurement is indicated (PLXS 1.0 3.1); the
        # continuous stream (0x2A5F) is bedside monitoring, not screening: not collected
        HealthProfile("pulse-oximeter", uuid128(0x1822), (uuid128(0x2A5E),), "BLE pulse oximeter"),
    )
}
