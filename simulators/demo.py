"""``make demo``: a compressed screening session on simulated hardware, end to end.

Starts a real mosquitto on a free loopback port, the reference backend, the gateway daemon and
the simulated devices (all as ``santebus`` processes reading ``examples/simulated-bus.toml``),
runs for ``DEMO_SECONDS`` (default 60), stops everything cleanly and accounts for every reading
the simulators produced. The last line is the accounting; the exit code is 1 when anything is
unaccounted for.

Two eye stations, each with its own simulated tonometer (the first also with an autorefractor
and a retinograph sending fundus photographs by DICOM C-STORE, simulators/demo_eye.py), and a
prevention station with a Bluetooth LE blood-pressure monitor (its clock an hour fast: the
gateway corrects the times and sets the clock) and a glucometer (read through its Record Access
Control Point; it drops the link in the middle of its first transfer), and an NIBP module
streaming raw cuff pressure from which the gateway computes blood pressure itself; the second
eye station also has an air-puff front-end streaming applanation signals (IOP and corneal
hysteresis computed by the gateway).
Their readings are compared with the simulators' physiological truth. Reception opens a new
pseudonymous visit at each station every few seconds, staggered so that visits at the two
stations overlap (``santebus visit start``, the operator's path; the tablet's MQTT path is
tested separately). The summary shows how many readings each visit received: a station's
readings only ever go to its own visits, and readings taken while no visit is open go to none.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from calibration.records import CalibrationBook, CalibrationRecord
from simulators.accounting import derived_errors
from simulators.demo_eye import eye_station_sets, photo_report
from simulators.harness import Mosquitto, Stack, free_port, run_json_lines, santebus


def main() -> int:
    seconds = float(os.environ.get("DEMO_SECONDS", "60"))
    config = Path(os.environ.get("DEMO_CONFIG", "examples/simulated-bus.toml"))
    work = Path(os.environ.get("DEMO_DIR", ".demo")).resolve()
    shutil.rmtree(work, ignore_errors=True)
    broker = Mosquitto(work / "broker").start()
    metrics_port = free_port()
    stack = Stack(
        config, work, broker, [*_two_stations(work), f"health.metrics_port={metrics_port}"]
    )
    for line in _calibrations(work / "state" / "calibration"):
        print(line)
    print(f"demo: broker on 127.0.0.1:{broker.port}, {seconds:.0f} s session, logs in {stack.logs}")
    try:
        stack.start_backend()
        stack.start_daemon()
        sim = stack.start_simulator(seconds)
        started = time.monotonic()
        reception = _Reception(stack)
        ops_shown = False
        while sim.alive():
            time.sleep(2.5)
            elapsed = time.monotonic() - started
            reception.tick(elapsed, seconds)
            if not ops_shown and elapsed > 0.6 * seconds:
                ops_shown = _ops_view(stack, metrics_port)
            if sim.alive() and int(elapsed) % 10 < 3:
                made = len(stack.ledger_entries())
                print(f"demo: t={elapsed:3.0f}s  readings produced so far: {made}")
        sim_code = sim.wait(5)
        drained = stack.wait_drained(60)
    finally:
        stack.stop()
    result, exported = stack.accounting()
    entries = stack.ledger_entries()
    statuses = Counter(e["status"] for e in entries)
    values = [e["value"] for e in entries if e["value"] is not None and e["code"] in IOP_CODES]
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
    by_status = Counter(
        (o["device"]["identifier"]["value"], o["status"], _CLIMATE.sub(
            r"cabin \1 (allowed", "; ".join(n["text"] for n in o.get("note", []))))
        for o in exported
    )  # fmt: skip
    for (device, status, why), count in sorted(by_status.items()):
        print(f"demo: {device}: {count:3d} Observations {status}" + (f" ({why})" if why else ""))
    by_visit = Counter((o["device"]["identifier"]["value"], _visit(o)) for o in exported)
    for (device, visit), count in sorted(by_visit.items()):
        shown = visit or "(none: no visit open, or a hand-over; see visit.unbound events)"
        print(f"demo: {STATIONS[device]} ({device}): {count:2d} readings -> visit {shown}")
    for line in _derived_accuracy(entries, exported):
        print(line)
    (vehicle, sources), (photos, photos_ok) = _vehicle(stack), photo_report(stack.db, entries)
    for line in vehicle + photos:
        print(line)
    print(result.line())
    if sources != set(MODBUS_DEVICES):
        print(f"demo: FAILED: telemetry reached the backend from {sorted(sources)} only")
        return 1
    return 0 if result.unaccounted == 0 and photos_ok else 1


def _ops_view(stack: Stack, metrics_port: int) -> bool:
    """Print what an ops engineer sees of the running daemon (issue #9): status, metrics."""
    print(stack.run_cli("status").rstrip())
    for line in _metrics(metrics_port):
        print(line)
    return True


def _metrics(port: int) -> list[str]:
    """A few lines of the daemon's Prometheus page (device links, backlog, calibrations)."""
    shown = ("santebus_device_up", "santebus_outbox_rows{", "santebus_calibration_days_left",
             "santebus_mqtt_connected")  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    lines = [ln for ln in text.splitlines() if ln.startswith(shown)]
    return [f"demo: {url} ({len(text.splitlines())} lines), of which:", *lines]


#: the cabin value in an operating-condition note (one summary line per condition, not value)
_CLIMATE = re.compile(r"cabin (temperature|humidity) -?[0-9.]+ \S+ \(allowed")

#: what the gateway computes from raw signals, as the simulators' ledgers code it
DERIVED = {"8480-6": "systolic", "8462-4": "diastolic", "8867-4": "pulse rate",
           "79892-6": "IOPg right", "79893-4": "IOPg left",
           "corneal-hysteresis": "corneal hysteresis"}  # fmt: skip


def _derived_accuracy(entries: list[dict[str, Any]], exported: list[dict[str, Any]]) -> list[str]:
    """Published estimates against the physiological truth the simulators drew."""
    lines = []
    for (device, code), errors in sorted(derived_errors(entries, exported).items()):
        if code in DERIVED and errors:
            mean = sum(errors) / len(errors)
            sd = (sum((e - mean) ** 2 for e in errors) / max(1, len(errors) - 1)) ** 0.5
            lines.append(
                f"demo: {device} {DERIVED[code]}: error against the simulated truth"
                f" {mean:+.1f} ± {sd:.1f} over {len(errors)} readings"
            )
    # one refused cuff record is two Observations (panel and pulse): count records, by time
    refused = Counter(
        device for device, _ in {
            (o["device"]["identifier"]["value"], o.get("effectiveDateTime")) for o in exported
            if any(str(c.get("dataAbsentReason", {}).get("text", "")).startswith("Refused")
                   for c in [o, *o.get("component", [])])
        }
    )  # fmt: skip
    for device, n in sorted(refused.items()):
        lines.append(f"demo: {device}: {n} records refused by the signal analysis (published"
                     " without numbers, signal.refused event)")  # fmt: skip
    return lines


def _vehicle(stack: Stack) -> tuple[list[str], set[str]]:
    """What the backend received from the Modbus units: summary lines, telemetry sources."""
    lines = []
    db = ["--db", str(stack.db)]
    packs = run_json_lines(santebus("backend", "export", *db, "--what", "telemetry"))
    samples: dict[str, list[dict[str, Any]]] = {}
    for pack in packs:
        samples.setdefault(pack["source"], []).extend(pack["payload"])
    for source, records in sorted(samples.items()):
        last = {r["n"]: (r["v"], r["u"]) for r in records}
        shown = ", ".join(f"{n} {v:.1f} {u}" for n, (v, u) in list(last.items())[:4])
        n_packs = sum(p["source"] == source for p in packs)
        lines.append(f"demo: telemetry/{source}: {n_packs} packs, {len(records)} samples; last:"
                     f" {shown}")  # fmt: skip
    events = [e["payload"] for e in run_json_lines(santebus("backend", "export", *db, "--what",
                                                            "events"))]  # fmt: skip
    vehicle = Counter(e["type"] for e in events if e["type"].split(".")[0] in
                      ("coldchain", "power", "modbus", "reading"))  # fmt: skip
    for kind, n in sorted(vehicle.items()):
        lines.append(f"demo: event {kind}: {n}")
    for e in events:
        if e["type"] == "coldchain.excursion_ended":
            d = e["detail"]
            lines.append(f"demo: fridge excursion {d['start']} for {d['duration_s']:.0f} s,"
                         f" peak {d['peak_c']:.1f} C")  # fmt: skip
    return lines, set(samples)


def _visit(obs: dict[str, Any]) -> str:
    subject = obs.get("subject")
    return str(subject["identifier"]["value"]) if subject else ""


#: device -> station, as configured below
STATIONS = {"tono-1": "eye-1", "refr-1": "eye-1", "retino-1": "eye-1", "tono-2": "eye-2",
            "ora-1": "eye-2", "bpm-1": "prevention", "gluco-1": "prevention",
            "nibp-1": "prevention"}  # fmt: skip
#: raw-signal front-ends (simulators/nibp.py, simulators/airpuff.py); each simulated
#: transducer is off by a gain and an offset that the configured calibration undoes
RAW_DEVICES = {
    "nibp-1": {
        "kind": "nibp",
        "serial_number": "SIM-NIBP-0001",
        "pressure_gain": 0.0101,
        "pressure_offset": -1.2,
        "reconnect_max": 2.0,
    },
    "ora-1": {
        "kind": "airpuff",
        "serial_number": "SIM-ORA-0001",
        "pressure_gain": 0.0098,
        "pressure_offset": 0.6,
        "reconnect_max": 2.0,
    },
}
RAW_SCENARIOS = {
    # a patient every 10 s on average; a deflation streamed 10 x faster than life
    "nibp-1": {
        "patients_per_hour": 360,
        "speed": 10,
        "fs": 500,
        "sensor_gain": 0.0101,
        "sensor_offset": -1.2,
        "noise_rate": 0.001,
    },
    "ora-1": {
        "patients_per_hour": 300,
        "speed": 10,
        "sensor_gain": 0.0098,
        "sensor_offset": 0.6,
        "light_full_scale": 4095,
    },
}
#: the prevention station's Bluetooth LE devices (docs/operations.md section 8), on the
#: simulated radio of ``santebus simulate``
BLE_DEVICES = {
    "bpm-1": {"kind": "ble", "profile": "blood-pressure", "address": "D0:5A:4E:B9:00:01",
              "serial_number": "SIM-BPM-0001", "reconnect_max": 2.0},
    "gluco-1": {"kind": "ble", "profile": "glucose", "address": "D0:5A:4E:B9:00:02",
                "serial_number": "SIM-GLU-0001", "reconnect_max": 2.0,
                "racp_poll_s": 3.0},  # ask the meter for new records every 3 s
}  # fmt: skip
BLE_SCENARIOS = {
    # the monitor's clock is an hour fast: the gateway corrects the times, then sets it;
    # two measurements were taken before the gateway was in range
    "bpm-1": {"measurements_per_hour": 240, "clock_skew_s": 3600, "stored_at_start": 2},
    # the meter drops the link in the middle of its first RACP transfer
    "gluco-1": {"measurements_per_hour": 240, "stored_at_start": 3, "racp_disconnect_after": 2},
}
#: the vehicle over Modbus (simulators/modbus): cabin climate and fridge logger on one RS-485
#: line, the power system over TCP; the tonometers declare their operating conditions
MODBUS_DEVICES = {
    "cabin": {"unit": 1, "map": "xy-md02", "role": "climate"},
    "fridge": {"unit": 2, "map": "fridge-logger", "role": "cold-chain"},
    "power": {"unit": 100, "map": "victron-gx", "role": "power"},
}
MODBUS_SCENARIOS = {
    # a bus parked in the sun, six hours in a minute: past 40 C in the afternoon
    "cabin": {"model": "cabin", "speed": 360, "start_hour": 10.0, "cabin_low": 16.0,
              "cabin_high": 41.5},
    # the fridge door is left open for 2.5 minutes about every 25 minutes
    "fridge": {"model": "fridge", "speed": 60, "door_every_s": 1500, "door_open_s": 150},
    # unplugged from the depot's shore power a quarter of an hour in
    "power": {"model": "power", "speed": 60, "soc_start": 62, "shore_power_until_s": 900,
              "drain_pct_per_hour": 20},
}  # fmt: skip
OPERATING = {"temperature": [10, 40], "humidity": [30, 90]}  # tonometers' manuals
#: right and left eye IOP (simulators/ct80.py)
IOP_CODES = ("79892-6", "79893-4")


def _two_stations(work: Path) -> list[str]:
    radio = f"bumble:tcp-client:127.0.0.1:{free_port()}"
    sets = eye_station_sets(work) + [
        f"stations.{station}.devices={[d for d, s in STATIONS.items() if s == station]}"
        for station in dict.fromkeys(STATIONS.values())
    ]
    for device, values in BLE_DEVICES.items():
        sets += [f"devices.{device}.{key}={value}" for key, value in values.items()]
        sets += [f"devices.{device}.adapter={radio}", f"simulation.devices.{device}.kind=ble"]
        sets += [f"simulation.devices.{device}.{key}={value}"
                 for key, value in BLE_SCENARIOS[device].items()]  # fmt: skip
    tonometers = [d for d in STATIONS if d.startswith("tono")]
    for n, device in enumerate(tonometers, start=1):
        sets += [
            f"devices.{device}.kind=ct80",
            f"devices.{device}.transport=serial://{work / 'dev' / device}?baudrate=9600",
            f"devices.{device}.serial_number=SIM-CT80-000{n}",
            f"devices.{device}.calibration_required=true",
            f"simulation.devices.{device}.patients_per_hour=1200",
            f"simulation.devices.{device}.unplug_every=0",
        ]
    for device in ("tono-1", "tono-2", "ora-1"):
        sets += [f"devices.{device}.operating.{k}={v}" for k, v in OPERATING.items()]
    transports = {"cabin": f"modbus-rtu://{work / 'dev' / 'rs485'}?baudrate=19200",
                  "power": f"modbus-tcp://127.0.0.1:{free_port()}"}  # fmt: skip
    transports["fridge"] = transports["cabin"]
    for device, values in MODBUS_DEVICES.items():
        sets += [
            f"devices.{device}.kind=modbus",
            f"devices.{device}.transport={transports[device]}",
        ]
        sets += [f"devices.{device}.{key}={value}" for key, value in values.items()]
        sets.append(f"simulation.devices.{device}.kind=modbus")
        sets += [f"simulation.devices.{device}.{key}={value}"
                 for key, value in MODBUS_SCENARIOS[device].items()]  # fmt: skip
    for device, values in RAW_DEVICES.items():
        sets.append(f"devices.{device}.transport=serial://{work / 'dev' / device}?baudrate=115200")
        sets += [f"devices.{device}.{key}={value}" for key, value in values.items()]
        sets.append(f"simulation.devices.{device}.kind={values['kind']}")
        sets += [f"simulation.devices.{device}.{key}={value}"
                 for key, value in RAW_SCENARIOS[device].items()]  # fmt: skip
    return sets


def _calibrations(root: Path) -> list[str]:
    """Seed the devices' verification records.

    tono-1 was verified a month ago; tono-2's verification lapsed yesterday, so its readings
    are published preliminary with a note (and a calibration.invalid event).
    """
    today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris")).date()
    book = CalibrationBook(root)
    lines = []
    for n, (device, due) in enumerate(
        [("tono-1", today + timedelta(days=150)), ("tono-2", today - timedelta(days=1))], start=1
    ):
        record = CalibrationRecord(
            id=f"VER-SIM-CT80-000{n}-{due - timedelta(days=182):%Y%m%d}",
            device_serial=f"SIM-CT80-000{n}",
            device_model="CT-80",
            kind="verification",
            performed_at=datetime.combine(due - timedelta(days=182), dtime(9), tzinfo=UTC),
            valid_until=due,
            result="pass",
            technician="tech-demo",
            reference_id="MODEL-EYE-SIM-1",
        )
        book.add(record)
        lines.append(f"demo: {device} calibration {record.id} valid until {due}")
    return lines


class _Reception:
    """Opens a new visit at each station every 12 s, the stations 6 s apart."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.opened: dict[str, int] = {}

    def tick(self, elapsed: float, seconds: float) -> None:
        for offset, station in enumerate(dict.fromkeys(STATIONS.values())):
            slot = int((elapsed + 6 * offset) // 12)
            if elapsed < seconds - 5 and self.opened.get(station) != slot:
                self.opened[station] = slot
                visit = f"V-{station.upper()}-{slot:03d}"
                self.stack.run_cli("visit", "start", "--station", station, "--visit", visit)
                print(f"demo: reception opens {visit} at {station}")


if __name__ == "__main__":
    sys.exit(main())
