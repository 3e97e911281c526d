"""SQLite outbox: a row per outgoing message, deleted only on the backend's application ack.

Durability: WAL + ``synchronous=FULL`` (with NORMAL, acknowledged commits were lost in 299 of
300 simulated power cuts on this class of machine; see tests/chaos/test_power_loss.py). A row is
written in the same transaction as the other readings of its device record, before the device
is acknowledged.

States: ``pending`` (never sent, or to re-send), ``in_flight`` (published, awaiting the backend
ack; re-sent after ``resend_after``), ``rejected`` (refused by broker or backend; kept with its
reason for an operator, never re-sent automatically).

Space: ``PRAGMA max_page_count`` caps the file below the free disk space minus a reserve, so
that on a full disk SQLite refuses new rows (SQLITE_FULL) while deletes, which reuse pages,
and WAL checkpoints still have room; the bookkeeping connection (marking sent, deleting) may
go a few pages beyond the budget so that a full outbox can always drain. Clinical rows are
never evicted; telemetry and event rows are evicted oldest-first beyond their own byte
budget, with persistent counters. The chunks of large objects (priority > 0) have their own
byte budget, ``objects_max_bytes`` (half of the whole by default): a new object beyond it is
refused, so photographs never take the room of readings. That space keeping is in
edge/outbox/space.py.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from edge.outbox.db import Tx, guarded, is_full, migrate
from edge.outbox.model import (
    Budget,
    NewRow,
    OutboxError,
    OutboxFullError,
    Quarantined,
    Row,
)
from edge.outbox.queries import COLUMNS, due_rows, iter_rows
from edge.outbox.space import SpaceKeeping

log = logging.getLogger(__name__)


class Outbox(SpaceKeeping):
    """The store. Use from one thread (the daemon's event loop); CLI tools may open it too.

    The page budget, eviction, the object budget and the usage gauges are inherited from
    :class:`~edge.outbox.space.SpaceKeeping` (edge/outbox/space.py).
    """

    def __init__(self, path: Path, *, repair: bool = True, budget: Budget | None = None) -> None:
        self.path = path
        self.budget = budget or Budget()
        #: where a corrupt file found at start-up was moved (the caller raises the alarm)
        self.moved_aside: Path | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._check_integrity(repair)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 5000")  # operator CLI and daemon share it
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute(f"PRAGMA journal_size_limit = {self.budget.reserve_bytes // 2}")
            # A fresh file or one of an earlier schema; a current one is only read (no write
            # lock taken, so opening never waits behind another writer).
            migrated = migrate(self._db)
            if migrated:
                log.info("outbox migrated path=%s changes=%s", path, ",".join(migrated))
            # Bookkeeping that may be lost in a power cut without losing data - marking rows
            # sent, deleting acknowledged rows - goes through a second connection with
            # synchronous=NORMAL: its commits reach the disk with the next FULL commit or
            # checkpoint. Lost, they only cause a re-send that the backend de-duplicates. This
            # keeps one fsync per ack batch off the event loop while a backlog drains.
            self._lazy = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._lazy.execute("PRAGMA busy_timeout = 5000")
            self._lazy.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        self._armed = list(self.budget.high_water)
        self._nonclinical_bound = self.budget.telemetry_max_bytes + 1  # unknown: check first
        self.page_budget = self._apply_page_budget()

    # ----------------------------------------------------------------- start-up

    def _check_integrity(self, repair: bool) -> None:
        """Move a corrupt file aside (never delete it) and start a fresh one."""
        if not self.path.exists():
            return
        try:
            db = sqlite3.connect(self.path)
            try:
                result = db.execute("PRAGMA integrity_check").fetchone()
            finally:
                db.close()
            ok = result is not None and result[0] == "ok"
            detail = str(result[0]) if result else "no result"
        except sqlite3.DatabaseError as exc:
            # Only "corrupt" (11) and "not a database" (26) mean the file is bad; "locked" or
            # an I/O error says nothing about it, and moving a good outbox aside would strand
            # its queued readings: fail instead (systemd restarts us).
            if getattr(exc, "sqlite_errorcode", None) not in (11, 26):
                raise OutboxError(f"cannot check outbox {self.path}: {exc}") from exc
            ok, detail = False, str(exc)
        if ok:
            return
        if not repair:
            raise OutboxError(
                f"outbox {self.path} is corrupt ({detail}); the daemon will move it aside"
            )
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                src.rename(Path(f"{aside}{suffix}"))
        self.moved_aside = aside
        log.error("outbox corrupt path=%s detail=%r moved_to=%s", self.path, detail, aside)

    def close(self) -> None:
        self._lazy.close()
        self._db.close()

    def integrity_ok(self) -> bool:
        return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    # ----------------------------------------------------------------- writing

    def add(self, rows: Sequence[NewRow], now: float | None = None) -> int:
        """Store ``rows`` in one fsync'd transaction; duplicates (same msg_id) are ignored.

        Telemetry and event rows beyond their byte budget evict the oldest of their kind in the
        same transaction. Raises :class:`OutboxFullError` when the page budget is exhausted.
        """
        return self.add_record(rows, (), now)[0]

    def add_record(
        self, rows: Sequence[NewRow], held: Sequence[Quarantined], now: float | None = None
    ) -> tuple[int, int]:
        """``add`` plus the record's quarantined readings, in the same transaction.

        Returns (new rows, new quarantine entries): a retransmitted record adds nothing.
        """
        stamp = time.time() if now is None else now
        try:
            with self._transaction():
                held_before = self._db.total_changes
                self._db.executemany(
                    "INSERT INTO quarantine (msg_id, device, quantity, reason, detail, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (msg_id) DO NOTHING",
                    [(q.msg_id, q.device, q.quantity, q.reason, q.detail, stamp) for q in held],
                )
                new_held = self._db.total_changes - held_before
                objects = any(r.priority > 0 for r in rows)
                gauge = self._gauge() if objects else 0
                # rowcount, not total_changes: that also counts the triggers' gauge updates
                added = self._db.executemany(
                    # ON CONFLICT(msg_id), not OR IGNORE: that would also swallow CHECK failures
                    "INSERT INTO outbox (msg_id, device, kind, topic, payload, created_at,"
                    " priority, schema) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (msg_id) DO NOTHING",
                    [(*_fields(r), stamp, r.priority, r.schema) for r in rows],
                ).rowcount
                if objects:
                    self._check_object_budget(gauge)
                extra = sum(len(r.payload) for r in rows if r.kind != "clinical")
                if extra:
                    # An upper bound kept in memory (deletes only lower the truth): the exact
                    # SUM, a scan, runs only when the bound passes the budget.
                    self._nonclinical_bound += extra
                    if self._nonclinical_bound > self.budget.telemetry_max_bytes:
                        self._nonclinical_bound = self._evict()
                return added, new_held
        except sqlite3.Error as exc:
            if is_full(exc):
                usage = self.usage()
                raise OutboxFullError(
                    f"outbox full: {len(rows)} rows not stored in {self.path} "
                    f"({usage.used_bytes} of {usage.budget_bytes} budget bytes used, "
                    f"{usage.disk_free_bytes} bytes free on disk)"
                ) from exc
            raise OutboxError(f"cannot store {len(rows)} rows in {self.path}: {exc}") from exc

    @guarded
    def mark_sent(self, msg_ids: Sequence[str], now: float | None = None) -> None:
        stamp = time.time() if now is None else now
        with Tx(self._lazy):
            self._lazy.executemany(
                "UPDATE outbox SET state = 'in_flight', attempts = attempts + 1, sent_at = ?"
                " WHERE msg_id = ? AND state != 'rejected'",
                [(stamp, m) for m in msg_ids],
            )

    @guarded
    def confirm(self, msg_ids: Sequence[str]) -> int:
        """The backend stored these: delete them. Returns how many rows went.

        Deletes reuse pages inside the budget, so they work even when the disk is full.
        """
        with Tx(self._lazy):
            deleted = self._lazy.executemany(  # rowcount: the triggers' changes not counted
                "DELETE FROM outbox WHERE msg_id = ?", [(m,) for m in msg_ids]
            ).rowcount
            if deleted:
                self._bump("confirmed_rows", deleted, self._lazy)
            return deleted

    @guarded
    def reject(self, msg_id: str, reason: str) -> bool:
        """Mark ``msg_id`` rejected with ``reason``; False when it is gone or rejected already."""
        return self.reject_with(msg_id, reason, (), "") is not None

    @guarded
    def reject_with(
        self, msg_id: str, reason: str, others: Sequence[str], others_reason: str
    ) -> int | None:
        """Reject ``msg_id`` and, in the same transaction, every row of ``others`` still open.

        For a large object whose manifest or one chunk was refused: its other rows share the
        fate (edge/publish/forwarder.py). Returns how many of ``others`` were rejected, or
        None when ``msg_id`` is gone or rejected already (then nothing changes).
        """
        with self._transaction():
            cur = self._db.execute(
                "UPDATE outbox SET state = 'rejected', reason = ?"
                " WHERE msg_id = ? AND state != 'rejected'",
                (reason, msg_id),
            )
            if not cur.rowcount:
                return None
            shared = self._db.executemany(
                "UPDATE outbox SET state = 'rejected', reason = ?"
                " WHERE msg_id = ? AND state != 'rejected'",
                [(others_reason, m) for m in others if m != msg_id],
            ).rowcount
            self._bump("rejected_rows", 1 + shared)
            return shared

    @guarded
    def requeue(self, key: str) -> Row | None:
        """Operator: send a rejected (or in-flight) row again. ``key`` is a msg_id or a seq."""
        row = self.get(key)
        if row is None or row.state == "pending":
            return row
        with self._transaction():
            self._db.execute(
                "UPDATE outbox SET state = 'pending', reason = NULL WHERE seq = ?", (row.seq,)
            )
        return self.get(key)

    @guarded
    def requeue_in_flight(self) -> int:
        """After a reconnect nothing in flight is known to have arrived: send it again."""
        with Tx(self._lazy):
            before = self._lazy.total_changes
            self._lazy.execute("UPDATE outbox SET state = 'pending' WHERE state = 'in_flight'")
            return self._lazy.total_changes - before

    # ----------------------------------------------------------------- reading

    @guarded
    def due(
        self,
        limit: int,
        resend_after: float,
        now: float | None = None,
        *,
        max_object_in_flight: int | None = None,
    ) -> list[Row]:
        """Rows to publish now: pending ones, then in-flight ones gone stale; chunks last.

        Priority 0 first, oldest first; rows of a higher priority (chunks of large objects)
        only in the room left, at most ``max_object_in_flight`` of them outstanding at once
        (edge/outbox/queries.py).
        """
        stamp = time.time() if now is None else now
        return due_rows(self._db, limit, stamp - resend_after, max_object_in_flight)

    @guarded
    def get(self, key: str) -> Row | None:
        column = "seq" if key.isdigit() else "msg_id"
        found = self._db.execute(
            f"SELECT {COLUMNS} FROM outbox WHERE {column} = ?", (key,)
        ).fetchone()
        return Row(*found) if found else None

    @guarded
    def quarantined(self, key: str | None = None, limit: int = 100) -> list[Quarantined]:
        """Quarantined readings, newest first; ``key`` (msg_id or seq) selects one."""
        query = "SELECT msg_id, device, quantity, reason, detail, seq, created_at FROM quarantine"
        args: list[object] = []
        if key is not None:
            query += " WHERE seq = ?" if key.isdigit() else " WHERE msg_id = ?"
            args.append(int(key) if key.isdigit() else key)
        query += " ORDER BY seq DESC LIMIT ?"
        args.append(limit)
        return [Quarantined(*r) for r in self._db.execute(query, args).fetchall()]

    @guarded
    def counts(self) -> dict[str, int]:
        counts = {"pending": 0, "in_flight": 0, "rejected": 0}
        for state, n in self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"):
            counts[state] = n
        return counts

    @guarded
    def waiting(self) -> int:
        """Rows pending or in flight: two counts over the partial indexes, no table scan."""
        row = self._db.execute(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE state = 'pending')"
            " + (SELECT COUNT(*) FROM outbox WHERE state = 'in_flight')"
        ).fetchone()
        return int(row[0])

    @guarded
    def open_rows(self, kind: str) -> int:
        """Rows of ``kind`` not yet delivered (pending or in flight)."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE kind = ? AND state != 'rejected'", (kind,)
        ).fetchone()
        return int(row[0])

    @guarded
    def counters(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM counters ORDER BY name").fetchall())

    def rows(self, state: str | None = None, limit: int | None = None) -> Iterator[Row]:
        """Every row (of ``state``), by seq."""
        return iter_rows(self._db, state, limit)

    def _transaction(self) -> Tx:
        return Tx(self._db)


def _fields(r: NewRow) -> tuple[str, str, str, str, bytes]:
    return r.msg_id, r.device, r.kind, r.topic, r.payload
