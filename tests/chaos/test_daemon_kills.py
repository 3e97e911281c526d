"""The daemon SIGKILLed at random points, again and again, while readings flow.

After each kill the outbox must pass ``PRAGMA integrity_check``; at the end the checker proves,
from the simulator's ledger, that every reading is stored at the backend exactly once.
``SANTEBUS_CHAOS_KILLS`` sets the number of kills (20 in ``make test``, 200 in ``make chaos``).
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path

from simulators.harness import Mosquitto, Stack
from tests.e2e.test_end_to_end import CONFIG, _assert_nothing_lost

KILLS = int(os.environ.get("SANTEBUS_CHAOS_KILLS", "20"))


def _integrity(path: Path) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def test_sigkill_at_random_points_loses_nothing(tmp_path: Path, broker: Mosquitto) -> None:
    rng = random.Random(KILLS)
    stack = Stack(
        CONFIG,
        tmp_path,
        broker,
        [
            f"devices.tono-1.transport=serial://{tmp_path / 'dev' / 'tono-1'}?baudrate=9600",
            "simulation.devices.tono-1.patients_per_hour=3600",
            "simulation.devices.tono-1.unplug_every=0",
            "simulation.devices.tono-1.noise_rate=0.05",
            "simulation.drain_timeout=90",
            "mqtt.resend_after=3.0",
        ],
    )
    outbox = tmp_path / "state" / "outbox.sqlite"
    try:
        stack.start_backend()
        sim = stack.start_simulator(duration=KILLS * 1.3 + 5)
        checks = []
        for _ in range(KILLS):
            daemon = stack.start_daemon()
            time.sleep(rng.uniform(0.4, 2.0))  # start-up, mid-commit, mid-publish, idle...
            daemon.kill()
            if outbox.exists():
                checks.append(_integrity(outbox))
        stack.start_daemon()
        assert sim.wait(KILLS * 1.3 + 120) == 0, "the device still holds unacknowledged records"
        assert stack.wait_drained(90)
    finally:
        stack.stop()
    assert len(checks) >= KILLS - 1
    assert set(checks) == {"ok"}
    _assert_nothing_lost(stack)
