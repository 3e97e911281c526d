"""SQLite helpers of the outbox: error mapping, immediate transactions, the full-disk test."""

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
