"""The reference backend's SQLite store, de-duplicated by message id (the FHIR identifier)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from simulators.backend import objects
from simulators.backend.objects import Chunk, Manifest, Outcome

_SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    msg_id      TEXT PRIMARY KEY,
    bus         TEXT NOT NULL,
    device      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at REAL NOT NULL,
    copies      INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS monitoring (
    msg_id      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,  -- telemetry | event
    bus         TEXT NOT NULL,
    source      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id      TEXT,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payload     BLOB NOT NULL,
    received_at REAL NOT NULL
);
"""


class BackendStore:
    def __init__(self, path: Path, orphan_grace: float = objects.ORPHAN_GRACE) -> None:
        """Open (or create) the store at ``path``.

        ``orphan_grace``: seconds a chunk may wait for its manifest before it is rejected
        (simulators/backend/objects.py); twice the gateways' ``resend_after`` or more.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        self.orphan_grace = orphan_grace
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        objects.migrate(self._db)  # a file of the first object schema: before the script
        self._db.executescript(objects.SCHEMA)

    def store_many(self, items: list[tuple[str, str, str, str]]) -> list[bool]:
        """Group commit of ``(msg_id, bus, device, payload)``; True per item that was new."""
        fresh = []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            now = time.time()
            for msg_id, bus, device, payload in items:
                (copies,) = self._db.execute(
                    "INSERT INTO observations (msg_id, bus, device, payload, received_at)"
                    " VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (msg_id) DO UPDATE SET copies = copies + 1 RETURNING copies",
                    (msg_id, bus, device, payload, now),
                ).fetchone()
                fresh.append(copies == 1)
        return fresh

    def store_monitoring(self, items: list[tuple[str, str, str, str, str]]) -> int:
        """Telemetry packs and events ``(msg_id, kind, bus, source, payload)``; returns new ones.

        Not acknowledged (the gateway deletes them on PUBACK): a copy sent again after a lost
        PUBACK has the same id and is kept once.
        """
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO monitoring (msg_id, kind, bus, source, payload,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(*item, time.time()) for item in items],
            )
            return self._db.total_changes - before

    def reject(self, msg_id: str | None, topic: str, reason: str, payload: bytes) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO rejected (msg_id, topic, reason, payload, received_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (msg_id, topic, reason, payload, time.time()),
            )

    def store_objects(self, items: list[Chunk | Manifest], now: float | None = None) -> Outcome:
        """Store large objects' chunks and manifests in one transaction.

        simulators/backend/objects.py decides, and rejects the chunks orphaned for longer than
        ``orphan_grace`` (call it with no items for that alone); the acks it returns may be
        published once this returns (store before ack).
        """
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            outcome = objects.ingest(self._db, items, now, self.orphan_grace)
            self._db.executemany(
                "INSERT INTO rejected (msg_id, topic, reason, payload, received_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(*refusal, time.time()) for refusal in outcome.refusals],
            )
        return outcome

    def object_data(self, object_id: str, bus: str | None = None) -> bytes | None:
        """A reassembled, verified object (of ``bus``, or of any bus), or None."""
        row = self._db.execute(
            "SELECT data FROM objects WHERE object_id = ? AND (? IS NULL OR bus = ?)",
            (object_id, bus, bus),
        )
        found = row.fetchone()
        return None if found is None else bytes(found[0])

    def chunk_copies(self, object_id: str, bus: str | None = None) -> dict[int, int]:
        """Chunk index -> copies received, for the chunks stored (each stored once)."""
        rows = self._db.execute(
            "SELECT idx, SUM(copies) FROM object_chunks WHERE object_id = ?"
            " AND (? IS NULL OR bus = ?) GROUP BY idx ORDER BY idx",
            (object_id, bus, bus),
        )
        return {int(i): int(n) for i, n in rows}

    def stored_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT msg_id FROM observations ORDER BY rowid")]

    def duplicate_copies(self) -> int:
        """Copies received beyond the first, over all stored messages."""
        value = self._db.execute("SELECT COALESCE(SUM(copies - 1), 0) FROM observations")
        return int(value.fetchone()[0])

    def close(self) -> None:
        self._db.close()


def export_lines(path: Path) -> Iterator[str]:
    """Stored Observations as JSON lines, in arrival order."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for (payload,) in db.execute("SELECT payload FROM observations ORDER BY received_at"):
            yield json.dumps(json.loads(payload), sort_keys=True)
    finally:
        db.close()


def export_monitoring(path: Path, kind: str) -> Iterator[str]:
    """Stored telemetry packs or events as JSON lines ``{"bus", "source", "payload"}``."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT bus, source, payload FROM monitoring WHERE kind = ? ORDER BY received_at",
            (kind,),
        )
        for bus, source, payload in rows:
            yield json.dumps({"bus": bus, "source": source, "payload": json.loads(payload)},
                             sort_keys=True)  # fmt: skip
    finally:
        db.close()
