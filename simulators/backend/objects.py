"""The reference backend's side of large objects: chunks stored once, verified, reassembled.

A gateway sends an object as a FHIR R4 ``Media`` manifest on ``.../obs/{device}`` and its
chunks on ``.../obj/{device}/{object_id}/{index}`` (docs/asyncapi.yaml). Here:

* a chunk is stored once per ``(bus, object_id, index)``; a second copy (a re-send after a lost
  ack, an outage, a gateway restart) is counted in ``copies``, never stored again;
* a chunk is acked only once verified against the manifest's ``chunkSha256``: with the
  manifest known, on arrival (a mismatch is rejected with its reason, never stored); before
  it, the chunk is kept unverified and acked - or rejected and dropped - when the manifest
  comes. An ack is never given for bytes that might later prove wrong, since the gateway
  deletes what is acked;
* the manifest is stored on arrival but acked only once every chunk is stored and the
  reassembled object matches the manifest's size and SHA-256; the object is then stored
  (table ``objects``) in the same transaction as that ack's cause;
* a chunk whose manifest is still unknown ``orphan_grace`` seconds after it came (by default
  60 s, twice the gateway's ``resend_after``: the manifest was lost or refused) is rejected
  with its reason and dropped, so the gateway stops sending it and rejects its object;
* everything is keyed on the bus: the same photograph from two buses has the same default
  object id and manifest id on both, and is two objects here. A manifest id reused on a bus
  for another object is refused and counted, never a crash.

Everything runs in the caller's transaction (BackendStore.store_objects), before any ack.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_MANIFESTS = """
CREATE TABLE IF NOT EXISTS object_manifests (
    msg_id      TEXT NOT NULL,
    bus         TEXT NOT NULL,
    device      TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    chunks      INTEGER NOT NULL,
    chunk_sha256 TEXT NOT NULL,  -- JSON list, by index
    payload     TEXT NOT NULL,
    received_at REAL NOT NULL,
    copies      INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (bus, msg_id),
    UNIQUE (bus, object_id)
)"""
SCHEMA = (
    _MANIFESTS
    + """;
CREATE TABLE IF NOT EXISTS object_chunks (
    bus         TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    msg_id      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    data        BLOB NOT NULL,
    verified    INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL,
    copies      INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (bus, object_id, idx)
);
-- the chunks awaiting their manifest, for the sweep of orphans (never a scan of the chunks)
CREATE INDEX IF NOT EXISTS object_chunks_unverified ON object_chunks (received_at)
    WHERE verified = 0;
CREATE TABLE IF NOT EXISTS objects (
    bus         TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    data        BLOB NOT NULL,
    stored_at   REAL NOT NULL,
    PRIMARY KEY (bus, object_id)
);
"""
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk as received: from its topic, its ``msg-id`` property and its payload."""

    bus: str
    device: str
    object_id: str
    index: int
    msg_id: str
    topic: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Manifest:
    """A Media manifest the validator accepted (simulators/backend/validate.py)."""

    msg_id: str
    bus: str
    device: str
    object_id: str
    sha256: str
    size: int
    chunk_sha256: tuple[str, ...]
    topic: str
    payload: str


@dataclass(slots=True)
class Outcome:
    """What one batch decided: acks per bus, and the refusals to keep."""

    stored: dict[str, list[str]] = field(default_factory=dict)
    rejected: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: (msg_id, topic, reason, payload) for the backend's ``rejected`` table
    refusals: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    duplicates: int = 0
    completed: list[str] = field(default_factory=list)

    def ack(self, bus: str, msg_id: str) -> None:
        self.stored.setdefault(bus, []).append(msg_id)

    def refuse(self, bus: str, msg_id: str, topic: str, reason: str, data: bytes) -> None:
        self.rejected.setdefault(bus, []).append((msg_id, reason))
        self.refusals.append((msg_id, topic, reason, data))


#: seconds a chunk waits for its manifest before it is rejected: 2 x the gateway's default
#: ``resend_after``
ORPHAN_GRACE = 60.0


def migrate(db: sqlite3.Connection) -> None:
    """Re-key an ``object_manifests`` table of the first schema (msg_id alone) on the bus."""
    pk = [r[1] for r in sorted(db.execute("PRAGMA table_info(object_manifests)"),
                               key=lambda r: r[5]) if r[5]]  # fmt: skip
    if pk != ["msg_id"]:
        return
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ALTER TABLE object_manifests RENAME TO object_manifests_v1")
        db.execute(_MANIFESTS)
        db.execute("INSERT INTO object_manifests SELECT * FROM object_manifests_v1")
        db.execute("DROP TABLE object_manifests_v1")


def ingest(
    db: sqlite3.Connection,
    items: list[Chunk | Manifest],
    now: float | None = None,
    orphan_grace: float = ORPHAN_GRACE,
) -> Outcome:
    """Store a batch inside the caller's transaction, then reject the chunks orphaned.

    Manifests first, so that the chunks of the same batch are verified on arrival.
    """
    out = Outcome()
    touched: set[tuple[str, str]] = set()
    for item in sorted(items, key=lambda i: isinstance(i, Chunk)):
        if isinstance(item, Manifest):
            _manifest(db, item, out, touched)
        else:
            _chunk(db, item, out, touched)
    for bus, object_id in sorted(touched):
        _complete(db, bus, object_id, out)
    _orphans(db, (time.time() if now is None else now) - orphan_grace, out)
    return out


def _orphans(db: sqlite3.Connection, before: float, out: Outcome) -> None:
    """Reject and drop the chunks whose manifest is still unknown since before ``before``.

    Unverified chunks are only those that came before their manifest; with the manifest
    known they are verified or refused on its arrival. So these are chunks of a manifest lost
    or refused: never acked, they would be sent again forever.
    """
    orphans = db.execute(
        "SELECT bus, object_id, idx, msg_id FROM object_chunks"
        " WHERE verified = 0 AND received_at < ? AND NOT EXISTS (SELECT 1 FROM object_manifests"
        " m WHERE m.bus = object_chunks.bus AND m.object_id = object_chunks.object_id)",
        (before,),
    ).fetchall()
    for bus, object_id, idx, msg_id in orphans:
        (data,) = db.execute(
            "DELETE FROM object_chunks WHERE bus = ? AND object_id = ? AND idx = ? RETURNING data",
            (bus, object_id, idx),
        ).fetchone()
        # the device is not kept with a chunk: "+" in its place
        topic = f"santebus/v1/{bus}/obj/+/{object_id}/{idx}"
        out.refuse(bus, msg_id, topic, f"no manifest for object {object_id}", bytes(data))


def _expected(db: sqlite3.Connection, bus: str, object_id: str) -> list[str] | None:
    row = db.execute(
        "SELECT chunk_sha256 FROM object_manifests WHERE bus = ? AND object_id = ?",
        (bus, object_id),
    ).fetchone()
    return None if row is None else list(json.loads(row[0]))


def _manifest(
    db: sqlite3.Connection, m: Manifest, out: Outcome, touched: set[tuple[str, str]]
) -> None:
    known = _expected(db, m.bus, m.object_id)
    if known is not None and known != list(m.chunk_sha256):
        out.refuse(m.bus, m.msg_id, m.topic, "object id already has another manifest",
                   m.payload.encode())  # fmt: skip
        return
    if known is not None:  # a re-sent manifest (its ack lost, or the object incomplete)
        db.execute(
            "UPDATE object_manifests SET copies = copies + 1 WHERE bus = ? AND object_id = ?",
            (m.bus, m.object_id),
        )
    else:
        # DO NOTHING on (bus, msg_id): a manifest id reused for another object on this bus
        # (a crafted or buggy gateway) is refused and counted, never an IntegrityError
        added = db.execute(
            "INSERT INTO object_manifests (msg_id, bus, device, object_id, sha256, size,"
            " chunks, chunk_sha256, payload, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (m.msg_id, m.bus, m.device, m.object_id, m.sha256, m.size, len(m.chunk_sha256),
             json.dumps(m.chunk_sha256), m.payload, time.time()),
        ).rowcount  # fmt: skip
        if not added:
            out.duplicates += 1
            out.refuse(m.bus, m.msg_id, m.topic, "manifest id already used for another object",
                       m.payload.encode())  # fmt: skip
            return
    unverified = db.execute(
        "SELECT idx, msg_id, sha256, data FROM object_chunks"
        " WHERE bus = ? AND object_id = ? AND verified = 0",
        (m.bus, m.object_id),
    ).fetchall()
    for idx, msg_id, digest, data in unverified:
        topic = f"santebus/v1/{m.bus}/obj/{m.device}/{m.object_id}/{idx}"
        reason = _mismatch(m.chunk_sha256, idx, digest)
        if reason is None:
            db.execute(
                "UPDATE object_chunks SET verified = 1 WHERE bus = ? AND object_id = ? AND idx = ?",
                (m.bus, m.object_id, idx),
            )
            out.ack(m.bus, msg_id)
        else:
            db.execute(
                "DELETE FROM object_chunks WHERE bus = ? AND object_id = ? AND idx = ?",
                (m.bus, m.object_id, idx),
            )
            out.refuse(m.bus, msg_id, topic, reason, bytes(data))
    touched.add((m.bus, m.object_id))


def _mismatch(expected: tuple[str, ...] | list[str], index: int, digest: str) -> str | None:
    if index >= len(expected):
        return f"chunk {index} beyond the manifest's {len(expected)} chunks"
    if expected[index] != digest:
        return f"chunk {index} sha256 mismatch"
    return None


def _chunk(db: sqlite3.Connection, c: Chunk, out: Outcome, touched: set[tuple[str, str]]) -> None:
    key = (c.bus, c.object_id, c.index)
    existing = db.execute(
        "SELECT verified FROM object_chunks WHERE bus = ? AND object_id = ? AND idx = ?", key
    ).fetchone()
    if existing is not None:  # a second copy: counted, never stored again
        db.execute(
            "UPDATE object_chunks SET copies = copies + 1"
            " WHERE bus = ? AND object_id = ? AND idx = ?",
            key,
        )
        out.duplicates += 1
        if existing[0]:
            out.ack(c.bus, c.msg_id)  # stored and verified: the earlier ack was lost
        return
    digest = hashlib.sha256(c.data).hexdigest()
    expected = _expected(db, c.bus, c.object_id)
    if expected is not None:
        reason = _mismatch(expected, c.index, digest)
        if reason is not None:
            out.refuse(c.bus, c.msg_id, c.topic, reason, c.data)
            return
    db.execute(
        "INSERT INTO object_chunks (bus, object_id, idx, msg_id, sha256, data, verified,"
        " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (*key, c.msg_id, digest, c.data, int(expected is not None), time.time()),
    )
    if expected is not None:
        out.ack(c.bus, c.msg_id)
        touched.add((c.bus, c.object_id))


def _complete(db: sqlite3.Connection, bus: str, object_id: str, out: Outcome) -> None:
    """Store the object and ack its manifest once every chunk is in and the whole matches."""
    manifest = db.execute(
        "SELECT msg_id, device, sha256, size, chunks, payload FROM object_manifests"
        " WHERE bus = ? AND object_id = ?",
        (bus, object_id),
    ).fetchone()
    if manifest is None:
        return
    msg_id, device, sha256, size, chunks, payload = manifest
    done = db.execute(
        "SELECT 1 FROM objects WHERE bus = ? AND object_id = ?", (bus, object_id)
    ).fetchone()
    if done is None:
        (verified,) = db.execute(
            "SELECT COUNT(*) FROM object_chunks WHERE bus = ? AND object_id = ? AND verified = 1",
            (bus, object_id),
        ).fetchone()
        if verified < chunks:
            return
        data = b"".join(
            bytes(r[0])
            for r in db.execute(
                "SELECT data FROM object_chunks WHERE bus = ? AND object_id = ? ORDER BY idx",
                (bus, object_id),
            )
        )
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            topic = f"santebus/v1/{bus}/obs/{device}"
            out.refuse(bus, msg_id, topic, "reassembled object does not match its sha256",
                       str(payload).encode())  # fmt: skip
            return
        db.execute(
            "INSERT INTO objects (bus, object_id, sha256, size, data, stored_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (bus, object_id, sha256, size, data, time.time()),
        )
        out.completed.append(object_id)
    out.ack(bus, msg_id)  # complete (now or before: a re-sent manifest whose ack was lost)


def export_objects(path: Path) -> Iterator[str]:
    """One JSON line per manifest received: the object's state at the backend."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT m.bus, m.object_id, m.size, m.sha256, m.chunks, o.sha256,"
            " (SELECT COUNT(*) FROM object_chunks c WHERE c.bus = m.bus"
            "  AND c.object_id = m.object_id),"
            " (SELECT COALESCE(SUM(c.copies - 1), 0) FROM object_chunks c WHERE c.bus = m.bus"
            "  AND c.object_id = m.object_id),"
            " (SELECT COUNT(*) FROM rejected r WHERE r.topic LIKE"
            "  'santebus/v1/' || m.bus || '/obj/%/' || m.object_id || '/%')"
            " FROM object_manifests m LEFT JOIN objects o"
            " ON o.bus = m.bus AND o.object_id = m.object_id ORDER BY m.received_at"
        )
        for bus, object_id, size, sha256, chunks, stored, have, dupes, bad in rows:
            yield json.dumps(
                {
                    "bus": bus,
                    "object_id": object_id,
                    "size": size,
                    "sha256": sha256,
                    "verified": stored == sha256,
                    "chunks": chunks,
                    "chunks_stored": have,
                    "duplicate_chunks": dupes,
                    "rejected_chunks": bad,
                },
                sort_keys=True,
            )
    finally:
        db.close()
