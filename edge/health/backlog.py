"""What the outbox holds, read cheaply for the health endpoints on the daemon's event loop.

A read-only connection of its own (``mode=ro``, ``query_only``): in WAL mode a reader never
blocks the outbox's writers, and every SELECT sees the last commit. The queries lean on the
schema of edge/outbox/model.py:

* pending and in-flight counts: ``COUNT(*)`` over the partial indexes ``outbox_pending`` and
  ``outbox_in_flight`` (index-only, about 1 ms per 50,000 rows here);
* the oldest undelivered row: the table in ``seq`` order (its rowid), stopping at the first row
  that is not rejected - it reads only the rejected rows at the head of the table, if any;
* rows by kind and state, with the rejected count: one ``GROUP BY`` that **scans the table**
  (no index has the kind; about 65 ms per 100,000 rows of 2 kB here, several times that on a
  Raspberry Pi), so its result is cached: it is counted again when the pending or in-flight
  totals no longer match it, at most once per ``breakdown_every`` seconds, and at least once
  per ``breakdown_max_age`` seconds while it is read (a change of kinds or of rejected rows
  alone, e.g. an operator's requeue, shows within that).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: seconds between two scans for the breakdown by kind, at least (the rest is read each time):
#: the scan runs on the event loop, and a backlog drain changes the totals all the time
BREAKDOWN_EVERY = 60.0
#: ... and at most, while someone reads
BREAKDOWN_MAX_AGE = 300.0


@dataclass(frozen=True, slots=True)
class Backlog:
    """The outbox's rows at one moment; ``by_kind`` is ``breakdown_age_s`` seconds old."""

    pending: int
    in_flight: int
    #: from the breakdown (rejected rows have no index)
    rejected: int
    #: the ``created_at`` (time.time()) of the oldest row pending or in flight, None: none
    oldest_created: float | None
    #: kind -> state -> rows
    by_kind: dict[str, dict[str, int]]
    breakdown_age_s: float


class BacklogReader:
    """Reads :class:`Backlog` from the outbox file; use from the event loop's thread only."""

    def __init__(
        self,
        path: Path,
        breakdown_every: float = BREAKDOWN_EVERY,
        breakdown_max_age: float = BREAKDOWN_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.breakdown_every = breakdown_every
        self.breakdown_max_age = breakdown_max_age
        self.clock = clock
        self._db: sqlite3.Connection | None = None
        self._breakdown: dict[str, dict[str, int]] = {}
        self._breakdown_at: float | None = None

    def read(self) -> Backlog:
        """The figures now; raises :class:`sqlite3.Error` when the file cannot be read."""
        db = self._connection()
        pending = _count(db, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
        in_flight = _count(db, "SELECT COUNT(*) FROM outbox WHERE state = 'in_flight'")
        oldest = db.execute(
            "SELECT created_at FROM outbox WHERE state != 'rejected' ORDER BY seq LIMIT 1"
        ).fetchone()
        now = self.clock()
        if self._stale(now, pending, in_flight):
            breakdown: dict[str, dict[str, int]] = {}
            for kind, state, n in db.execute(
                "SELECT kind, state, COUNT(*) FROM outbox GROUP BY kind, state"
            ):
                breakdown.setdefault(str(kind), {})[str(state)] = int(n)
            self._breakdown, self._breakdown_at = breakdown, now
        scanned_at = self._breakdown_at
        assert scanned_at is not None
        rejected = sum(states.get("rejected", 0) for states in self._breakdown.values())
        return Backlog(
            pending=pending,
            in_flight=in_flight,
            rejected=rejected,
            oldest_created=None if oldest is None else float(oldest[0]),
            by_kind={kind: dict(states) for kind, states in self._breakdown.items()},
            breakdown_age_s=now - scanned_at,
        )

    def _stale(self, now: float, pending: int, in_flight: int) -> bool:
        if self._breakdown_at is None:
            return True
        age = now - self._breakdown_at
        if age < self.breakdown_every:
            return False
        counted = (
            sum(states.get("pending", 0) for states in self._breakdown.values()),
            sum(states.get("in_flight", 0) for states in self._breakdown.values()),
        )
        return counted != (pending, in_flight) or age >= self.breakdown_max_age

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                db.execute("PRAGMA query_only = 1")
                # a reader waits only for a checkpoint's brief exclusive moments, never long:
                # the loop must not stall on it
                db.execute("PRAGMA busy_timeout = 100")
            except sqlite3.Error:
                db.close()
                raise
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _count(db: sqlite3.Connection, query: str) -> int:
    return int(db.execute(query).fetchone()[0])
