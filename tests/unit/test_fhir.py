"""FHIR Observation encoding: validated by fhir.resources, stable ids, OVER as dataAbsentReason."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.observation import Observation

from drivers.readings import Delivery, DeviceReading, ReadingStatus
from edge.pipeline import fhir
from edge.pipeline.ingest import DeviceIdentity, Ingest
from edge.pipeline.measurement import Measurement, localize, message_id
from edge.publish.topics import Topics

PARIS = ZoneInfo("Europe/Paris")


def _measurement(**changes: object) -> Measurement:
    base: dict[str, object] = {
        "msg_id": message_id("tono-1", "SN1", "abc", "iop.right"),
        "bus_id": "bus-1",
        "device_id": "tono-1",
        "device_model": "CT-80",
        "device_serial": "SN1",
        "quantity": "iop.right",
        "value": 15.3,
        "unit": "mmHg",
        "effective": datetime(2026, 11, 23, 10, 15, 42, tzinfo=PARIS),
        "device_status": "ok",
        "components": (15.0, 16.0, None),
    }
    base.update(changes)
    return Measurement.model_validate(base)


def test_observation_is_valid_fhir_with_the_contracted_fields() -> None:
    m = _measurement()
    payload = json.loads(fhir.encode(m))
    Observation.model_validate(payload)  # raises on any FHIR structural error
    assert payload["identifier"] == [
        {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{m.msg_id}"}
    ]
    assert payload["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "79892-6",
        "display": "Right eye Intraocular pressure",
    }
    assert payload["valueQuantity"] == {
        "value": 15.3,
        "unit": "mmHg",
        "system": "http://unitsofmeasure.org",
        "code": "mm[Hg]",
    }
    assert payload["effectiveDateTime"] == "2026-11-23T10:15:42+01:00"
    assert payload["device"]["identifier"]["value"] == "tono-1"
    assert payload["status"] == "final"
    assert [c.get("valueQuantity", {}).get("value") for c in payload["component"]] == [
        15.0,
        16.0,
        None,
    ]
    assert payload["component"][2]["dataAbsentReason"]["coding"][0]["code"] == "error"


def test_the_measuring_device_is_contained_with_serial_model_and_calibration() -> None:
    m = _measurement(calibration_id="CAL-SN1-0007", calibration_due=date(2027, 5, 31))
    payload = json.loads(fhir.encode(m))
    obs = Observation.model_validate(payload)
    (device,) = obs.contained or []
    assert isinstance(device, Device)  # FHIR R4 dom-3: the contained resource is referenced
    assert payload["device"]["reference"] == f"#{device.id}"
    assert (device.serialNumber, device.modelNumber) == ("SN1", "CT-80")
    assert device.identifier is not None
    assert device.identifier[0].value == "tono-1"
    (ext,) = device.extension or []
    assert ext.url == fhir.CALIBRATION_EXTENSION
    assert {e.url: e.valueString or e.valueDate for e in ext.extension or []} == {
        "id": "CAL-SN1-0007",
        "validUntil": date(2027, 5, 31),
    }
    # no record, no extension (never an empty or made-up calibration)
    bare = json.loads(fhir.encode(_measurement()))["contained"][0]
    assert "extension" not in bare


def test_left_eye_over_range_has_no_value_but_a_reason() -> None:
    m = _measurement(quantity="iop.left", value=None, device_status="over-range", components=())
    payload = json.loads(fhir.encode(m))
    Observation.model_validate(payload)
    assert payload["code"]["coding"][0]["code"] == "79893-4"
    assert payload["bodySite"]["coding"][0]["code"] == "8966001"
    assert "valueQuantity" not in payload
    assert payload["dataAbsentReason"]["text"].startswith("OVER")


def test_unreliable_reading_is_preliminary_with_a_note() -> None:
    payload = json.loads(fhir.encode(_measurement(device_status="unreliable")))
    Observation.model_validate(payload)
    assert payload["status"] == "preliminary"
    assert "unreliable" in payload["note"][0]["text"]


def test_message_id_is_stable_and_distinct() -> None:
    a = message_id("tono-1", "SN1", "key", "iop.right")
    assert a == message_id("tono-1", "SN1", "key", "iop.right")
    others = {
        message_id("tono-2", "SN1", "key", "iop.right"),
        message_id("tono-1", "SN2", "key", "iop.right"),
        message_id("tono-1", "SN1", "key2", "iop.right"),
        message_id("tono-1", "SN1", "key", "iop.left"),
    }
    assert a not in others
    assert len(others) == 4


def test_encoding_is_byte_identical_for_a_resend() -> None:
    assert fhir.encode(_measurement()) == fhir.encode(_measurement())


def test_localize_attaches_the_zone_and_keeps_aware_times() -> None:
    naive = datetime(2026, 7, 1, 9, 0, 0)
    assert localize(naive, "Europe/Paris").isoformat() == "2026-07-01T09:00:00+02:00"
    aware = datetime(2026, 7, 1, 9, 0, 0, tzinfo=ZoneInfo("UTC"))
    assert localize(aware, "Europe/Paris") is aware


def test_ingest_maps_a_delivery_to_measurements() -> None:
    async def ack() -> None:
        return None

    reading = DeviceReading(
        quantity="iop.left",
        value=18.5,
        unit="mmHg",
        device_time=datetime(2026, 11, 23, 9, 0, 0),
        record_key="k1",
        status=ReadingStatus.OK,
        components=(18.0, 19.0, 18.5),
    )
    ingest = Ingest(outbox=None, topics=Topics("bus-1"), timezone="Europe/Paris")
    (prepared,) = ingest.measurements(
        DeviceIdentity("tono-1", "SN1"), Delivery((reading,), "CT-80", ack)
    )
    m = prepared.measurement
    assert prepared.binding is None  # no visit book: not visit-bound
    assert prepared.quarantine is None
    assert (m.subject, m.interpretation) == (None, "N")  # 18.5 mmHg: within 10-21
    assert m.msg_id == message_id("tono-1", "SN1", "k1", "iop.left")
    assert m.effective.isoformat() == "2026-11-23T09:00:00+01:00"
    assert (m.value, m.device_status, m.components) == (18.5, "ok", (18.0, 19.0, 18.5))


def test_unknown_quantity_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match=r"no clinical coding for device quantity 'bp\.sys'"):
        fhir.encode(_measurement(quantity="bp.sys"))
