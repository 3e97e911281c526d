"""Telemetry group commit: batching, the payload contract, a refusing outbox, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.outbox import Budget, NewRow, Outbox, OutboxFullError
from edge.pipeline.telemetry import Sample, TelemetryBuffer
from tests.helpers import TOPICS

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _sample(i: int, source: str = "cabin") -> Sample:
    return Sample(source, "temperature", 20 + i / 100, "Cel", T0 + timedelta(milliseconds=50 * i))


def test_samples_are_committed_in_groups_one_pack_per_source(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    commits: list[str] = []
    box._db.set_trace_callback(lambda s: commits.append(s) if s == "COMMIT" else None)
    buffer = TelemetryBuffer(box, TOPICS, max_rows=100)
    for i in range(250):
        buffer.add(_sample(i, source=("cabin", "fridge")[i % 2]))
    assert len(commits) == 2  # two full groups so far, one transaction each
    assert buffer.stats.committed == 200
    assert buffer.flush() == 2  # the last 50 samples: one pack per source
    assert len(commits) == 3
    rows = list(box.rows())
    assert len(rows) == 6
    assert {(r.kind, r.topic, r.device) for r in rows} == {
        ("telemetry", "santebus/v1/bus-it/telemetry/cabin", "cabin"),
        ("telemetry", "santebus/v1/bus-it/telemetry/fridge", "fridge"),
    }
    samples = sum(len(json.loads(r.payload)) for r in rows)
    assert samples == 250


def test_a_pack_is_senml_and_resolves_to_the_sample_times(tmp_path: Path) -> None:
    """RFC 8428: bn/bt on the first record; a record's time is bt + t (section 4.6)."""
    box = Outbox(tmp_path / "o.sqlite")
    buffer = TelemetryBuffer(box, TOPICS)
    paris = datetime(2026, 11, 23, 10, 0, 0, 250000).astimezone()
    buffer.add(Sample("fridge", "temperature", 4.5, "Cel", paris))
    buffer.add(Sample("fridge", "door", 1, "/", paris + timedelta(seconds=1.5)))
    buffer.flush()
    (row,) = box.rows()
    first, second = json.loads(row.payload)
    assert first == {
        "bn": "urn:santebus:bus-it:fridge:",
        "bt": paris.timestamp(),
        "n": "temperature",
        "u": "Cel",
        "v": 4.5,
        "t": 0,
    }
    assert second == {"n": "door", "u": "/", "v": 1, "t": 1.5}
    assert first["bt"] + second["t"] == (paris + timedelta(seconds=1.5)).timestamp()


def test_a_pack_id_is_stable_for_the_same_samples(tmp_path: Path) -> None:
    ids = []
    for run in range(2):
        box = Outbox(tmp_path / f"o{run}.sqlite")
        buffer = TelemetryBuffer(box, TOPICS)
        for i in range(5):
            buffer.add(_sample(i))
        buffer.flush()
        ids.append(next(box.rows()).msg_id)
    assert ids[0] == ids[1]


def test_values_json_cannot_carry_are_refused_where_they_are_made() -> None:
    with pytest.raises(ValueError, match="cabin/temperature: value nan"):
        Sample("cabin", "temperature", math.nan, "Cel", T0)
    with pytest.raises(ValueError, match="time without offset"):
        Sample("cabin", "temperature", 20.0, "Cel", datetime(2026, 11, 23, 9, 0))


def test_a_full_outbox_keeps_the_samples_for_the_next_flush(tmp_path: Path) -> None:
    budget = Budget(max_bytes=96 * 1024, reserve_bytes=0, telemetry_max_bytes=64 * 1024)
    box = Outbox(tmp_path / "o.sqlite", budget=budget)
    for i in itertools.count():  # clinical rows until the budget refuses
        try:
            box.add([NewRow(f"c{i}", "tono", "t", b"x" * 1500)])
        except OutboxFullError:
            break
    clinical = [r.msg_id for r in box.rows()]
    buffer = TelemetryBuffer(box, TOPICS, max_rows=1000)
    for i in range(20):
        buffer.add(_sample(i))
    assert buffer.flush() == 0  # refused: nothing lost, still buffered
    assert not [r for r in box.rows() if r.kind == "telemetry"]
    box.confirm(clinical)  # the backend acked: space is back
    assert buffer.flush() == 1  # one pack with the 20 samples
    assert buffer.stats.committed == 20
    assert buffer.stats.dropped == 0


def test_beyond_keep_the_oldest_samples_are_dropped_and_counted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.close()  # every flush now fails: the buffer is all there is
    buffer = TelemetryBuffer(box, TOPICS, max_rows=5, keep=10)
    for i in range(25):
        buffer.add(_sample(i))
    assert buffer.stats.dropped == 15
    assert buffer.stats.committed == 0


def test_cancelling_the_flusher_commits_what_is_buffered(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    buffer = TelemetryBuffer(box, TOPICS, flush_every=60)

    async def scenario() -> None:
        task = asyncio.create_task(buffer.run())
        for i in range(7):
            buffer.add(_sample(i))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    (row,) = box.rows()
    assert len(json.loads(row.payload)) == 7
