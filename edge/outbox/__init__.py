"""Durable store-and-forward of outgoing messages (SQLite WAL, synchronous=FULL)."""

from edge.outbox.store import NewRow, Outbox, OutboxError, Row

__all__ = ["NewRow", "Outbox", "OutboxError", "Row"]
