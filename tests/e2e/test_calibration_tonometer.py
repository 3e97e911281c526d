"""Issue #8: a CT-80 tonometer verified on model eyes, from the command line, on simulated hardware.

The simulated CT-80 is on the verification bench (model-eye mode): each exam measures the model
eye in place, three exams per eye, through 10, 20 and 35 mmHg, every reading ``bias`` mmHg
high. ``santebus calibrate run tonometer-model-eyes --yes`` reads the exams the device sends
(acknowledging each: the device forgets it), judges the mean at each level against the 2 mmHg
tolerance and records a verification. A tonometer 0.4 mmHg high passes; one 3 mmHg high fails,
naming the levels. The simulator exits 0 either way: the bench's exams are owed to no backend.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from simulators.harness import Mosquitto, Stack, santebus

pytestmark = pytest.mark.e2e

CONFIG = """\
[gateway]
bus_id = "bus-cal-tono"
state_dir = "/nonexistent"  # set by the harness
timezone = "Europe/Paris"

[mqtt]
host = "127.0.0.1"
tls = false

[devices.tono-1]
kind = "ct80"
transport = "serial://{dev}/tono-1?baudrate=9600&stopbits=2"
serial_number = "SIM-CT80-0007"

[simulation]
seed = 11
drain_timeout = 2.0

[simulation.devices.tono-1]
patients_per_hour = 7200
model_eyes = [10.0, 20.0, 35.0]
model_eye_repeats = 3
model_eye_bias = {bias}
model_eye_sd = 0.3
"""

SERIAL = "SIM-CT80-0007"


def _bench(tmp_path: Path, broker: Mosquitto, bias: float) -> tuple[
    subprocess.CompletedProcess[str], dict[str, Any], int, str
]:  # fmt: skip
    """Run the verification; (the CLI's result, the stored record, simulator exit, verify out)."""
    config = tmp_path / "bus.toml"
    config.write_text(CONFIG.format(dev=tmp_path / "dev", bias=bias))
    stack = Stack(config, tmp_path, broker, [])
    try:
        sim = stack.start_simulator(duration=120)
        link = tmp_path / "dev" / "tono-1"
        deadline = time.monotonic() + 30
        while not link.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        run = subprocess.run(
            [*santebus("calibrate", "run", "tonometer-model-eyes", "--device", "tono-1", "--yes",
                       "--technician", "tech-e2e", "--reference-id", "EYESET-42",
                       "--reading-timeout", "30", "--config", str(config)), *stack.sets],
            check=False, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        listed = json.loads(stack.run_cli("calibrate", "list", "--json"))
        verify = subprocess.run(
            [*santebus("calibrate", "verify", str(listed["record"]), "--config", str(config)),
             *stack.sets], check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        sim_code = sim.stop()
    finally:
        stack.stop()
    folder = tmp_path / "state" / "calibration" / SERIAL
    record = json.loads((folder / f"{listed['record']}.json").read_text())
    assert (folder / f"{listed['record']}.png").stat().st_size > 20_000
    return run, record, sim_code, " ".join(verify.stdout.split())


def test_a_tonometer_within_tolerance_on_model_eyes_passes(
    tmp_path: Path, broker: Mosquitto
) -> None:
    run, record, sim_code, verify = _bench(tmp_path, broker, bias=0.4)
    out = " ".join(run.stdout.split())  # rich wraps long lines
    assert run.returncode == 0, out + run.stderr
    assert f"PASS VER-{SERIAL}-" in out
    assert "Place the 20 mmHg model eye (2 of 3)" in out
    assert (record["kind"], record["result"], record["model"]) == ("verification", "pass", None)
    assert (record["procedure"], record["unit"], record["tolerance"]) == (
        "tonometer-model-eyes", "mmHg", 2.0,
    )  # fmt: skip
    assert (record["reference_id"], record["technician"]) == ("EYESET-42", "tech-e2e")
    assert [p["reference"] for p in record["points"]] == [10.0, 20.0, 35.0]
    for p in record["points"]:
        # the mean of three exams, each the average of three readings of SD 0.3: SD ~0.1
        assert abs(p["error"] - 0.4) < 0.4, record["points"]
        assert p["error"] == pytest.approx(p["raw"] - p["reference"], abs=0.002)
    (check,) = record["checks"]
    assert (check["name"], check["passed"], check["limit"]) == ("repeatability", True, 1.0)
    assert "intact, consistent, valid until" in verify
    assert sim_code == 0  # the acknowledged exams owe nothing to anyone


def test_a_tonometer_reading_3_mmhg_high_fails_naming_the_levels(
    tmp_path: Path, broker: Mosquitto
) -> None:
    run, record, sim_code, verify = _bench(tmp_path, broker, bias=3.0)
    out = " ".join(run.stdout.split())
    assert run.returncode == 1, out + run.stderr
    assert f"FAIL VER-{SERIAL}-" in out
    assert "beyond ±2 mmHg at 10 mmHg (+" in out
    assert "35 mmHg (+" in out
    assert record["result"] == "fail"
    assert all(abs(p["error"] - 3.0) < 0.4 for p in record["points"]), record["points"]
    assert record["max_error"] > 2.0
    assert "the calibration failed" in verify
    assert sim_code == 0
