"""The ground-truth ledger: one JSON line per reading a simulator produced, flushed at once.

``{"device": ..., "code": ..., "value": ..., "unit": ..., "time": ..., "status": ...}`` with
``time`` the device-side time in ISO 8601 and ``value`` null when the device gave no number.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any


class Ledger:
    """Append-only JSON lines; each line is fsync'd so a crash keeps what was produced."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, **entry: Any) -> None:
        self._file.write(json.dumps(entry, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_ledger(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
