"""SQLite helpers of the outbox.

Error mapping, immediate transactions, the full-disk test, and the migration of files of an
earlier schema.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from edge.outbox.model import OutboxError

P = ParamSpec("P")
T = TypeVar("T")


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


def migrate(db: sqlite3.Connection) -> list[str]:
    """Bring an outbox file of an earlier schema up to date, in one transaction.

    Run before the schema script: it adds the columns that file lacks (``ALTER TABLE ... ADD
    COLUMN``, which keeps every row, the new column taking its default) and drops an
    ``outbox_pending`` index that is not on ``(priority, seq)``, which the script then creates
    again. A fresh file has no ``outbox`` table yet: nothing to do. Returns what it changed.
    """
    done: list[str] = []
    with Tx(db):
        columns = {r[1] for r in db.execute("PRAGMA table_info(outbox)")}
        if not columns:
            return done
        for name, definition in _ADDED_COLUMNS:
            if name not in columns:
                db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {definition}")
                done.append(f"column {name}")
        indexed = [r[2] for r in db.execute("PRAGMA index_info(outbox_pending)")]
        if indexed and indexed != ["priority", "seq"]:
            db.execute("DROP INDEX outbox_pending")
            done.append("index outbox_pending")
    return done
