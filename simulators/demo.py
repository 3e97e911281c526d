"""``make demo``: a compressed screening session on simulated hardware, end to end.

Starts a real mosquitto on a free loopback port, the reference backend, the gateway daemon and
the simulated devices (all as ``santebus`` processes reading ``examples/simulated-bus.toml``),
runs for ``DEMO_SECONDS`` (default 60), stops everything cleanly and accounts for every reading
the simulators produced. The last line is the accounting; the exit code is 1 when anything is
unaccounted for.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from simulators.harness import Mosquitto, Stack


def main() -> int:
    seconds = float(os.environ.get("DEMO_SECONDS", "60"))
    config = Path(os.environ.get("DEMO_CONFIG", "examples/simulated-bus.toml"))
    work = Path(os.environ.get("DEMO_DIR", ".demo")).resolve()
    shutil.rmtree(work, ignore_errors=True)
    broker = Mosquitto(work / "broker").start()
    port = f"serial://{work / 'dev' / 'tono-1'}?baudrate=9600"
    stack = Stack(config, work, broker, [f"devices.tono-1.transport={port}"])
    print(f"demo: broker on 127.0.0.1:{broker.port}, {seconds:.0f} s session, logs in {stack.logs}")
    try:
        stack.start_backend()
        stack.start_daemon()
        sim = stack.start_simulator(seconds)
        started = time.monotonic()
        while sim.alive():
            time.sleep(5)
            elapsed = time.monotonic() - started
            if sim.alive():
                made = len(stack.ledger_entries())
                print(f"demo: t={elapsed:3.0f}s  readings produced so far: {made}")
        sim_code = sim.wait(5)
        drained = stack.wait_drained(60)
    finally:
        stack.stop()
    result, exported = stack.accounting()
    entries = stack.ledger_entries()
    statuses = Counter(e["status"] for e in entries)
    values = [e["value"] for e in entries if e["value"] is not None]
    print(
        f"demo: simulator exit {sim_code} (0: every record acknowledged), outbox drained: {drained}"
    )
    print(f"demo: readings by device status: {dict(sorted(statuses.items()))}")
    if values:
        print(
            f"demo: IOP mean {sum(values) / len(values):.1f} mmHg, {len(values)} numeric readings"
        )
    print(
        f"demo: backend holds {len(exported)} Observations"
        f" ({result.duplicates_at_backend} duplicate readings,"
        f" {result.unexpected_at_backend} not in the ledger)"
    )
    print(result.line())
    return 0 if result.unaccounted == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
