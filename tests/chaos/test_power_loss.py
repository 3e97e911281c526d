"""Power loss: what survives a cut is what was fsync'd - FULL keeps every acknowledged commit.

A SQLite VFS (APSW) tracks, per file, the content at its last ``xSync``: a power cut is
simulated by keeping only that durable image of every file. Rows are committed one per
transaction with the outbox's pragmas (WAL; the outbox's own code runs on the stdlib driver,
which cannot take a Python VFS, so the schema and pragmas are repeated here). With
``synchronous=FULL`` no acknowledged row may be lost at any cut point; with ``NORMAL`` the same
test must lose some, which proves the test can fail.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import apsw
import pytest

from edge.outbox.model import SCHEMA


class DurableImageFile(apsw.VFSFile):
    def __init__(self, vfs: DurableImageVFS, name: Any, flags: list[int]) -> None:
        super().__init__("", name, flags)
        self.path = Path(name.filename() if hasattr(name, "filename") else name)
        vfs.files.add(self.path)

    def xSync(self, flags: int) -> None:  # noqa: N802 - the APSW VFS API
        super().xSync(flags)
        shutil.copyfile(self.path, f"{self.path}.durable")


class DurableImageVFS(apsw.VFS):
    def __init__(self, name: str) -> None:
        self.files: set[Path] = set()
        self.name = name
        super().__init__(name, "")

    def xOpen(self, name: Any, flags: list[int]) -> DurableImageFile:  # noqa: N802
        return DurableImageFile(self, name, flags)

    def xDelete(self, filename: str, syncdir: bool) -> None:  # noqa: N802
        # a deleted file (e.g. a committed rollback journal) must not come back after the cut
        super().xDelete(filename, syncdir)
        Path(f"{filename}.durable").unlink(missing_ok=True)

    def power_cut(self, into: Path) -> Path:
        """Copy each file's last synced image into ``into``; unsynced files are gone."""
        into.mkdir()
        for path in self.files:
            durable = Path(f"{path}.durable")
            if durable.exists():
                shutil.copyfile(durable, into / path.name)
        return into / "outbox.sqlite"


def _run_until_cut(
    tmp: Path, synchronous: str, cut_after: int, vfs: DurableImageVFS
) -> tuple[apsw.Connection, list[str]]:
    db = apsw.Connection(str(tmp / "outbox.sqlite"), vfs=vfs.name)
    # EXCLUSIVE locking lets WAL run without shared memory, which Python VFS files lack
    assert db.execute("PRAGMA locking_mode = EXCLUSIVE").fetchall() == [("exclusive",)]
    db.execute("SELECT count(*) FROM sqlite_master").fetchall()  # take the lock now
    assert db.execute("PRAGMA journal_mode = WAL").fetchall() == [("wal",)]
    db.execute(f"PRAGMA synchronous = {synchronous}").fetchall()
    db.execute("PRAGMA wal_autocheckpoint = 50").fetchall()
    db.execute(SCHEMA).fetchall()
    acknowledged = []
    for n in range(cut_after):
        db.execute(
            "INSERT INTO outbox (msg_id, device, kind, topic, payload, created_at)"
            " VALUES (?, 'tono-1', 'clinical', 't', ?, 0)",
            (f"m{n}", b"x" * 700),
        )
        acknowledged.append(f"m{n}")  # the device would hear ACK now
    return db, acknowledged  # still open: the caller cuts the power before any clean close


def _survivors(path: Path) -> set[str]:
    if not path.exists():
        return set()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "outbox" not in tables:  # the cut came before the schema was ever synced
            return set()
        return {row[0] for row in db.execute("SELECT msg_id FROM outbox")}
    finally:
        db.close()


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_power_cuts(tmp_path: Path, synchronous: str) -> None:
    rng = random.Random(20261123)
    lost_runs = 0
    for trial in range(40):
        work = tmp_path / f"{synchronous}-{trial}"
        work.mkdir()
        vfs = DurableImageVFS(f"cut-{synchronous}-{trial}")
        try:
            db, acked = _run_until_cut(work, synchronous, rng.randint(1, 150), vfs)
            after = vfs.power_cut(work / "after")
            db.close()
        finally:
            vfs.unregister()
        survivors = _survivors(after)
        lost = set(acked) - survivors
        lost_runs += bool(lost)
        if synchronous == "FULL":
            assert not lost, f"cut {trial}: {len(lost)} acknowledged rows lost with FULL"
    if synchronous == "NORMAL":
        # the control: without a sync per commit, acknowledged rows do get lost
        assert lost_runs > 0, "NORMAL lost nothing: the simulation cannot detect loss"
