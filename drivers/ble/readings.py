"""Parsed health-profile values as device-neutral :class:`DeviceReading` tuples.

Quantities and units are the daemon's (edge/pipeline/codes.py): the GATT value's unit is kept
(kPa, degrees Fahrenheit, pounds stay what the device measured), except glucose, whose SI
concentrations are scaled by an exact power of ten to the clinical units (kg/L -> mg/dL is
x 10^5, mol/L -> mmol/L is x 10^3: the mantissa is unchanged, so no precision is lost).

The record key identifies the device record across re-sends: the glucose sequence number
(Glucose Service 1.0 3.1: unique per record), else the device's own time stamp and values.
Measurement-status bits that make a reading doubtful (Blood Pressure Service 1.1 3.1.1.5:
body movement, cuff too loose, improper position; irregular pulse) become remarks, which the
daemon publishes as notes on a preliminary Observation.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from drivers.ble.gatt.bp import BloodPressureMeasurement, PulseRateRange
from drivers.ble.gatt.glucose import GlucoseMeasurement, GlucoseType, SampleLocation
from drivers.ble.gatt.plx import PlxContinuous, PlxSpotCheck
from drivers.ble.gatt.thermometer import TemperatureMeasurement
from drivers.ble.gatt.weight import WeightMeasurement
from drivers.codec.ieee11073 import MedicalFloat
from drivers.readings import DeviceReading, ReadingStatus

_PRESSURE = {"mm[Hg]": "mmHg", "kPa": "kPa"}


def _reading(quantity: str, v: MedicalFloat, unit: str, at: datetime, key: str,
             remarks: tuple[str, ...] = ()) -> DeviceReading:  # fmt: skip
    return DeviceReading(
        quantity,
        v.value(),
        unit,
        at,
        key,
        ReadingStatus.UNRELIABLE if remarks else ReadingStatus.OK,
        special=v.special.value if v.special is not None else None,
        remarks=remarks,
        decimals=max(0, -v.exponent) if v.special is None else None,
    )


def device_time(value: object) -> datetime | None:
    """The device's own time of a parsed measurement, None when it gave none.

    Glucose: base time plus time offset (GLS 1.0 3.x; base time Date Time year 0 means the
    clock was not set, parsed as None). PLX: only spot-checks carry a time stamp.
    """
    if isinstance(value, GlucoseMeasurement):
        if value.base_time is None or value.time_offset_minutes is None:
            return value.base_time
        return value.base_time + timedelta(minutes=value.time_offset_minutes)
    if isinstance(value, PlxSpotCheck):
        return value.timestamp
    if isinstance(value, BloodPressureMeasurement | TemperatureMeasurement | WeightMeasurement):
        return value.time_stamp
    return None


def stamped(value: object) -> bool:
    """Whether a parsed measurement carries the device's own time of measurement."""
    return device_time(value) is not None


def blood_pressure(m: BloodPressureMeasurement, received: datetime) -> tuple[DeviceReading, ...]:
    """Systolic, diastolic, mean (one panel downstream) and the pulse rate if present."""
    at = device_time(m) or received
    key = f"bp|{at.isoformat()}|{m.systolic}|{m.diastolic}|{m.mean_arterial_pressure}"
    remarks: list[str] = []
    s = m.measurement_status
    if s is not None:
        remarks += [text for flag, text in (
            (s.body_movement, "Body movement during measurement (device status)."),
            (s.cuff_too_loose, "Cuff fit too loose (device status)."),
            (s.improper_position, "Improper measurement position (device status)."),
            (s.irregular_pulse, "Irregular pulse detected (device status)."),
        ) if flag]  # fmt: skip
    unit = _PRESSURE[m.unit]
    out = [
        _reading("bp.systolic", m.systolic, unit, at, key, tuple(remarks)),
        _reading("bp.diastolic", m.diastolic, unit, at, key, tuple(remarks)),
        _reading("bp.mean", m.mean_arterial_pressure, unit, at, key, tuple(remarks)),
    ]
    if m.pulse_rate is not None:
        pulse_remarks = tuple(remarks)
        if s is not None and s.pulse_rate_range is not PulseRateRange.WITHIN_RANGE:
            pulse_remarks += (f"Pulse rate {s.pulse_rate_range.name.lower()} (device status).",)
        out.append(_reading("pulse.rate", m.pulse_rate, "/min", at, key, pulse_remarks))
    return tuple(out)


def glucose(m: GlucoseMeasurement, received: datetime) -> tuple[DeviceReading, ...]:
    """The concentration in mg/dL or mmol/L; none when the record carries no concentration."""
    c = m.concentration
    # A control-solution test checks the meter, not the patient (Glucose Service 1.0, type
    # and sample location "control solution"): it is never a patient's reading.
    if (
        c is None
        or GlucoseType.CONTROL_SOLUTION in (c.type,)
        or (c.location is SampleLocation.CONTROL_SOLUTION)
    ):
        return ()
    at = device_time(m) or received
    shift, unit = (5, "mg/dL") if c.unit == "kg/L" else (3, "mmol/L")
    v = c.value
    scaled = v if v.special is not None else MedicalFloat(v.mantissa, v.exponent + shift)
    remarks = tuple(f"Sensor status: {s.name.lower().replace('_', ' ')}."
                    for s in sorted(m.sensor_status or ()))  # fmt: skip
    return (_reading("glucose", scaled, unit, at, f"glucose|seq|{m.sequence_number}", remarks),)


def temperature(m: TemperatureMeasurement, received: datetime) -> tuple[DeviceReading, ...]:
    at = device_time(m) or received
    key = f"temp|{at.isoformat()}|{m.temperature}"
    return (_reading("body.temperature", m.temperature, m.unit, at, key),)


def weight(m: WeightMeasurement, received: datetime) -> tuple[DeviceReading, ...]:
    at = device_time(m) or received
    key = f"weight|{at.isoformat()}|{m.weight}|{m.user_id}"
    out = [_reading("body.weight", m.weight, m.unit, at, key)]
    if m.bmi is not None:
        out.append(_reading("bmi", m.bmi, "kg/m2", at, key))
    if m.height is not None:
        out.append(_reading("body.height", m.height, "m" if m.unit == "kg" else "[in_i]", at, key))
    return tuple(out)


def pulse_oximetry(
    m: PlxSpotCheck | PlxContinuous, received: datetime
) -> tuple[DeviceReading, ...]:
    at = device_time(m) or received
    key = f"plx|{at.isoformat()}|{m.spo2}|{m.pulse_rate}"
    return (
        _reading("spo2", m.spo2, "%", at, key),
        _reading("spo2.pulse.rate", m.pulse_rate, "/min", at, key),
    )


def readings(value: object, received: datetime) -> tuple[DeviceReading, ...]:
    """The readings of any parsed measurement value (others, e.g. a feature, give none)."""
    if isinstance(value, BloodPressureMeasurement):
        return blood_pressure(value, received)
    if isinstance(value, GlucoseMeasurement):
        return glucose(value, received)
    if isinstance(value, TemperatureMeasurement):
        return temperature(value, received)
    if isinstance(value, WeightMeasurement):
        return weight(value, received)
    if isinstance(value, PlxSpotCheck | PlxContinuous):
        return pulse_oximetry(value, received)
    return ()
