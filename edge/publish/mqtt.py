"""The one paho-mqtt adapter of the daemon: MQTT 5, QoS 1, TLS that fails closed.

paho runs its network loop in a thread; every callback crosses into the event loop with
``call_soon_threadsafe`` and all bookkeeping happens on the loop thread. No lock of ours is
ever held while calling into paho: paho calls ``on_publish`` while holding its own message
mutex, so a lock taken on both sides deadlocks (seen here: a silent stall after a reconnect).

Facts this module is built on:

* QoS 1 only: paho 2.x does not surface PUBREC failures for QoS 2.
* The PUBACK reason code (MQTT 5 section 3.4.2.1) is checked: an ACL-refused publish
  (0x87 Not authorized) is a refusal, not a delivery.
* ``clean_start=False`` with a Session Expiry Interval (MQTT 5 section 3.1.2.11.2), so acks
  published while the bus was offline wait in the broker (Mosquitto 2.0.11 drops a v5 session
  created with ``clean_start=True`` on restart).
* A fresh client per connection attempt; paho's own reconnect is never relied on.
* TLS fails closed: TLS 1.2 minimum, server CA and host name always verified, client
  certificate from files read at each attempt (so a rotated certificate is picked up on the
  next connection), never a plaintext fallback.
* Half-open links: paho only notices a dead peer after up to twice the keepalive; a watchdog
  here drops the link when nothing at all has arrived for 1.5 x keepalive (MQTT 5 section
  3.1.2.10: the peer must answer PINGREQ, so silence that long means the link is gone).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.publish.port import (
    InboundMessage,
    LinkError,
    LinkRefusedError,
    LinkState,
    PublishOutcome,
    Will,
)

log = logging.getLogger(__name__)


#: PUBACK reason codes (MQTT 5 section 3.4.2.1) that re-sending cannot cure: Not authorized,
#: Topic Name invalid, Payload format invalid. Others (0x80 Unspecified error, 0x83
#: Implementation specific error, 0x97 Quota exceeded) may pass later.
PERMANENT_REFUSALS = frozenset({0x87, 0x90, 0x99})


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int
    client_id: str
    keepalive: int = 30
    session_expiry: int = 7 * 24 * 3600
    tls: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    connect_timeout: float = 10.0
    #: QoS 1 messages awaiting PUBACK at once (paho's default of 20 throttles a backlog drain)
    max_inflight: int = 100


_PUBLISH_PROPERTIES = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]


class _StampingClient(paho.Client):
    """paho's client, noting when bytes last arrived from the broker.

    paho's own ``_last_bytes_received`` is also reset when it *sends* a PINGREQ, so it cannot
    tell a silent peer; ``on_log`` could, but formatting every log line halved the drain rate.
    """

    last_in = 0.0

    def _sock_recv(self, bufsize: int) -> bytes:  # pinned paho==2.2.0 internal hook
        data: bytes = super()._sock_recv(bufsize)
        self.last_in = time.monotonic()
        return data


class PahoPublisher:
    """One MQTT 5 connection through paho-mqtt 2.x; implements the ``Publisher`` port."""

    def __init__(self, settings: MqttSettings, will: Will | None = None) -> None:
        self.settings = settings
        self.state = LinkState()
        self._will = will
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, asyncio.Future[PublishOutcome]] = {}
        self._subs: dict[int, asyncio.Future[None]] = {}
        self._connected: asyncio.Future[ReasonCode] = self._loop.create_future()
        self._watchdog: asyncio.Task[None] | None = None
        self._tls: _TrackingContext | None = None
        self._client = self._make_client()

    # ----------------------------------------------------------------- set-up

    def _make_client(self) -> _StampingClient:
        s = self.settings
        client = _StampingClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=paho.MQTTv5,
            # the network thread ends when the link drops; the forwarder makes a new client
            reconnect_on_failure=False,
        )
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(s.max_inflight)
        if s.tls:
            self._tls = tls_context(s)
            client.tls_set_context(self._tls)
        if s.username is not None:
            _check_readable({"mqtt.password_file": s.password_file})
            password = s.password_file.read_text().strip() if s.password_file else None
            client.username_pw_set(s.username, password)
        if self._will is not None:
            client.will_set(self._will.topic, self._will.payload, qos=1, retain=self._will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    async def connect(self) -> None:
        s = self.settings
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = s.session_expiry
        try:
            await asyncio.to_thread(
                self._client.connect,
                s.host,
                s.port,
                keepalive=s.keepalive,
                clean_start=False,
                properties=props,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            if self._tls is not None:
                self._tls.close_all()
            raise LinkError(f"cannot reach broker {s.host}:{s.port}: {exc}") from exc
        # paho 2.2's loop_start() replaces the wake-up socket pair connect() made without
        # closing it (two descriptors leaked per connection); close it first.
        self._client._reset_sockets(sockpair_only=True)  # noqa: SLF001 - pinned paho==2.2.0
        self._client.loop_start()
        try:
            async with asyncio.timeout(s.connect_timeout):
                code = await self._connected
        except TimeoutError as exc:
            raise LinkError(f"no CONNACK from {s.host}:{s.port} in {s.connect_timeout} s") from exc
        if code.is_failure:
            raise LinkRefusedError(f"broker {s.host}:{s.port} refused the connection: {code}")
        self._client.last_in = time.monotonic()  # the CONNACK just arrived
        self._watchdog = asyncio.create_task(self._watch(), name="mqtt-keepalive-watchdog")

    async def close(self) -> None:
        """Disconnect and release every socket, even if the caller is being cancelled."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        try:
            # Shielded and done in one worker call: a cancellation arriving mid-close must not
            # skip the socket clean-up (it did, leaking descriptors, under test).
            await asyncio.shield(asyncio.to_thread(self._release))
        finally:
            self._fail_all("connection closed")

    def _release(self) -> None:
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
            if self._tls is not None:
                self._tls.close_all()
            # paho 2.2 keeps its wake-up socket pair open after a failed connect and offers no
            # public way to close it; without this each failed attempt leaks two descriptors
            # until garbage collection (caught by the TLS tests' ResourceWarning check).
            self._client._reset_sockets()  # noqa: SLF001 - pinned paho==2.2.0

    # ----------------------------------------------------------------- operations

    async def subscribe(self, topic: str) -> None:
        fut: asyncio.Future[None] = self._loop.create_future()
        rc, mid = self._client.subscribe(topic, qos=1)
        if rc != paho.MQTT_ERR_SUCCESS or mid is None:
            raise LinkError(f"subscribe {topic} failed: {paho.error_string(rc)}")
        # The SUBACK callback reaches this thread via call_soon_threadsafe, i.e. after this
        # line has run: registering the future here cannot miss it.
        self._subs[mid] = fut
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                await fut
        except TimeoutError as exc:
            raise LinkError(f"no SUBACK for {topic} in {self.settings.connect_timeout} s") from exc

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        user_properties: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> PublishOutcome:
        props = None
        if user_properties:
            # a shallow copy of a template: paho's Properties() rebuilds its whole property
            # table on every construction, a fifth of the publish cost in a backlog drain
            props = copy.copy(_PUBLISH_PROPERTIES)
            props.UserProperty = list(user_properties.items())
        fut: asyncio.Future[PublishOutcome] = self._loop.create_future()
        info = self._client.publish(topic, payload, qos=1, retain=retain, properties=props)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise LinkError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        # Even a PUBACK already received is resolved later, on this thread (see _on_publish).
        self._pending[info.mid] = fut
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError as exc:
            raise LinkError(f"no PUBACK for {topic} within {timeout} s") from exc

    # ----------------------------------------------------------------- paho thread callbacks

    async def _watch(self) -> None:
        limit = 1.5 * self.settings.keepalive
        while not self.state.disconnected.is_set():
            await asyncio.sleep(min(1.0, limit / 6))
            silent = time.monotonic() - self._client.last_in
            if silent > limit:
                log.warning(
                    "mqtt link silent for %.1fs (keepalive %ds): dropping it",
                    silent,
                    self.settings.keepalive,
                )
                self.state.disconnected.set()
                self._fail_all("keepalive timeout: half-open link")
                return

    def _on_connect(self, _c: Any, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        self._loop.call_soon_threadsafe(_set_result, self._connected, code)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        log.info("mqtt disconnected reason=%s", code)
        self._loop.call_soon_threadsafe(self.state.disconnected.set)
        self._loop.call_soon_threadsafe(self._fail_all, f"disconnected: {code}")

    def _on_publish(self, _c: Any, _u: Any, mid: int, code: ReasonCode, _p: Any) -> None:
        outcome = PublishOutcome(
            accepted=not code.is_failure,
            reason=f"{code} ({code.value})",  # e.g. "Not authorized (135)"
            permanent=code.value in PERMANENT_REFUSALS,
        )
        self._loop.call_soon_threadsafe(self._resolve_publish, mid, outcome)

    def _resolve_publish(self, mid: int, outcome: PublishOutcome) -> None:
        fut = self._pending.pop(mid, None)
        if fut is not None:
            _set_result(fut, outcome)

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: list[ReasonCode], _p: Any) -> None:
        failed = [str(c) for c in codes if c.is_failure]
        self._loop.call_soon_threadsafe(self._resolve_subscribe, mid, failed)

    def _resolve_subscribe(self, mid: int, failed: list[str]) -> None:
        fut = self._subs.pop(mid, None)
        if fut is None:
            return
        if failed:
            _set_exception(fut, LinkRefusedError(f"subscription refused: {failed}"))
        else:
            _set_result(fut, None)

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        item = InboundMessage(topic=message.topic, payload=bytes(message.payload))
        self._loop.call_soon_threadsafe(self.state.messages.put_nowait, item)

    def _fail_all(self, why: str) -> None:
        futures: list[asyncio.Future[Any]] = [*self._pending.values(), *self._subs.values()]
        self._pending.clear()
        self._subs.clear()
        for fut in futures:
            _set_exception(fut, LinkError(why))
        if not self._connected.done():
            self._connected.set_exception(LinkError(why))
            self._connected.exception()  # mark retrieved: nobody may be waiting


class _TrackingContext(ssl.SSLContext):
    """Remembers the sockets it wrapped, to close them after a failed attempt.

    paho drops (without closing) a socket whose TLS handshake failed, which would leak a file
    descriptor per failed attempt until garbage collection.
    """

    opened: list[ssl.SSLSocket]

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock = super().wrap_socket(*args, **kwargs)
        if not hasattr(self, "opened"):
            self.opened = []
        self.opened.append(sock)
        return sock

    def close_all(self) -> None:
        for sock in getattr(self, "opened", []):
            sock.close()
        self.opened = []


def tls_context(s: MqttSettings) -> _TrackingContext:
    """Client TLS: TLS 1.2+ (1.3 preferred by OpenSSL), CA and host name verified."""
    _check_readable(
        {"mqtt.ca_file": s.ca_file, "mqtt.cert_file": s.cert_file, "mqtt.key_file": s.key_file}
    )
    try:
        ctx = _TrackingContext(ssl.PROTOCOL_TLS_CLIENT)
        if s.ca_file is not None:
            ctx.load_verify_locations(cafile=str(s.ca_file))
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if s.cert_file is not None and s.key_file is not None:
            ctx.load_cert_chain(str(s.cert_file), str(s.key_file))
    except ssl.SSLError as exc:
        raise ValueError(f"TLS files unusable (ca={s.ca_file}, cert={s.cert_file}): {exc}") from exc
    return ctx


def _check_readable(files: dict[str, Path | None]) -> None:
    """Name the faulty file: paho's own error is a bare ``[Errno 2] No such file``."""
    for key, path in files.items():
        if path is None:
            continue
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ValueError(f"{key} = {str(path)!r} cannot be read: {exc.strerror}") from exc


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
        fut.exception()  # retrieved here; awaiting callers still get it
