"""``make demo``: a compressed screening session on simulated hardware, end to end.

Starts a real mosquitto on a free loopback port, the reference backend, the gateway daemon and
the simulated devices (all as ``santebus`` processes reading ``examples/simulated-bus.toml``),
runs for ``DEMO_SECONDS`` (default 60), stops everything cleanly and accounts for every reading
the simulators produced. The last line is the accounting; the exit code is 1 when anything is
unaccounted for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from simulators.harness import Mosquitto, Process, account, run_json_lines, santebus
from simulators.ledger import read_ledger


def _outbox_open(config: Path, sets: list[str]) -> int:
    out = subprocess.run(
        santebus("outbox", "stats", "--config", str(config), *sets),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counts = json.loads(out)
    return int(counts["pending"]) + int(counts["in_flight"])


def main() -> int:
    seconds = float(os.environ.get("DEMO_SECONDS", "60"))
    config = Path(os.environ.get("DEMO_CONFIG", "examples/simulated-bus.toml"))
    work = Path(os.environ.get("DEMO_DIR", ".demo")).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    broker = Mosquitto(work / "broker").start()
    sets = [
        "--set", f"mqtt.port={broker.port}",
        "--set", f"gateway.state_dir={work / 'state'}",
        "--set", f"devices.tono-1.transport=serial://{work / 'dev' / 'tono-1'}?baudrate=9600",
    ]  # fmt: skip
    logs = work / "logs"
    ledger = work / "ledger.jsonl"
    db = work / "backend.sqlite"
    print(f"demo: broker on 127.0.0.1:{broker.port}, {seconds:.0f} s session, logs in {logs}")
    backend = Process(
        "backend", santebus("backend", "--config", str(config), "--db", str(db), *sets), logs
    )
    daemon = Process("daemon", santebus("run", "--config", str(config), *sets), logs)
    sim = Process(
        "simulator",
        santebus("simulate", "--config", str(config), "--ledger", str(ledger),
                 "--duration", str(seconds), *sets),
        logs,
    )  # fmt: skip
    try:
        started = time.monotonic()
        while sim.alive():
            time.sleep(1)
            elapsed = time.monotonic() - started
            if int(elapsed) % 15 == 0:
                made = len(read_ledger(ledger)) if ledger.exists() else 0
                print(f"demo: t={elapsed:4.0f}s readings produced so far: {made}")
        sim_code = sim.wait(5)
        deadline = time.monotonic() + 60
        while _outbox_open(config, sets) and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        daemon_code = daemon.stop()
        backend.stop()
        broker.stop()
        if sim.alive():
            sim.stop()
    entries = read_ledger(ledger) if ledger.exists() else []
    exported = run_json_lines(santebus("backend", "export", "--db", str(db)))
    outbox = run_json_lines(santebus("outbox", "export", "--config", str(config), *sets))
    result = account(entries, exported, outbox)
    statuses = Counter(e["status"] for e in entries)
    values = [e["value"] for e in entries if e["value"] is not None]
    print(f"demo: simulator exit {sim_code}, daemon exit {daemon_code}")
    print(f"demo: readings by device status: {dict(sorted(statuses.items()))}")
    if values:
        print(f"demo: IOP mean {sum(values) / len(values):.1f} mmHg over {len(values)} readings")
    print(
        f"demo: backend holds {len(exported)} Observations"
        f" ({result.duplicates_at_backend} duplicate readings,"
        f" {result.unexpected_at_backend} not in the ledger)"
    )
    print(result.line())
    return 0 if result.unaccounted == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
