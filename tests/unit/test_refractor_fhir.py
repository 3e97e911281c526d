"""Autorefractor readings through the real pipeline: FHIR R4 panels per eye, validation, quarantine.

Each block goes through :class:`~edge.pipeline.ingest.Ingest` into a real outbox, as the daemon
commits it; every published Observation is validated with fhir.resources (R4B models, as the
contract does) and against docs/asyncapi.yaml.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from fhir.resources.R4B.observation import Observation

from drivers.devices.refractor import EyeResult, Keratometry, Refraction, to_readings
from drivers.readings import Delivery
from edge.outbox import Outbox
from edge.pipeline.ingest import DeviceIdentity, Ingest
from tests.contract import errors
from tests.helpers import TOPICS
from tests.unit.test_refractor_codec import RECORD

SNOMED = "http://snomed.info/sct"
SANTEBUS = "urn:santebus:fhir:CodeSystem:observation"
RIGHT, LEFT = "18944008", "8966001"


async def _ack() -> None:
    return None


def _commit(tmp_path: Path, record: Any = RECORD) -> tuple[Outbox, list[dict[str, Any]]]:
    box = Outbox(tmp_path / "outbox.sqlite")
    Ingest(box, TOPICS, "Europe/Paris").commit(
        DeviceIdentity("refr-1", "ARK-SN-7"), Delivery(to_readings(record), record.model, _ack)
    )
    payloads = [r.payload for r in box.rows() if r.kind == "clinical"]
    obs = [json.loads(p) for p in payloads]
    for o in obs:
        Observation.model_validate(o)
        assert errors("Observation", o) == [], o
    return box, obs


def _code(o: dict[str, Any]) -> tuple[str, str]:
    coding = o["code"]["coding"][0]
    return coding["system"], coding["code"]


def _site(o: dict[str, Any]) -> str | None:
    return o["bodySite"]["coding"][0]["code"] if "bodySite" in o else None


def _parts(o: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in o["component"]}


def test_one_refraction_panel_per_eye_and_one_keratometry_panel_per_meridian(
    tmp_path: Path,
) -> None:
    _, obs = _commit(tmp_path)
    found = sorted((_code(o)[1], _site(o)) for o in obs)
    assert found == sorted(
        [
            ("251794006", RIGHT),
            ("keratometry-k1", RIGHT),
            ("keratometry-k2", RIGHT),
            ("251794006", LEFT),
            ("pupillary-distance", None),
        ]
    )
    (right,) = [o for o in obs if _code(o) == (SNOMED, "251794006") and _site(o) == RIGHT]
    assert "valueQuantity" not in right
    assert "dataAbsentReason" not in right
    parts = _parts(right)
    assert parts["251795007"] == {"value": -2.75, "unit": "D", "system":
                                  "http://unitsofmeasure.org", "code": "[diop]"}  # fmt: skip
    assert (parts["251797004"]["value"], parts["251797004"]["code"]) == (-0.5, "[diop]")
    assert parts["251799001"] == {"value": 175, "unit": "deg", "system":
                                  "http://unitsofmeasure.org", "code": "deg"}  # fmt: skip
    assert right["status"] == "final"
    assert "minus-cylinder" in right["method"]["text"]
    (k1,) = [o for o in obs if _code(o) == (SANTEBUS, "keratometry-k1")]
    assert _parts(k1) == {
        "corneal-radius": {"value": 7.85, "unit": "mm",
                           "system": "http://unitsofmeasure.org", "code": "mm"},
        "corneal-power": {"value": 43.0, "unit": "D",
                          "system": "http://unitsofmeasure.org", "code": "[diop]"},
        "corneal-meridian-axis": {"value": 178, "unit": "deg",
                                  "system": "http://unitsofmeasure.org", "code": "deg"},
    }  # fmt: skip


def test_dioptres_keep_their_two_decimals_on_the_wire(tmp_path: Path) -> None:
    box, _ = _commit(tmp_path)
    wire = b"".join(r.payload for r in box.rows())
    assert b'"value":-0.50' in wire  # cylinder: not -0.5 (FHIR decimals keep their precision)
    assert b'"value":43.00' in wire
    assert b'"value":175}' in wire  # an axis is a whole number of degrees


def test_a_value_the_device_doubts_is_preliminary_with_a_note(tmp_path: Path) -> None:
    _, obs = _commit(tmp_path)
    (left,) = [o for o in obs if _site(o) == LEFT]
    assert left["status"] == "preliminary"
    assert left["note"] == [{"text": "The device marked this reading as unreliable."}]


def test_an_implausible_sphere_quarantines_that_eye_only(tmp_path: Path) -> None:
    eye = dataclasses.replace(RECORD.right, representative=Refraction(35.0, -0.5, 175, 9))
    record = dataclasses.replace(RECORD, right=eye)
    box, obs = _commit(tmp_path, record)
    (held,) = box.quarantined()
    assert held.quantity == "refraction.right"
    assert "refraction.right.sphere = 35 D is outside the plausible range -30-30 D" in held.reason
    published = {(_code(o)[1], _site(o)) for o in obs}
    assert ("251794006", RIGHT) not in published
    assert {("251794006", LEFT), ("keratometry-k1", RIGHT)} <= published


def test_plus_cylinder_and_an_axis_beyond_180_are_implausible(tmp_path: Path) -> None:
    eye = dataclasses.replace(RECORD.left, representative=Refraction(1.0, 0.75, 190, 9))
    box, _ = _commit(tmp_path, dataclasses.replace(RECORD, left=eye))
    (held,) = box.quarantined()
    assert held.quantity == "refraction.left"
    assert "refraction.left.cylinder = 0.75 D" in held.reason


def test_a_keratometry_power_that_its_radius_cannot_give_is_quarantined(tmp_path: Path) -> None:
    eye = dataclasses.replace(RECORD.right, k2=Keratometry(7.70, 47.25, 88))  # 43.83 expected
    box, obs = _commit(tmp_path, dataclasses.replace(RECORD, right=eye))
    (held,) = box.quarantined()
    assert held.quantity == "kerato.right.k2"
    assert "does not match radius 7.7 mm" in held.reason
    assert len(obs) == 4


def test_one_eye_missing_publishes_the_other(tmp_path: Path) -> None:
    _, obs = _commit(tmp_path, dataclasses.replace(RECORD, right=EyeResult()))
    assert {_site(o) for o in obs} == {LEFT, None}


def test_message_ids_are_stable_across_a_retransmission(tmp_path: Path) -> None:
    _, first = _commit(tmp_path / "a")
    _, again = _commit(tmp_path / "b")
    assert [o["identifier"] for o in first] == [o["identifier"] for o in again]
    assert len({o["identifier"][0]["value"] for o in first}) == len(first)
