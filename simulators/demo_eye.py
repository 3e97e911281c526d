"""The demo's ophthalmology station: a retinograph and an autorefractor, and their accounting.

``make demo`` (simulators/demo.py) adds, through ``--set``, to the first eye station:

* ``refr-1``, the simulated autorefractor / keratometer on a pty (simulators/refractor.py):
  its readings are Observations, accounted for with every other reading;
* ``retino-1``, the simulated retinograph (simulators/fundus_camera.py) sending 1024 x 1024
  fundus photographs, some with image or DICOM faults, to the daemon's C-STORE SCP on a free
  loopback port.

Photographs are not Observations: :func:`photo_lines` matches each one the camera sent (its
ledger line, ``"kind": "photo"``) with the gateway's ``fundus.graded`` event (raised while the
camera waited for its C-STORE answer, so inside the send window) and with the objects the
backend reassembled and verified (``santebus backend export --what objects``).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from simulators.harness import free_port, run_json_lines, santebus

RETINOGRAPH = "retino-1"
REFRACTOR = "refr-1"
#: a photograph every 5 s on average; faults at rates a demo shows in a minute
PHOTO_SCENARIO = {
    "photos_per_hour": 720, "width": 1024, "height": 1024, "blur_rate": 0.15,
    "underexposed_rate": 0.08, "overexposed_rate": 0.08, "eyelid_rate": 0.08,
    "off_centre_rate": 0.08, "invalid_laterality_rate": 0.05, "truncated_pixels_rate": 0.05,
    "no_pixel_data_rate": 0.03,
}  # fmt: skip


def eye_station_sets(work: Path) -> list[str]:
    """``--set`` values declaring both devices and their scenarios (stations: demo.py)."""
    sets = [
        f"devices.{RETINOGRAPH}.kind=retinograph",
        f"devices.{RETINOGRAPH}.ae_title=SANTEBUS",
        f"devices.{RETINOGRAPH}.port={free_port()}",
        f'devices.{RETINOGRAPH}.allowed_calling_aes=["RETINO1"]',
        f"simulation.devices.{RETINOGRAPH}.kind=retinograph",
        f"devices.{REFRACTOR}.kind=refractor",
        f"devices.{REFRACTOR}.transport=serial://{work / 'dev' / REFRACTOR}?baudrate=9600",
        f"devices.{REFRACTOR}.serial_number=SIM-ARK-0001",
        f"devices.{REFRACTOR}.reconnect_max=2.0",
        f"simulation.devices.{REFRACTOR}.kind=refractor",
        f"simulation.devices.{REFRACTOR}.patients_per_hour=600",
    ]
    sets += [f"simulation.devices.{RETINOGRAPH}.{k}={v}" for k, v in PHOTO_SCENARIO.items()]
    return sets


def photo_report(db: Path, entries: list[dict[str, Any]]) -> tuple[list[str], bool]:
    """:func:`photo_lines` over what the backend in ``db`` holds (events, objects)."""
    export = ["backend", "export", "--db", str(db), "--what"]
    events = [e["payload"] for e in run_json_lines(santebus(*export, "events"))]
    return photo_lines(entries, events, run_json_lines(santebus(*export, "objects")))


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def photo_lines(
    entries: list[dict[str, Any]], events: list[dict[str, Any]], objects: list[dict[str, Any]]
) -> tuple[list[str], bool]:
    """Summary lines for the photographs, and whether every one is accounted for."""
    photos = [e for e in entries if e.get("kind") == "photo"]
    if not photos:
        return [], True
    accepted = [p for p in photos if p["status"] == "0x0000"]
    refused = Counter(
        f"{p['status']} {'no visit' if p['error_comment'].startswith('no visit') else why}"
        for p in photos
        if p["status"] != "0x0000" and (why := p["dicom_fault"])
    )
    graded = [e for e in events if e["type"] == "fundus.graded"]
    matched = []
    for p in accepted:
        window = (_at(p["time"]), _at(p["answered"]))
        found = [e for e in graded if e["device"] == p["device"]
                 and window[0] <= _at(e["time"]) <= window[1]]  # fmt: skip
        if len(found) == 1:
            matched.append((p, found[0]))
    gradable = sum(1 for _, e in matched if e["detail"]["gradable"])
    agree = sum(1 for p, e in matched if bool(e["detail"]["gradable"]) == p["truth_gradable"])
    wrong = [
        p
        for p in photos
        if p["dicom_fault"] != "none" and p["status"] != f"0x{p['expected_status'] or 0:04X}"
    ]
    verified = sum(1 for o in objects if o["verified"] and o["chunks_stored"] == o["chunks"])
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(refused.items()))
    lines = [
        f"demo: {RETINOGRAPH}: photos sent {len(photos)}, accepted {len(accepted)}, refused"
        f" {len(photos) - len(accepted)} ({reasons or 'none'}), graded gradable {gradable} /"
        f" retake {len(matched) - gradable}, objects verified at the backend {verified}",
        f"demo: {RETINOGRAPH}: grading agrees with the simulated truth on {agree}/{len(matched)}"
        f" photographs; {len(wrong)} DICOM faults answered with an unexpected status",
    ]
    ok = len(matched) == len(accepted) == verified and not wrong
    if not ok:
        lines.append(f"demo: FAILED: {len(accepted)} photographs accepted, {len(matched)} graded,"
                     f" {verified} verified at the backend")  # fmt: skip
    return lines, ok
