"""CT-80 codec decode throughput and outbox commit rate (synchronous=FULL vs NORMAL).

Prints figures; never asserts on time. Run: ``make bench`` or
``.venv/bin/python benchmarks/codec_throughput.py``.
"""

from __future__ import annotations

import platform
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drivers.devices.ct80 import Ct80Record, EyeResult, IopValue, decode, encode
from edge.outbox import NewRow, Outbox
from edge.pipeline.telemetry import Sample, TelemetryBuffer
from edge.publish.topics import Topics


def _record(n: int) -> Ct80Record:
    v = IopValue("value", 10 + (n % 200) / 10)
    return Ct80Record(
        model="CT-80",
        machine_no="01",
        rom_version="BENCH",
        patient_id=f"{n:013d}",
        work_id=f"W{n:012d}",
        machine_work_id=f"{n % 10000:04d}",
        time=datetime(2026, 11, 23, 9, n // 60 % 60, n % 60),
        right=EyeResult((v, v, v), v),
        left=EyeResult((v, v, v), v),
    )


def bench_decode(count: int = 20_000) -> float:
    stream = b"".join(encode(_record(n)) for n in range(count))
    start = time.perf_counter()
    pos = got = 0
    while pos < len(stream):
        record, consumed = decode(stream[pos : pos + 4096])
        assert record is not None
        pos += consumed
        got += 1
    elapsed = time.perf_counter() - start
    assert got == count
    return count / elapsed


def bench_commits(synchronous: str, count: int = 300) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        box = Outbox(Path(tmp) / "o.sqlite")
        box._db.execute(f"PRAGMA synchronous={synchronous}")
        start = time.perf_counter()
        for n in range(count):  # one transaction per record, as the daemon does
            box.add(
                [
                    NewRow(f"id-{n}-r", "d", "t", b"x" * 900),
                    NewRow(f"id-{n}-l", "d", "t", b"x" * 900),
                ]
            )
        elapsed = time.perf_counter() - start
        box.close()
    return count / elapsed


def bench_floor(count: int = 300) -> float:
    """Raw single-row FULL commits on the same disk: the floor durable ingest is held to."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "floor.sqlite", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)")
        start = time.perf_counter()
        for _ in range(count):
            db.execute("INSERT INTO t (payload) VALUES (?)", (b"x" * 900,))
        elapsed = time.perf_counter() - start
        db.close()
    return count / elapsed


def bench_telemetry(batches: int = 50, per_batch: int = 100) -> float:
    """Telemetry rows per second with group commit (one transaction per batch)."""
    with tempfile.TemporaryDirectory() as tmp:
        box = Outbox(Path(tmp) / "o.sqlite")
        start = time.perf_counter()
        for b in range(batches):
            box.add(
                [
                    NewRow(f"t{b}-{i}", "cabin", "t", b"x" * 120, "telemetry")
                    for i in range(per_batch)
                ]
            )
        elapsed = time.perf_counter() - start
        box.close()
    return batches * per_batch / elapsed


def bench_telemetry_buffer(batches: int = 50, per_batch: int = 100) -> float:
    """Samples per second through the daemon's TelemetryBuffer (JSON, ids, group commit)."""
    with tempfile.TemporaryDirectory() as tmp:
        box = Outbox(Path(tmp) / "o.sqlite")
        buffer = TelemetryBuffer(box, Topics("bench"), max_rows=per_batch)
        t0 = datetime(2026, 11, 23, tzinfo=UTC)
        start = time.perf_counter()
        for n in range(batches * per_batch):  # a commit every per_batch samples
            buffer.add(Sample("cabin", "temperature", 21.5, "Cel", t0 + timedelta(seconds=n)))
        elapsed = time.perf_counter() - start
        assert buffer.stats.committed == batches * per_batch
        box.close()
    return batches * per_batch / elapsed


def main() -> None:
    machine = f"{platform.machine()} {platform.processor()}".strip()
    print(f"machine: {machine} python {platform.python_version()} sqlite {sqlite3.sqlite_version}")
    print(f"ct80 decode: {bench_decode():,.0f} records/s")
    full = bench_commits("FULL")
    normal = bench_commits("NORMAL")
    print(f"outbox commits, synchronous=FULL:   {full:,.0f} records/s")
    print(f"outbox commits, synchronous=NORMAL: {normal:,.0f} records/s")
    print(f"ratio NORMAL/FULL: {normal / full:.2f} (the price of durability, same run)")
    floor = bench_floor()
    telemetry = bench_telemetry()
    print(f"floor, raw single-row FULL commits: {floor:,.0f} rows/s")
    print(f"clinical ingest (Outbox.add, 1 record = 2 rows per txn): {full * 2:,.0f} rows/s"
          f" = {full * 2 / floor:.2f} x floor")  # fmt: skip
    label = "telemetry group commit (100 rows per txn: 20 Hz, one commit per 5 s)"
    print(f"{label}: {telemetry:,.0f} rows/s = {telemetry / floor:.1f} x floor")
    sampled = bench_telemetry_buffer()
    label = "telemetry through TelemetryBuffer (SenML packs, one commit per 100 samples)"
    print(f"{label}: {sampled:,.0f} samples/s = {sampled / floor:.1f} x floor")


if __name__ == "__main__":
    main()
