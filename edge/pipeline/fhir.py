"""Encode a :class:`Measurement` as an HL7 FHIR R4 Observation (JSON), PHD IG style.

* ``identifier``: ``urn:uuid:<message id>`` (system ``urn:ietf:rfc:3986``) - stable across
  re-sends so the backend de-duplicates (FHIR R4 Identifier).
* ``code``: LOINC; ``bodySite``: SNOMED CT; ``valueQuantity``: UCUM (FHIR R4 Quantity).
* a device value with no number (CT-80 ``OVER``) has no ``valueQuantity`` but a
  ``dataAbsentReason`` (invariant obs-6: never both).
* a reading the device itself marks unreliable, or that a gate flagged (operating conditions,
  calibration: ``Measurement.flags``), is ``status = preliminary`` with one note per reason.
* ``interpretation`` (H / L / N, HL7 v3 ObservationInterpretation) with the ``referenceRange``
  it was judged against, for quantities that have one (edge/pipeline/validate.py).
* ``extension`` observation-gatewayDevice: the bus gateway that collected the reading (PHD IG).
* ``device``: a reference to the contained Device (serial number, model, and the calibration
  record's id and last valid day as an extension), and the device's logical id on the bus.
* ``subject``: the patient, only as the pseudonymous visit id the reading was bound to
  (identifier system ``urn:santebus:visit``); absent when the reading is bound to no visit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from edge.pipeline.codes import PANELS, UCUM, Coding, QuantityCode, quantity_code
from edge.pipeline.measurement import Absent, Measurement, Part
from edge.pipeline.validate import REFERENCE

SCHEMA = "fhir-r4-observation/1"
#: seconds the device clock was ahead of the gateway's (effectiveDateTime is corrected)
CLOCK_OFFSET_EXTENSION = "urn:santebus:fhir:extension:device-clock-offset"
#: signal-quality index 0..1 of a value the gateway derived from a raw signal (edge/signal/)
SIGNAL_QUALITY_EXTENSION = "urn:santebus:fhir:extension:signal-quality"
#: identifier system of the pseudonymous visit ids issued by reception
VISIT_SYSTEM = "urn:santebus:visit"
#: identifier system of the devices' logical ids in the bus's config
DEVICE_SYSTEM = "urn:santebus:device"
#: complex extension on the contained Device: the current calibration record's id and last
#: valid day (calibration/records.py); absent when the device has no record
CALIBRATION_EXTENSION = "urn:santebus:fhir:extension:device-calibration"
_DEVICE_ID = "device"
_DAR = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_GATEWAY_DEVICE = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_INTERPRETATION_DISPLAY = {"H": "High", "L": "Low", "N": "Normal"}
_DAR_DISPLAY = {
    "error": "Error",
    "not-a-number": "Not a Number (NaN)",
    "positive-infinity": "Positive Infinity (PINF)",
    "negative-infinity": "Negative Infinity (NINF)",
}
#: what an IEEE 11073-20601 special value (F.8.1) means, as the Observation's text
_ABSENT_TEXT = {
    "error": "NRes: the value does not fit the device's resolution",
    "not-a-number": "NaN: the device could not measure",
    "positive-infinity": "+INF: above the device's measuring range",
    "negative-infinity": "-INF: below the device's measuring range",
}
#: UCUM codes of the alternative units devices report (kPa, degrees Fahrenheit, pounds...)
_UCUM = {"kPa": "kPa", "[degF]": "[degF]", "[lb_av]": "[lb_av]", "[in_i]": "[in_i]",
         "mg/dL": "mg/dL", "mmHg": "mm[Hg]"}  # fmt: skip


def _coding(c: Coding) -> dict[str, str]:
    return {"system": c.system, "code": c.code, "display": c.display}


class Precise(float):
    """A float that keeps the number of decimals the device gave it.

    FHIR R4 2.24.0.1 (decimal): "the precision of the decimal value has significance", so
    72.50 kg from a scale is published as 72.50, not 72.5 (:func:`encode` writes it so).
    """

    decimals: int

    def __new__(cls, value: float, decimals: int) -> Precise:
        obj = super().__new__(cls, value)
        obj.decimals = decimals
        return obj


def _quantity(value: float, unit: str, ucum: str, decimals: int | None = None) -> dict[str, Any]:
    shown = value if decimals is None else Precise(value, decimals)
    return {"value": shown, "unit": unit, "system": UCUM, "code": ucum}


def _absent(code: str, text: str) -> dict[str, Any]:
    display = _DAR_DISPLAY[code]
    return {"coding": [{"system": _DAR, "code": code, "display": display}], "text": text}


def _device(m: Measurement) -> dict[str, Any]:
    """The measuring device as a FHIR R4 Device.

    Serial and model as Device elements, the current calibration as an extension (id, last
    valid day): the device a reading came from and the evidence that it was in calibration
    travel together with the reading.
    """
    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": _DEVICE_ID,
        "identifier": [{"system": DEVICE_SYSTEM, "value": m.device_id}],
        "serialNumber": m.device_serial,
        "modelNumber": m.device_model,
        "deviceName": [{"name": m.device_model, "type": "model-name"}],
    }
    if m.calibration_id is not None and m.calibration_due is not None:
        device["extension"] = [
            {
                "url": CALIBRATION_EXTENSION,
                "extension": [
                    {"url": "id", "valueString": m.calibration_id},
                    {"url": "validUntil", "valueDate": m.calibration_due.isoformat()},
                ],
            }
        ]
    return device


def observation(m: Measurement) -> dict[str, Any]:
    """The Observation resource as a JSON-ready dict."""
    panel = PANELS.get(m.quantity)
    qc = None if panel is not None else quantity_code(m.quantity)
    codings = panel.codings if panel is not None else qc.codings if qc is not None else ()
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{m.msg_id}"}],
        "status": "preliminary" if m.device_status == "unreliable" or m.flags else "final",
        "category": [{"coding": [{"system": _CATEGORY, "code": "exam", "display": "Exam"}]}],
        "code": {"coding": [_coding(c) for c in codings], "text": codings[0].display},
        "effectiveDateTime": m.effective.isoformat(timespec="seconds"),
        # The measuring device, contained (FHIR R4 3.2.0.6.1: it has no independent existence
        # at the backend), referenced locally and by its logical id on the bus.
        "contained": [_device(m)],
        "device": {
            "reference": f"#{_DEVICE_ID}",
            "identifier": {"system": DEVICE_SYSTEM, "value": m.device_id},
            "display": f"{m.device_model} s/n {m.device_serial}",
        },
        # The gateway that collected it, as the PHD IG does: the core observation-gatewayDevice
        # extension next to the measuring device in Observation.device.
        "extension": [
            {
                "url": _GATEWAY_DEVICE,
                "valueReference": {
                    "identifier": {"system": "urn:santebus:gateway", "value": m.bus_id},
                    "display": f"santebus-edge gateway of bus {m.bus_id}",
                },
            }
        ],
    }
    if m.clock_offset:
        # The device clock was wrong and effectiveDateTime has been corrected: how far off it
        # was, so the device's own time stamp can be recovered (effectiveDateTime + offset).
        obs["extension"].append(
            {
                "url": CLOCK_OFFSET_EXTENSION,
                "valueQuantity": {
                    "value": m.clock_offset,
                    "unit": "s",
                    "system": "http://unitsofmeasure.org",
                    "code": "s",
                },
            }
        )
    if m.quality is not None:
        # How clean the raw signal was that the gateway derived this value from (1: clean):
        # a reader can weigh a borderline value by it
        obs["extension"].append(
            {"url": SIGNAL_QUALITY_EXTENSION, "valueDecimal": Precise(m.quality, 2)}
        )
    if m.subject is not None:
        # The patient only by the pseudonymous visit id (a logical reference, FHIR R4
        # Reference.identifier): no name or national number ever leaves the gateway.
        obs["subject"] = {
            "type": "Patient",
            "identifier": {"system": VISIT_SYSTEM, "value": m.subject},
        }
    spec = panel if panel is not None else qc  # a panel's site and method are its own
    if spec is not None and spec.body_site is not None:
        obs["bodySite"] = {"coding": [_coding(spec.body_site)]}
    method = m.method or (spec.method if spec is not None else None)
    if method is not None:
        obs["method"] = {"text": method}
    notes = [{"text": flag} for flag in m.flags]
    if m.device_status == "unreliable":
        notes.insert(0, {"text": "The device marked this reading as unreliable."})
    if notes:
        obs["note"] = notes
    if panel is not None:
        # PHD IG compound observation: no value of its own, one component per member, each
        # with its own value (or data-absent reason), interpretation and reference range
        obs["component"] = [_part(p) for p in m.parts]
        return obs
    assert qc is not None
    _value(obs, m.quantity, m.value, m.unit, m.absent, m.interpretation, m.decimals, m.absent_text)
    components = []
    for n, reading in enumerate(m.components, start=1):
        comp: dict[str, Any] = {"code": {"coding": [_coding(qc.code)], "text": f"Reading {n}"}}
        if reading is not None:
            comp["valueQuantity"] = _quantity(reading, m.unit, _ucum(qc, m.unit))
        else:
            comp["dataAbsentReason"] = _absent("error", "no valid reading")
        components.append(comp)
    if components:
        obs["component"] = components
    return obs


def _part(p: Part) -> dict[str, Any]:
    qc = quantity_code(p.quantity)
    comp: dict[str, Any] = {"code": {"coding": [_coding(c) for c in qc.codings],
                                     "text": qc.code.display}}  # fmt: skip
    _value(comp, p.quantity, p.value, p.unit, p.absent, p.interpretation, p.decimals, p.absent_text)
    return comp


def _value(
    target: dict[str, Any],
    quantity: str,
    value: float | None,
    unit: str,
    absent: Absent | None,
    interpretation: str | None,
    decimals: int | None = None,
    absent_text: str | None = None,
) -> None:
    """Set a value's valueQuantity (or dataAbsentReason), interpretation and referenceRange."""
    qc = quantity_code(quantity)
    if value is None:
        text = absent_text or (
            _ABSENT_TEXT[absent] if absent else "OVER: above the device's measuring range"
        )
        target["dataAbsentReason"] = _absent(absent or "error", text)
        return
    target["valueQuantity"] = _quantity(value, unit, _ucum(qc, unit), decimals)
    if interpretation is not None:
        # HL7 v3 ObservationInterpretation against the screening reference range it names
        target["interpretation"] = [
            {"coding": [{"system": _INTERPRETATION, "code": interpretation,
                         "display": _INTERPRETATION_DISPLAY[interpretation]}]}
        ]  # fmt: skip
        ref = REFERENCE[quantity]
        target["referenceRange"] = [
            {
                "low": _quantity(ref.low, ref.unit, _ucum(qc, ref.unit)),
                "high": _quantity(ref.high, ref.unit, _ucum(qc, ref.unit)),
                "text": "adult screening reference range",
            }
        ]


def _ucum(qc: QuantityCode, unit: str) -> str:
    """The UCUM code of a unit a device reports (the quantity's own, or an alternative)."""
    if unit == qc.unit:
        return qc.ucum
    try:
        return _UCUM[unit]
    except KeyError:
        raise KeyError(f"no UCUM code for unit {unit!r}") from None


#: marks a :class:`Precise` number inside a JSON string until it is written out bare
_MARK = "\ue000"
_MARKED = re.compile(r'"\\ue000(-?[0-9]+(?:\.[0-9]+)?)"')


def _mark(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _mark(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_mark(value) for value in node]
    if isinstance(node, Precise):
        return f"{_MARK}{node:.{node.decimals}f}"
    return node


def dumps(obs: dict[str, Any], **kwargs: Any) -> str:
    """JSON with every :class:`Precise` value written with its own number of decimals.

    :mod:`json` writes floats with ``float.__repr__`` (72.5), so each is first replaced by a
    marked string holding its exact digits, and the marks are then stripped with the quotes.
    """
    text = json.dumps(_mark(obs), sort_keys=True, **kwargs)
    return _MARKED.sub(r"\1", text)


def encode(m: Measurement) -> bytes:
    """Compact, key-sorted UTF-8 JSON: byte-identical for the same measurement."""
    return dumps(observation(m), separators=(",", ":")).encode("utf-8")
