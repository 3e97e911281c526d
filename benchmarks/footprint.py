"""Footprint: RSS and CPU of the full daemon with every simulated device, idle and busy.

Issue #9 (and issue #3, benchmark d). Each phase reads one process from /proc (benchmarks/
procfs.py): CPU in % of one core over the window, VmRSS sampled every second (the window's
last and largest value), VmHWM (the peak since the process started, start-up included).

* idle - the real daemon (``santebus run``) with every device of ``make demo``
  (simulators/demo.py: two CT-80 tonometers, the NIBP module and the air-puff front-end on
  ptys, a Bluetooth LE blood-pressure monitor and glucometer on the simulated radio, the cabin
  climate and fridge logger on a simulated RS-485 line and the power system over Modbus TCP),
  all connected, with no patients (0.01 per hour: none in the window). The Modbus units are
  still polled and their telemetry published, and the glucometer still asked for new records:
  that is what an idle bus does;
* busy - the same with the demo's patient flow (a patient every 3 s at each tonometer, every
  10-12 s at the raw-signal devices, a BLE measurement every 15 s per device), a visit open at
  each station so that readings are bound to it;
* idle-lean - idle again, the daemon started through benchmarks/lean_daemon.py, which runs it
  as ``santebus run`` does without importing the CLI's other commands: the difference is what
  those imports (matplotlib among them) cost the daemon;
* telemetry - a process running only the daemon's telemetry path at 20 samples/s
  (``TelemetryBuffer`` -> ``Outbox`` -> ``Forwarder`` -> paho), issue #3's measurement, kept
  for comparison with its first figures.

The daemon reads the demo's config without its ``[simulation]`` table, as a production config
is: the table would make it load the simulators' scenario schema to validate it.

Usage, from the repository root: ``python -m benchmarks.footprint [SECONDS] [--warmup W]
[--phases idle,busy,idle-lean,telemetry]`` (defaults: all, 30 s windows after 20 s warm-ups;
about 4 minutes). Prints one line per phase, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.procfs import CpuWindow, cpu_seconds, memory
from simulators.harness import Mosquitto, Process, Stack, santebus

ROOT = Path(__file__).parents[1]
DEMO_CONFIG = ROOT / "examples" / "simulated-bus.toml"
PHASES = ("idle", "busy", "idle-lean", "telemetry")


def production_shaped(config: Path, out: Path) -> Path:
    """The config without its ``[simulation]`` tables (which come last in the demo's)."""
    lines = config.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if line.startswith("[simulation"))
    out.write_text("".join(lines[:cut]))
    return out


def idle_overrides() -> list[str]:
    """No patients at any device (0.01 per hour; zero is not a valid rate)."""
    from simulators.demo import BLE_DEVICES, RAW_DEVICES, STATIONS
    from simulators.demo_eye import REFRACTOR, RETINOGRAPH

    sets = [f"simulation.devices.{d}.patients_per_hour=0.01" for d in STATIONS
            if d.startswith("tono")]  # fmt: skip
    sets += [f"simulation.devices.{d}.patients_per_hour=0.01" for d in RAW_DEVICES]
    for device in BLE_DEVICES:
        sets += [f"simulation.devices.{device}.measurements_per_hour=0.01",
                 f"simulation.devices.{device}.stored_at_start=0"]  # fmt: skip
    # the eye station of issue #10 (simulators/demo_eye.py): no photograph, no refraction
    sets += [f"simulation.devices.{RETINOGRAPH}.photos_per_hour=0.01",
             f"simulation.devices.{REFRACTOR}.patients_per_hour=0.01"]  # fmt: skip
    return sets


def stored_counts(db: Path) -> tuple[int, int]:
    """(Observations, telemetry packs and events) the reference backend holds."""
    if not db.exists():
        return 0, 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        obs = con.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
        monitoring = con.execute("SELECT COUNT(*) FROM monitoring").fetchone()[0]
        return int(obs), int(monitoring)
    except sqlite3.OperationalError:  # the backend has not created its tables yet
        return 0, 0
    finally:
        con.close()


def watch(pid: int, others: list[int], seconds: float) -> dict[str, float]:
    """CPU % of ``pid`` (and of ``others`` together) over ``seconds``; RSS each second."""
    window = CpuWindow([pid, *others]).start()
    peak_rss = 0.0
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))
        peak_rss = max(peak_rss, memory(pid).rss_mb)
    cpu = window.percent()
    mem = memory(pid)
    return {
        "cpu_percent": cpu[pid],
        "rss_mb": mem.rss_mb,
        "window_max_rss_mb": max(peak_rss, mem.rss_mb),
        "hwm_mb": mem.hwm_mb,
        "pss_mb": mem.pss_mb if mem.pss_mb is not None else float("nan"),
        "simulators_cpu_percent": sum(cpu[p] for p in others),
    }


def full_daemon(
    work: Path, busy: bool, warmup: float, seconds: float, lean: bool = False
) -> dict[str, float]:
    """One phase: broker, backend, every demo device and the daemon; the daemon measured.

    ``lean``: the daemon started through benchmarks/lean_daemon.py instead of the CLI.
    """
    from simulators.demo import STATIONS, _calibrations, _two_stations

    work.mkdir(parents=True)
    overrides = _two_stations(work) + ([] if busy else idle_overrides())
    overrides.append("gateway.log_level=WARNING")
    _calibrations(work / "state" / "calibration")
    broker = Mosquitto(work / "broker").start()
    stack = Stack(DEMO_CONFIG, work, broker, overrides)
    sets = [item for item in [f"mqtt.port={broker.port}", f"gateway.state_dir={work / 'state'}",
                              *overrides] if not item.startswith("simulation.")]  # fmt: skip
    config = str(production_shaped(DEMO_CONFIG, work / "bus.toml"))
    argv = (
        [sys.executable, "-m", "benchmarks.lean_daemon", config, *sets]
        if lean
        else santebus("run", "--config", config, *(a for item in sets for a in ("--set", item)))
    )
    daemon: Process | None = None
    try:
        stack.start_backend()
        daemon = Process("daemon", argv, stack.logs)
        simulator = stack.start_simulator(warmup + seconds + 60)
        for station in dict.fromkeys(STATIONS.values()) if busy else ():  # readings bound
            stack.run_cli("visit", "start", "--station", station, "--visit", f"V-FP-{station}")
        time.sleep(warmup)  # imports, outbox check, ptys, BLE connections, first Modbus polls
        if not daemon.alive():
            raise RuntimeError(f"the daemon exited; see {daemon.log_path}")
        before = stored_counts(stack.db)
        figures = watch(daemon.proc.pid, [simulator.proc.pid], seconds)
        after = stored_counts(stack.db)
        figures["observations"] = after[0] - before[0]
        figures["telemetry_and_events"] = after[1] - before[1]
        return figures
    finally:
        if daemon is not None:
            daemon.stop()
        stack.stop()  # simulator, backend and the broker


def telemetry_child(port: int, state: Path, seconds: float, hz: float) -> None:
    """Run in a child process: the telemetry path at ``hz`` samples/s; prints its own figures."""
    from edge.outbox import Outbox
    from edge.pipeline.telemetry import Sample, TelemetryBuffer
    from edge.publish.forwarder import Forwarder
    from edge.publish.mqtt import PahoPublisher
    from edge.publish.port import MqttSettings
    from edge.publish.topics import Topics

    topics = Topics("bus-bench")
    box = Outbox(state / "outbox.sqlite")
    settings = MqttSettings(host="127.0.0.1", port=port, client_id="footprint", tls=False)
    forwarder = Forwarder(box, lambda: PahoPublisher(settings), topics)
    buffer = TelemetryBuffer(box, topics, flush_every=5.0, wake=forwarder.wake)
    sources = ("cabin", "fridge", "power")

    async def run() -> dict[str, float]:
        tasks = [asyncio.create_task(forwarder.run()), asyncio.create_task(buffer.run())]
        await asyncio.sleep(3)  # connected, warm
        pid = os.getpid()
        c0, t0, n = cpu_seconds(pid), time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            n += 1
            source = sources[n % len(sources)]
            buffer.add(Sample(source, "temperature", 20 + n % 7 / 10, "Cel", datetime.now(UTC)))
            await asyncio.sleep(1 / hz)
        c1, t1 = cpu_seconds(pid), time.monotonic()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        mem = memory(pid)
        return {
            "cpu_percent": 100 * (c1 - c0) / (t1 - t0),
            "rss_mb": mem.rss_mb,
            "hwm_mb": mem.hwm_mb,
            "samples": n,
            "published": forwarder.stats.published,
            "commits": buffer.stats.commits,
        }

    print(json.dumps(asyncio.run(run())))
    box.close()


def telemetry_path(work: Path, seconds: float) -> dict[str, float]:
    broker = Mosquitto(work / "broker").start()
    try:
        (work / "tel").mkdir()
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.footprint", "--telemetry-child",
             str(broker.port), str(work / "tel"), str(seconds), "20"],
            check=True, capture_output=True, text=True, timeout=seconds + 120,
        ).stdout  # fmt: skip
        figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
        return figures
    finally:
        broker.stop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.footprint")
    parser.add_argument("seconds", nargs="?", type=float, default=30.0, help="each window")
    parser.add_argument("--warmup", type=float, default=20.0, help="before each window")
    parser.add_argument("--phases", default=",".join(PHASES))
    args = parser.parse_args(argv)
    phases = args.phases.split(",")
    if not set(phases) <= set(PHASES):
        parser.error(f"--phases: a comma-separated subset of {','.join(PHASES)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as for Ctrl-C
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="santebus-footprint-") as tmp:
        for phase in phases:
            print(f"footprint: {phase} ...", flush=True)
            work = Path(tmp) / phase
            if phase == "telemetry":
                work.mkdir()
                results[phase] = telemetry_path(work, args.seconds)
            else:
                lean = phase == "idle-lean"
                results[phase] = full_daemon(work, phase == "busy", args.warmup, args.seconds, lean)
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}"
        f"; windows of {args.seconds:.0f} s after {args.warmup:.0f} s warm-up"
    )
    for phase in PHASES[:3]:
        if phase in results:
            r = results[phase]
            print(f"daemon {phase}, every demo device: CPU {r['cpu_percent']:.2f} % of a core, "
                  f"RSS {r['rss_mb']:.1f} MB (window max {r['window_max_rss_mb']:.1f}, HWM "
                  f"{r['hwm_mb']:.1f}, Pss {r['pss_mb']:.1f}); {r['observations']:.0f} "
                  f"Observations and {r['telemetry_and_events']:.0f} telemetry packs/events "
                  f"stored in the window; simulators {r['simulators_cpu_percent']:.1f} % "
                  "of a core")  # fmt: skip
    if "telemetry" in results:
        t = results["telemetry"]
        print(f"telemetry path at 20 Hz ({t['samples']:.0f} samples, {t['published']:.0f} packs "
              f"published, {t['commits']:.0f} group commits): CPU {t['cpu_percent']:.2f} % of a "
              f"core, RSS {t['rss_mb']:.1f} MB (HWM {t['hwm_mb']:.1f} MB)")  # fmt: skip
    rounded = {p: {k: round(v, 2) for k, v in r.items()} for p, r in results.items()}
    print(json.dumps({"benchmark": "footprint", "seconds": args.seconds, **rounded}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--telemetry-child"]:
        telemetry_child(int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    else:
        main(sys.argv[1:])
