"""Fleet scale: N gateways, each a real daemon with its own credentials, against one broker.

Issue #9. One mosquitto on a free loopback port refuses anonymous clients; its password file
(made by ``mosquitto_passwd``) holds one user per bus and one ingest user, and its ACL confines
each bus user ``bus-NN`` to its own tree (``pattern readwrite santebus/v1/%u/#``) while the
ingest user reads every bus and writes the acks. Around it:

* B reference-backend workers (simulators/backend) logged in as the ingest user, sharing the
  MQTT 5 subscription ``$share/ingest/santebus/v1/+/obs/+`` as a scaled ingest would;
* one ``santebus simulate`` process serving N simulated CT-80 tonometers, one per bus, each on
  its own pty (one process for all: the simulators are the harness, not what is measured);
* N ``santebus run`` daemons, each with its own bus id, config, state dir and outbox, MQTT user
  and password file, reading its own tonometer.

Once every bus has published its retained ``online`` status it checks once that bus-01 can
neither publish into bus-02's tree (MQTT 5 and 3.1.1) nor read from it, measures each process's
CPU (% of one core: /proc utime + stime over the window) and memory (VmRSS, VmHWM, Pss) at the
end of the window, stops the tonometers, waits until the backend holds every reading and
accounts for every reading the simulators produced (simulators/accounting.py). Prints a table,
then one JSON line.

Usage, from the repository root: ``python -m benchmarks.fleet [--gateways N] [--seconds S]
[--patients-per-hour R] [--backends B]`` (defaults 10, 60, 360, 1; N <= 50).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.fleetlib import Client, bus_id, gateway_config, simulator_config, stop_all
from benchmarks.procfs import CpuWindow, memory, spread
from simulators.accounting import Accounting, account
from simulators.harness import Mosquitto, Process, free_port, santebus, wait_for_paths
from simulators.ledger import read_ledger

#: the backend's MQTT user, and its shared-subscription group
INGEST = "ingest"

ACL = f"""\
# Each user reads and writes its own tree only: %u is the MQTT user name, which is the bus id.
pattern readwrite santebus/v1/%u/#

# The ingest workers (through $share/{INGEST}/...) read every bus and write the acks.
user {INGEST}
topic read santebus/v1/+/obs/+
topic read santebus/v1/+/telemetry/+
topic read santebus/v1/+/events
topic read santebus/v1/+/status
topic write santebus/v1/+/ack
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__)
    parser.add_argument("--gateways", type=int, default=10, help="simulated buses (1-50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window")
    parser.add_argument("--patients-per-hour", type=float, default=360.0, help="per tonometer")
    parser.add_argument("--backends", type=int, default=1, help="ingest workers (1-4)")
    args = parser.parse_args(argv)
    if not 2 <= args.gateways <= 50 or not 1 <= args.backends <= 4 or args.seconds <= 0:
        parser.error("need 2 <= --gateways <= 50, 1 <= --backends <= 4, --seconds > 0")
    return args


def write_credentials(root: Path, users: list[str]) -> tuple[Path, Path]:
    """The broker's password file and ACL; each user's secret in ``root/<user>.secret``."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise FileNotFoundError("mosquitto_passwd not found (Debian package mosquitto)")
    root.mkdir(parents=True)
    passwd = root / "passwd"
    chosen = {user: secrets.token_urlsafe(24) for user in users}
    passwd.write_text("".join(f"{user}:{secret}\n" for user, secret in chosen.items()))
    passwd.chmod(0o600)
    subprocess.run([tool, "-U", str(passwd)], check=True, timeout=60)  # hashes in place
    for user, secret in chosen.items():
        (root / f"{user}.secret").write_text(secret)
        (root / f"{user}.secret").chmod(0o600)
    acl = root / "acl"
    acl.write_text(ACL)
    return passwd, acl


def ingest_worker(port: int, db: Path, secret_file: Path, instance: int) -> None:
    """Child process: one reference-backend worker logged in as the ingest user."""
    from simulators.backend.service import ReferenceBackend
    from simulators.backend.store import BackendStore

    logging.basicConfig(level=logging.WARNING)
    store = BackendStore(db)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    backend = ReferenceBackend(
        "127.0.0.1", port, store, client_id=f"fleet-ingest-{instance}", share=INGEST
    )
    # connect_async() only recorded the broker: the CONNECT (with these) goes at loop start
    backend.client.username_pw_set(INGEST, secret_file.read_text().strip())
    try:
        backend.run_until(stop)
    finally:
        store.close()


def check_isolation(port: int, secret_dir: Path) -> dict[str, Any]:
    """Can bus-01 publish into, or read from, bus-02's tree? Observed by an ingest client."""
    a, b = bus_id(1), bus_id(2)
    tree = f"santebus/v1/{b}"
    control = json.dumps({"state": "probe", "by": b}).encode()
    intrusion = json.dumps({"state": "probe", "by": a}).encode()

    def login(user: str, name: str, v5: bool = True) -> Client:
        secret = (secret_dir / f"{user}.secret").read_text()
        return Client(port, user, secret, f"fleet-probe-{name}", v5=v5)

    clients = [
        login(INGEST, "ingest"),
        login(b, b),
        login(a, f"{a}-v5"),
        login(a, f"{a}-v311", v5=False),
    ]
    listener, owner, intruder, legacy = clients
    try:
        listener.subscribe(f"{tree}/obs/+")
        listener.subscribe(f"{tree}/status")
        suback = intruder.subscribe(f"{tree}/#")
        owner.publish(f"{tree}/status", control)
        result: dict[str, Any] = {
            "bus01_subscribe_bus02_tree": suback,
            "bus01_v5_publish_bus02_obs": intruder.publish(f"{tree}/obs/tono-02", intrusion),
            "bus01_v5_publish_bus02_status": intruder.publish(f"{tree}/status", intrusion),
            "bus01_v311_publish_bus02_obs": legacy.publish(f"{tree}/obs/tono-02", intrusion),
        }
        # after the intrusions: once this one is in, they would have been too
        owner.publish(f"{tree}/status", control)
        listener.wait(lambda: listener.count(control) >= 2, timeout=10)
        time.sleep(1.0)
        result["control_messages_seen"] = listener.count(control)
        result["intrusions_seen_by_ingest"] = listener.count(intrusion)
        result["messages_bus01_read_from_bus02"] = len(intruder.received())
        result["isolated"] = (
            result["control_messages_seen"] == 2
            and result["intrusions_seen_by_ingest"] == 0
            and result["messages_bus01_read_from_bus02"] == 0
            and "Not authorized" in result["bus01_v5_publish_bus02_obs"]
        )
        return result
    finally:
        for client in clients:
            client.close()


def outbox_rows(path: Path) -> list[dict[str, Any]]:
    """What a stopped gateway still holds, as ``santebus outbox export`` rows (for accounting)."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT kind, state, payload FROM outbox WHERE kind = 'clinical'")
        return [{"kind": k, "state": s, "payload": json.loads(p)} for k, s, p in rows]
    finally:
        db.close()


def exported(db: Path) -> list[dict[str, Any]]:
    from simulators.backend.store import export_lines

    return [json.loads(line) for line in export_lines(db)] if db.exists() else []


class Fleet:
    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.work = work
        self.args = args
        self.buses = [bus_id(n) for n in range(1, args.gateways + 1)]
        self.logs = work / "logs"
        self.secrets = work / "secrets"
        self.ledger = work / "ledger.jsonl"
        self.db = work / "backend.sqlite"
        self.broker: Mosquitto | None = None
        self.ingest: list[Process] = []
        self.simulator: Process | None = None
        self.daemons: dict[str, Process] = {}
        self.watch: Client | None = None

    def start(self) -> float:
        """Everything up; returns the seconds until every bus published its ``online``."""
        passwd, acl = write_credentials(self.secrets, [*self.buses, INGEST])
        port = free_port()
        conf = (
            f"listener {port} 127.0.0.1\nallow_anonymous false\n"
            f"password_file {passwd}\nacl_file {acl}\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
        )
        self.broker = Mosquitto(self.work / "broker", port=port, conf=conf).start()
        for i in range(self.args.backends):
            argv = [sys.executable, "-m", "benchmarks.fleet", "--ingest-worker", str(port),
                    str(self.db), str(self.secrets / f"{INGEST}.secret"), str(i)]  # fmt: skip
            self.ingest.append(Process(f"ingest-{i}", argv, self.logs))
        sim_config = simulator_config(self.work, port, self.args.gateways,
                                      self.args.patients_per_hour)  # fmt: skip
        argv = santebus("simulate", "--config", str(sim_config), "--ledger", str(self.ledger))
        self.simulator = Process("simulator", argv, self.logs)
        wait_for_paths(
            *(self.work / "dev" / f"tono-{n:02d}" for n in range(1, len(self.buses) + 1))
        )
        self.watch = Client(port, INGEST, (self.secrets / f"{INGEST}.secret").read_text(),
                            "fleet-watch")  # fmt: skip
        self.watch.subscribe("santebus/v1/+/status")
        started = time.monotonic()
        for n, bus in enumerate(self.buses, start=1):
            config = gateway_config(self.work, n, port, self.secrets / f"{bus}.secret")
            self.daemons[bus] = Process(bus, santebus("run", "--config", str(config)), self.logs)
        watch = self.watch
        watch.wait(lambda: self.online(watch) >= len(self.buses), timeout=30 + 3 * len(self.buses))
        return time.monotonic() - started

    def online(self, watch: Client) -> int:
        state: dict[str, str] = {}
        for topic, payload in watch.received():
            try:
                with_state = json.loads(payload).get("state")
            except ValueError:
                continue
            if with_state in ("online", "offline"):
                state[topic.split("/")[2]] = with_state
        dead = [bus for bus, p in self.daemons.items() if not p.alive()]
        if dead:
            raise RuntimeError(f"daemon(s) exited: {dead}; see {self.logs}")
        return sum(s == "online" for s in state.values())

    def measure(self, seconds: float) -> dict[str, Any]:
        assert self.broker is not None
        assert self.broker.process is not None
        assert self.simulator is not None
        roles = {p.proc.pid: ("gateway", bus) for bus, p in self.daemons.items()}
        roles[self.broker.process.proc.pid] = ("broker", "mosquitto")
        roles[self.simulator.proc.pid] = ("simulators", "simulator")
        roles.update({p.proc.pid: ("ingest", p.name) for p in self.ingest})
        before = len(read_ledger(self.ledger))
        window = CpuWindow(roles).start()
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 15.0))
            print(f"fleet: {seconds - max(left - 15, 0):4.0f} / {seconds:.0f} s measured",
                  flush=True)  # fmt: skip
        cpu = window.percent()
        out: dict[str, Any] = {"produced_in_window": len(read_ledger(self.ledger)) - before}
        for pid, (role, name) in roles.items():
            mem = memory(pid)
            row = {"name": name, "cpu_percent": cpu[pid], "rss_mb": mem.rss_mb,
                   "hwm_mb": mem.hwm_mb, "pss_mb": mem.pss_mb}  # fmt: skip
            out.setdefault(role, []).append(row)
        return out

    def drain(self, timeout: float) -> tuple[Accounting, float]:
        """Stop the tonometers, wait until the backend holds what they produced."""
        assert self.simulator is not None
        started = time.monotonic()
        stop_all([self.simulator], timeout=60)
        result = account(read_ledger(self.ledger), exported(self.db), [])
        while result.unaccounted and time.monotonic() - started < timeout:
            time.sleep(1.0)
            result = account(read_ledger(self.ledger), exported(self.db), [])
        return result, time.monotonic() - started

    def final_accounting(self) -> tuple[Accounting, int]:
        """After the daemons stopped: everything produced, and buses missing nothing."""
        stop_all(list(self.daemons.values()))
        ledger, stored = read_ledger(self.ledger), exported(self.db)
        boxes = {bus: outbox_rows(self.work / bus / "state" / "outbox.sqlite")
                 for bus in self.buses}  # fmt: skip
        complete = 0
        for n, bus in enumerate(self.buses, start=1):
            device = f"tono-{n:02d}"
            mine = account([e for e in ledger if e["device"] == device],
                           [o for o in stored if o["device"]["identifier"]["value"] == device],
                           boxes[bus])  # fmt: skip
            complete += mine.stored == mine.produced
        everything = [row for rows in boxes.values() for row in rows]
        return account(ledger, stored, everything), complete

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch = None
        stop_all([p for p in (self.simulator, *self.daemons.values()) if p is not None])
        stop_all(self.ingest)
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def table(measured: dict[str, Any]) -> list[str]:
    lines = ["| processes | n | CPU % of a core (min / median / max) | VmRSS MB (min / median"
             " / max) | VmHWM MB max | Pss MB median |", "|---|---|---|---|---|---|"]  # fmt: skip
    for role in ("gateway", "broker", "ingest", "simulators"):
        rows = measured[role]
        cpu = spread(r["cpu_percent"] for r in rows)
        rss = spread(r["rss_mb"] for r in rows)
        pss = [r["pss_mb"] for r in rows if r["pss_mb"] is not None]
        lines.append(
            f"| {role} | {len(rows)} | {cpu['min']:.2f} / {cpu['median']:.2f} / {cpu['max']:.2f}"
            f" | {rss['min']:.1f} / {rss['median']:.1f} / {rss['max']:.1f}"
            f" | {max(r['hwm_mb'] for r in rows):.1f}"
            f" | {spread(pss)['median'] if pss else float('nan'):.1f} |"
        )
    return lines


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as for Ctrl-C
    with tempfile.TemporaryDirectory(prefix="santebus-fleet-") as tmp:
        fleet = Fleet(Path(tmp), args)
        try:
            print(f"fleet: starting {args.gateways} gateways, broker, simulators", flush=True)
            startup = fleet.start()
            print(f"fleet: all {args.gateways} buses online after {startup:.1f} s", flush=True)
            isolation = check_isolation(fleet.broker.port if fleet.broker else 0, fleet.secrets)
            print(f"fleet: isolation check: {json.dumps(isolation)}", flush=True)
            time.sleep(3.0)
            measured = fleet.measure(args.seconds)
            drained, drain_s = fleet.drain(timeout=60.0)
            result, complete = fleet.final_accounting()
        finally:
            fleet.stop()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}; {args.gateways} gateways, window {args.seconds:.0f} s, "
        f"{args.patients_per_hour:.0f} patients/h per bus, {args.backends} ingest worker(s)"
    )
    print(f"startup: every bus online {startup:.1f} s after the first daemon was started")
    verdict = "ISOLATED" if isolation["isolated"] else "NOT ISOLATED"
    print(
        f"isolation: {verdict}: bus-01 subscribing to bus-02's tree -> SUBACK "
        f"'{isolation['bus01_subscribe_bus02_tree']}', "
        f"{isolation['messages_bus01_read_from_bus02']} message(s) delivered to it; "
        f"MQTT 5 publish into bus-02/obs -> PUBACK '{isolation['bus01_v5_publish_bus02_obs']}'"
        f"; MQTT 3.1.1 -> PUBACK '{isolation['bus01_v311_publish_bus02_obs']}' (no reason "
        f"code in 3.1.1); intrusions seen by the ingest: {isolation['intrusions_seen_by_ingest']}"
        f", bus-02's own control messages seen: {isolation['control_messages_seen']} / 2"
    )
    for line in table(measured):
        print(line)
    print(f"readings: produced {result.produced} ({measured['produced_in_window']} in the window),"
          f" stored by the backend {result.stored}, left in outboxes {result.in_outbox}, rejected"
          f" {result.rejected}, unaccounted {result.unaccounted}, duplicate copies"
          f" {result.duplicates_at_backend}; buses with every reading stored {complete} /"
          f" {args.gateways}; backend complete {drain_s:.1f} s after the devices were stopped"
          f" (unaccounted then: {drained.unaccounted})")  # fmt: skip
    summary = {
        "benchmark": "fleet", "gateways": args.gateways, "seconds": args.seconds,
        "patients_per_hour": args.patients_per_hour, "ingest_workers": args.backends,
        "startup_s": round(startup, 1), "isolation": isolation,
        **{f"{role}_{key}": {k: round(v, 2) for k, v in spread(r[key] for r in
                                                              measured[role]).items()}
           for role in ("gateway", "broker", "ingest") for key in ("cpu_percent", "rss_mb")},
        "produced": result.produced, "produced_in_window": measured["produced_in_window"],
        "stored": result.stored, "in_outbox": result.in_outbox, "rejected": result.rejected,
        "unaccounted": result.unaccounted, "duplicates": result.duplicates_at_backend,
        "buses_complete": complete, "drain_s": round(drain_s, 1),
    }  # fmt: skip
    print(json.dumps(summary, sort_keys=True))
    return 0 if isolation["isolated"] and result.unaccounted == 0 else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--ingest-worker"]:
        port, db, secret, instance = sys.argv[2:6]
        ingest_worker(int(port), Path(db), Path(secret), int(instance))
    else:
        sys.exit(main(sys.argv[1:]))
