"""Footprint: RSS and CPU of the daemon idle, and of its telemetry path under 20 Hz.

Issue #3, benchmark (d). Two measurements, each of one process read from /proc:

* idle - the real daemon (``santebus run``) connected to mosquitto and to a simulated
  tonometer on a pty that sends nothing (0.01 patients per hour), after a warm-up;
* 20 Hz telemetry - the daemon has no telemetry source yet (the Modbus devices are issue #7),
  so a child process runs the daemon's own telemetry path: ``TelemetryBuffer`` (group commit
  every 5 s) -> ``Outbox`` -> ``Forwarder`` -> ``PahoPublisher`` -> the same broker, fed with
  20 samples per second. Issue #9 re-measures the whole daemon with every simulated device.

Usage, from the repository root: ``python -m benchmarks.footprint [SECONDS]`` (default 30).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from simulators.harness import Mosquitto, Stack

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def measure(pid: int, seconds: float) -> dict[str, float]:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    rss, peak = rss_mb(pid)
    return {"cpu_percent": 100 * (c1 - c0) / (t1 - t0), "rss_mb": rss, "peak_rss_mb": peak}


def idle_daemon(work: Path, seconds: float) -> dict[str, float]:
    broker = Mosquitto(work / "broker").start()
    config = Path(__file__).parents[1] / "examples" / "simulated-bus.toml"
    stack = Stack(
        config,
        work,
        broker,
        [
            f"devices.tono-1.transport=serial://{work / 'dev' / 'tono-1'}?baudrate=9600",
            "simulation.devices.tono-1.patients_per_hour=0.01",  # none in the window
            "simulation.devices.tono-1.unplug_every=0",
            "gateway.log_level=WARNING",
        ],
    )
    try:
        stack.start_backend()
        daemon = stack.start_daemon()
        stack.start_simulator(seconds + 30)
        time.sleep(8)  # imports, outbox check, connection, device handshake
        return measure(daemon.proc.pid, seconds)
    finally:
        stack.stop()  # and the broker


def telemetry_child(port: int, state: Path, seconds: float, hz: float) -> None:
    """Run in a child process: the telemetry path at ``hz`` samples/s; prints its own figures."""
    from edge.outbox import Outbox
    from edge.pipeline.telemetry import Sample, TelemetryBuffer
    from edge.publish.forwarder import Forwarder
    from edge.publish.mqtt import MqttSettings, PahoPublisher
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
        rss, peak = rss_mb(pid)
        return {
            "cpu_percent": 100 * (c1 - c0) / (t1 - t0),
            "rss_mb": rss,
            "peak_rss_mb": peak,
            "samples": n,
            "published": forwarder.stats.published,
            "commits": buffer.stats.commits,
        }

    print(json.dumps(asyncio.run(run())))
    box.close()


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        idle = idle_daemon(work / "idle", seconds)
        broker = Mosquitto(work / "broker").start()
        try:
            (work / "tel").mkdir()
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.footprint", "--telemetry-child",
                 str(broker.port), str(work / "tel"), str(seconds), "20"],
                check=True, capture_output=True, text=True, timeout=seconds + 120,
            ).stdout  # fmt: skip
            telemetry = json.loads(out.strip().splitlines()[-1])
        finally:
            broker.stop()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(f"daemon idle ({seconds:.0f} s): CPU {idle['cpu_percent']:.2f} % of a core, "
          f"RSS {idle['rss_mb']:.1f} MB (peak {idle['peak_rss_mb']:.1f} MB)")  # fmt: skip
    print(f"telemetry path at 20 Hz ({seconds:.0f} s, {telemetry['samples']:.0f} samples, "
          f"{telemetry['published']:.0f} packs published, "
          f"{telemetry['commits']:.0f} group commits): "
          f"CPU {telemetry['cpu_percent']:.2f} % of a core, RSS {telemetry['rss_mb']:.1f} MB "
          f"(peak {telemetry['peak_rss_mb']:.1f} MB)")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--telemetry-child":
        telemetry_child(int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    else:
        main()
