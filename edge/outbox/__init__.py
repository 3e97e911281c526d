"""Durable store-and-forward of outgoing messages (SQLite WAL, synchronous=FULL)."""

from edge.outbox.model import (
    Budget,
    NewRow,
    OutboxError,
    OutboxFullError,
    Quarantined,
    Row,
    Usage,
)
from edge.outbox.store import Outbox

__all__ = [
    "Budget",
    "NewRow",
    "Outbox",
    "OutboxError",
    "OutboxFullError",
    "Quarantined",
    "Row",
    "Usage",
]
