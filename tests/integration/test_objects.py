"""Large objects end to end: real mosquitto, the reference backend, the real Outbox and Forwarder.

Readings keep flowing during an upload, a broker killed mid-transfer and a forwarder SIGKILLed
mid-transfer both end in the object reassembled and verified at the backend, each chunk stored
once there, and only the chunks not yet acknowledged sent again.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from edge.events import Events
from edge.outbox import NewRow, Outbox
from edge.pipeline.media import manifest_msg_id, media_manifest
from edge.publish.forwarder import Forwarder, ForwarderSettings
from edge.publish.mqtt import PahoPublisher
from edge.publish.objects import MANIFEST_SCHEMA, ObjectPlan, chunk_rows, plan_object
from edge.publish.port import MqttSettings
from simulators.backend.objects import export_objects
from simulators.backend.store import BackendStore
from simulators.harness import Mosquitto
from tests.capture import capturing
from tests.helpers import TOPICS, forwarding, obs_row, run_until, running_backend

DEVICE = "fundus-1"


def _object(size: int, chunk_size: int, seed: int) -> tuple[bytes, ObjectPlan, list[NewRow]]:
    """A photograph-sized object: its bytes, plan, and manifest + chunk rows (one add)."""
    data = random.Random(seed).randbytes(size)
    plan = plan_object(data, chunk_size=chunk_size)
    manifest = NewRow(
        manifest_msg_id(plan.object_id),
        DEVICE,
        TOPICS.obs(DEVICE),
        media_manifest(
            plan,
            device_id=DEVICE,
            content_type="application/dicom",
            created=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
            eye="left",
        ),
        schema=MANIFEST_SCHEMA,
    )
    return data, plan, [manifest, *chunk_rows(plan, TOPICS, DEVICE, data)]


def _forwarder(box: Outbox, port: int, resend_after: float = 30.0) -> Forwarder:
    """The real forwarder; at most two chunks outstanding (the default), a quick reconnect."""
    mqtt = MqttSettings(host="127.0.0.1", port=port, client_id="gw-objects", tls=False)
    settings = ForwarderSettings(resend_after=resend_after, backoff_min=0.2)
    return Forwarder(box, lambda: PahoPublisher(mqtt), TOPICS, settings)


def _chunks_stored(db: Path, object_id: str) -> int:
    backend = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        query = "SELECT COUNT(*) FROM object_chunks WHERE object_id = ?"
        return int(backend.execute(query, (object_id,)).fetchone()[0])
    finally:
        backend.close()


async def _until_empty(box: Outbox) -> None:
    while list(box.rows()):
        await asyncio.sleep(0.05)


def test_readings_are_delivered_while_an_object_uploads(
    broker: Mosquitto, backend: BackendStore, tmp_path: Path
) -> None:
    """3 MB in 64 KiB chunks; a reading is committed every 4 chunks the backend stores."""
    data, plan, rows = _object(3 << 20, 64 << 10, seed=1)
    box = Outbox(tmp_path / "outbox.sqlite")
    assert box.add(rows) == 49
    db = tmp_path / "backend.sqlite"
    readings: list[NewRow] = []

    async def scenario() -> None:
        forwarder = _forwarder(box, broker.port)
        async with forwarding(forwarder), asyncio.timeout(60):
            while backend.object_data(plan.object_id) is None:
                if _chunks_stored(db, plan.object_id) >= 4 * (len(readings) + 1):
                    readings.append(obs_row(len(readings)))
                    box.add([readings[-1]])
                await asyncio.sleep(0.005)
            await _until_empty(box)

    asyncio.run(scenario())
    assert backend.object_data(plan.object_id) == data
    assert len(readings) >= 8  # committed while the upload was going on
    check = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    (done,) = check.execute("SELECT stored_at FROM objects").fetchone()
    chunk_times = [t for (t,) in check.execute("SELECT received_at FROM object_chunks")]
    for reading in readings:
        (at,) = check.execute(
            "SELECT received_at FROM observations WHERE msg_id = ?", (reading.msg_id,)
        ).fetchone()
        # stored before the object was complete, with chunks still to come after it
        assert at < done
        assert any(t > at for t in chunk_times)
    check.close()
    assert set(backend.chunk_copies(plan.object_id)) == set(range(plan.chunks))


def test_a_broker_killed_mid_transfer_ends_in_a_verified_object(
    broker: Mosquitto, backend: BackendStore, tmp_path: Path
) -> None:
    data, plan, rows = _object(2 << 20, 32 << 10, seed=2)
    box = Outbox(tmp_path / "outbox.sqlite")
    box.add(rows)
    db = tmp_path / "backend.sqlite"

    async def scenario() -> None:
        forwarder = _forwarder(box, broker.port, resend_after=2.0)
        async with forwarding(forwarder), asyncio.timeout(60):
            while _chunks_stored(db, plan.object_id) < plan.chunks // 3:
                await asyncio.sleep(0.005)
            broker.kill()  # SIGKILL: sessions as of the last autosave
            await asyncio.sleep(0.5)
            broker.start()  # same port and persistence directory
            await _until_empty(box)

    asyncio.run(scenario())
    assert backend.object_data(plan.object_id) == data
    copies = backend.chunk_copies(plan.object_id)
    assert set(copies) == set(range(plan.chunks))  # every chunk stored, each once
    # the chunks acked before the kill were not sent again: at most the few in flight then (and
    # those the restarted broker lost) arrived twice, counted there, never stored twice
    assert sum(copies.values()) - plan.chunks <= 4


def test_a_forwarder_killed_mid_transfer_resumes_from_the_last_acked_chunk(
    broker: Mosquitto, backend: BackendStore, tmp_path: Path
) -> None:
    data, plan, rows = _object(2 << 20, 32 << 10, seed=3)
    outbox = tmp_path / "outbox.sqlite"
    box = Outbox(outbox)
    box.add(rows)
    db = tmp_path / "backend.sqlite"
    with capturing(broker.port, f"{TOPICS.prefix}/obj/#", "chunk-counter") as seen:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.forwarder_child", str(outbox), str(broker.port)],
            cwd=Path(__file__).parents[2],
            stderr=subprocess.DEVNULL,
        )
        try:

            async def half() -> None:
                async with asyncio.timeout(30):
                    while _chunks_stored(db, plan.object_id) < plan.chunks // 3:
                        await asyncio.sleep(0.005)

            asyncio.run(half())
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        left = {r.msg_id for r in box.rows()}
        assert 0 < len(left) < len(rows)  # killed in the middle

        async def resume() -> None:
            async with forwarding(_forwarder(box, broker.port)), asyncio.timeout(30):
                await _until_empty(box)

        asyncio.run(resume())
    assert backend.object_data(plan.object_id) == data
    published = collections.Counter(int(m.topic.rsplit("/", 1)[1]) for m in seen)
    assert set(published) == set(range(plan.chunks))
    resent = [i for i, n in published.items() if n > 1]
    # only chunks still in flight at the kill (at most max_object_in_flight) went twice; none
    # the backend had acked before it
    assert len(resent) <= 2
    acked_before = {i for i, r in enumerate(rows[1:]) if r.msg_id not in left}
    assert not acked_before & set(resent)
    assert sum(n - 1 for n in backend.chunk_copies(plan.object_id).values()) == len(resent)


def test_a_refused_manifest_no_longer_blocks_the_next_object(
    broker: Mosquitto, backend: BackendStore, tmp_path: Path
) -> None:
    """The backend refuses object A's manifest: A's chunks are rejected with it at once (one
    event), where before they were re-sent forever and held both chunk slots; B goes through."""
    _, plan_a, rows_a = _object(64 << 10, 16 << 10, seed=4)
    media = json.loads(rows_a[0].payload)
    for sub in media["content"]["extension"][0]["extension"]:
        if sub["url"] == "chunkSize":
            sub["valuePositiveInt"] = plan_a.size  # inconsistent: the backend refuses it
    rows_a[0] = NewRow(rows_a[0].msg_id, DEVICE, rows_a[0].topic,
                       json.dumps(media).encode(), schema=MANIFEST_SCHEMA)  # fmt: skip
    data_b, plan_b, rows_b = _object(64 << 10, 16 << 10, seed=5)
    box = Outbox(tmp_path / "outbox.sqlite")
    box.add(rows_a)
    box.add(rows_b)
    forwarder = _forwarder(box, broker.port)  # resend_after 30 s: longer than this test
    forwarder.events = Events(box, TOPICS, wake=forwarder.wake)

    def settled() -> bool:
        return backend.object_data(plan_b.object_id) is not None and box.counts() == {
            "pending": 0, "in_flight": 0, "rejected": len(rows_a)}  # fmt: skip

    asyncio.run(run_until(forwarder, settled, timeout=20))
    assert backend.object_data(plan_b.object_id) == data_b
    assert {r.msg_id for r in box.rows()} == {r.msg_id for r in rows_a}
    assert forwarder.events.raised == 1  # object.rejected, once


def test_a_chunk_beyond_the_brokers_maximum_packet_size_is_rejected_not_sent(
    tmp_path: Path,
) -> None:
    """MQTT 5 section 3.2.2.3.6: the broker announces 20000 bytes in CONNACK; a 32 KiB chunk is
    never published (the broker would disconnect us on each), its object is rejected, and
    the rest flows on the same session."""
    broker = Mosquitto(tmp_path / "broker")
    broker.conf.write_text(broker.conf.read_text() + "max_packet_size 20000\n")
    broker.start()
    store = BackendStore(tmp_path / "backend.sqlite")
    try:
        _, plan_a, rows_a = _object(64 << 10, 32 << 10, seed=6)  # the manifest goes, no chunk
        data_b, plan_b, rows_b = _object(32 << 10, 8 << 10, seed=7)
        box = Outbox(tmp_path / "outbox.sqlite")
        box.add(rows_a)
        box.add([*rows_b, obs_row(1)])
        forwarder = _forwarder(box, broker.port)
        forwarder.events = Events(box, TOPICS, wake=forwarder.wake)

        def settled() -> bool:
            return store.object_data(plan_b.object_id) is not None and box.counts() == {
                "pending": 0, "in_flight": 0, "rejected": len(rows_a)}  # fmt: skip

        with running_backend(broker.port, store, client_id="backend-mps"):
            asyncio.run(run_until(forwarder, settled, timeout=20))
        assert store.object_data(plan_b.object_id) == data_b
        reasons = {r.reason for r in box.rows()}
        assert any("exceeds the broker's Maximum Packet Size of 20000" in str(r) for r in reasons)
        assert forwarder.stats.connects == 1  # never disconnected for a packet too large
        assert forwarder.events.raised == 1
        seen = [json.loads(line) for line in export_objects(tmp_path / "backend.sqlite")]
        stored = {o["object_id"]: (o["chunks_stored"], o["verified"]) for o in seen}
        assert stored == {plan_a.object_id: (0, False), plan_b.object_id: (plan_b.chunks, True)}
    finally:
        store.close()
        broker.stop()
