"""Outbox value types, errors and schema."""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
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
    reason     TEXT,
    -- 0: readings, events, telemetry; 1: chunks of a large object (edge/publish/objects.py),
    -- sent after every pending row of priority 0 (edge/outbox/queries.py)
    priority   INTEGER NOT NULL DEFAULT 0,
    -- the MQTT 5 `schema` user property when it is not the kind's default (NULL)
    schema     TEXT
);
-- Partial indexes: a row sits in at most one, so marking it sent or deleting it touches one
-- entry where (state, seq) and (state, sent_at) indexes touched two. A file of the first
-- schemas is migrated first (edge/outbox/db.py: migrate), its outbox_pending on (seq) dropped.
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (priority, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_in_flight ON outbox (sent_at) WHERE state = 'in_flight';
-- Pending chunks least tried first (edge/outbox/queries.py), so that an object the backend
-- never acks cannot hold the chunk slots before the next one. A chunk sits in both pending
-- indexes; a reading only in outbox_pending.
CREATE INDEX IF NOT EXISTS outbox_object_pending ON outbox (priority, attempts, seq)
    WHERE state = 'pending' AND priority > 0;
DROP INDEX IF EXISTS outbox_state_seq;  -- the two full indexes of the first schema
DROP INDEX IF EXISTS outbox_state_sent;
-- Readings that failed clinical validation: never published as Observations, kept for an
-- operator with the reason (edge/pipeline/validate.py); same transaction as the record's rows.
CREATE TABLE IF NOT EXISTS quarantine (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id     TEXT    NOT NULL UNIQUE,
    device     TEXT    NOT NULL,
    quantity   TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    created_at REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- Current values (not event counts): `object_bytes`, the payload bytes of the rows of
-- priority > 0 in any state, kept by the triggers below in the transaction of each insert and
-- delete, whichever connection or daemon version makes it (summing it would read every chunk:
-- priority and state come after the payload in a row).
CREATE TABLE IF NOT EXISTS gauges (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS outbox_object_added AFTER INSERT ON outbox WHEN NEW.priority > 0
BEGIN
    UPDATE gauges SET value = value + LENGTH(NEW.payload) WHERE name = 'object_bytes';
END;
CREATE TRIGGER IF NOT EXISTS outbox_object_removed AFTER DELETE ON outbox WHEN OLD.priority > 0
BEGIN
    UPDATE gauges SET value = value - LENGTH(OLD.payload) WHERE name = 'object_bytes';
END;
"""
#: ``PRAGMA user_version`` of a file of :data:`SCHEMA` (edge/outbox/db.py: migrate). 0: a file
#: from before it was recorded; 2 would be the ``priority``/``schema`` columns; 3 adds
#: ``outbox_object_pending``, the ``gauges`` table and its triggers.
SCHEMA_VERSION = 3

KINDS = ("clinical", "telemetry", "event")


class OutboxError(Exception):
    """The outbox cannot store or read (I/O error, corrupt file)."""


class OutboxFullError(OutboxError):
    """A batch refused for lack of room: nothing of it was stored.

    The page budget, the object budget (:attr:`Budget.objects_max_bytes`) or the disk is
    exhausted.
    """


@dataclass(frozen=True, slots=True)
class Budget:
    """Space rules. ``reserve_bytes`` stays free on disk for the WAL and checkpoints.

    ``objects_max_bytes`` caps the payload bytes of rows of priority > 0 (the chunks of large
    objects) in any state; None is half of ``max_bytes``. A new object beyond it is refused
    (:class:`OutboxFullError`), so photographs held through a long outage never take the room
    of readings; readings are never refused by it.
    """

    max_bytes: int = 1 << 30
    reserve_bytes: int = 32 << 20
    telemetry_max_bytes: int = 64 << 20
    high_water: tuple[float, ...] = (0.5, 0.8, 0.95)
    objects_max_bytes: int | None = None

    @property
    def object_limit(self) -> int:
        """``objects_max_bytes``, or half of ``max_bytes`` when it is None."""
        return self.max_bytes // 2 if self.objects_max_bytes is None else self.objects_max_bytes


@dataclass(frozen=True, slots=True)
class Usage:
    used_bytes: int
    budget_bytes: int
    disk_free_bytes: int


@dataclass(frozen=True, slots=True)
class NewRow:
    """A message to store.

    ``priority`` 0 is sent first; rows of a higher priority (chunks of a large object) only
    after every pending row of priority 0, and only a few of them at a time. ``schema`` is the
    MQTT 5 ``schema`` user property when it is not the default of ``kind``.
    """

    msg_id: str
    device: str
    topic: str
    payload: bytes
    kind: str = "clinical"
    priority: int = 0
    schema: str | None = None


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    msg_id: str
    device: str
    kind: str
    topic: str
    payload: bytes
    state: str
    attempts: int
    created_at: float
    sent_at: float | None
    reason: str | None
    priority: int = 0
    schema: str | None = None


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A reading held back by validation; ``detail`` is JSON (value, unit, device time...)."""

    msg_id: str
    device: str
    quantity: str
    reason: str
    detail: str
    seq: int = 0
    created_at: float = 0.0
