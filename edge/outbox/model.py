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
"""

KINDS = ("clinical", "telemetry", "event")


class OutboxError(Exception):
    """The outbox cannot store or read (I/O error, corrupt file)."""


class OutboxFullError(OutboxError):
    """The page budget or the disk is exhausted: nothing of the refused batch was stored."""


@dataclass(frozen=True, slots=True)
class Budget:
    """Space rules. ``reserve_bytes`` stays free on disk for the WAL and checkpoints."""

    max_bytes: int = 1 << 30
    reserve_bytes: int = 32 << 20
    telemetry_max_bytes: int = 64 << 20
    high_water: tuple[float, ...] = (0.5, 0.8, 0.95)


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
