"""SQLite helpers of the outbox.

Error mapping, immediate transactions, the full-disk test, and the migration of files of an
earlier schema (versioned by ``PRAGMA user_version`` since version 3).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from edge.outbox.model import SCHEMA, SCHEMA_VERSION, OutboxError

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)


def guarded(method: Callable[P, T]) -> Callable[P, T]:
    """Turn sqlite3 errors into :class:`OutboxError` naming the operation."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {method.__name__} failed: {exc}") from exc

    return wrapper


def is_full(exc: sqlite3.Error) -> bool:
    # SQLITE_FULL (13): "database or disk is full" - also what max_page_count produces
    return getattr(exc, "sqlite_errorcode", None) == 13 or "full" in str(exc).lower()


class Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        elif self._db.in_transaction:
            self._db.execute("ROLLBACK")


#: columns added since the first schema: (name, SQL type and default)
_ADDED_COLUMNS = (("priority", "INTEGER NOT NULL DEFAULT 0"), ("schema", "TEXT"))


def schema_version(db: sqlite3.Connection) -> int:
    """The file's ``PRAGMA user_version``: 0 for files written before it was recorded."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection) -> list[str]:
    """Bring an outbox file (fresh, or of an earlier schema) to :data:`SCHEMA_VERSION`.

    Read-only first: a file already at this version (``PRAGMA user_version``) is not written,
    so opening it never waits for the write lock that another connection (the daemon, an
    operator's ``santebus outbox requeue``) may hold. Otherwise, in one ``BEGIN IMMEDIATE``
    transaction that checks again (another process may have migrated meanwhile): the columns
    the file lacks are added (``ALTER TABLE ... ADD COLUMN`` keeps every row, the new column
    taking its default), an ``outbox_pending`` index not on ``(priority, seq)`` is dropped,
    the schema script creates what is missing, the object byte gauge is computed, and
    ``user_version`` is set. A file of a newer version (a downgrade) is left as it is, with a
    warning. Any SQLite error becomes :class:`OutboxError`. Returns what it changed.
    """
    try:
        found = schema_version(db)
        if found >= SCHEMA_VERSION:
            if found > SCHEMA_VERSION:
                log.warning(
                    "outbox schema version %d is newer than this daemon's %d: a downgrade,"
                    " not supported (docs/operations.md, the outbox)",
                    found,
                    SCHEMA_VERSION,
                )
            return []
        with Tx(db):
            if schema_version(db) >= SCHEMA_VERSION:
                return []  # migrated by another process while we waited for the lock
            done = _upgrade(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return done
    except sqlite3.Error as exc:
        busy = getattr(exc, "sqlite_errorcode", None) in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
        hint = " (another process holds its write lock; retry once it is done)" if busy else ""
        raise OutboxError(f"cannot bring the outbox schema up to date: {exc}{hint}") from exc


def _upgrade(db: sqlite3.Connection) -> list[str]:
    done: list[str] = []
    columns = {r[1] for r in db.execute("PRAGMA table_info(outbox)")}
    if columns:
        for name, definition in _ADDED_COLUMNS:
            if name not in columns:
                db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {definition}")
                done.append(f"column {name}")
        indexed = [r[2] for r in db.execute("PRAGMA index_info(outbox_pending)")]
        if indexed and indexed != ["priority", "seq"]:
            db.execute("DROP INDEX outbox_pending")
            done.append("index outbox_pending")
    for statement in _statements(SCHEMA):
        db.execute(statement)
    # The triggers keep it from now on; rows already there are counted once, here.
    db.execute(
        "INSERT OR REPLACE INTO gauges (name, value) SELECT 'object_bytes',"
        " COALESCE(SUM(LENGTH(payload)), 0) FROM outbox WHERE priority > 0"
    )
    if columns:
        done.append(f"schema version {SCHEMA_VERSION}")
    return done


def _statements(script: str) -> list[str]:
    """The statements of ``script``, one by one (``executescript`` would commit our BEGIN)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        out.append(pending.strip())
    return out
