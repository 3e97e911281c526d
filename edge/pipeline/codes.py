"""Clinical coding of device quantities: LOINC and IEEE 11073-10101 (MDC), SNOMED CT for sites.

UCUM units per HL7 FHIR R4 Quantity (system http://unitsofmeasure.org). The HL7 PHD IG codes
each device observation with its MDC term next to LOINC (code system
``urn:iso:std:iso:11073:10101``, the term's 32-bit code: partition << 16 | term) and groups
the blood-pressure compound (systolic, diastolic, mean) into one panel Observation with one
component each (PHD IG, "Compound numeric observations"; LOINC 85354-9 / MDC 150020).

MDC has no intraocular-pressure term (its pressure terms are blood, airway and cuff
pressures), so the tonometer's readings carry LOINC only. Neither LOINC nor MDC has a term for
the corneal quantities of ORA-style air-puff tonometry (corneal hysteresis, corneal-compensated
IOP): they are coded in the gateway's own code system :data:`SANTEBUS` (declared in
docs/asyncapi.yaml), with the eye as bodySite.
"""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
MDC = "urn:iso:std:iso:11073:10101"
#: the gateway's code system for quantities no standard terminology names yet
SANTEBUS = "urn:santebus:fhir:CodeSystem:observation"


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
    mdc: Coding | None = None

    @property
    def codings(self) -> tuple[Coding, ...]:
        """LOINC first, then MDC (PHD IG: both, LOINC as the primary code)."""
        return (self.code,) if self.mdc is None else (self.code, self.mdc)


@dataclass(frozen=True, slots=True)
class Panel:
    """Readings of one record coded as one Observation with a component per member."""

    code: Coding
    mdc: Coding | None
    members: tuple[str, ...]
    body_site: Coding | None = None
    method: str | None = None

    @property
    def codings(self) -> tuple[Coding, ...]:
        return (self.code,) if self.mdc is None else (self.code, self.mdc)


_NCT = "Non-contact (air-puff) tonometry"
_RIGHT_EYE = Coding(SNOMED, "18944008", "Right eye structure")
_LEFT_EYE = Coding(SNOMED, "8966001", "Left eye structure")
#: the eye as a FHIR bodySite (SNOMED CT eye structures), by side
EYES = {"right": _RIGHT_EYE, "left": _LEFT_EYE}
_CH = Coding(SANTEBUS, "corneal-hysteresis", "Corneal hysteresis")
_IOPCC = Coding(SANTEBUS, "iop-corneal-compensated", "Intraocular pressure, corneal-compensated")
_ORA = "Air-puff tonometry with applanation signal analysis (Ocular Response Analyzer style)"

QUANTITIES: dict[str, QuantityCode] = {
    "iop.right": QuantityCode(
        Coding(LOINC, "79892-6", "Right eye Intraocular pressure"),
        "mmHg",
        "mm[Hg]",
        _RIGHT_EYE,
        _NCT,
    ),
    "iop.left": QuantityCode(
        Coding(LOINC, "79893-4", "Left eye Intraocular pressure"),
        "mmHg",
        "mm[Hg]",
        _LEFT_EYE,
        _NCT,
    ),
    # ORA-style quantities of one air puff (edge/signal/tonometry.py): CH = P1 - P2 and the
    # corneal-compensated IOP (Luce 2005)
    "ch.right": QuantityCode(_CH, "mmHg", "mm[Hg]", _RIGHT_EYE, _ORA),
    "ch.left": QuantityCode(_CH, "mmHg", "mm[Hg]", _LEFT_EYE, _ORA),
    "iopcc.right": QuantityCode(_IOPCC, "mmHg", "mm[Hg]", _RIGHT_EYE, _ORA),
    "iopcc.left": QuantityCode(_IOPCC, "mmHg", "mm[Hg]", _LEFT_EYE, _ORA),
    # Blood Pressure Measurement 0x2A35 compound, PHD IG / LOINC vital signs
    "bp.systolic": QuantityCode(
        Coding(LOINC, "8480-6", "Systolic blood pressure"), "mmHg", "mm[Hg]",
        mdc=Coding(MDC, "150021", "MDC_PRESS_BLD_NONINV_SYS"),
    ),
    "bp.diastolic": QuantityCode(
        Coding(LOINC, "8462-4", "Diastolic blood pressure"), "mmHg", "mm[Hg]",
        mdc=Coding(MDC, "150022", "MDC_PRESS_BLD_NONINV_DIA"),
    ),
    "bp.mean": QuantityCode(
        Coding(LOINC, "8478-0", "Mean blood pressure"), "mmHg", "mm[Hg]",
        mdc=Coding(MDC, "150023", "MDC_PRESS_BLD_NONINV_MEAN"),
    ),
    # the pulse rate a blood-pressure monitor reports
    "pulse.rate": QuantityCode(
        Coding(LOINC, "8867-4", "Heart rate"), "/min", "/min",
        mdc=Coding(MDC, "149546", "MDC_PULS_RATE_NON_INV"),
    ),
    # the pulse rate a pulse oximeter reports: the PHD IG pairs MDC_PULS_OXIM_PULS_RATE with
    # LOINC 8889-8, not the generic heart rate 8867-4
    "spo2.pulse.rate": QuantityCode(
        Coding(LOINC, "8889-8", "Heart rate by Pulse oximetry"), "/min", "/min",
        mdc=Coding(MDC, "149530", "MDC_PULS_OXIM_PULS_RATE"),
    ),
    "spo2": QuantityCode(
        Coding(LOINC, "2708-6", "Oxygen saturation in Arterial blood"), "%", "%",
        mdc=Coding(MDC, "150456", "MDC_PULS_OXIM_SAT_O2"),
    ),
    # capillary whole blood, as glucometers measure (Glucose Measurement 0x2A18 type 0x1)
    "glucose": QuantityCode(
        Coding(LOINC, "15074-8", "Glucose [Moles/volume] in Blood"), "mmol/L", "mmol/L",
        mdc=Coding(MDC, "160184", "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD"),
    ),
    "body.temperature": QuantityCode(
        Coding(LOINC, "8310-5", "Body temperature"), "Cel", "Cel",
        mdc=Coding(MDC, "150364", "MDC_TEMP_BODY"),
    ),
    "body.weight": QuantityCode(
        Coding(LOINC, "29463-7", "Body weight"), "kg", "kg",
        mdc=Coding(MDC, "188736", "MDC_MASS_BODY_ACTUAL"),
    ),
    "body.height": QuantityCode(
        Coding(LOINC, "8302-2", "Body height"), "m", "m",
        mdc=Coding(MDC, "188740", "MDC_LEN_BODY_ACTUAL"),
    ),
    "bmi": QuantityCode(
        Coding(LOINC, "39156-5", "Body mass index (BMI) [Ratio]"), "kg/m2", "kg/m2",
        mdc=Coding(MDC, "188752", "MDC_RATIO_MASS_BODY_LEN_SQ"),
    ),
}  # fmt: skip

PANELS: dict[str, Panel] = {
    "bp": Panel(
        Coding(LOINC, "85354-9", "Blood pressure panel with all children optional"),
        Coding(MDC, "150020", "MDC_PRESS_BLD_NONINV"),
        ("bp.systolic", "bp.diastolic", "bp.mean"),
    ),
}

# --------------------------------------------------------------- autorefractor / keratometer

_REFRACTION = Coding(SNOMED, "251794006", "Refraction")
_AUTOREFRACTION = "Objective refraction by autorefractor (minus-cylinder convention)"
_KERATOMETRY = "Automated keratometry (keratometric index 1.3375)"
_REFRACTION_PARTS = {
    "sphere": (Coding(SNOMED, "251795007", "Power of sphere"), "D", "[diop]"),
    "cylinder": (Coding(SNOMED, "251797004", "Power of cylinder"), "D", "[diop]"),
    "axis": (Coding(SNOMED, "251799001", "Axis of cylinder"), "deg", "deg"),
}
_K = {
    "k1": Coding(SANTEBUS, "keratometry-k1", "Keratometry, flat meridian (K1)"),
    "k2": Coding(SANTEBUS, "keratometry-k2", "Keratometry, steep meridian (K2)"),
}
_K_PARTS = {
    "radius": (Coding(SANTEBUS, "corneal-radius", "Corneal radius of curvature"), "mm", "mm"),
    "power": (Coding(SANTEBUS, "corneal-power", "Corneal power"), "D", "[diop]"),
    "axis": (Coding(SANTEBUS, "corneal-meridian-axis", "Axis of the meridian"), "deg", "deg"),
}


def _eye_codes() -> None:
    """Refraction and keratometry panels of each eye, and their members, into the tables."""
    for side, site in EYES.items():
        members = tuple(f"refraction.{side}.{part}" for part in _REFRACTION_PARTS)
        PANELS[f"refraction.{side}"] = Panel(_REFRACTION, None, members, site, _AUTOREFRACTION)
        for part, (code, unit, ucum) in _REFRACTION_PARTS.items():
            QUANTITIES[f"refraction.{side}.{part}"] = QuantityCode(code, unit, ucum, site)
        for k, k_code in _K.items():
            members = tuple(f"kerato.{side}.{k}.{part}" for part in _K_PARTS)
            PANELS[f"kerato.{side}.{k}"] = Panel(k_code, None, members, site, _KERATOMETRY)
            for part, (code, unit, ucum) in _K_PARTS.items():
                QUANTITIES[f"kerato.{side}.{k}.{part}"] = QuantityCode(code, unit, ucum, site)


_eye_codes()
QUANTITIES["pd"] = QuantityCode(
    Coding(SANTEBUS, "pupillary-distance", "Pupillary distance (far)"), "mm", "mm",
    method="Measured by the autorefractor",
)  # fmt: skip

#: member quantity -> its panel's name
PANEL_OF = {member: name for name, panel in PANELS.items() for member in panel.members}


def quantity_code(quantity: str) -> QuantityCode:
    """The coding for a driver quantity; an unknown quantity is a programming error."""
    try:
        return QUANTITIES[quantity]
    except KeyError:
        raise KeyError(f"no clinical coding for device quantity {quantity!r}") from None
