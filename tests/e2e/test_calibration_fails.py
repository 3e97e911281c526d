"""Issue #8: an out-of-tolerance transducer fails its calibration with a clear report.

The simulated module's transducer is bowed (12 mmHg high at mid-scale: no straight line fits
it within +-3 mmHg) and the bench's circuit leaks 9 mmHg/min. ``santebus calibrate run`` says
FAIL, names the worst point and the failed check, exits 1, and records the failure: the PNG
banner is red, ``verify`` refuses the record and ``list`` shows the device as failed (so the
daemon flags its readings, tests/unit/test_calibration_enforcement.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from calibration.report import BANNER
from simulators.harness import Mosquitto, Stack, santebus, wait_for_paths

pytestmark = pytest.mark.e2e


CONFIG = """\
[gateway]
bus_id = "bus-cal-fail"
state_dir = "/nonexistent"  # set by the harness
timezone = "Europe/Paris"

[mqtt]
host = "127.0.0.1"
tls = false

[devices.nibp-1]
kind = "nibp"
transport = "serial://{dev}/nibp-1?baudrate=115200"
serial_number = "SIM-NIBP-0002"
pressure_gain = 0.0100

[simulation]
seed = 6
drain_timeout = 2.0

[simulation.devices.nibp-1]
kind = "nibp"
patients_per_hour = 1
sensor_gain = 0.0100
sensor_offset = -2.0
sensor_bow_mmhg = 12.0

[simulation.bench]
reference = "serial://{dev}/refman?baudrate=9600"
devices = ["nibp-1"]
leak_mmhg_per_min = 9.0
slew_mmhg_per_s = 100.0
"""


def test_an_out_of_tolerance_transducer_fails_with_a_clear_report(
    tmp_path: Path, broker: Mosquitto
) -> None:
    config = tmp_path / "bus.toml"
    config.write_text(CONFIG.format(dev=tmp_path / "dev"))
    stack = Stack(config, tmp_path, broker, [])
    try:
        sim = stack.start_simulator(duration=300)
        wait_for_paths(tmp_path / "dev" / "refman", tmp_path / "dev" / "nibp-1")
        run = subprocess.run(
            [*santebus("calibrate", "run", "nibp-transducer", "--device", "nibp-1",
                       "--reference", f"serial://{tmp_path / 'dev' / 'refman'}?baudrate=9600",
                       "--yes", "--leak-seconds", "3", "--sample-seconds", "1",
                       "--config", str(config)), *stack.sets],
            check=False, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        listed = json.loads(stack.run_cli("calibrate", "list", "--json"))
        verify = subprocess.run(
            [*santebus("calibrate", "verify", listed["record"], "--config", str(config)),
             *stack.sets], check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        sim.stop()
    finally:
        stack.stop()
    out = " ".join(run.stdout.split())  # rich wraps long lines
    assert run.returncode == 1, out
    assert "FAIL CAL-SIM-NIBP-0002-" in out
    assert "check leak:" in out
    assert "FAILED" in out
    assert (listed["result"], listed["validity"]) == ("fail", "failed")
    assert verify.returncode == 1
    assert "the calibration failed" in " ".join(verify.stdout.split())

    folder = tmp_path / "state" / "calibration" / "SIM-NIBP-0002"
    record = json.loads((folder / f"{listed['record']}.json").read_text())
    assert record["result"] == "fail"
    worst = max(abs(p["error"]) for p in record["points"])
    assert worst > 3.0  # the bow: beyond the +-3 mmHg static accuracy after adjustment
    leak = next(c for c in record["checks"] if c["name"] == "leak")
    assert (leak["passed"], leak["value"] > 6.0) == (False, True)
    # the report's banner is red: the median colour over its area (its text is a minority)
    image = mpimg.imread(folder / f"{listed['record']}.png")
    height, width = image.shape[:2]
    left, bottom, w, h = BANNER
    area = image[int((1 - bottom - h) * height) + 2 : int((1 - bottom) * height) - 2,
                 int(left * width) + 2 : int((left + w) * width) - 2, :3]  # fmt: skip
    red, green, blue = (float(np.median(area[..., i])) for i in range(3))
    assert red > 0.6 > green
    assert blue < 0.4
