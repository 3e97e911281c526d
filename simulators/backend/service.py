"""The reference backend process: subscribe, validate, store durably, then ack on ``.../ack``.

This is the backend's own MQTT client (paho), separate from the gateway's adapter: it plays
the departmental ingest. Store before ack: messages are group-committed every 20 ms and their
ids published on ``santebus/v1/{bus}/ack`` (one batch per bus) only after that commit. A crash
between the broker's PUBACK and the commit loses nothing: the gateway still holds the row and
sends it again after ``resend_after``.

Under load the batch is committed by paho's network thread itself, as messages arrive; the main
thread only commits a batch that has waited 20 ms with no message behind it. Two threads
committing in turn under load spent the backend's time handing the GIL back and forth, and made
it, not the gateway, the limit of a backlog drain.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simulators.backend.store import BackendStore
from simulators.backend.validate import InvalidPayloadError, validate

log = logging.getLogger(__name__)

OBS_FILTER = "santebus/v1/+/obs/+"
#: telemetry packs and events: kept for the operators' view (docs/asyncapi.yaml), not acked
MONITOR_FILTERS = ("santebus/v1/+/telemetry/+", "santebus/v1/+/events")


class ReferenceBackend:
    def __init__(
        self,
        host: str,
        port: int,
        store: BackendStore,
        client_id: str,
        tls: tuple[Path, Path, Path] | None = None,
        share: str | None = None,
    ) -> None:
        """``tls`` = (CA file, client cert, client key) for a broker that requires them.

        ``share`` names a shared subscription group (MQTT 5 section 4.8.2): several backend
        processes then split the Observations between them, as a scaled ingest would.
        """
        self.topic_filter = OBS_FILTER if share is None else f"$share/{share}/{OBS_FILTER}"
        self.monitor_filters = [f if share is None else f"$share/{share}/{f}"
                                for f in MONITOR_FILTERS]  # fmt: skip
        self._monitor: list[tuple[str, str, str, str, str]] = []
        self.store = store
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._batch: list[tuple[str, str, str, str]] = []
        self._batch_since = 0.0  # monotonic time of the oldest message in the batch
        self.flush_every = 0.02
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
        )
        #: set once the Observation subscription is in place (tests wait for it)
        self.subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 5)
        if tls is not None:
            ca, cert, key = tls
            self.client.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key))
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect_async(host, port, clean_start=False, properties=props)

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, code: Any, _p: Any) -> None:
        log.info("backend connected reason=%s", code)
        sock = client.socket()
        if isinstance(sock, socket.socket):  # no Nagle on PUBACKs and acks (see edge mqtt.py)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Always (re)subscribe: a broker restarted without persistence has no session for us.
        client.subscribe([(f, 1) for f in self.monitor_filters])
        client.subscribe(self.topic_filter, qos=1)

    def _on_message(self, client: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        parts = message.topic.split("/")
        header = None
        for key, value in getattr(message.properties, "UserProperty", None) or []:
            if key == "msg-id":
                header = value
        if parts[3] in ("telemetry", "events"):
            kind = "telemetry" if parts[3] == "telemetry" else "event"
            source = parts[4] if kind == "telemetry" else "events"
            text = bytes(message.payload).decode("utf-8", "replace")
            with self._lock:
                self._monitor.append((header or str(message.mid), kind, parts[2], source, text))
            return
        bus, device = parts[2], parts[4]
        try:
            payload = bytes(message.payload)
            msg_id, _ = validate(payload, header)
        except Exception as exc:  # noqa: BLE001 - any bad payload is a rejection, never a crash
            error = (
                exc
                if isinstance(exc, InvalidPayloadError)
                else InvalidPayloadError(f"unreadable Observation: {exc!r}", header)
            )
            self.rejected += 1
            self.store.reject(error.msg_id, message.topic, str(error), bytes(message.payload))
            log.warning("backend rejected topic=%s reason=%r", message.topic, str(error))
            if error.msg_id:
                ack = {"stored": [], "rejected": [{"id": error.msg_id, "reason": str(error)}]}
                client.publish(f"santebus/v1/{bus}/ack", json.dumps(ack), qos=1)
        else:
            with self._lock:
                # stored as received (valid UTF-8 JSON by now); export canonicalises it
                self._batch.append((msg_id, bus, device, payload.decode()))

    def flush(self, older_than: float = 0.0) -> int:
        """Group-commit what arrived, then - only then - ack it, one message per bus."""
        with self._flushing:  # one commit at a time, and acks in commit order
            with self._lock:
                monitor, self._monitor = self._monitor, []
                if not self._batch or time.monotonic() - self._batch_since < older_than:
                    batch = []
                else:
                    batch, self._batch = self._batch, []
            if monitor:
                self.store.store_monitoring(monitor)
            return self._commit(batch) if batch else 0

    def _commit(self, batch: list[tuple[str, str, str, str]]) -> int:
        fresh = self.store.store_many(batch)
        self.stored += sum(fresh)
        self.duplicates += len(fresh) - sum(fresh)
        by_bus: dict[str, list[str]] = {}
        for msg_id, bus, _, _ in batch:
            by_bus.setdefault(bus, []).append(msg_id)
        for bus, ids in by_bus.items():
            ack = {"stored": ids, "rejected": []}
            self.client.publish(f"santebus/v1/{bus}/ack", json.dumps(ack), qos=1)
        return len(batch)

    def run_until(self, stop: threading.Event, flush_every: float = 0.02) -> None:
        self.flush_every = flush_every
        self.client.loop_start()
        try:
            while not stop.wait(flush_every):
                self.flush(older_than=flush_every)
        finally:
            self.flush()
            self.client.disconnect()
            self.client.loop_stop()
            # paho 2.2 leaves its wake-up socket pair open (no public close): close it here
            self.client._reset_sockets()  # noqa: SLF001 - pinned paho==2.2.0
            log.info(
                "backend stopped stored=%d duplicates=%d rejected=%d",
                self.stored,
                self.duplicates,
                self.rejected,
            )


def main(host: str, port: int, db: Path, share: str | None = None, instance: int = 0) -> int:
    store = BackendStore(db)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    client_id = f"santebus-reference-backend-{db.stem}" + (f"-{instance}" if instance else "")
    backend = ReferenceBackend(host, port, store, client_id=client_id, share=share)
    try:
        backend.run_until(stop)
    finally:
        store.close()
    return 0
