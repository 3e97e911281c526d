"""Glucose Measurement (0x2A18) and Glucose Measurement Context (0x2A34), and their merge.

Implements the value layouts of the Bluetooth "GATT Specification Supplement" (GSS) sections
"Glucose Measurement" and "Glucose Measurement Context" (the name is the stable reference; section
numbers move between GSS revisions) as Glucose Service 1.0 sends them: the context, when the
measurement's flag announces it, follows with the same sequence number. Numbers are IEEE
11073-20601 SFLOAT (drivers/codec/ieee11073.py); Base Time is a Date Time (GSS 3.70).

Decisions, where the specifications leave room:

* RFU bits (Flags 5..7, Sensor Status 12..15, every Extended Flags bit) are ignored on receipt
  and written as 0, as receivers must (Core Specification Vol 1, Part E). RFU *values* of an
  enumeration (Type 0 and 11..15, Sample Location 0 and 5..14, Meal 0, ...) are refused: the
  reading would be mislabelled, not merely less detailed.
* Type is the *least* significant nibble of Type-Sample Location (GSS; Nordic nRF5 ble_gls.c
  writes ``sample_location << 4 | type``); Tester likewise precedes Health.
* The units flag means nothing without a concentration: read only with it, written 0 without.
  The unit stays the characteristic's ("kg/L" or "mol/L"); mmol/L is mapped elsewhere.
* Carbohydrate and Medication are SFLOATs in base units (kg; kg or L) as the GSS says; the legacy
  GATT XML's "DecimalExponent" on them contradicts a self-describing SFLOAT and is ignored.
* A Date Time year 1..1581 is reserved and refused; "not known" (year, month or day 0) is None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Literal, TypeVar

from drivers.ble.gatt import bits
from drivers.ble.gatt.reader import Reader, Writer
from drivers.codec.ieee11073 import MedicalFloat

GLUCOSE_MEASUREMENT = "Glucose Measurement"
GLUCOSE_MEASUREMENT_CONTEXT = "Glucose Measurement Context"
GlucoseUnit = Literal["kg/L", "mol/L"]  # UCUM, as the units flag says
MedicationUnit = Literal["kg", "L"]  # UCUM, as the context's flag bit 5 says
CARBOHYDRATE_UNIT = "kg"
HBA1C_UNIT = "%"
EXERCISE_OVERRUN = 0xFFFF  # GSS Exercise Duration: "overrun"


class GlucoseType(IntEnum):
    """Type nibble: the sample measured."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10


class SampleLocation(IntEnum):
    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


class SensorStatus(IntEnum):
    """Sensor Status Annunciation: the value is the bit number ("at time of measurement")."""

    DEVICE_BATTERY_LOW = 0
    SENSOR_MALFUNCTION = 1
    SAMPLE_SIZE_INSUFFICIENT = 2
    STRIP_INSERTION_ERROR = 3
    STRIP_TYPE_INCORRECT = 4
    RESULT_TOO_HIGH = 5
    RESULT_TOO_LOW = 6
    TEMPERATURE_TOO_HIGH = 7
    TEMPERATURE_TOO_LOW = 8
    READ_INTERRUPTED = 9
    GENERAL_DEVICE_FAULT = 10
    TIME_FAULT = 11


class CarbohydrateId(IntEnum):
    BREAKFAST = 1
    LUNCH = 2
    DINNER = 3
    SNACK = 4
    DRINK = 5
    SUPPER = 6
    BRUNCH = 7


class Meal(IntEnum):
    PREPRANDIAL = 1
    POSTPRANDIAL = 2
    FASTING = 3
    CASUAL = 4
    BEDTIME = 5


class Tester(IntEnum):
    SELF = 1
    HEALTH_CARE_PROFESSIONAL = 2
    LAB_TEST = 3
    NOT_AVAILABLE = 15


class Health(IntEnum):
    MINOR_ISSUES = 1
    MAJOR_ISSUES = 2
    DURING_MENSES = 3
    UNDER_STRESS = 4
    NO_ISSUES = 5
    NOT_AVAILABLE = 15


class MedicationId(IntEnum):
    RAPID_ACTING_INSULIN = 1
    SHORT_ACTING_INSULIN = 2
    INTERMEDIATE_ACTING_INSULIN = 3
    LONG_ACTING_INSULIN = 4
    PRE_MIXED_INSULIN = 5


@dataclass(frozen=True, slots=True)
class GlucoseConcentration:
    value: MedicalFloat
    unit: GlucoseUnit
    type: GlucoseType
    location: SampleLocation


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """One stored or new record; ``base_time`` is device-local, ``None`` when not known."""

    sequence_number: int
    base_time: datetime | None
    time_offset_minutes: int | None = None
    concentration: GlucoseConcentration | None = None
    sensor_status: frozenset[SensorStatus] | None = None
    context_follows: bool = False

    def __post_init__(self) -> None:
        _check(self.sequence_number, 0, 0xFFFF, "sequence_number")
        _check_time(self.base_time)
        if self.time_offset_minutes is not None:
            _check(self.time_offset_minutes, -0x8000, 0x7FFF, "time_offset_minutes")


@dataclass(frozen=True, slots=True)
class Carbohydrate:
    id: CarbohydrateId
    amount: MedicalFloat  # kg


@dataclass(frozen=True, slots=True)
class TesterHealth:
    tester: Tester
    health: Health


@dataclass(frozen=True, slots=True)
class Exercise:
    duration_seconds: int  # EXERCISE_OVERRUN when longer than the field holds
    intensity_percent: int

    def __post_init__(self) -> None:
        _check(self.duration_seconds, 0, 0xFFFF, "duration_seconds")
        _check(self.intensity_percent, 0, 0xFF, "intensity_percent")


@dataclass(frozen=True, slots=True)
class Medication:
    id: MedicationId
    amount: MedicalFloat
    unit: MedicationUnit


@dataclass(frozen=True, slots=True)
class GlucoseMeasurementContext:
    """What surrounded the measurement with the same sequence number."""

    sequence_number: int
    carbohydrate: Carbohydrate | None = None
    meal: Meal | None = None
    tester_health: TesterHealth | None = None
    exercise: Exercise | None = None
    medication: Medication | None = None
    hba1c: MedicalFloat | None = None  # percent

    def __post_init__(self) -> None:
        _check(self.sequence_number, 0, 0xFFFF, "sequence_number")


E = TypeVar("E", bound=IntEnum)
T = TypeVar("T")


def _check(value: int, low: int, high: int, what: str) -> None:
    if not low <= value <= high:
        raise ValueError(f"{what} {value} outside {low}..{high}")


def _check_time(value: datetime | None) -> None:
    if value is not None and (value.tzinfo or value.microsecond or value.year < 1582):
        raise ValueError(f"base_time {value} is no Date Time (naive, whole seconds, 1582..9999)")


def _enum(r: Reader, kind: type[E], raw: int, field: str, offset: int) -> E:
    try:
        return kind(raw)
    except ValueError:
        raise r.error(field, f"{raw:#x} is reserved for future use", offset) from None


def _u8_enum(r: Reader, kind: type[E], field: str) -> E:
    offset = r.offset
    return _enum(r, kind, r.u8(field), field, offset)


def parse_glucose_measurement(data: bytes) -> GlucoseMeasurement:
    r = Reader(data, GLUCOSE_MEASUREMENT)
    flags = r.u8("flags")
    sequence_number = r.u16("sequence_number")
    base_time = r.date_time("base_time")
    offset = r.s16("time_offset") if flags & 0x01 else None
    concentration = None
    if flags & 0x02:
        value = r.sfloat("concentration")
        at = r.offset
        raw = r.u8("type_sample_location")
        concentration = GlucoseConcentration(
            value,
            "mol/L" if flags & 0x04 else "kg/L",
            _enum(r, GlucoseType, raw & 0x0F, "type", at),
            _enum(r, SampleLocation, raw >> 4, "sample_location", at),
        )
    status = bits.bit_set(SensorStatus, r.u16("sensor_status")) if flags & 0x08 else None
    r.end()  # bits 5..7 of flags are RFU: they announce nothing, so nothing may follow
    return GlucoseMeasurement(
        sequence_number, base_time, offset, concentration, status, bool(flags & 0x10)
    )


def encode_glucose_measurement(m: GlucoseMeasurement) -> bytes:
    c, offset, status = m.concentration, m.time_offset_minutes, m.sensor_status
    mol = c is not None and c.unit == "mol/L"
    flags = bits.flags(
        offset is not None, c is not None, mol, status is not None, m.context_follows
    )
    w = Writer().u8(flags).u16(m.sequence_number).date_time(m.base_time)
    if offset is not None:
        w.s16(offset)
    if c is not None:
        w.sfloat(c.value).u8(c.location << 4 | c.type)  # Type: least significant nibble
    if status is not None:
        w.u16(bits.mask(status))
    return w.bytes()


def parse_glucose_measurement_context(data: bytes) -> GlucoseMeasurementContext:
    r = Reader(data, GLUCOSE_MEASUREMENT_CONTEXT)
    flags = r.u8("flags")
    sequence_number = r.u16("sequence_number")
    if flags & 0x80:
        r.u8("extended_flags")  # every bit RFU: present, read, ignored
    carbohydrate = meal = tester_health = exercise = medication = hba1c = None
    if flags & 0x01:
        kind = _u8_enum(r, CarbohydrateId, "carbohydrate_id")
        carbohydrate = Carbohydrate(kind, r.sfloat("carbohydrate"))
    if flags & 0x02:
        meal = _u8_enum(r, Meal, "meal")
    if flags & 0x04:
        at = r.offset
        raw = r.u8("tester_health")  # GSS: Tester is the least significant nibble, then Health
        tester_health = TesterHealth(
            _enum(r, Tester, raw & 0x0F, "tester", at), _enum(r, Health, raw >> 4, "health", at)
        )
    if flags & 0x08:
        exercise = Exercise(r.u16("exercise_duration"), r.u8("exercise_intensity"))
    if flags & 0x10:
        drug = _u8_enum(r, MedicationId, "medication_id")
        medication = Medication(drug, r.sfloat("medication"), "L" if flags & 0x20 else "kg")
    if flags & 0x40:
        hba1c = r.sfloat("hba1c")
    r.end()
    return GlucoseMeasurementContext(
        sequence_number, carbohydrate, meal, tester_health, exercise, medication, hba1c
    )


def encode_glucose_measurement_context(c: GlucoseMeasurementContext) -> bytes:
    med = c.medication
    present = (c.carbohydrate, c.meal, c.tester_health, c.exercise, med)
    litres = med is not None and med.unit == "L"
    w = Writer().u8(bits.flags(*(p is not None for p in present), litres, c.hba1c is not None))
    w.u16(c.sequence_number)  # no Extended Flags: all of their bits are RFU
    if c.carbohydrate is not None:
        w.u8(c.carbohydrate.id).sfloat(c.carbohydrate.amount)
    if c.meal is not None:
        w.u8(c.meal)
    if c.tester_health is not None:
        w.u8(c.tester_health.health << 4 | c.tester_health.tester)
    if c.exercise is not None:
        w.u16(c.exercise.duration_seconds).u8(c.exercise.intensity_percent)
    if med is not None:
        w.u8(med.id).sfloat(med.amount)
    if c.hba1c is not None:
        w.sfloat(c.hba1c)
    return w.bytes()


# --------------------------------------------------------------------------- merge by sequence


@dataclass(frozen=True, slots=True)
class GlucoseRecord:
    """A measurement with its context (``None``: none announced, or it never came)."""

    measurement: GlucoseMeasurement
    context: GlucoseMeasurementContext | None = None


def _without(items: tuple[T, ...], item: T) -> tuple[T, ...]:
    i = items.index(item)
    return items[:i] + items[i + 1 :]


@dataclass(frozen=True, slots=True)
class GlucoseMerge:
    """Immutable merge state: measurements awaiting their context, contexts that came first.

    GLS sends the context right after a measurement whose "context follows" flag is set; that
    measurement waits for it. A context is matched by sequence number in either order.
    """

    waiting: tuple[GlucoseMeasurement, ...] = ()
    early: tuple[GlucoseMeasurementContext, ...] = ()

    def add(
        self, value: GlucoseMeasurement | GlucoseMeasurementContext
    ) -> tuple[GlucoseMerge, tuple[GlucoseRecord, ...]]:
        """The next state and the records ``value`` completes."""
        seq = value.sequence_number
        if isinstance(value, GlucoseMeasurementContext):
            m = next((m for m in self.waiting if m.sequence_number == seq), None)
            if m is None:
                return GlucoseMerge(self.waiting, (*self.early, value)), ()
            return GlucoseMerge(_without(self.waiting, m), self.early), (GlucoseRecord(m, value),)
        if not value.context_follows:
            return self, (GlucoseRecord(value),)
        c = next((c for c in self.early if c.sequence_number == seq), None)
        if c is None:
            return GlucoseMerge((*self.waiting, value), self.early), ()
        return GlucoseMerge(self.waiting, _without(self.early, c)), (GlucoseRecord(value, c),)

    def flush(self) -> tuple[tuple[GlucoseRecord, ...], tuple[GlucoseMeasurementContext, ...]]:
        """At the end of a transfer: waiting measurements without context, and orphan contexts."""
        return tuple(GlucoseRecord(m) for m in self.waiting), self.early


def merge_glucose_records(
    values: Iterable[GlucoseMeasurement | GlucoseMeasurementContext],
) -> tuple[tuple[GlucoseRecord, ...], tuple[GlucoseMeasurementContext, ...]]:
    """Fold a whole transfer: the records in completion order, then the contexts nobody claimed."""
    state, records = GlucoseMerge(), list[GlucoseRecord]()
    for value in values:
        state, done = state.add(value)
        records += done
    rest, orphans = state.flush()
    return (*records, *rest), orphans


CHARACTERISTICS: dict[int, tuple[str, Callable[[bytes], object], Callable[[Any], bytes]]] = {
    0x2A18: (GLUCOSE_MEASUREMENT, parse_glucose_measurement, encode_glucose_measurement),
    0x2A34: (
        GLUCOSE_MEASUREMENT_CONTEXT,
        parse_glucose_measurement_context,
        encode_glucose_measurement_context,
    ),
}
