"""Pieces of benchmarks/fleet.py: the configs it writes, a blocking MQTT client, stopping.

Each gateway gets a complete TOML config of its own (bus id, state dir, MQTT user and password
file, one CT-80 tonometer on a pty); the simulator process gets one config declaring all the
tonometers with their scenario. :class:`Client` is a small paho client for the checks (ingest
watch, isolation probes), never on the data path.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from simulators.harness import Process


def bus_id(n: int) -> str:
    return f"bus-{n:02d}"


def _tonometer(work: Path, n: int) -> str:
    link = work / "dev" / f"tono-{n:02d}"
    return (
        f"[devices.tono-{n:02d}]\n"
        'kind = "ct80"\n'
        f"transport = {json.dumps(f'serial://{link}?baudrate=9600')}\n"
        f'serial_number = "SIM-CT80-10{n:02d}"\n'
        "reconnect_min = 0.2\nreconnect_max = 2.0\n"
    )


def gateway_config(work: Path, n: int, port: int, secret: Path) -> Path:
    """The config of bus ``n``: its own id, state dir, MQTT user and password, tonometer."""
    bus = bus_id(n)
    home = work / bus
    home.mkdir(parents=True, exist_ok=True)
    path = home / "santebus.toml"
    path.write_text(
        f'[gateway]\nbus_id = "{bus}"\nstate_dir = {json.dumps(str(home / "state"))}\n'
        'timezone = "Europe/Paris"\nlog_level = "WARNING"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
        "tls = false  # allowed on loopback only\n"
        f'username = "{bus}"\npassword_file = {json.dumps(str(secret))}\n'
        "resend_after = 10.0\n\n" + _tonometer(work, n)
    )
    return path


def simulator_config(work: Path, port: int, gateways: int, patients_per_hour: float) -> Path:
    """One ``santebus simulate`` config declaring every bus's tonometer and its scenario."""
    parts = [
        f'[gateway]\nbus_id = "fleet-devices"\nstate_dir = {json.dumps(str(work / "sim"))}\n'
        'timezone = "Europe/Paris"\nlog_level = "WARNING"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ntls = false\n'
    ]
    parts += [_tonometer(work, n) for n in range(1, gateways + 1)]
    parts.append("[simulation]\nseed = 9\ndrain_timeout = 30.0\n")
    parts += [
        f"[simulation.devices.tono-{n:02d}]\npatients_per_hour = {patients_per_hour}\n"
        "noise_rate = 0.0\nunplug_every = 0.0\n"
        for n in range(1, gateways + 1)
    ]
    path = work / "simulators.toml"
    path.write_text("\n".join(parts))
    return path


def stop_all(procs: list[Process], timeout: float = 30.0) -> None:
    """SIGTERM to all at once, then wait for each (SIGKILL after ``timeout``); idempotent."""
    for proc in procs:
        if proc.alive():
            proc.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.proc.wait(max(0.1, deadline - time.monotonic()))
        proc.stop(5)  # closes its log; SIGTERM again then SIGKILL only if still running


class Client:
    """A blocking paho client, network loop in a thread; results are reason-code strings."""

    def __init__(self, port: int, user: str, secret: str, client_id: str, v5: bool = True):
        self._cond = threading.Condition()
        self._messages: list[tuple[str, bytes]] = []
        self._acks: dict[int, str] = {}
        self._connected: str | None = None
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        )
        self.client.username_pw_set(user, secret.strip())
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        try:
            self.wait(lambda: self._connected is not None)
        except TimeoutError:
            self.close()
            raise
        if self._connected != "Success":
            self.close()
            raise RuntimeError(f"{client_id} ({user}) refused by the broker: {self._connected}")

    def _on_connect(self, _c: paho.Client, _u: Any, _f: Any, code: Any, _p: Any) -> None:
        with self._cond:
            self._connected = str(code)
            self._cond.notify_all()

    def _on_subscribe(self, _c: paho.Client, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        with self._cond:
            self._acks[mid] = ", ".join(str(c) for c in codes)
            self._cond.notify_all()

    def _on_publish(self, _c: paho.Client, _u: Any, mid: int, code: Any, _p: Any) -> None:
        with self._cond:
            self._acks[mid] = str(code)
            self._cond.notify_all()

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        with self._cond:
            self._messages.append((message.topic, bytes(message.payload)))
            self._cond.notify_all()

    def wait(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        """Until ``done()`` (checked on every callback and each second), else TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"not done within {timeout:.0f} s")
                self._cond.wait(min(left, 1.0))

    def _ack(self, mid: int) -> str:
        self.wait(lambda: mid in self._acks)
        with self._cond:
            return self._acks.pop(mid)

    def subscribe(self, topic: str) -> str:
        """The SUBACK's reason code(s)."""
        _, mid = self.client.subscribe(topic, qos=1)
        return self._ack(mid or 0)

    def publish(self, topic: str, payload: bytes) -> str:
        """QoS 1; the PUBACK's reason code (always Success under MQTT 3.1.1)."""
        return self._ack(self.client.publish(topic, payload, qos=1).mid)

    def received(self) -> list[tuple[str, bytes]]:
        with self._cond:
            return list(self._messages)

    def count(self, payload: bytes) -> int:
        return sum(p == payload for _, p in self.received())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
