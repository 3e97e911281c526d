"""Clinical validation of a device record, before anything is stored as an Observation.

Three outcomes per reading, decided from the reading alone and from the other readings of the
same record (cross-checks):

* **quarantined** - physically impossible (outside the plausibility range) or inconsistent
  with the rest of the record (systolic not above diastolic, pulse pressure out of bounds). Never
  published as an Observation: stored in the outbox's quarantine table with the reason, and an
  event raised. Its partner readings in a failed cross-check are quarantined with it: which of
  the two is wrong cannot be known.
* **valid, with an interpretation** - inside the plausibility range; compared with the
  reference range, ``H`` (above) / ``L`` (below) / ``N`` (HL7 v3 ObservationInterpretation).
* a value the device could not give (no number) is not validated here: it is published with a
  ``dataAbsentReason`` (fhir.py).

Plausibility ranges are deliberately wide - they catch a broken sensor or a corrupted value,
not an unusual patient - and reference ranges are the usual adult screening thresholds; both
are tables below, each row with its source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from drivers.readings import DeviceReading

#: HL7 v3 ObservationInterpretation codes used here
Interpretation = Literal["H", "L", "N"]


@dataclass(frozen=True, slots=True)
class Range:
    low: float
    high: float
    unit: str


#: physically possible values; outside = a device or transmission fault
PLAUSIBLE: dict[str, Range] = {
    # IOP 0-80 mmHg: the bound, beyond any tonometer's measuring range
    "iop.right": Range(0, 80, "mmHg"),
    "iop.left": Range(0, 80, "mmHg"),
    "iopcc.right": Range(0, 80, "mmHg"),
    "iopcc.left": Range(0, 80, "mmHg"),
    # corneal hysteresis is P1 - P2 >= 0 by construction; reported ORA values lie about 4-18
    # mmHg (Luce 2005): beyond 30 the applanation events were misread
    "ch.right": Range(0, 30, "mmHg"),
    "ch.left": Range(0, 30, "mmHg"),
    # non-invasive BP: the measuring range required of automated sphygmomanometers is at
    # least 0-260 mmHg for the cuff (ISO 81060-2 / IEC 80601-2-30); diastolic 20-200 covers it
    "bp.systolic": Range(40, 300, "mmHg"),
    "bp.diastolic": Range(20, 200, "mmHg"),
    "bp.mean": Range(30, 250, "mmHg"),
    "pulse.rate": Range(25, 250, "/min"),
    # capillary glucose meters read about 0.6-33 mmol/L (ISO 15197 claims); wider here
    "glucose": Range(0.5, 40.0, "mmol/L"),
    "spo2": Range(50, 100, "%"),
    # autorefractor / keratometer (docs/refraction.md), per eye below: sphere +-30 D (issue
    # #10's bound, beyond any autorefractor's range); cylinder in the minus-cylinder convention
    # the device sends, so above 0 is a fault; axis 0-180 deg (0: the device's axis of a zero
    # cylinder); corneal radius 5-11 mm and power 30-70 D (337.5 / r for r in that range);
    # pupillary distance 40-85 mm (adults, wide)
    "pd": Range(40, 85, "mm"),
}
_EYE_PLAUSIBLE = {
    "refraction.{}.sphere": Range(-30, 30, "D"),
    "refraction.{}.cylinder": Range(-15, 0, "D"),
    "refraction.{}.axis": Range(0, 180, "deg"),
    "kerato.{}.k1.radius": Range(5, 11, "mm"),
    "kerato.{}.k1.power": Range(30, 70, "D"),
    "kerato.{}.k1.axis": Range(0, 180, "deg"),
    "kerato.{}.k2.radius": Range(5, 11, "mm"),
    "kerato.{}.k2.power": Range(30, 70, "D"),
    "kerato.{}.k2.axis": Range(0, 180, "deg"),
}
PLAUSIBLE.update(
    {name.format(side): rng for name, rng in _EYE_PLAUSIBLE.items() for side in ("right", "left")}
)
#: corneal power = (1.3375 - 1) / radius (standard keratometric index); a device using 1.332
#: is off by about 0.7 D at 7.8 mm, so 1 D apart only a corrupted value can be
KERATOMETRIC_INDEX = 1.3375
KERATO_TOLERANCE_D = 1.0

#: screening reference ranges for the interpretation (adults)
REFERENCE: dict[str, Range] = {
    # statistically normal IOP 10-21 mmHg (European Glaucoma Society guidelines, 5th ed.)
    "iop.right": Range(10, 21, "mmHg"),
    "iop.left": Range(10, 21, "mmHg"),
    # office BP thresholds: hypertension from 140/90 mmHg (ESC/ESH 2018)
    "bp.systolic": Range(90, 139, "mmHg"),
    "bp.diastolic": Range(60, 89, "mmHg"),
    # fasting capillary glucose 3.9-6.9 mmol/L (diabetes from 7.0 mmol/L fasting, WHO)
    "glucose": Range(3.9, 6.9, "mmol/L"),
    "spo2": Range(95, 100, "%"),
}

#: pulse pressure (systolic - diastolic) that a real measurement can show, mmHg
PULSE_PRESSURE = Range(10, 150, "mmHg")


@dataclass(frozen=True, slots=True)
class Verdict:
    reading: DeviceReading
    #: why the reading is quarantined (None: it is valid)
    quarantine: str | None = None
    #: ``H`` / ``L`` / ``N`` against the reference range; None when there is none or no value
    interpretation: Interpretation | None = None


def validate(readings: Sequence[DeviceReading]) -> list[Verdict]:
    """One verdict per reading, in order."""
    reasons: dict[int, str] = {}
    for i, r in enumerate(readings):
        reason = _implausible(r)
        if reason is not None:
            reasons[i] = reason
    for i, j, reason in _cross_checks(readings):
        reasons.setdefault(i, reason)
        reasons.setdefault(j, reason)
    return [
        Verdict(r, reasons[i]) if i in reasons else Verdict(r, None, _interpret(r))
        for i, r in enumerate(readings)
    ]


#: (device unit, table unit) -> conversion of a value; exact factors from their definitions:
#: 1 mmHg = 133.322387415 Pa (BIPM SI brochure, table 8), 1 lb = 0.45359237 kg (international
#: pound), degrees Fahrenheit by definition, glucose 1 mmol/L = 18.016 mg/dL (molar mass
#: 180.16 g/mol)
_CONVERT: dict[tuple[str, str], Callable[[float], float]] = {
    ("kPa", "mmHg"): lambda v: v * 1000 / 133.322387415,
    ("[degF]", "Cel"): lambda v: (v - 32) * 5 / 9,
    ("[lb_av]", "kg"): lambda v: v * 0.45359237,
    ("mg/dL", "mmol/L"): lambda v: v / 18.016,
}


def _in(value: float, unit: str, rng: Range) -> float | None:
    """``value`` in the range's unit, or None when the unit is not convertible."""
    if unit == rng.unit:
        return value
    convert = _CONVERT.get((unit, rng.unit))
    return convert(value) if convert is not None else None


def _implausible(r: DeviceReading) -> str | None:
    rng = PLAUSIBLE.get(r.quantity)
    if rng is None or r.value is None:
        return None
    value = _in(r.value, r.unit, rng)
    if value is None:
        return f"{r.quantity}: unit {r.unit!r}, expected {rng.unit!r}"
    if not rng.low <= value <= rng.high:
        shown = f"{r.value:g} {r.unit}" + (f" ({value:.3g} {rng.unit})" if r.unit != rng.unit
                                           else "")  # fmt: skip
        return (
            f"{r.quantity} = {shown} is outside the plausible range "
            f"{rng.low:g}-{rng.high:g} {rng.unit}"
        )
    for n, part in enumerate(r.components, start=1):
        if part is not None and not rng.low <= (_in(part, r.unit, rng) or part) <= rng.high:
            return (
                f"{r.quantity} reading {n} = {part:g} {r.unit} is outside the plausible range "
                f"{rng.low:g}-{rng.high:g} {rng.unit}"
            )
    return None


def _cross_checks(readings: Sequence[DeviceReading]) -> list[tuple[int, int, str]]:
    return _bp_checks(readings) + _kerato_checks(readings)


def _kerato_checks(readings: Sequence[DeviceReading]) -> list[tuple[int, int, str]]:
    """Each meridian's power must be what its radius gives (1.3375 index, within 1 D)."""
    at = {r.quantity: (i, r.value) for i, r in enumerate(readings) if r.value is not None}
    out = []
    for name, (i, radius) in at.items():
        if not name.endswith(".radius") or radius is None or radius <= 0:
            continue
        power = at.get(name.removesuffix(".radius") + ".power")
        if power is None or power[1] is None:
            continue
        expected = (KERATOMETRIC_INDEX - 1) * 1000 / radius
        if abs(power[1] - expected) > KERATO_TOLERANCE_D:
            meridian = name.removesuffix(".radius")
            out.append((i, power[0], f"{meridian}: power {power[1]:g} D does not match radius "
                        f"{radius:g} mm ({expected:.2f} D expected)"))  # fmt: skip
    return out


def _bp_checks(readings: Sequence[DeviceReading]) -> list[tuple[int, int, str]]:
    values = {
        r.quantity: (i, _in(r.value, r.unit, PULSE_PRESSURE))
        for i, r in enumerate(readings)
        if r.value is not None
    }
    if "bp.systolic" not in values or "bp.diastolic" not in values:
        return []
    (i, sbp), (j, dbp) = values["bp.systolic"], values["bp.diastolic"]
    if sbp is None or dbp is None:  # filtered above; for the type checker
        return []
    if sbp <= dbp:
        return [(i, j, f"systolic {sbp:g} mmHg is not above diastolic {dbp:g} mmHg")]
    if not PULSE_PRESSURE.low <= sbp - dbp <= PULSE_PRESSURE.high:
        return [
            (
                i,
                j,
                f"pulse pressure {sbp - dbp:g} mmHg is outside "
                f"{PULSE_PRESSURE.low:g}-{PULSE_PRESSURE.high:g} mmHg",
            )
        ]
    return []


def _interpret(r: DeviceReading) -> Interpretation | None:
    rng = REFERENCE.get(r.quantity)
    if rng is None or r.value is None:
        return None
    value = _in(r.value, r.unit, rng)
    if value is None:
        return None
    if value > rng.high:
        return "H"
    if value < rng.low:
        return "L"
    return "N"
