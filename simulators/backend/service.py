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
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simulators.backend.objects import Chunk, Manifest
from simulators.backend.store import BackendStore
from simulators.backend.validate import (
    InvalidPayloadError,
    check_manifest,
    check_observation,
    parse,
)

log = logging.getLogger(__name__)

OBS_FILTER = "santebus/v1/+/obs/+"
#: chunks of large objects: santebus/v1/{bus}/obj/{device}/{object_id}/{index}
OBJ_FILTER = "santebus/v1/+/obj/+/+/+"
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
        self.object_filter = OBJ_FILTER if share is None else f"$share/{share}/{OBJ_FILTER}"
        #: chunks and manifests of large objects awaiting the next commit
        self._objects: list[Chunk | Manifest] = []
        self._monitor: list[tuple[str, str, str, str, str]] = []
        self.store = store
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._batch: list[tuple[str, str, str, str]] = []
        self._batch_since = 0.0  # monotonic time of the oldest message in the batch
        self.flush_every = 0.02
        #: monotonic time of the next sweep of orphaned chunks (at most one a second)
        self._next_sweep = 0.0
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0
        #: batches of objects a database error kept from being stored (and acked)
        self.store_errors = 0
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
        client.subscribe([(f, 1) for f in (*self.monitor_filters, self.object_filter)])
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
        if parts[3] == "obj":
            self._chunk(client, message.topic, header, bytes(message.payload))
            return
        bus, device = parts[2], parts[4]
        try:
            payload = bytes(message.payload)
            doc = parse(payload, header)
            if isinstance(doc, dict) and doc.get("resourceType") == "Media":
                manifest = check_manifest(doc, header, message.topic)
                with self._lock:
                    self._objects.append(manifest)
                return
            msg_id, _ = check_observation(doc, header)
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

    def _chunk(self, client: paho.Client, topic: str, header: str | None, data: bytes) -> None:
        """A chunk of a large object: kept for the next commit, or refused if unaddressable."""
        _, _, bus, _, device, object_id, index = topic.split("/")
        if header is None or not index.isdigit():
            self.rejected += 1
            self.store.reject(header, topic, "chunk without msg-id or index", data)
            log.warning("backend rejected topic=%s reason='chunk without msg-id or index'", topic)
            if header is not None:
                ack = {"stored": [], "rejected": [{"id": header, "reason": "bad chunk topic"}]}
                client.publish(f"santebus/v1/{bus}/ack", json.dumps(ack), qos=1)
            return
        chunk = Chunk(bus, device, object_id, int(index), header, topic, data)
        with self._lock:
            self._objects.append(chunk)

    def flush(self, older_than: float = 0.0) -> int:
        """Group-commit what arrived, then - only then - ack it, one message per bus."""
        with self._flushing:  # one commit at a time, and acks in commit order
            with self._lock:
                monitor, self._monitor = self._monitor, []
                if not self._batch or time.monotonic() - self._batch_since < older_than:
                    batch = []
                else:
                    batch, self._batch = self._batch, []
                objects, self._objects = self._objects, []
            if monitor:
                self.store.store_monitoring(monitor)
            committed = self._commit(batch) if batch else 0
            if objects or time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + 1.0
                self._commit_objects(objects)
            return committed + len(objects)

    def _commit_objects(self, items: list[Chunk | Manifest]) -> None:
        """Store chunks and manifests, then ack what they decided, one message per bus.

        A database error is logged and counted, never fatal: nothing of the batch is acked,
        so the gateways send it again.
        """
        try:
            outcome = self.store.store_objects(items)
        except sqlite3.Error:
            self.store_errors += 1
            log.exception("backend objects not stored items=%d (not acked)", len(items))
            return
        self.duplicates += outcome.duplicates
        self.rejected += len(outcome.refusals)
        if outcome.duplicates:
            log.info("backend duplicate objects copies=%d", outcome.duplicates)
        for msg_id, topic, reason, _ in outcome.refusals:
            log.warning("backend rejected msg_id=%s topic=%s reason=%r", msg_id, topic, reason)
        for object_id in outcome.completed:
            log.info("backend object verified object_id=%s", object_id)
        for bus in sorted({*outcome.stored, *outcome.rejected}):
            ack = {
                "stored": outcome.stored.get(bus, []),
                "rejected": [{"id": i, "reason": r} for i, r in outcome.rejected.get(bus, [])],
            }
            self.client.publish(f"santebus/v1/{bus}/ack", json.dumps(ack), qos=1)

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


def main(
    host: str,
    port: int,
    db: Path,
    share: str | None = None,
    instance: int = 0,
    orphan_grace: float = 60.0,
) -> int:
    store = BackendStore(db, orphan_grace=orphan_grace)
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
