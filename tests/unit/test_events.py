"""Events: logged, stored in the outbox as kind 'event', kept in memory when the outbox is full."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from edge.events import Events
from edge.outbox import Budget, NewRow, Outbox, OutboxFullError
from edge.publish.topics import Topics


def test_an_event_is_logged_and_stored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    events = Events(box, Topics("bus-1"))
    with caplog.at_level(logging.INFO):
        event_id = events.raise_event("device.lost", "warning", "tono-1", error="unplugged")
    (row,) = box.rows()
    body = json.loads(row.payload)
    assert (row.kind, row.topic, row.msg_id) == ("event", "santebus/v1/bus-1/events", event_id)
    assert body["type"] == "device.lost"
    assert body["detail"] == {"error": "unplugged"}
    assert body["bus"] == "bus-1"
    assert "event type=device.lost severity=warning device=tono-1 error='unplugged'" in caplog.text


def _fill(box: Outbox, size: int) -> None:
    for i in range(100_000):
        box.add([NewRow(f"r{size}-{i}", "d", "t", b"x" * size)])


def test_an_event_the_full_outbox_refuses_waits_in_memory(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", budget=Budget(max_bytes=80 * 1024, reserve_bytes=0))
    for size in (2000, 50):  # fill the big gaps, then the last crumbs
        with pytest.raises(OutboxFullError):
            _fill(box, size)
    events = Events(box, Topics("bus-1"))
    events.raise_event("outbox.full", "critical", None, error="full")
    ((topic, payload),) = events.unstored
    assert topic == "santebus/v1/bus-1/events"
    assert json.loads(payload)["type"] == "outbox.full"
