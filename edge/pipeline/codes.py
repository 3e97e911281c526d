"""Clinical coding of device quantities: LOINC for the observation, SNOMED CT for the site.

UCUM units per HL7 FHIR R4 Quantity (system http://unitsofmeasure.org).

The PHD IG codes device observations with IEEE 11073-10101 (MDC) next to LOINC. MDC has no
intraocular-pressure term (its pressure terms are blood, airway and cuff pressures), so the
tonometer's readings carry LOINC only; the BLE health profiles' quantities (blood pressure,
glucose, SpO2, temperature, weight) will carry both.
"""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str


@dataclass(frozen=True, slots=True)
class QuantityCode:
    """How one device quantity is expressed in FHIR."""

    code: Coding
    unit: str  # human unit as the device prints it
    ucum: str
    body_site: Coding | None = None
    method: str | None = None


_NCT = "Non-contact (air-puff) tonometry"

QUANTITIES: dict[str, QuantityCode] = {
    "iop.right": QuantityCode(
        Coding(LOINC, "79892-6", "Right eye Intraocular pressure"),
        "mmHg",
        "mm[Hg]",
        Coding(SNOMED, "18944008", "Right eye structure"),
        _NCT,
    ),
    "iop.left": QuantityCode(
        Coding(LOINC, "79893-4", "Left eye Intraocular pressure"),
        "mmHg",
        "mm[Hg]",
        Coding(SNOMED, "8966001", "Left eye structure"),
        _NCT,
    ),
}


def quantity_code(quantity: str) -> QuantityCode:
    """The coding for a driver quantity; an unknown quantity is a programming error."""
    try:
        return QUANTITIES[quantity]
    except KeyError:
        raise KeyError(f"no clinical coding for device quantity {quantity!r}") from None
