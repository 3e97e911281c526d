"""The acceptance scenarios of the walking skeleton, as real processes on real ptys and mosquitto.

Each test runs the simulator, the daemon and the reference backend as ``santebus`` processes,
injects a fault, and then proves from the simulator's ground-truth ledger that every reading
was stored at the backend exactly once.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fhir.resources.R4B.observation import Observation

from calibration.records import CalibrationBook, CalibrationRecord
from simulators.harness import Mosquitto, Stack, santebus
from tests.capture import capturing
from tests.contract import errors, message_for

CONFIG = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"
pytestmark = pytest.mark.e2e
VERIFICATION = CalibrationRecord(
    id="VER-SIM-CT80-0001-20261101",
    device_serial="SIM-CT80-0001",
    device_model="CT-80",
    kind="verification",
    performed_at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
    valid_until=date(2099, 12, 31),
    result="pass",
    technician="tech-e2e",
    reference_id="MODEL-EYE-1",
)


@pytest.fixture
def stack(tmp_path: Path, broker: Mosquitto) -> Iterator[Stack]:
    port = f"serial://{tmp_path / 'dev' / 'tono-1'}?baudrate=9600"
    s = Stack(
        CONFIG,
        tmp_path,
        broker,
        [
            f"devices.tono-1.transport={port}",
            "simulation.devices.tono-1.patients_per_hour=2400",
            "simulation.devices.tono-1.unplug_every=9.0",
            "simulation.devices.tono-1.unplug_for=1.5",
            "simulation.devices.tono-1.noise_rate=0.2",
            "mqtt.resend_after=3.0",
            'stations.eye.devices=["tono-1"]',
        ],
    )
    yield s
    s.stop()


def _assert_nothing_lost(stack: Stack) -> None:
    result, exported = stack.accounting()
    assert result.produced >= 10, f"scenario too small to prove anything: {result}"
    assert result.unaccounted == 0, result.line()
    assert result.stored == result.produced, result.line()
    assert result.duplicates_at_backend == 0
    assert result.unexpected_at_backend == 0
    assert len(exported) == result.produced  # exactly once: no reading under two message ids
    # what the daemon really published honours docs/asyncapi.yaml
    assert [e for obs in exported for e in errors("Observation", obs)] == []


def _logs(stack: Stack, prefix: str) -> str:
    return "".join(p.read_text() for p in sorted(stack.logs.glob(f"{prefix}*.log")))


def test_unplugged_port_garbled_frames_and_a_sigkilled_daemon_lose_nothing(stack: Stack) -> None:
    with capturing(stack.broker.port, "santebus/v1/#") as published:
        _scenario_with_a_sigkill(stack)
    # everything anyone published on the bus's topics honours docs/asyncapi.yaml, and every
    # Observation is valid FHIR R4
    kinds = Counter(message_for(m.topic) for m in published)
    assert kinds["Observation"] >= 10
    assert kinds["BackendAck"] >= 1
    assert kinds["StatusOnline"] >= 2  # births (start, restart), the Will, the clean stop
    for m in published:
        payload = json.loads(m.payload)
        assert errors(message_for(m.topic), payload) == [], m.topic
        if message_for(m.topic) == "Observation":
            Observation.model_validate(payload)


def _scenario_with_a_sigkill(stack: Stack) -> None:
    # the tonometer's verification is on record: every Observation carries it
    CalibrationBook(stack.work / "state" / "calibration").add(VERIFICATION)
    stack.start_backend()
    # reception opens a visit at the eye station before the patient sits down
    subprocess.run(
        santebus("visit", "start", "--station", "eye", "--visit", "V-E2E-0001", "--config",
                 str(CONFIG), *stack.sets),
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    first = stack.start_daemon()
    sim = stack.start_simulator(duration=30)
    time.sleep(12)
    first.kill()  # SIGKILL: no clean shutdown, records in flight on the line
    time.sleep(3)  # the device keeps measuring and holds what is not acknowledged
    stack.start_daemon()
    assert sim.wait(90) == 0, "the simulated device still holds unacknowledged records"
    assert stack.wait_drained(60)
    assert stack.daemon is not None
    assert stack.daemon.stop() == 0  # SIGTERM: clean stop
    stack.stop()
    _assert_nothing_lost(stack)
    _, exported = stack.accounting()
    # every reading, across the SIGKILL and restart, belongs to the visit open at its station
    assert {o["subject"]["identifier"]["value"] for o in exported} == {"V-E2E-0001"}
    # ... and names its device and the calibration it was measured under
    devices = [o["contained"][0] for o in exported]
    assert {(d["serialNumber"], d["modelNumber"]) for d in devices} == {("SIM-CT80-0001", "CT-80")}
    assert {json.dumps(d["extension"], sort_keys=True) for d in devices} == {json.dumps([{
        "url": "urn:santebus:fhir:extension:device-calibration",
        "extension": [{"url": "id", "valueString": VERIFICATION.id},
                      {"url": "validUntil", "valueDate": "2099-12-31"}],
    }], sort_keys=True)}  # fmt: skip
    assert not any("calibration" in n["text"] for o in exported for n in o.get("note", []))
    daemon_logs = _logs(stack, "daemon")
    # the daemon may start before the simulator's port exists; count only losses after a
    # first successful connection: those are the pulled cable (and the SIGKILL restart)
    after_connect = daemon_logs.split("device connected device=tono-1", 1)[1]
    assert "device lost device=tono-1" in after_connect  # the unplug was seen ...
    assert "down_for=" in after_connect  # ... and recovered from
    assert "daemon stopped outbox={'pending': 0, 'in_flight': 0, 'rejected': 0}" in daemon_logs
    assert "ct80 garbled frame device=tono-1 reason=" in daemon_logs  # noise was caught
    # the logs ops engineers read carry no patient identifier: no visit id, and none of the
    # 13-digit patient ids the simulated tonometer puts in its records
    assert "V-E2E-0001" not in daemon_logs
    assert not re.findall(r"(?<!\d)\d{13}(?!\d)", daemon_logs)


def test_a_broker_down_for_20_seconds_loses_nothing(stack: Stack) -> None:
    """Also: the tonometer requires a verification and has none on record here."""
    stack.start_backend()
    stack.start_daemon()
    sim = stack.start_simulator(duration=35)
    time.sleep(8)
    stack.broker.kill()
    time.sleep(20)
    stack.broker.start()  # same port, same persistence directory
    assert sim.wait(90) == 0
    assert stack.wait_drained(60)
    stack.stop()
    _assert_nothing_lost(stack)
    assert "mqtt link down" in _logs(stack, "daemon")
    _, exported = stack.accounting()
    assert {o["status"] for o in exported} == {"preliminary"}
    assert all({"text": "no calibration on record for this device"} in o["note"]
               for o in exported)  # fmt: skip
