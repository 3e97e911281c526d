"""A process's CPU time and memory read from /proc: the meters of footprint.py and fleet.py.

No psutil (not a dependency): ``/proc/<pid>/stat`` gives utime + stime in clock ticks,
``/proc/<pid>/status`` VmRSS (resident now) and VmHWM (the resident peak since the process
started), ``/proc/<pid>/smaps_rollup`` Pss (resident pages, shared ones divided among the
processes sharing them: the fair share when many interpreters run on one machine). CPU is
reported in percent of one core over a wall-clock window, as ``top`` does.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory in MB (1 MB = 1024 KiB, as /proc reports KiB)."""

    rss_mb: float
    hwm_mb: float
    pss_mb: float | None  # None when smaps_rollup is not readable


def memory(pid: int) -> Memory:
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    pss = None
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return Memory(values["VmRSS"], values["VmHWM"], pss)


class CpuWindow:
    """CPU% of several processes over one window: ``start()``, wait, ``percent()``."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = list(pids)
        self._start: dict[int, float] = {}
        self._t0 = 0.0

    def start(self) -> CpuWindow:
        self._t0 = time.monotonic()
        self._start = {pid: cpu_seconds(pid) for pid in self.pids}
        return self

    def percent(self) -> dict[int, float]:
        """Percent of one core each process used since ``start()``."""
        now = {pid: cpu_seconds(pid) for pid in self.pids}
        elapsed = time.monotonic() - self._t0
        return {pid: 100 * (now[pid] - self._start[pid]) / elapsed for pid in self.pids}


def spread(values: Iterable[float]) -> dict[str, float]:
    """min, median and max of the values."""
    items = sorted(values)
    return {"min": items[0], "median": statistics.median(items), "max": items[-1]}
