"""Plausible readings of screened adults, encoded as the BLE health devices send them.

Each draw takes the seeded random generator and the device's time stamp (``None``: its clock
is not set) and returns the characteristic value, made with the production encoders of
:mod:`drivers.ble.gatt`, and the readings it carries, in the device's own unit and resolution,
for the ledger. Distributions (adults at a prevention screening): systolic N(128, 15) and
diastolic N(80, 10) mmHg with a pulse pressure above 20, mean arterial pressure
dia + (sys - dia) / 3, pulse N(72, 10) /min; capillary glucose N(5.8, 1.2) mmol/L; tympanic
temperature N(36.8, 0.3) °C; weight N(75, 14) kg; SpO2 N(97, 1.5) % (at most 100).

Resolutions are those the encodings carry exactly: whole mmHg and beats per minute (SFLOAT,
exponent 0); glucose 0.1 mmol/L (SFLOAT 10^-4 mol/L) or 1 mg/dL (SFLOAT 10^-5 kg/L, GSS
Glucose Measurement units); 0.1 °C or °F (FLOAT, exponent -1); 0.05 kg or 0.1 lb (the Weight
field's 0.005 kg / 0.01 lb steps, WSS 1.0, at the resolution the Weight Scale Feature
declares); whole percent SpO2.

An unset clock leaves the time stamp out where the flags allow it (blood pressure, thermometer,
weight scale); the glucose Base Time is mandatory and goes as "not known" (all zeros), and a
PLX spot-check sets its "Device Clock is Not Set" flag instead (PLXS 3.1.1.1).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from drivers.ble.gatt.bp import BloodPressureMeasurement, encode_blood_pressure_measurement
from drivers.ble.gatt.glucose import (
    GlucoseConcentration,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseType,
    Meal,
    SampleLocation,
    encode_glucose_measurement,
    encode_glucose_measurement_context,
)
from drivers.ble.gatt.plx import PlxSpotCheck, encode_plx_spot_check
from drivers.ble.gatt.thermometer import TemperatureMeasurement, encode_temperature_measurement
from drivers.ble.gatt.weight import WeightMeasurement, encode_weight_measurement
from drivers.codec.ieee11073 import MedicalFloat

GlucoseUnit = Literal["mg/dL", "mmol/L"]
WeightUnit = Literal["kg", "lb"]
TemperatureUnit = Literal["Cel", "[degF]"]

MG_DL_PER_MMOL_L = 18.016  # glucose, 180.16 g/mol
LB_PER_KG = 2.2046226218


@dataclass(frozen=True, slots=True)
class Units:
    """The units a device displays and sends."""

    glucose: GlucoseUnit = "mmol/L"
    weight: WeightUnit = "kg"
    temperature: TemperatureUnit = "Cel"


@dataclass(frozen=True, slots=True)
class Reading:
    """One quantity of a measurement: ``quantity`` names it (device.LOINC), UCUM ``unit``."""

    quantity: str
    value: int | float
    unit: str


@dataclass(frozen=True, slots=True)
class Drawn:
    """A measurement as sent (``value``, plus a glucose ``context``) and its readings."""

    value: bytes
    readings: tuple[Reading, ...]
    context: bytes | None = None


def _clamped(rng: random.Random, mean: float, sd: float, low: float, high: float) -> float:
    return min(max(rng.gauss(mean, sd), low), high)


def _whole(rng: random.Random, mean: float, sd: float, low: float, high: float) -> int:
    return round(_clamped(rng, mean, sd, low, high))


def _number(value: MedicalFloat) -> int | float:
    exact = value.decimal()
    return int(exact) if value.exponent >= 0 else float(exact)


def blood_pressure(rng: random.Random, stamp: datetime | None, _units: Units, _seq: int) -> Drawn:
    for _ in range(100):
        systolic = _whole(rng, 128, 15, 80, 220)
        diastolic = _whole(rng, 80, 10, 40, 130)
        if systolic > diastolic + 20:
            break
    else:
        diastolic = systolic - 21
    mean = round(diastolic + (systolic - diastolic) / 3)
    pulse = _whole(rng, 72, 10, 40, 180)
    measurement = BloodPressureMeasurement(
        "mm[Hg]",
        MedicalFloat(systolic),
        MedicalFloat(diastolic),
        MedicalFloat(mean),
        time_stamp=stamp,
        pulse_rate=MedicalFloat(pulse),
    )
    readings = (
        Reading("systolic", systolic, "mm[Hg]"),
        Reading("diastolic", diastolic, "mm[Hg]"),
        Reading("mean", mean, "mm[Hg]"),
        Reading("pulse", pulse, "/min"),
    )
    return Drawn(encode_blood_pressure_measurement(measurement), readings)


def glucose(rng: random.Random, stamp: datetime | None, units: Units, seq: int) -> Drawn:
    mmol_l = _clamped(rng, 5.8, 1.2, 2.0, 30.0)
    if units.glucose == "mmol/L":
        shown = MedicalFloat(round(mmol_l * 10), -1)  # mmol/L, as on the display
        sent = MedicalFloat(shown.mantissa, -4)  # the same number of mol/L
    else:
        shown = MedicalFloat(round(mmol_l * MG_DL_PER_MMOL_L))  # mg/dL
        sent = MedicalFloat(shown.mantissa, -5)  # 1 mg/dL = 10^-5 kg/L
    with_context = seq % 3 == 0
    measurement = GlucoseMeasurement(
        seq,
        stamp,
        concentration=GlucoseConcentration(
            sent,
            "mol/L" if units.glucose == "mmol/L" else "kg/L",
            GlucoseType.CAPILLARY_WHOLE_BLOOD,
            SampleLocation.FINGER,
        ),
        context_follows=with_context,
    )
    context = None
    if with_context:
        context = encode_glucose_measurement_context(
            GlucoseMeasurementContext(seq, meal=Meal.PREPRANDIAL)
        )
    reading = Reading("glucose", _number(shown), units.glucose)
    return Drawn(encode_glucose_measurement(measurement), (reading,), context)


def temperature(rng: random.Random, stamp: datetime | None, units: Units, _seq: int) -> Drawn:
    tenths = round(_clamped(rng, 36.8, 0.3, 34.0, 42.0) * 10)
    if units.temperature == "[degF]":
        tenths = round((tenths / 10 * 9 / 5 + 32) * 10)
    value = MedicalFloat(tenths, -1)
    measurement = TemperatureMeasurement(units.temperature, value, time_stamp=stamp)
    reading = Reading("temperature", _number(value), units.temperature)
    return Drawn(encode_temperature_measurement(measurement), (reading,))


def weight(rng: random.Random, stamp: datetime | None, units: Units, _seq: int) -> Drawn:
    kg = _clamped(rng, 75, 14, 30, 250)
    if units.weight == "kg":
        value = MedicalFloat(round(kg * 20) * 5, -2)  # 0.05 kg steps
        unit: Literal["kg", "[lb_av]"] = "kg"
    else:
        value = MedicalFloat(round(kg * LB_PER_KG * 10), -1)  # 0.1 lb steps
        unit = "[lb_av]"
    measurement = WeightMeasurement(unit, value, time_stamp=stamp)
    return Drawn(encode_weight_measurement(measurement), (Reading("weight", _number(value), unit),))


def spo2(rng: random.Random, stamp: datetime | None, _units: Units, _seq: int) -> Drawn:
    saturation = min(100, _whole(rng, 97, 1.5, 70, 100))
    pulse = _whole(rng, 72, 10, 40, 180)
    spot_check = PlxSpotCheck(
        MedicalFloat(saturation),
        MedicalFloat(pulse),
        timestamp=stamp,
        device_clock_not_set=stamp is None,
    )
    readings = (Reading("spo2", saturation, "%"), Reading("spo2-pulse", pulse, "/min"))
    return Drawn(encode_plx_spot_check(spot_check), readings)


Draw = Callable[[random.Random, datetime | None, Units, int], Drawn]

#: how each kind of device (simulators.ble.profiles.PROFILES) measures
DRAWS: dict[str, Draw] = {
    "blood-pressure": blood_pressure,
    "glucose": glucose,
    "thermometer": temperature,
    "weight-scale": weight,
    "pulse-oximeter": spo2,
}
