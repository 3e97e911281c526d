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
from typing import Any

from edge.pipeline.codes import UCUM, Coding, quantity_code
from edge.pipeline.measurement import Measurement
from edge.pipeline.validate import REFERENCE

SCHEMA = "fhir-r4-observation/1"
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


def _coding(c: Coding) -> dict[str, str]:
    return {"system": c.system, "code": c.code, "display": c.display}


def _quantity(value: float, unit: str, ucum: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": ucum}


def _absent(text: str) -> dict[str, Any]:
    return {"coding": [{"system": _DAR, "code": "error", "display": "Error"}], "text": text}


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
    qc = quantity_code(m.quantity)
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{m.msg_id}"}],
        "status": "preliminary" if m.device_status == "unreliable" or m.flags else "final",
        "category": [{"coding": [{"system": _CATEGORY, "code": "exam", "display": "Exam"}]}],
        "code": {"coding": [_coding(qc.code)], "text": qc.code.display},
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
    if m.subject is not None:
        # The patient only by the pseudonymous visit id (a logical reference, FHIR R4
        # Reference.identifier): no name or national number ever leaves the gateway.
        obs["subject"] = {
            "type": "Patient",
            "identifier": {"system": VISIT_SYSTEM, "value": m.subject},
        }
    if qc.body_site is not None:
        obs["bodySite"] = {"coding": [_coding(qc.body_site)]}
    if qc.method is not None:
        obs["method"] = {"text": qc.method}
    if m.value is not None:
        obs["valueQuantity"] = _quantity(m.value, qc.unit, qc.ucum)
    else:
        obs["dataAbsentReason"] = _absent("OVER: above the device's measuring range")
    notes = [{"text": flag} for flag in m.flags]
    if m.device_status == "unreliable":
        notes.insert(0, {"text": "The device marked this reading as unreliable."})
    if notes:
        obs["note"] = notes
    if m.interpretation is not None and m.value is not None:
        # HL7 v3 ObservationInterpretation against the screening reference range it names
        obs["interpretation"] = [
            {"coding": [{"system": _INTERPRETATION, "code": m.interpretation,
                         "display": _INTERPRETATION_DISPLAY[m.interpretation]}]}
        ]  # fmt: skip
        ref = REFERENCE[m.quantity]
        obs["referenceRange"] = [
            {
                "low": _quantity(ref.low, qc.unit, qc.ucum),
                "high": _quantity(ref.high, qc.unit, qc.ucum),
                "text": "adult screening reference range",
            }
        ]
    components = []
    for n, part in enumerate(m.components, start=1):
        comp: dict[str, Any] = {"code": {"coding": [_coding(qc.code)], "text": f"Reading {n}"}}
        if part is not None:
            comp["valueQuantity"] = _quantity(part, qc.unit, qc.ucum)
        else:
            comp["dataAbsentReason"] = _absent("no valid reading")
        components.append(comp)
    if components:
        obs["component"] = components
    return obs


def encode(m: Measurement) -> bytes:
    """Compact, key-sorted UTF-8 JSON: byte-identical for the same measurement."""
    return json.dumps(observation(m), separators=(",", ":"), sort_keys=True).encode("utf-8")
