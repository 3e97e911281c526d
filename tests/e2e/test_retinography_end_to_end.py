"""Retinal photographs end to end: a simulated retinograph over real DICOM networking.

The daemon, the reference backend and the simulated tonometer run as ``santebus`` processes
around a real mosquitto; the test itself is the camera (simulators/retinograph.py, a pynetdicom
SCU) sending procedurally generated fundus photographs (simulators/fundus) to the daemon's
C-STORE SCP. It checks, in one session (the stack is costly to start):

* refusals with the right status at the SCU (PS3.4 B.2.3; 0x0124 when no visit is open);
* de-identification: no byte the gateway stored or published (outbox file, backend database,
  every captured MQTT payload, the daemon's logs) holds the patient's name, ID or birth date;
* grading: one ``fundus.graded`` event per accepted photograph, compared with the generator's
  ground truth (>= 90 % on this small set; the >= 95 % on 200 images is
  tests/unit/test_fundus_grading.py);
* delivery: 9 MB photographs (2048 x 1536 RGB, uncompressed) in 256 KiB chunks across a broker
  outage and a daemon SIGKILL, both in the middle of a transfer, every object verified by
  SHA-256 at the backend and no chunk stored twice; the tonometer's Observations keep reaching
  the backend while the photographs upload (backend timestamps).
"""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread

from drivers.dicom.deidentify import find_identifiers, identifying_values
from simulators.fundus import FAULTS, generate
from simulators.harness import Mosquitto, Stack, free_port, run_json_lines, santebus, wait_for_port
from simulators.retinograph import Fault, Patient, Retinograph, SendResult, build_dataset
from tests.capture import capturing

CONFIG = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"
pytestmark = pytest.mark.e2e
PATIENT = Patient(name="DUPONT^JEANNE", patient_id="1850575123456", birth_date="19850507")
VISIT = "V-E2E-RET-01"
BIG = (1536, 2048)  # rows, columns: 9.4 MB uncompressed RGB


#: the daemon's C-STORE SCP port, per test (set by the ``stack`` fixture)
SCP: dict[str, int] = {}


@pytest.fixture
def stack(tmp_path: Path, broker: Mosquitto) -> Iterator[Stack]:
    scp = SCP["port"] = free_port()
    s = Stack(
        CONFIG,
        tmp_path,
        broker,
        [
            f"devices.tono-1.transport=serial://{tmp_path / 'dev' / 'tono-1'}?baudrate=9600",
            "simulation.devices.tono-1.patients_per_hour=3600",
            "simulation.devices.tono-1.unplug_every=0",
            "simulation.devices.tono-1.noise_rate=0",
            "devices.retino-1.kind=retinograph",
            "devices.retino-1.ae_title=SANTEBUS",
            f"devices.retino-1.port={scp}",
            'devices.retino-1.allowed_calling_aes=["RETINO1"]',
            'stations.eye.devices=["tono-1", "retino-1"]',
            "mqtt.resend_after=3.0",
        ],
    )
    yield s
    s.stop()


def _camera(calling: str = "RETINO1") -> Retinograph:
    return Retinograph("127.0.0.1", SCP["port"], called_ae="SANTEBUS", calling_ae=calling)


def _photo(pixels: np.ndarray[Any, Any], laterality: str, fault: Fault = Fault.NONE) -> Any:
    rows, columns = pixels.shape[:2]
    return build_dataset(
        PATIENT, laterality, pixels=lambda *_: pixels, rows=rows, columns=columns, fault=fault
    )


def _chunks_at_backend(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT COUNT(*) FROM object_chunks").fetchone()[0])
    except sqlite3.OperationalError:  # the backend has not made its tables yet
        return 0
    finally:
        con.close()


def _wait_chunks(db: Path, above: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while (n := _chunks_at_backend(db)) <= above:
        assert time.monotonic() < deadline, f"no chunk beyond {above} reached the backend"
        time.sleep(0.01)
    return n


def _refusals(stack: Stack) -> None:
    """Every kind of refusal, with the status the camera sees."""
    small, _ = generate(7, "clean", 512, 512)
    camera = _camera()
    # no visit open at the eye station yet: refused, the camera keeps the photograph
    (no_visit,) = camera.send(_photo(small, "R"))
    assert (no_visit.status, no_visit.error_comment) == (0x0124, "no visit open at station eye")
    subprocess.run(
        santebus(
            "visit",
            "start",
            "--station",
            "eye",
            "--visit",
            VISIT,
            "--config",
            str(CONFIG),
            *stack.sets,
        ),
        check=True,
        capture_output=True,
        timeout=60,
    )
    for fault in (
        Fault.LATERALITY_MISSING,
        Fault.LATERALITY_INVALID,
        Fault.NO_PIXEL_DATA,
        Fault.TRUNCATED_PIXELS,
        Fault.FOREIGN_SOP_CLASS,
    ):
        (result,) = camera.send(_photo(small, "L", fault))
        assert result.status == fault.expected_status, (fault, result)
        # a CT image has no presentation context: the association itself is refused
        assert result.status is not None or fault is Fault.FOREIGN_SOP_CLASS, result
    (stranger,) = _camera(calling="OTHERCAM").send(_photo(small, "R"))
    assert stranger == SendResult(None, problem="association rejected")


def _graded_set(stack: Stack) -> list[tuple[str, bool]]:
    """Photographs of every fault; (fault, true gradability) in the order sent."""
    truths = []
    camera = _camera()
    for seed in range(40100, 40112):
        pixels, truth = generate(seed, FAULTS[seed % len(FAULTS)], 768, 768)
        (result,) = camera.send(_photo(pixels, truth.laterality))
        assert result.accepted, result
        truths.append((truth.fault, truth.gradable))
    return truths


def test_photographs_refused_deidentified_graded_and_delivered_across_faults(
    stack: Stack,
) -> None:
    stack.start_backend()
    stack.start_daemon()
    sim = stack.start_simulator(duration=28)
    wait_for_port(SCP["port"], 20)
    published: list[Any] = []
    with capturing(stack.broker.port, "santebus/v1/#", "ret-capture-1") as seen:
        _refusals(stack)
        truths = _graded_set(stack)
        # the nurse asks the daemon about the last photograph (its status socket)
        last = json.loads(stack.run_cli("fundus", "last", "--station", "eye", "--json"))
        assert (last["station"], last["gradable"]) == ("eye", truths[-1][1])
        assert "RETAKE" in stack.run_cli("fundus", "last", "--station", "eye") or last["gradable"]
        big, _ = generate(40200, "clean", BIG[1], BIG[0])
        camera = _camera()
        for n in range(3):
            assert camera.send(_photo(big, "RL"[n % 2]))[0].accepted
        # a transfer is in progress: the broker dies under it
        at_kill = _wait_chunks(stack.db, 0)
        stack.broker.kill()
        published += seen
    assert at_kill < 3 * 37, "the upload was over before the broker died"
    print(f"broker killed with {at_kill} of {3 * 37} chunks at the backend")
    for n in range(2):  # photographs keep being taken and stored during the outage
        assert camera.send(_photo(big, "LR"[n % 2]))[0].accepted
    time.sleep(2)
    stack.broker.start()
    with capturing(stack.broker.port, "santebus/v1/#", "ret-capture-2") as seen:
        before = _chunks_at_backend(stack.db)
        at_sigkill = _wait_chunks(stack.db, before)
        assert stack.daemon is not None
        stack.daemon.kill()  # SIGKILL in the middle of the resumed transfer
        assert at_sigkill < 5 * 37, "the upload was over before the SIGKILL"
        print(f"daemon SIGKILLed with {at_sigkill} of {5 * 37} chunks at the backend")
        time.sleep(1)
        stack.start_daemon()
        assert sim.wait(90) == 0
        assert stack.wait_drained(60)
        assert stack.daemon.stop() == 0
        time.sleep(1)
        published += seen
    stack.stop()
    _check_delivery(stack, accepted=len(truths) + 5)
    _check_grading(stack, truths)
    _check_no_identifier(stack, published)
    _check_readings_flowed(stack)


def _check_delivery(stack: Stack, accepted: int) -> None:
    objects = run_json_lines(
        santebus("backend", "export", "--db", str(stack.db), "--what", "objects")
    )
    assert len(objects) == accepted
    for o in objects:
        assert o["verified"], o
        assert o["chunks_stored"] == o["chunks"], o  # each chunk stored once (primary key)
        assert o["rejected_chunks"] == 0, o
    big = [o for o in objects if o["size"] > 9_000_000]
    assert len(big) == 5
    assert all(o["chunks"] == 37 for o in big)
    print(
        f"objects verified {len(objects)}; chunk copies received twice (re-sends, counted,"
        f" never stored): {sum(o['duplicate_chunks'] for o in objects)}"
    )
    con = sqlite3.connect(f"file:{stack.db}?mode=ro", uri=True)
    manifests = [json.loads(p) for (p,) in con.execute("SELECT payload FROM object_manifests")]
    data = [d for (d,) in con.execute("SELECT data FROM objects")]
    con.close()
    for media in manifests:
        assert media["subject"]["identifier"]["value"] == VISIT
        assert media["content"]["contentType"] == "application/dicom"
        assert media["bodySite"]["coding"][0]["code"] in ("18944008", "8966001")
    for blob in data:  # the delivered objects are the de-identified photographs
        ds = dcmread(io.BytesIO(blob))
        assert (str(ds.PatientName), ds.PatientID, ds.PatientIdentityRemoved) == (
            VISIT,
            VISIT,
            "YES",
        )
        assert ds.get("PatientBirthDate", "") == ""


def _check_grading(stack: Stack, truths: list[tuple[str, bool]]) -> None:
    events = [
        e["payload"]
        for e in run_json_lines(
            santebus("backend", "export", "--db", str(stack.db), "--what", "events")
        )
    ]
    graded = sorted((e for e in events if e["type"] == "fundus.graded"), key=lambda e: e["time"])
    refused = [e["detail"]["code"] for e in events if e["type"] == "fundus.refused"]
    assert sorted(refused) == sorted(
        [
            "no-visit",
            "laterality-missing",
            "laterality-invalid",
            "pixel-data-missing",
            "pixel-data-truncated",
        ]
    )
    assert len(graded) == len(truths) + 5
    agree = sum(
        bool(e["detail"]["gradable"]) == ok for e, (_, ok) in zip(graded, truths, strict=False)
    )
    print(f"grading agreement with the generator's truth: {agree}/{len(truths)}")
    assert agree >= 0.9 * len(truths)
    assert all(e["detail"]["gradable"] is not None for e in graded)  # none past the 2 s budget
    assert all("visit" not in e["detail"] for e in events)


def _check_no_identifier(stack: Stack, published: list[Any]) -> None:
    original = _photo(np.zeros((64, 64, 3), np.uint8), "R")
    needles = identifying_values(original)
    needles.pop("SOPInstanceUID", None)  # fresh per photograph; the search below is by value
    stored = [
        stack.db,
        *stack.work.joinpath("state").glob("outbox.sqlite*"),
        *stack.logs.glob("daemon*.log"),
    ]
    for path in stored:
        assert find_identifiers(path.read_bytes(), needles) == [], path
    assert len(published) > 100
    for m in published:
        assert find_identifiers(bytes(m.payload), needles) == [], m.topic


def _check_readings_flowed(stack: Stack) -> None:
    """Observations stored at the backend while an object was still incomplete there."""
    con = sqlite3.connect(f"file:{stack.db}?mode=ro", uri=True)
    during = 0
    for object_id, done in con.execute("SELECT object_id, stored_at FROM objects").fetchall():
        first, last = con.execute(
            "SELECT MIN(received_at), MAX(received_at) FROM object_chunks WHERE object_id = ?",
            (object_id,),
        ).fetchone()
        during += con.execute(
            "SELECT COUNT(*) FROM observations WHERE received_at > ? AND"
            " received_at < ? AND received_at < ?",
            (first, last, done),
        ).fetchone()[0]
    con.close()
    print(f"Observations stored at the backend while a photograph was in transfer: {during}")
    assert during > 0
