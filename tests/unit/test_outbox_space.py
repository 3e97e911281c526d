"""Outbox space rules: page budget (disk full), telemetry eviction, high-water levels, requeue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.outbox import Budget, NewRow, Outbox, OutboxFullError

SMALL = Budget(max_bytes=96 * 1024, reserve_bytes=0, telemetry_max_bytes=8 * 1024)


def _rows(prefix: str, n: int, size: int = 1500, kind: str = "clinical") -> list[NewRow]:
    return [NewRow(f"{prefix}-{i}", "dev", "t", b"x" * size, kind=kind) for i in range(n)]


def _fill(box: Outbox, size: int = 1500) -> None:
    for i in range(1000):
        box.add(_rows(f"r{i}", 1, size=size))


def test_a_full_budget_refuses_new_rows_clearly_and_keeps_the_old_ones(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", budget=SMALL)
    with pytest.raises(
        OutboxFullError, match=r"outbox full: 1 rows not stored in .*budget"
    ) as info:
        _fill(box)
    stored = len(list(box.rows()))
    assert "o.sqlite" in str(info.value)
    assert 20 < stored < 100
    assert [r.msg_id for r in box.rows()] == [f"r{i}-0" for i in range(stored)]  # none lost
    # deletes still work in a full outbox, and space comes back without a restart
    assert box.confirm([f"r{i}-0" for i in range(10)]) == 10
    box.add(_rows("after", 1))
    assert box.get("after-0") is not None
    assert box.integrity_ok()


def test_telemetry_is_evicted_oldest_first_and_clinical_never(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", budget=SMALL)
    box.add(_rows("clin", 5, size=2000))
    for i in range(10):
        box.add(_rows(f"tel{i}", 1, size=2000, kind="telemetry"))
    kept = [r.msg_id for r in box.rows() if r.kind == "telemetry"]
    assert kept == ["tel6-0", "tel7-0", "tel8-0", "tel9-0"]  # 4 x 2000 <= 8 KiB
    assert [r.msg_id for r in box.rows() if r.kind == "clinical"] == [f"clin-{i}" for i in range(5)]
    assert box.counters() == {"telemetry_evicted_bytes": 12000, "telemetry_evicted_rows": 6}


def test_group_commit_of_telemetry_is_one_transaction(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    statements: list[str] = []
    box._db.set_trace_callback(statements.append)
    assert box.add(_rows("t", 50, size=100, kind="telemetry")) == 50
    assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]


def test_high_water_levels_fire_once_and_rearm(tmp_path: Path) -> None:
    box = Outbox(
        tmp_path / "o.sqlite",
        budget=Budget(max_bytes=200 * 1024, reserve_bytes=0, high_water=(0.5, 0.8)),
    )
    fired: list[float] = []
    i = 0
    while box.usage().used_bytes < 0.85 * box.usage().budget_bytes:
        box.add(_rows(f"a{i}", 1, size=3000))
        fired += box.high_water_crossed()
        i += 1
    assert fired == [0.5, 0.8]
    assert box.high_water_crossed() == []
    box.confirm([r.msg_id for r in box.rows()])
    box._db.execute("VACUUM")
    assert box.high_water_crossed() == []
    assert sorted(box._armed) == [0.5, 0.8]


def test_requeue_and_lookup_by_seq_or_id(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.add(_rows("r", 2))
    box.reject("r-1", "broker refused: Not authorized (135)")
    row = box.requeue("2")
    assert row is not None
    assert (row.msg_id, row.state, row.reason) == ("r-1", "pending", None)
    assert box.requeue("nope") is None
    assert box.get("r-0") == box.get("1")
    assert box.counters()["rejected_rows"] == 1


def test_event_kind_is_accepted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.add(
        [
            NewRow(
                "e1",
                "gateway",
                "santebus/v1/b/events",
                json.dumps({"type": "x"}).encode(),
                kind="event",
            )
        ]
    )
    assert next(box.rows()).kind == "event"


def test_a_full_outbox_can_still_mark_rows_sent_and_so_drain(tmp_path: Path) -> None:
    """Marking a row sent grows it (``sent_at`` was NULL): in a page filled to the last bytes
    it must move, which needs a page, and at the budget that failed with SQLITE_FULL - a full
    outbox that could never drain (seen in the disk-full chaos test). Bookkeeping now has
    headroom above the budget. 1,988-byte payloads fill a 4 KiB page exactly (found by scan)."""
    box = Outbox(tmp_path / "o.sqlite", budget=SMALL)
    with pytest.raises(OutboxFullError):
        _fill(box, size=1988)
    pending = [r.msg_id for r in box.rows()]
    box.mark_sent(pending)
    assert box.counts()["in_flight"] == len(pending)
    assert box.confirm(pending) == len(pending)
    box.add(_rows("after", 1))
    assert box.integrity_ok()
