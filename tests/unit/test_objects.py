"""Large objects: planning and chunk rows, the manifest, the outbox's priority and cap, the
migration of an outbox file of the first schema, and the reference backend's bookkeeping."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import simulators.backend.objects
from edge.cli_outbox import row_dict
from edge.events import Events
from edge.outbox import Budget, NewRow, Outbox, OutboxFullError, Row
from edge.outbox.model import SCHEMA_VERSION
from edge.pipeline.media import manifest_msg_id, media_manifest
from edge.publish.forwarder import Forwarder, ForwarderSettings, _Window, publish_size
from edge.publish.mqtt import UserProperties
from edge.publish.objects import (
    CHUNK_SCHEMA,
    EXTENSION_URL,
    MANIFEST_SCHEMA,
    OBJECT_PRIORITY,
    ObjectPlan,
    chunk_msg_id,
    chunk_rows,
    manifest_extension,
    plan_object,
)
from edge.publish.port import Publisher
from edge.publish.topics import Topics
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
                                  "schema": MANIFEST_SCHEMA}  # fmt: skip
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
    # c-1 goes stale (no backend ack in 30 s): due again, within the cap, but after the chunks
    # never tried (least tried first), so an object never acked cannot hold the slots
    assert due(51.0) == ["r-1", "r-2", "r-3", "c-3"]
    assert due(53.0) == ["r-1", "r-2", "r-3", "c-3", "c-4"]
    box.confirm(["c-3", "c-4", "c-5"])
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


def _object(data: bytes, size: int, scope: str = "") -> tuple[ObjectPlan, list[NewRow]]:
    """An object as the daemon stores it: the manifest row, then its chunk rows."""
    plan = plan_object(data, chunk_size=size, scope=scope)
    manifest = NewRow(manifest_msg_id(plan.object_id), "fundus-1", TOPICS.obs("fundus-1"),
                      _media(plan), schema=MANIFEST_SCHEMA)  # fmt: skip
    return plan, [manifest, *chunk_rows(plan, TOPICS, "fundus-1", data)]


def _forwarder(box: Outbox) -> Forwarder:
    def no_link() -> Publisher:
        raise AssertionError("not connected in this test")

    forwarder = Forwarder(box, no_link, TOPICS, ForwarderSettings(resend_after=30))
    forwarder.events = Events(box, TOPICS)
    return forwarder


@pytest.mark.parametrize("refused", ["manifest", "chunk"])
def test_a_refused_row_rejects_its_whole_object_and_frees_the_slots(
    tmp_path: Path, refused: str
) -> None:
    """A manifest the backend refuses, or one chunk (sha256 mismatch): the whole object is
    rejected in one go with one event, and the next object's chunks are due at once."""
    box = Outbox(tmp_path / "outbox.sqlite")
    plan_a, rows_a = _object(DATA, 300)  # manifest + 3 chunks
    plan_b, rows_b = _object(DATA[::-1], 300)
    box.add(rows_a, now=0.0)
    box.add(rows_b, now=1.0)
    due = box.due(20, resend_after=30, now=2.0, max_object_in_flight=2)
    assert [r.msg_id for r in due] == [rows_a[0].msg_id, rows_b[0].msg_id,
                                       rows_a[1].msg_id, rows_a[2].msg_id]  # fmt: skip
    box.mark_sent([r.msg_id for r in due], now=2.0)
    forwarder = _forwarder(box)
    target = rows_a[0] if refused == "manifest" else rows_a[2]
    reason = "object extension inconsistent" if refused == "manifest" else "chunk 1 sha256 mismatch"

    async def ack() -> None:
        forwarder._apply_ack([], [(target.msg_id, reason)])
        forwarder._apply_ack([], [(target.msg_id, reason)])  # a second refusal: nothing new

    asyncio.run(ack())
    rejected = {r.msg_id: r.reason for r in box.rows(state="rejected")}
    assert set(rejected) == {r.msg_id for r in rows_a}  # one chunk never even sent
    assert rejected[target.msg_id] == f"backend refused: {reason}"
    assert all(f"object {plan_a.object_id} rejected" in str(rejected[r.msg_id])
               for r in rows_a if r is not target)  # fmt: skip
    assert forwarder.stats.rejected == 4
    assert box.counters()["rejected_rows"] == 4
    (event,) = [json.loads(r.payload) for r in box.rows() if r.kind == "event"]
    assert event["type"] == "object.rejected"
    assert event["device"] == "fundus-1"
    assert event["detail"] == {"object_id": plan_a.object_id, "msg_id": target.msg_id,
                               "by": "backend", "reason": reason, "rows": 4}  # fmt: skip
    assert violations(TOPICS.events, box.get(event["id"]).payload) == []  # type: ignore[union-attr]
    # object B's chunks take the two slots now, not A's forever
    due = box.due(20, resend_after=30, now=3.0, max_object_in_flight=2)
    assert [r.msg_id for r in due if r.priority] == [r.msg_id for r in rows_b[1:3]]
    assert plan_b.object_id != plan_a.object_id


def test_an_object_never_acked_does_not_starve_the_next_one(tmp_path: Path) -> None:
    """Stale chunks are re-sent only when no chunk of fewer attempts waits (reconnects too)."""
    box = Outbox(tmp_path / "outbox.sqlite")
    box.add([_row(n, priority=1) for n in range(2)], now=0.0)  # object A: never acked
    box.add([NewRow(f"b-{n}", "d", "t", b"y", priority=1) for n in range(3)], now=1.0)
    sent: list[str] = []
    for step in range(8):
        now = 10.0 * step
        if step == 4:
            box.requeue_in_flight()  # a reconnect: A's chunks go back to pending, tried twice
        rows = box.due(20, resend_after=30, now=now, max_object_in_flight=2)
        box.mark_sent([r.msg_id for r in rows], now=now)
        box.confirm([r.msg_id for r in rows if r.msg_id.startswith("b")])  # B is acked
        sent += [r.msg_id for r in rows]
    assert sent[:2] == ["c-0", "c-1"]
    assert sent[2:5] == ["b-0", "b-1", "b-2"]  # at once, not after A's resends


def test_objects_have_their_own_byte_budget_and_readings_are_never_refused(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "o.sqlite", budget=Budget(objects_max_bytes=1000, reserve_bytes=0))
    assert Budget(max_bytes=4096).object_limit == 2048  # default: half of the whole
    _, rows = _object(DATA, 300)
    assert box.add(rows) == 4
    assert box.object_bytes() == 768
    assert box.add(rows) == 0  # a re-ingest is never refused: it adds nothing
    _, other = _object(DATA[::-1], 300)
    with pytest.raises(OutboxFullError, match="object budget full: an object of 768 bytes"):
        box.add(other)
    assert box.get(other[0].msg_id) is None  # nothing of it, manifest included
    assert box.add([obs_row(n) for n in range(20)]) == 20  # readings still go in
    box.confirm([r.msg_id for r in rows[1:]])
    assert box.object_bytes() == 0  # the triggers count deletes, by any connection
    assert box.add(other) == 4
    box.close()
    assert Outbox(tmp_path / "o.sqlite").object_bytes() == 768


def test_opening_a_current_outbox_never_waits_for_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    Outbox(path).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO counters VALUES ('x', 1)")
    try:
        started = time.monotonic()
        box = Outbox(path)
        assert time.monotonic() - started < 1.0  # no BEGIN IMMEDIATE: no 5 s busy wait
        assert box._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        box.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_the_puback_deadline_grows_with_the_bytes_ahead() -> None:
    settings = ForwarderSettings(puback_timeout=30.0, min_link_rate=8000.0)
    window = _Window(limit=10, refill_at=5)
    window.add("c-0", 100.0, 256_000, settings)
    window.add("c-1", 100.0, 256_000, settings)
    window.add("r-0", 101.0, 1000, settings)
    assert window.due["c-0"][0] == pytest.approx(100 + 30 + 32)
    assert window.due["r-0"][0] == pytest.approx(101 + 30 + 513_000 / 8000)  # behind both
    assert window.pop("c-0") == 100.0
    assert window.queued == 257_000


def test_publish_size_is_the_packet_paho_writes() -> None:
    props = {"msg-id": "3addbfdd-7bac-577e-ba32-c19d778b1b39", "schema": CHUNK_SCHEMA}
    for payload in (0, 100, 20_000, 300_000):
        topic = TOPICS.obj("fundus-1", "8dc3786b-9ef2-59d2-b12b-5d9390afea04", 3)
        written = _paho_publish_bytes(topic, b"x" * payload, props)
        assert publish_size(topic, payload, props) == len(written)


def _paho_publish_bytes(topic: str, payload: bytes, props: dict[str, str]) -> bytes:
    """The PUBLISH packet paho builds (its own encoder, captured before the socket)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    packets: list[bytes] = []
    client._sock = object()  # type: ignore[assignment]  # "connected": paho builds the packet
    client._packet_queue = lambda _t, packet, *_a: packets.append(bytes(packet))  # type: ignore[assignment,method-assign]
    client._send_publish(1, topic.encode(), payload, 1, properties=UserProperties(props))
    client._sock = None
    client._reset_sockets()  # its wake-up socket pair
    return packets[0]


def test_a_chunk_row_is_shown_as_metadata_not_garbled_text() -> None:
    plan, rows = _object(DATA, 300)
    box_row = Row(1, rows[1].msg_id, "fundus-1", "clinical", rows[1].topic, rows[1].payload,
                  "pending", 0, 0.0, None, None, 1, CHUNK_SCHEMA)  # fmt: skip
    assert row_dict(box_row)["payload"] == {"bytes": 300, "sha256": plan.chunk_sha256[0]}
    manifest = Row(2, rows[0].msg_id, "fundus-1", "clinical", rows[0].topic, rows[0].payload,
                   "pending", 0, 0.0, None, None, 0, MANIFEST_SCHEMA)  # fmt: skip
    assert row_dict(manifest)["payload"]["resourceType"] == "Media"


def test_the_same_photo_from_two_buses_is_two_objects_at_the_backend(tmp_path: Path) -> None:
    store = BackendStore(tmp_path / "backend.sqlite")
    plan = plan_object(DATA, chunk_size=512)  # no scope: the same ids on both buses
    for bus in ("bus-a", "bus-b"):
        media = json.loads(_media(plan))
        manifest = check_manifest(media, manifest_msg_id(plan.object_id), Topics(bus).obs("f"))
        chunks = [Chunk(bus, "f", plan.object_id, i, r.msg_id, r.topic, r.payload)
                  for i, r in enumerate(chunk_rows(plan, Topics(bus), "f", DATA))]  # fmt: skip
        done = store.store_objects([manifest, *chunks])
        assert done.stored == {bus: [c.msg_id for c in chunks] + [manifest.msg_id]}
        assert store.object_data(plan.object_id, bus=bus) == DATA
    # a manifest id reused on one bus for another object: refused and counted, no crash
    other = plan_object(DATA[::-1], chunk_size=512)
    forged = json.loads(_media(other))
    forged["identifier"][0]["value"] = f"urn:uuid:{manifest_msg_id(plan.object_id)}"
    clash = check_manifest(forged, manifest_msg_id(plan.object_id), Topics("bus-a").obs("f"))
    out = store.store_objects([clash])
    assert out.rejected == {
        "bus-a": [(clash.msg_id, "manifest id already used for another object")]
    }
    assert out.duplicates == 1
    # scoped ids differ per bus and device (what a gateway should pass)
    assert (
        plan_object(DATA, scope="bus-a/f").object_id != plan_object(DATA, scope="bus-b/f").object_id
    )
    assert plan_object(DATA, scope="").object_id == plan.object_id
    store.close()


def test_the_backend_rejects_a_chunk_whose_manifest_never_comes(tmp_path: Path) -> None:
    store = BackendStore(tmp_path / "backend.sqlite", orphan_grace=60.0)
    c0, c1, _ = _chunks(DATA, 300)
    assert store.store_objects([c0, c1], now=time.time()).stored == {}
    later = store.store_objects([c1], now=time.time() + 61)  # a re-send after the grace
    reason = f"no manifest for object {c0.object_id}"
    assert later.rejected == {"bus-it": [(c0.msg_id, reason), (c1.msg_id, reason)]}
    assert store.chunk_copies(c0.object_id) == {}  # dropped
    assert store.store_objects([], now=time.time() + 200).rejected == {}  # once
    store.close()


def test_a_backend_file_of_the_first_object_schema_is_re_keyed(tmp_path: Path) -> None:
    path = tmp_path / "backend.sqlite"
    old = sqlite3.connect(path)
    first = simulators.backend.objects.SCHEMA.replace(
        "msg_id      TEXT NOT NULL,", "msg_id      TEXT PRIMARY KEY,", 1
    ).replace("PRIMARY KEY (bus, msg_id),", "")
    old.executescript(first)
    old.execute("INSERT INTO object_manifests VALUES ('m', 'bus-a', 'f', 'o', 's', 1, 1, '[]',"
                " '{}', 1.0, 1)")  # fmt: skip
    old.commit()
    old.close()
    BackendStore(path).close()
    check = sqlite3.connect(path)
    pk = [r[1] for r in sorted(check.execute("PRAGMA table_info(object_manifests)"),
                               key=lambda r: r[5]) if r[5]]  # fmt: skip
    assert pk == ["bus", "msg_id"]
    assert check.execute("SELECT msg_id, bus FROM object_manifests").fetchall() == [("m", "bus-a")]
    check.close()
