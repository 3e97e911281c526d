"""docs/asyncapi.yaml is checked, not just read: its examples and our encoders' output validate."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.events import Events
from edge.outbox import Outbox
from edge.pipeline import fhir
from edge.pipeline.measurement import Measurement
from edge.pipeline.telemetry import Sample, TelemetryBuffer
from tests.contract import document, errors
from tests.helpers import TOPICS, obs_row


def _examples() -> list[tuple[str, object]]:
    found = []
    for name, message in document()["components"]["messages"].items():
        for example in message.get("examples", []):
            found.append((name, example["payload"]))
    return found


@pytest.mark.parametrize(("message", "payload"), _examples())
def test_every_example_in_the_document_validates(message: str, payload: object) -> None:
    assert errors(message, payload) == []


def test_the_contract_can_fail() -> None:
    """A check that cannot fail proves nothing: broken payloads are caught, with a path."""
    obs = json.loads(obs_row(1).payload)
    obs["identifier"][0]["value"] = "urn:uuid:not-a-uuid"
    del obs["device"]
    found = errors("Observation", obs)
    assert any(e.startswith("identifier/0/value:") for e in found)
    assert any("'device' is a required property" in e for e in found)
    assert errors("Event", {"id": "x"}) != []
    assert errors("VisitCommand", {"action": "start", "station": "eye"}) != []  # no visit


def _measurement(**changes: object) -> Measurement:
    base: dict[str, object] = {
        "msg_id": "ff06df69-cf1c-5793-997c-c6e3ce2ba1ab",
        "bus_id": "bus-it",
        "device_id": "tono-1",
        "device_model": "CT-80",
        "device_serial": "SN1",
        "quantity": "iop.right",
        "value": 15.0,
        "unit": "mmHg",
        "effective": datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Europe/Paris")),
        "device_status": "ok",
        "components": (15.0, None, 14.0),
    }
    return Measurement.model_validate({**base, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"value": None, "device_status": "over-range", "components": ()},
        {"device_status": "unreliable"},
        {"subject": "V-7F3A", "interpretation": "H", "value": 26.0},
        {"quantity": "iop.left", "interpretation": "N"},
        {"calibration_id": "CAL-1", "calibration_due": date(2027, 1, 31)},
        {"flags": ("calibration CAL-1 expired on 2026-11-01",)},
    ],
)
def test_observations_as_encoded_validate(changes: dict[str, object]) -> None:
    assert errors("Observation", json.loads(fhir.encode(_measurement(**changes)))) == []


def test_events_and_telemetry_as_produced_validate(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    events = Events(box, TOPICS)
    events.raise_event("visit.unbound", "warning", "tono-1", msg_id="m", station="eye",
                       quantity="iop.right", reason="no visit open")  # fmt: skip
    events.raise_event(
        "outbox.high_water", "warning", None, level=0.8, used_bytes=1, budget_bytes=2
    )
    buffer = TelemetryBuffer(box, TOPICS)
    at = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    buffer.add(Sample("cabin", "temperature", 21.5, "Cel", at))
    buffer.add(Sample("cabin", "humidity", 48, "%RH", at))
    buffer.flush()
    kinds = {"event": "Event", "telemetry": "TelemetryPack"}
    checked = 0
    for row in box.rows():
        assert errors(kinds[row.kind], json.loads(row.payload)) == []
        checked += 1
    assert checked == 3


@pytest.mark.parametrize("payload", [{"state": "online"}, {"state": "offline"}])
def test_status_payloads_validate(payload: dict[str, str]) -> None:
    assert errors("StatusOnline", payload) == []


def test_the_observation_example_is_what_the_encoder_makes() -> None:
    (example,) = document()["components"]["messages"]["Observation"]["examples"]
    m = _measurement(
        bus_id="bus-29-01",
        device_serial="CT80-123456",
        effective=datetime(2026, 3, 12, 10, 14, 37, tzinfo=ZoneInfo("Europe/Paris")),
        components=(15.0, 16.0, 14.0),
        subject="V-7F3A",
        interpretation="N",
        calibration_id="VER-CT80-123456-20260302",
        calibration_due=date(2026, 9, 2),
    )
    assert json.loads(fhir.encode(m)) == example["payload"]
    assert example["headers"]["msg-id"] == m.msg_id
