"""The outbox's read queries that choose what to send: rows by priority, objects capped.

Rows of priority 0 (readings, events, telemetry) go first, oldest first. Rows of a higher
priority - the chunks of a large object (edge/publish/objects.py) - fill only the room the
small rows leave, lowest priority then oldest first, and never more than
``max_object_in_flight`` of them are outstanding at once: published less than
``resend_after`` seconds ago and not yet acknowledged by the backend. With the forwarder's
window and the broker's receive queue taken by at most that many chunks, a reading committed
during a 10 MB upload waits behind at most that many chunks on the link, never the whole object.
The cap also bounds what an absent backend costs: at most that many chunks are re-sent per
``resend_after``.

Chunks are chosen least tried first - ``(priority, attempts, seq)``, pending and stale alike -
so an object the backend never acks (its manifest lost or refused, until the backend rejects
its chunks) cannot keep the capped slots from the objects after it: their fresh chunks
(attempts 0) go first, and a stale chunk is sent again only when none of fewer attempts waits.
Readings stay in seq order.

Every query runs on an index: ``outbox_pending`` on ``(priority, seq)`` (an equality on priority
0, then seq order), ``outbox_object_pending`` on ``(priority, attempts, seq)`` for pending
chunks, and ``outbox_in_flight`` on ``sent_at``. No query filters or sorts a chunk on a column
read from the table: priority, state and attempts come after the payload in a row, so reading
them walks the chunk's overflow pages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from edge.outbox.model import Row

COLUMNS = (
    "seq, msg_id, device, kind, topic, payload, state, attempts, created_at, sent_at, reason,"
    " priority, schema"
)


def due_rows(
    db: sqlite3.Connection,
    limit: int,
    stale_before: float,
    max_object_in_flight: int | None = None,
) -> list[Row]:
    """Up to ``limit`` rows to publish: priority 0 first (by seq), then chunks, least tried first.

    A row is due when pending, or in flight and sent before ``stale_before`` (its backend ack
    is overdue). ``max_object_in_flight`` None: chunks fill whatever priority 0 leaves of
    ``limit``, uncapped.
    """
    small = _due(db, "priority = 0", limit, stale_before)
    room = limit - len(small)
    if room <= 0:
        return small  # a backlog of small rows: the chunks wait, and are not even counted
    if max_object_in_flight is not None:
        (outstanding,) = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE state = 'in_flight' AND sent_at >= ?"
            " AND priority > 0",
            (stale_before,),
        ).fetchone()
        room = min(room, max_object_in_flight - int(outstanding))
    if room <= 0:
        return small
    chunks = _due(db, "priority > 0", room, stale_before)
    return small + chunks


#: the pending query per class of rows: readings by seq, chunks least tried first
_PENDING = {
    "priority = 0": "SELECT {c} FROM outbox WHERE state = 'pending' AND priority = 0"
    " ORDER BY priority, seq LIMIT ?",
    "priority > 0": "SELECT {c} FROM outbox WHERE state = 'pending' AND priority > 0"
    " ORDER BY priority, attempts, seq LIMIT ?",
}


def _due(db: sqlite3.Connection, where: str, limit: int, stale_before: float) -> list[Row]:
    # Two index range scans rather than one OR (which scans the whole table): the drain of a
    # large backlog calls this once per quarter window.
    pending = db.execute(_PENDING[where].format(c=COLUMNS), (limit,)).fetchall()
    # ORDER BY sent_at, not seq: the partial index answers it, where ORDER BY seq made the
    # planner walk the whole table looking for stale rows that mostly do not exist.
    stale = db.execute(
        f"SELECT {COLUMNS} FROM outbox WHERE state = 'in_flight' AND sent_at < ? AND {where}"
        " ORDER BY sent_at LIMIT ?",
        (stale_before, limit),
    ).fetchall()
    if where == "priority = 0":
        ordered = sorted(pending + stale, key=lambda r: r[0])  # seq
    else:
        ordered = sorted(pending + stale, key=lambda r: (r[11], r[7], r[0]))  # (prio, tries, seq)
    return [Row(*r) for r in ordered[:limit]]


def iter_rows(db: sqlite3.Connection, state: str | None, limit: int | None) -> Iterator[Row]:
    """Every row, or those in ``state``, by seq; at most ``limit``."""
    query = f"SELECT {COLUMNS} FROM outbox"
    args: list[object] = []
    if state is not None:
        query += " WHERE state = ?"
        args.append(state)
    query += " ORDER BY seq"
    if limit is not None:
        query += " LIMIT ?"
        args.append(limit)
    for r in db.execute(query, args):
        yield Row(*r)
