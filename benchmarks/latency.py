"""End-to-end latency: from the simulated tonometer emitting a record to the backend storing it.

Runs the whole stack as processes (mosquitto, reference backend, daemon, simulator on a pty)
for ``SECONDS`` (default 40) at 3,600 patients per hour, then matches each ledger reading
(wall-clock ``emitted_at``) with the backend's ``received_at`` (the backend acks right after
that commit). Usage: ``python benchmarks/latency.py [SECONDS]``.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import sys
import tempfile
from pathlib import Path

from simulators.accounting import ledger_key, observation_key
from simulators.harness import Mosquitto, Stack
from simulators.ledger import read_ledger


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 40.0
    config = Path(__file__).parents[1] / "examples" / "simulated-bus.toml"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker").start()
        stack = Stack(
            config,
            work,
            broker,
            [
                f"devices.tono-1.transport=serial://{work / 'dev' / 'tono-1'}?baudrate=9600",
                "simulation.devices.tono-1.patients_per_hour=3600",
                "simulation.devices.tono-1.unplug_every=0",
                "simulation.devices.tono-1.noise_rate=0",
                "gateway.log_level=WARNING",
            ],
        )
        try:
            stack.start_backend()
            stack.start_daemon()
            stack.start_simulator(seconds).wait(seconds + 60)
            stack.wait_drained(30)
        finally:
            stack.stop()

        db = sqlite3.connect(stack.db)
        received = {
            observation_key(json.loads(payload)): at
            for payload, at in db.execute("SELECT payload, received_at FROM observations")
        }
        db.close()

        lat = sorted(
            received[ledger_key(e)] - e["emitted_at"]
            for e in read_ledger(stack.ledger)
            if ledger_key(e) in received
        )
    if not lat:
        print("no readings matched")
        return
    print(f"machine: {platform.machine()} python {platform.python_version()}")
    print(f"readings: {len(lat)} over {seconds:.0f} s")
    print(f"latency emit->stored: p50 {lat[len(lat) // 2] * 1000:.0f} ms, "
          f"p99 {lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000:.0f} ms, "
          f"max {lat[-1] * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
