"""Raw-signal devices end to end: simulated NIBP module and air-puff front-end -> daemon -> backend.

``santebus simulate`` runs both front-ends on ptys, fed by the physiological generators
(simulators/physio), with line noise, lost frames, pulled cables and measurements the NIBP
module aborts; the daemon reassembles each recording, applies the transducer calibration,
derives the values with the signal core and publishes them. Every measurement in the ledger must
be at the backend exactly once (derived values match on device, code and time: the value is an
estimate), refused records must be published without numbers and announced by an event, and
the calibration must have been applied (the transducers are off by 5 mmHg).
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import pytest
from fhir.resources.R4B.observation import Observation

from simulators.accounting import derived_errors
from simulators.harness import Mosquitto, Stack
from tests.contract import errors

pytestmark = pytest.mark.e2e

CONFIG = """\
[gateway]
bus_id = "bus-raw-e2e"
state_dir = "/nonexistent"  # set by the harness
timezone = "Europe/Paris"

[mqtt]
host = "127.0.0.1"
tls = false
resend_after = 3.0

[devices.nibp-1]
kind = "nibp"
transport = "serial://{dev}/nibp-1?baudrate=115200"
serial_number = "SIM-NIBP-0001"
pressure_gain = 0.0102
pressure_offset = 5.0
reconnect_max = 1.0

[devices.ora-1]
kind = "airpuff"
transport = "serial://{dev}/ora-1?baudrate=115200"
serial_number = "SIM-ORA-0001"
pressure_gain = 0.0098
pressure_offset = 5.0
reconnect_max = 1.0

[simulation]
seed = 11
drain_timeout = 40.0

[simulation.devices.nibp-1]
kind = "nibp"
patients_per_hour = 1200
speed = 20
fs = 250
sensor_gain = 0.0102
sensor_offset = 5.0
noise_rate = 0.01
drop_rate = 0.01
unplug_every = 9.0
unplug_for = 1.0
over_pressure_rate = 0.2

[simulation.devices.ora-1]
kind = "airpuff"
patients_per_hour = 1500
speed = 20
sensor_gain = 0.0098
sensor_offset = 5.0
noise_rate = 0.01
drop_rate = 0.01
unplug_every = 7.0
unplug_for = 1.0
"""

CODES = {
    "nibp-1": {"8480-6", "8462-4", "8478-0", "8867-4"},
    "ora-1": {"79892-6", "79893-4", "corneal-hysteresis", "iop-corneal-compensated"},
}


def test_raw_recordings_are_analysed_and_delivered_once_through_line_faults(
    tmp_path: Path, broker: Mosquitto
) -> None:
    config = tmp_path / "bus.toml"
    config.write_text(CONFIG.format(dev=tmp_path / "dev"))
    stack = Stack(config, tmp_path, broker, [])
    try:
        stack.start_backend()
        sim = stack.start_simulator(duration=25)
        time.sleep(0.5)  # the ptys; the daemon would retry anyway
        stack.start_daemon()
        assert sim.wait(120) == 0, "a simulated device still holds unacknowledged measurements"
        assert stack.wait_drained(60)
        assert stack.daemon is not None
        assert stack.daemon.stop() == 0
    finally:
        stack.stop()
    result, exported = stack.accounting()
    assert result.produced >= 40, f"scenario too small to prove anything: {result}"
    assert result.unaccounted == 0, result.line()
    assert result.stored == result.produced, result.line()
    assert (result.duplicates_at_backend, result.unexpected_at_backend) == (0, 0)

    by_device: dict[str, set[str]] = {}
    refused = 0
    for obs in exported:
        assert errors("Observation", obs) == [], obs
        Observation.model_validate(obs)
        device = obs["device"]["identifier"]["value"]
        parts = obs.get("component", []) if "valueQuantity" not in obs and (
            "dataAbsentReason" not in obs) else [obs]  # fmt: skip
        by_device.setdefault(device, set()).update(p["code"]["coding"][0]["code"] for p in parts)
        texts = [p.get("dataAbsentReason", {}).get("text", "") for p in parts]
        if any(t.startswith("Refused by the gateway's signal analysis") for t in texts):
            assert obs["status"] == "preliminary"
            refused += obs["code"]["coding"][0]["code"] in ("85354-9", "79892-6", "79893-4")
    assert by_device == CODES

    # each refused record (IOPg or BP panel counted once) was announced by one event
    logs = "".join(p.read_text() for p in sorted(stack.logs.glob("daemon*.log")))
    events = re.findall(r"event type=signal\.refused", logs)
    assert len(events) == refused
    entries = stack.ledger_entries()
    aborted = {(e["device"], e["time"]) for e in entries if e["status"] == "over-pressure"}
    assert len(aborted) <= refused
    if aborted:
        assert "code=device-aborted reason='the device aborted the measurement: over-pressure'" in (
            logs
        )
    # the transducers were 5 mmHg off: without the configured calibration every estimate
    # would be 5 mmHg low; the tonometry estimates are within a few tenths of the truth
    iop = [e for key, errs in derived_errors(entries, exported).items()
           if key[1] in ("79892-6", "79893-4") for e in errs]  # fmt: skip
    assert len(iop) >= 8
    assert abs(statistics.mean(iop)) < 1.5, iop
    # the line faults happened, and were repaired by asking again
    assert "nibp resend measurement" in logs
    assert "airpuff resend measurement" in logs
    assert "device lost device=nibp-1" in logs
