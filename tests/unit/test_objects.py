"""Large objects: planning and chunk rows, the manifest, the outbox's priority and cap, the
migration of an outbox file of the first schema, and the reference backend's bookkeeping."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.outbox import NewRow, Outbox
from edge.pipeline.media import MEDIA_SCHEMA, manifest_msg_id, media_manifest
from edge.publish.objects import (
    CHUNK_SCHEMA,
    EXTENSION_URL,
    OBJECT_PRIORITY,
    ObjectPlan,
    chunk_msg_id,
    chunk_rows,
    manifest_extension,
    plan_object,
)
from simulators.backend.objects import Chunk, export_objects
from simulators.backend.store import BackendStore
from simulators.backend.validate import check_manifest
from tests.contract import document, errors, violations
from tests.helpers import TOPICS, obs_row

DATA = bytes(range(256)) * 3  # 768 bytes: chunks of 512 and 256


def test_plan_and_chunk_rows_are_deterministic() -> None:
    plan = plan_object(DATA, chunk_size=512)
    assert plan == plan_object(DATA, chunk_size=512)
    assert (plan.size, plan.chunks, plan.sha256) == (768, 2, hashlib.sha256(DATA).hexdigest())
    halves = (DATA[:512], DATA[512:])
    assert plan.chunk_sha256 == tuple(hashlib.sha256(p).hexdigest() for p in halves)
    rows = chunk_rows(plan, TOPICS, "fundus-1", DATA)
    assert rows == chunk_rows(plan, TOPICS, "fundus-1", DATA)
    assert [r.payload for r in rows] == [DATA[:512], DATA[512:]]
    assert [r.topic for r in rows] == [
        f"santebus/v1/bus-it/obj/fundus-1/{plan.object_id}/{i}" for i in (0, 1)
    ]
    assert [r.msg_id for r in rows] == [chunk_msg_id(plan.object_id, i) for i in (0, 1)]
    assert len({r.msg_id for r in rows}) == 2
    assert {(r.kind, r.priority, r.schema) for r in rows} == {
        ("clinical", OBJECT_PRIORITY, CHUNK_SCHEMA)
    }
    other = plan_object(DATA, chunk_size=512, object_id="0c6f5ae6-1a3c-4d1e-9a43-5f3b2f0e9d11")
    assert other.object_id != plan.object_id
    assert chunk_msg_id(other.object_id, 0) != chunk_msg_id(plan.object_id, 0)
    with pytest.raises(ValueError, match="planned 768"):
        chunk_rows(plan, TOPICS, "fundus-1", DATA[:-1])
    with pytest.raises(ValueError, match="at least one byte"):
        plan_object(b"")


def test_a_re_ingested_object_adds_nothing(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    plan = plan_object(DATA, chunk_size=100)
    assert box.add(chunk_rows(plan, TOPICS, "fundus-1", DATA)) == 8
    assert box.add(chunk_rows(plan_object(DATA, chunk_size=100), TOPICS, "fundus-1", DATA)) == 0
    stored = list(box.rows())
    assert b"".join(r.payload for r in stored) == DATA
    assert {(r.priority, r.schema) for r in stored} == {(OBJECT_PRIORITY, CHUNK_SCHEMA)}


def test_the_manifest_example_is_what_the_builder_makes() -> None:
    (example,) = document()["components"]["messages"]["ObjectManifest"]["examples"]
    plan = plan_object(DATA, chunk_size=512)
    made = media_manifest(
        plan,
        device_id="fundus-1",
        content_type="application/dicom",
        created=datetime(2026, 3, 12, 10, 20, 5, tzinfo=ZoneInfo("Europe/Paris")),
        subject="V-7F3A",
        eye="right",
        title="Fundus photograph, right eye",
    )
    media = json.loads(made)
    assert media == example["payload"]
    assert example["headers"] == {"msg-id": manifest_msg_id(plan.object_id),
                                  "schema": MEDIA_SCHEMA}  # fmt: skip
    assert media["content"]["extension"] == [manifest_extension(plan)]
    assert "hash" not in media["content"]  # R4 Attachment.hash is SHA-1: never our sha256
    topic = TOPICS.obs("fundus-1")
    assert violations(topic, made) == []  # schema and fhir.resources R4B Media
    manifest = check_manifest(media, manifest_msg_id(plan.object_id), topic)
    assert (manifest.object_id, manifest.chunk_sha256) == (plan.object_id, plan.chunk_sha256)


def _media(plan: ObjectPlan) -> bytes:
    created = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))
    return media_manifest(plan, device_id="fundus-1", content_type="image/jpeg", created=created)


def test_the_contract_takes_bytes_on_the_obj_channel_only() -> None:
    plan = plan_object(DATA, chunk_size=512)
    (first, _) = chunk_rows(plan, TOPICS, "fundus-1", DATA)
    assert violations(first.topic, first.payload) == []
    assert violations(TOPICS.obs("fundus-1"), first.payload) != []  # not JSON
    assert violations(f"santebus/v1/bus-it/obj/fundus-1/{plan.object_id}/x", b"1") != []
    broken = json.loads(_media(plan))
    broken["content"]["hash"] = "sha256 is not R4's Attachment.hash"
    assert any("hash" in e for e in errors("ObjectManifest", broken))
    assert manifest_extension(plan)["url"] == EXTENSION_URL


def _row(n: int, priority: int = 0) -> NewRow:
    return NewRow(f"{'c' if priority else 'r'}-{n}", "d", "t", b"{}", priority=priority)


def test_due_puts_readings_first_and_caps_chunks_in_flight(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    box.add([_row(n, priority=1) for n in range(6)], now=10.0)
    box.add([_row(1), _row(2)], now=20.0)  # readings that came during the upload

    def due(now: float, limit: int = 10) -> list[str]:
        rows = box.due(limit, resend_after=30, now=now, max_object_in_flight=2)
        return [r.msg_id for r in rows]

    assert due(20.0) == ["r-1", "r-2", "c-0", "c-1"]  # priority, then seq; two chunks at most
    assert due(20.0, limit=1) == ["r-1"]  # no room left: no chunk
    assert len(box.due(10, resend_after=30, now=20.0)) == 8  # no cap: chunks fill the room
    box.mark_sent(["r-1", "r-2", "c-0", "c-1"], now=20.0)
    assert due(21.0) == []  # two chunks outstanding, no reading waiting
    box.confirm(["c-0"])
    assert due(22.0) == ["c-2"]
    box.mark_sent(["c-2"], now=22.0)
    box.add([_row(3)], now=23.0)
    assert due(23.0) == ["r-3"]  # a new reading is never held back by the cap
    # c-1 goes stale (no backend ack in 30 s): it is due again, within the cap
    assert due(51.0) == ["r-1", "r-2", "r-3", "c-1"]
    assert due(53.0) == ["r-1", "r-2", "r-3", "c-1", "c-2"]


OLD_SCHEMA = """
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id     TEXT    NOT NULL UNIQUE,
    device     TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('clinical', 'telemetry', 'event')),
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'in_flight', 'rejected')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at REAL    NOT NULL,
    sent_at    REAL,
    reason     TEXT
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE state = 'pending';
CREATE INDEX outbox_in_flight ON outbox (sent_at) WHERE state = 'in_flight';
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def test_an_outbox_of_the_first_schema_is_migrated_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    readings = [obs_row(n) for n in range(3)]
    with old:
        old.executemany(
            "INSERT INTO outbox (msg_id, device, kind, topic, payload, state, created_at,"
            " sent_at) VALUES (?, ?, 'clinical', ?, ?, ?, 1.0, ?)",
            [(r.msg_id, r.device, r.topic, r.payload, state, sent)
             for r, (state, sent) in zip(readings, [("pending", None), ("in_flight", 5.0),
                                                    ("pending", None)], strict=True)],
        )  # fmt: skip
    old.close()
    box = Outbox(path)
    rows = list(box.rows())
    assert [(r.msg_id, r.payload, r.state, r.priority, r.schema) for r in rows] == [
        (r.msg_id, r.payload, s, 0, None)
        for r, s in zip(readings, ["pending", "in_flight", "pending"], strict=True)
    ]
    index = [r[2] for r in box._db.execute("PRAGMA index_info(outbox_pending)")]
    assert index == ["priority", "seq"]
    assert [r[2] for r in box._db.execute("PRAGMA index_info(outbox_in_flight)")] == ["sent_at"]
    plan = plan_object(DATA, chunk_size=512)
    box.add(chunk_rows(plan, TOPICS, "fundus-1", DATA))
    due = box.due(10, resend_after=30, now=100.0, max_object_in_flight=1)
    expected = [*(r.msg_id for r in readings), chunk_msg_id(plan.object_id, 0)]
    assert [r.msg_id for r in due] == expected
    box.close()
    assert Outbox(path).counts() == {"pending": 4, "in_flight": 1, "rejected": 0}  # idempotent


def _chunks(plan_data: bytes, size: int, device: str = "fundus-1") -> list[Chunk]:
    plan = plan_object(plan_data, chunk_size=size)
    return [
        Chunk("bus-it", device, plan.object_id, i, r.msg_id, r.topic, r.payload)
        for i, r in enumerate(chunk_rows(plan, TOPICS, device, plan_data))
    ]


def test_the_backend_verifies_chunks_stores_each_once_and_acks_the_manifest_last(
    tmp_path: Path,
) -> None:
    store = BackendStore(tmp_path / "backend.sqlite")
    plan = plan_object(DATA, chunk_size=300)  # 3 chunks
    media = json.loads(_media(plan))
    topic = TOPICS.obs("fundus-1")
    manifest = check_manifest(media, manifest_msg_id(plan.object_id), topic)
    c0, c1, c2 = _chunks(DATA, 300)
    # a chunk before its manifest: kept, not acked yet
    assert store.store_objects([c0]).stored == {}
    # the manifest: the early chunk verified and acked now; the manifest waits
    assert store.store_objects([manifest]).stored == {"bus-it": [c0.msg_id]}
    # a corrupted copy of chunk 1: refused with its reason, not stored
    bad = Chunk(c1.bus, c1.device, c1.object_id, 1, c1.msg_id, c1.topic, b"x" * len(c1.data))
    refused = store.store_objects([bad])
    assert refused.rejected == {"bus-it": [(c1.msg_id, "chunk 1 sha256 mismatch")]}
    assert store.chunk_copies(plan.object_id) == {0: 1}
    # the good copies, one twice: stored once; the last completes the object
    assert store.store_objects([c1, c1]).stored == {"bus-it": [c1.msg_id, c1.msg_id]}
    assert store.object_data(plan.object_id) is None
    done = store.store_objects([c2])
    assert done.stored == {"bus-it": [c2.msg_id, manifest.msg_id]}
    assert store.object_data(plan.object_id) == DATA
    assert store.chunk_copies(plan.object_id) == {0: 1, 1: 2, 2: 1}
    # a re-sent manifest (its ack lost) is acked again
    assert store.store_objects([manifest]).stored == {"bus-it": [manifest.msg_id]}
    store.close()
    (line,) = export_objects(tmp_path / "backend.sqlite")
    assert json.loads(line) == {
        "bus": "bus-it",
        "object_id": plan.object_id,
        "size": 768,
        "sha256": plan.sha256,
        "verified": True,
        "chunks": 3,
        "chunks_stored": 3,
        "duplicate_chunks": 1,
        "rejected_chunks": 1,
    }
