"""Outbox: durable rows, de-duplication, resend schedule, ack deletion, corrupt-file handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.outbox import NewRow, Outbox


def _row(n: int, device: str = "tono-1") -> NewRow:
    return NewRow(msg_id=f"id-{n}", device=device, topic=f"t/{device}", payload=b"{}")


@pytest.fixture
def box(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "state" / "outbox.sqlite")


def test_pragmas_are_wal_and_full(box: Outbox) -> None:
    assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL for readings
    assert box._lazy.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: bookkeeping


def test_duplicates_are_ignored(box: Outbox) -> None:
    assert box.add([_row(1), _row(2)]) == 2
    assert box.add([_row(2), _row(3)]) == 1
    assert [r.msg_id for r in box.rows()] == ["id-1", "id-2", "id-3"]


def test_due_resend_confirm_cycle(box: Outbox) -> None:
    box.add([_row(1), _row(2), _row(3)], now=100.0)
    assert [r.msg_id for r in box.due(2, resend_after=30, now=100.0)] == ["id-1", "id-2"]
    box.mark_sent(["id-1", "id-2"], now=100.0)
    assert [r.msg_id for r in box.due(10, resend_after=30, now=110.0)] == ["id-3"]
    # no ack after resend_after: sent again, oldest first
    assert [r.msg_id for r in box.due(10, resend_after=30, now=131.0)] == ["id-1", "id-2", "id-3"]
    assert box.confirm(["id-1", "id-9"]) == 1
    assert box.counts() == {"pending": 1, "in_flight": 1, "rejected": 0}
    assert box.requeue_in_flight() == 1
    assert box.counts() == {"pending": 2, "in_flight": 0, "rejected": 0}


def test_rejected_rows_are_kept_and_never_resent(box: Outbox) -> None:
    box.add([_row(1)], now=0.0)
    box.mark_sent(["id-1"], now=0.0)
    box.reject("id-1", "broker refused: Not authorized (135)")
    assert box.due(10, resend_after=1, now=1000.0) == []
    (row,) = box.rows()
    assert (row.state, row.reason, row.attempts) == (
        "rejected",
        "broker refused: Not authorized (135)",
        1,
    )
    box.mark_sent(["id-1"])
    assert next(box.rows()).state == "rejected"


def test_rows_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    first = Outbox(path)
    first.add([_row(1)])
    first.close()
    second = Outbox(path)
    assert [r.msg_id for r in second.rows()] == ["id-1"]


def test_corrupt_file_is_moved_aside_never_deleted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4000)
    box = Outbox(path)
    box.add([_row(1)])
    (aside,) = tmp_path.glob("o.sqlite.corrupt-*")
    assert aside.read_bytes().startswith(b"SQLite format 3\x00\x13")
    assert "outbox corrupt" in caplog.text
    assert [r.msg_id for r in box.rows()] == ["id-1"]


def test_check_constraint_refuses_unknown_kind(box: Outbox) -> None:
    from edge.outbox import OutboxError

    with pytest.raises(OutboxError, match="cannot store 1 rows"):
        box.add([NewRow("x", "d", "t", b"{}", kind="gossip")])
    assert list(box.rows()) == []
    box.add([_row(1)])  # the failed transaction was rolled back: the outbox still works
    assert [r.msg_id for r in box.rows()] == ["id-1"]


def test_inspection_never_moves_a_corrupt_file(tmp_path: Path) -> None:
    from edge.outbox import OutboxError

    path = tmp_path / "o.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4000)
    with pytest.raises(OutboxError, match="is corrupt"):
        Outbox(path, repair=False)
    assert path.exists()
    assert not list(tmp_path.glob("*.corrupt-*"))
