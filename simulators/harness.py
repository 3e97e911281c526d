"""Running the whole stack on one machine: a real mosquitto, processes, and the accounting.

Shared by ``make demo`` and the end-to-end tests, so both check delivery the same way.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol

from simulators.accounting import Accounting, account


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def wait_for_paths(*paths: Path, timeout: float = 30.0) -> None:
    """Wait until every path exists (a simulator's pty links), TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not made within {timeout} s: {[str(p) for p in paths]}")
        time.sleep(0.1)


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError("mosquitto not found: run `make bootstrap` (apt-get install mosquitto)")


class Process:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(
        self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None
    ):
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self, timeout: float = 30.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._log.close()
        return code

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._log.close()
        return code


class BrokerObserver(Protocol):
    """Told when a broker starts and before it stops (the test suite's contract watch)."""

    def started(self, broker: Mosquitto) -> None: ...

    def stopping(self, broker: Mosquitto) -> None: ...


class Mosquitto:
    """A real mosquitto on a free loopback port, with its own config and persistence dir."""

    #: notified after every start and before every stop or kill, of every instance
    observers: ClassVar[list[BrokerObserver]] = []

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        conf: str | None = None,
        observe_port: int | None = None,
    ) -> None:
        """A broker to start; ``conf`` replaces the default config.

        ``conf``'s listeners must include ``port``. ``observe_port`` is a listener where an
        anonymous client may read everything (default ``port``).
        """
        self.workdir = workdir
        self.port = port or free_port()
        self.observe_port = observe_port or self.port
        self.process: Process | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "autosave_interval 1\n"
            # run as whoever started us (mosquitto started as root would switch to user
            # mosquitto, which cannot read a private temporary directory)
            f"user {getpass.getuser()}\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        if conf is not None:
            self.conf.write_text(f"user {getpass.getuser()}\n{conf}")

    def start(self) -> Mosquitto:
        self.process = Process(
            f"mosquitto-{self.port}", [mosquitto_binary(), "-c", str(self.conf)], self.workdir
        )
        try:
            # mosquitto binds its listeners one after another: the observer's listener may
            # still be closed when the first one accepts (a flaky CI run connected too early)
            for port in dict.fromkeys((self.port, self.observe_port)):
                wait_for_port(port)
        except TimeoutError as exc:
            log = self.process.log_path.read_text(errors="replace")[-2000:]
            self.process.stop(5)
            raise RuntimeError(f"mosquitto did not start on port {self.port}:\n{log}") from exc
        try:
            for observer in self.observers:
                observer.started(self)
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        if self.process is not None:
            self._stopping()
            self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self._stopping()
            self.process.stop(10)

    def _stopping(self) -> None:
        if self.process is not None and self.process.alive():
            for observer in self.observers:
                observer.stopping(self)


def santebus(*args: str) -> list[str]:
    """Argv for the santebus CLI in this interpreter's environment."""
    return [sys.executable, "-m", "edge", *args]


def run_json_lines(argv: list[str]) -> list[dict[str, Any]]:
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# --------------------------------------------------------------------------- the whole stack


class Stack:
    """Backend, daemon and simulator as ``santebus`` processes around one broker and config.

    ``overrides`` are ``--set`` values applied to every process (ports, paths, scenario).
    """

    def __init__(self, config: Path, work: Path, broker: Mosquitto, overrides: list[str]) -> None:
        self.config = config
        self.work = work
        self.broker = broker
        self.sets: list[str] = []
        for item in [f"mqtt.port={broker.port}", f"gateway.state_dir={work / 'state'}", *overrides]:
            self.sets += ["--set", item]
        self.logs = work / "logs"
        self.ledger = work / "ledger.jsonl"
        self.db = work / "backend.sqlite"
        self.backend: Process | None = None
        self.daemon: Process | None = None
        self.simulator: Process | None = None
        self._daemon_runs = 0

    def start_backend(self) -> Process:
        argv = santebus("backend", "--config", str(self.config), "--db", str(self.db), *self.sets)
        self.backend = Process("backend", argv, self.logs)
        return self.backend

    def start_daemon(self) -> Process:
        self._daemon_runs += 1
        argv = santebus("run", "--config", str(self.config), *self.sets)
        self.daemon = Process(f"daemon-{self._daemon_runs}", argv, self.logs)
        return self.daemon

    def start_simulator(self, duration: float) -> Process:
        argv = santebus(
            "simulate", "--config", str(self.config), "--ledger", str(self.ledger),
            "--duration", str(duration), *self.sets,
        )  # fmt: skip
        self.simulator = Process("simulator", argv, self.logs)
        return self.simulator

    def run_cli(self, *args: str) -> str:
        """An operator command (``santebus ARGS --config ... --set ...``); its output."""
        argv = santebus(*args, "--config", str(self.config), *self.sets)
        return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout

    def outbox_open_rows(self) -> int:
        argv = santebus("outbox", "stats", "--json", "--config", str(self.config), *self.sets)
        out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout
        counts = json.loads(out)
        return int(counts["pending"]) + int(counts["in_flight"])

    def wait_drained(self, timeout: float) -> bool:
        """Wait until the outbox holds nothing pending or in flight."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox_open_rows() == 0:
                return True
            time.sleep(1)
        return False

    def stop(self) -> None:
        for proc in (self.simulator, self.daemon, self.backend):
            if proc is not None and proc.alive():
                proc.stop()
        self.broker.stop()

    def ledger_entries(self) -> list[dict[str, Any]]:
        from simulators.ledger import read_ledger

        return read_ledger(self.ledger) if self.ledger.exists() else []

    def accounting(self) -> tuple[Accounting, list[dict[str, Any]]]:
        exported = run_json_lines(santebus("backend", "export", "--db", str(self.db)))
        outbox = run_json_lines(
            santebus("outbox", "export", "--config", str(self.config), *self.sets)
        )
        return account(self.ledger_entries(), exported, outbox), exported
