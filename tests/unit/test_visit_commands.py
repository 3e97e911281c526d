"""Visit commands from the reception tablet: applied, or refused with a reason and an event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.events import Events
from edge.outbox import Outbox
from edge.visits import VisitBook
from edge.visits.commands import VisitCommands
from tests.helpers import TOPICS


@pytest.fixture
def setup(tmp_path: Path) -> tuple[VisitCommands, VisitBook, Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite")
    book = VisitBook(tmp_path / "visits.sqlite", {"eye", "bp"})
    return VisitCommands(book, Events(box, TOPICS)), book, box


def _events(box: Outbox) -> list[dict[str, object]]:
    return [json.loads(r.payload) for r in box.rows() if r.kind == "event"]


def test_start_and_stop_with_the_tablets_time(
    setup: tuple[VisitCommands, VisitBook, Outbox],
) -> None:
    commands, book, box = setup
    at = datetime.now(UTC) - timedelta(minutes=3)  # queued by the broker while offline
    assert commands.handle(
        json.dumps({"action": "start", "station": "eye", "visit": "V-7F3A", "at": at.isoformat()})
        .encode()
    )  # fmt: skip
    (visit,) = book.open_visits()
    assert (visit.visit_id, visit.opened_at) == ("V-7F3A", at.timestamp())
    assert commands.handle(b'{"action": "stop", "station": "eye"}')
    assert book.open_visits() == []
    events = _events(box)
    assert [(e["type"], e["detail"]) for e in events] == [
        ("visit.opened", {"station": "eye"}),
        ("visit.closed", {"station": "eye", "by": "tablet"}),
    ]
    assert "V-7F3A" not in json.dumps(events)  # visit ids stay in the Observations


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "command is not JSON"),
        (b"[1, 2]", "command is not a JSON object"),
        (b'{"action": "open", "station": "eye"}', "action 'open' is not start or stop"),
        (b'{"action": "start", "visit": "V-0001"}', "'station' missing or not a string"),
        (b'{"action": "start", "station": "eye"}', "'visit' missing or not a string"),
        (b'{"action": "start", "station": "lab", "visit": "V-0001"}', "unknown station 'lab'"),
        (
            b'{"action": "start", "station": "eye", "visit": "185057800608436"}',
            "social-security number",
        ),
        (b'{"action": "stop", "station": "bp"}', "no visit is open at station 'bp'"),
        (
            b'{"action": "start", "station": "eye", "visit": "V-0001", "at": "2026-11-23T10:00"}',
            "'at' has no UTC offset",
        ),
        (
            b'{"action": "start", "station": "eye", "visit": "V-0001", "at": "3026-01-01T00:00Z"}',
            "in the future",
        ),
    ],
)
def test_a_bad_command_is_refused_with_its_reason(
    setup: tuple[VisitCommands, VisitBook, Outbox], payload: bytes, reason: str
) -> None:
    commands, book, box = setup
    assert not commands.handle(payload)
    assert book.open_visits() == []
    (event,) = _events(box)
    assert event["type"] == "visit.command_refused"
    assert reason in str(event["detail"])
    assert commands.refused == 1
