"""The outbox's space keeping: the page budget, eviction, the object budget and usage gauges.

Outbox (edge/outbox/store.py) inherits these from :class:`SpaceKeeping`. They are apart from the
store because they answer one question - how much room the outbox may take, and who gives way
when it is short - while the store is about the rows' life (add, send, ack, reject, requeue).
The rules themselves are in the store's docstring: ``PRAGMA max_page_count`` below the free disk
space minus a reserve, with a little headroom for the bookkeeping connection; telemetry and
event rows evicted oldest-first beyond their byte budget; chunks of large objects refused
beyond ``objects_max_bytes``; high-water levels crossed upward reported once each.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

from edge.outbox.db import guarded
from edge.outbox.model import Budget, OutboxFullError, Usage

#: the store's logger: these records keep the name they had before the split
log = logging.getLogger("edge.outbox.store")

#: pages the bookkeeping connection may use beyond the budget (256 KiB with 4 KiB pages)
_BOOKKEEPING_PAGES = 64


class SpaceKeeping:
    """Budget, eviction and gauges of :class:`~edge.outbox.store.Outbox` (a mixin).

    The store sets these attributes in its ``__init__``.
    """

    path: Path
    budget: Budget
    page_budget: int
    _db: sqlite3.Connection
    _lazy: sqlite3.Connection
    _armed: list[float]

    def _apply_page_budget(self) -> int:
        page_size = self._pragma("page_size")
        pages = self._pragma("page_count")
        free = shutil.disk_usage(self.path.parent).free
        allowed = min(self.budget.max_bytes, pages * page_size + free - self.budget.reserve_bytes)
        limit = max(allowed // page_size, pages)
        self._db.execute(f"PRAGMA max_page_count = {limit}")
        # Bookkeeping gets a little headroom above the budget: marking rows sent moves their
        # entries between the partial state indexes, which can need a fresh index page, and a
        # full outbox that cannot mark rows sent cannot drain either (caught by the disk-full
        # chaos test). New readings still stop at the budget.
        self._lazy.execute(f"PRAGMA max_page_count = {limit + _BOOKKEEPING_PAGES}")
        applied = self._pragma("max_page_count")
        log.info(
            "outbox open path=%s budget_bytes=%d disk_free_bytes=%d",
            self.path,
            applied * page_size,
            free,
        )
        return applied

    def _pragma(self, name: str) -> int:
        value: int = self._db.execute(f"PRAGMA {name}").fetchone()[0]
        return value

    def _check_object_budget(self, before: int) -> None:
        """Refuse (roll back) a batch whose chunks took the object gauge past its budget.

        Called in the insert's transaction, after it; ``before`` is the gauge before it. The
        gauge (kept by triggers) grows only by the chunk bytes newly stored: re-ingesting an
        object already held, or storing readings, is never refused here.
        """
        used = self._gauge()
        limit = self.budget.object_limit
        if used > before and used > limit:
            raise OutboxFullError(
                f"outbox object budget full: an object of {used - before} bytes not stored in "
                f"{self.path} ({before} of {limit} object budget bytes used by earlier "
                "objects; readings are still stored)"
            )

    def _gauge(self, name: str = "object_bytes") -> int:
        row = self._db.execute("SELECT value FROM gauges WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _evict(self) -> int:
        """Drop the oldest telemetry/event rows beyond ``telemetry_max_bytes`` (never clinical).

        Returns the bytes of telemetry/event payload left.
        """
        total = int(
            self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox WHERE kind != 'clinical'"
            ).fetchone()[0]
        )
        excess = total - self.budget.telemetry_max_bytes
        if excess <= 0:
            return total
        evicted = freed = 0
        for seq, size in self._db.execute(
            "SELECT seq, LENGTH(payload) FROM outbox WHERE kind != 'clinical' ORDER BY seq"
        ).fetchall():
            if freed >= excess:
                break
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            evicted, freed = evicted + 1, freed + int(size)
        self._bump("telemetry_evicted_rows", evicted)
        self._bump("telemetry_evicted_bytes", freed)
        log.warning("outbox telemetry evicted rows=%d bytes=%d", evicted, freed)
        return total - freed

    def _bump(self, name: str, by: int, db: sqlite3.Connection | None = None) -> None:
        (db or self._db).execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    @guarded
    def object_bytes(self) -> int:
        """Payload bytes of the rows of priority > 0 (chunks), against ``objects_max_bytes``."""
        return self._gauge()

    @guarded
    def usage(self) -> Usage:
        page_size = self._pragma("page_size")
        used = (self._pragma("page_count") - self._pragma("freelist_count")) * page_size
        return Usage(
            used_bytes=used,
            budget_bytes=self.page_budget * page_size,
            disk_free_bytes=shutil.disk_usage(self.path.parent).free,
        )

    def high_water_crossed(self) -> list[float]:
        """Levels (fractions of the budget) crossed upward since the last call.

        A level re-arms once usage falls 5 % below it; the caller raises one event per level.
        """
        usage = self.usage()
        fill = usage.used_bytes / usage.budget_bytes if usage.budget_bytes else 1.0
        crossed = [level for level in self._armed if fill >= level]
        self._armed = sorted(
            {level for level in self._armed if level not in crossed}
            | {level for level in self.budget.high_water if fill < level - 0.05}
        )
        return crossed
