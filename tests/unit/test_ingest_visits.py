"""Ingest with stations: the visit a record binds to travels as the Observation's subject."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fhir.resources.R4B.observation import Observation

from drivers.readings import Delivery, DeviceReading
from edge.events import Events
from edge.outbox import Outbox
from edge.pipeline.ingest import DeviceIdentity, Ingest
from edge.visits import VisitBook
from tests.helpers import TOPICS

PARIS = ZoneInfo("Europe/Paris")
AT = datetime(2026, 11, 23, 10, 0, 0)  # the device's naive local clock
T = AT.replace(tzinfo=PARIS).timestamp()


async def _ack() -> None:
    return None


def _delivery(at: datetime, key: str, clock_offset: float = 0.0) -> Delivery:
    readings = tuple(DeviceReading(q, 16.0, "mmHg", at, key) for q in ("iop.right", "iop.left"))
    return Delivery(readings, "CT-80", _ack, clock_offset=clock_offset)


def _setup(tmp_path: Path) -> tuple[Outbox, VisitBook, Ingest]:
    box = Outbox(tmp_path / "outbox.sqlite")
    book = VisitBook(tmp_path / "visits.sqlite", {"eye"})
    events = Events(box, TOPICS)
    return box, book, Ingest(box, TOPICS, "Europe/Paris", events=events, visits=book)


def _observations(box: Outbox) -> list[dict[str, object]]:
    return [json.loads(r.payload) for r in box.rows() if r.kind == "clinical"]


def test_a_bound_record_carries_the_visit_as_subject_and_is_valid_fhir(tmp_path: Path) -> None:
    box, book, ingest = _setup(tmp_path)
    book.start("eye", "V-7F3A", at=T - 60)
    ingest.commit(DeviceIdentity("tono-1", "SN1", "eye"), _delivery(AT, "r1"))
    observations = _observations(box)
    assert len(observations) == 2
    for obs in observations:
        Observation.model_validate(obs)
        assert obs["subject"] == {
            "type": "Patient",
            "identifier": {"system": "urn:santebus:visit", "value": "V-7F3A"},
        }
    assert not [r for r in box.rows() if r.kind == "event"]


def test_an_unbound_record_has_no_subject_and_one_event_per_reading(tmp_path: Path) -> None:
    box, _, ingest = _setup(tmp_path)
    ingest.commit(DeviceIdentity("tono-1", "SN1", "eye"), _delivery(AT, "r2"))
    for obs in _observations(box):
        Observation.model_validate(obs)
        assert "subject" not in obs
    events = [json.loads(r.payload) for r in box.rows() if r.kind == "event"]
    assert [(e["type"], e["detail"]["quantity"]) for e in events] == [
        ("visit.unbound", "iop.right"),
        ("visit.unbound", "iop.left"),
    ]
    assert events[0]["detail"]["reason"] == (
        "no visit open at station 'eye' at the measurement time"
    )
    # the same record again (a retransmission) adds nothing and raises nothing more
    ingest.commit(DeviceIdentity("tono-1", "SN1", "eye"), _delivery(AT, "r2"))
    assert len([r for r in box.rows() if r.kind == "event"]) == 2


def test_the_driver_clock_offset_decides_which_visit(tmp_path: Path) -> None:
    box, book, ingest = _setup(tmp_path)
    book.start("eye", "V-AAAA", at=T - 600)
    book.start("eye", "V-BBBB", at=T)  # hand-over at 10:00:00 by the gateway's clock
    # the device clock runs 120 s fast: its "10:01:00" is 09:59:00 -> the first patient
    fast = datetime(2026, 11, 23, 10, 1, 0)
    ingest.commit(DeviceIdentity("tono-1", "SN1", "eye"), _delivery(fast, "r3", 120.0))
    subjects = {o["subject"]["identifier"]["value"] for o in _observations(box)}  # type: ignore[index]
    assert subjects == {"V-AAAA"}


def test_a_device_in_no_station_is_not_visit_bound(tmp_path: Path) -> None:
    box, book, ingest = _setup(tmp_path)
    book.start("eye", "V-7F3A", at=T - 60)
    ingest.commit(DeviceIdentity("tono-9", "SN9", None), _delivery(AT, "r4"))
    assert all("subject" not in o for o in _observations(box))
    assert not [r for r in box.rows() if r.kind == "event"]
