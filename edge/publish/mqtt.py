"""The one paho-mqtt adapter of the daemon: MQTT 5, QoS 1, TLS that fails closed.

paho is driven from the asyncio event loop (paho's documented external-loop interface:
``loop_read`` / ``loop_write`` / ``loop_misc`` on the socket's readiness), not from its own
network thread. Everything - publishing, PUBACK callbacks, bookkeeping - then runs on one
thread: no lock contention with paho's message mutex (a lock of ours taken on both sides once
deadlocked here), no cross-thread wake-up per PUBACK, and a backlog drain that is not spent
handing the GIL back and forth (the threaded version drained at half this rate). Only the
blocking part of ``connect()`` - DNS, TCP connect, TLS handshake - runs in a worker thread,
before the socket is registered with the loop.

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
  3.1.2.10: the peer must answer PINGREQ, so silence that long means the link is gone). The
  same watchdog calls ``loop_misc``, which sends the PINGREQs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
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
    MqttSettings,
    PublishOutcome,
    Will,
)
from edge.publish.tls import TrackingContext, check_readable, tls_context

log = logging.getLogger(__name__)


#: PUBACK reason codes (MQTT 5 section 3.4.2.1) that re-sending cannot cure: Not authorized,
#: Topic Name invalid, Payload format invalid. Others (0x80 Unspecified error, 0x83
#: Implementation specific error, 0x97 Quota exceeded) may pass later.
PERMANENT_REFUSALS = frozenset({0x87, 0x90, 0x99})
_ACCEPTED = PublishOutcome(accepted=True, reason="Success (0)")  # the common case, shared


class UserProperties(Properties):
    """PUBLISH properties made of User Properties only, packed once at construction.

    paho's generic ``Properties`` walks its whole property table to build, set and pack each
    instance - a third of the publish cost in a backlog drain. Wire format (MQTT 5): Property
    Length as a Variable Byte Integer (sections 2.2.2.1, 1.5.5), then per pair the identifier
    0x26 (section 3.3.2.3.7) and a UTF-8 String Pair (section 1.5.7: two UTF-8 strings, each
    prefixed by its two-byte length, section 1.5.4). ``pack()`` is the only method paho calls on
    a PUBLISH's properties; tests check the bytes against paho's own encoder.
    """

    packed: bytes
    pairs: tuple[tuple[str, str], ...]

    def __init__(self, pairs: dict[str, str]) -> None:
        # Properties.__init__ is skipped on purpose (it is the cost) and its __setattr__
        # accepts only MQTT property names, hence object.__setattr__.
        object.__setattr__(self, "packetType", PacketTypes.PUBLISH)
        object.__setattr__(self, "pairs", tuple(pairs.items()))
        body = bytearray()
        for key, value in pairs.items():
            body.append(0x26)
            for text in (key, value):
                try:
                    data = text.encode("utf-8")
                except UnicodeEncodeError as exc:  # lone surrogates: [MQTT-1.5.4-1]
                    raise ValueError(f"user property {key!r} is not valid UTF-8 text") from exc
                if len(data) > 0xFFFF:
                    raise ValueError(f"user property {key!r} longer than 65,535 bytes")
                if b"\x00" in data:  # MQTT 5 section 1.5.4 [MQTT-1.5.4-2]
                    raise ValueError(f"user property {key!r} contains U+0000")
                body += len(data).to_bytes(2, "big") + data
        object.__setattr__(self, "packed", _variable_byte_integer(len(body)) + bytes(body))

    def pack(self) -> bytes:
        return self.packed

    def __str__(self) -> str:
        return f"UserProperty={list(self.pairs)}"

    __repr__ = __str__


def _variable_byte_integer(value: int) -> bytes:
    """MQTT 5 section 1.5.5: seven bits per byte, least significant first, high bit = more."""
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


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
        self._tls: TrackingContext | None = None
        #: the broker's Receive Maximum from CONNACK (MQTT 5 section 3.2.2.3.3; 65,535 when
        #: absent): QoS 1 publishes awaiting PUBACK must never exceed it [MQTT-3.3.4-7]
        self.receive_maximum = 65535
        #: the broker's Maximum Packet Size from CONNACK (MQTT 5 section 3.2.2.3.6; None when
        #: absent: no limit beyond the protocol's): no packet beyond it may be sent
        #: [MQTT-3.2.2-15]; the forwarder rejects a row whose PUBLISH would exceed it
        self.maximum_packet_size: int | None = None
        #: when bytes last arrived (paho's own ``_last_bytes_received`` is also reset when it
        #: *sends* a PINGREQ, so it cannot tell a silent peer)
        self._last_in = 0.0
        self._client = self._make_client()

    # ----------------------------------------------------------------- set-up

    def _make_client(self) -> paho.Client:
        s = self.settings
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=paho.MQTTv5,
            reconnect_on_failure=False,  # the forwarder makes a new client per attempt
        )
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(s.max_inflight)
        if s.tls:
            self._tls = tls_context(s.ca_file, s.cert_file, s.key_file)
            client.tls_set_context(self._tls)
        if s.username is not None:
            check_readable({"mqtt.password_file": s.password_file})
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
            # Blocking (DNS, TCP, TLS handshake), so in a worker; paho writes CONNECT itself
            # there, as no socket callbacks are installed yet.
            await asyncio.to_thread(
                self._client.connect,
                s.host,
                s.port,
                keepalive=s.keepalive,
                clean_start=False,
                properties=props,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._discard()
            raise LinkError(f"cannot reach broker {s.host}:{s.port}: {exc}") from exc
        self._attach()
        try:
            async with asyncio.timeout(s.connect_timeout):
                code = await self._connected
        except TimeoutError as exc:
            raise LinkError(f"no CONNACK from {s.host}:{s.port} in {s.connect_timeout} s") from exc
        if code.is_failure:
            raise LinkRefusedError(f"broker {s.host}:{s.port} refused the connection: {code}")

    def _attach(self) -> None:
        """Hand the connected socket to the event loop (on the loop thread)."""
        client = self._client
        sock = client.socket()
        if sock is None:
            raise LinkError("paho returned no socket after connect")
        # No Nagle: each QoS 1 PUBLISH is a request awaiting its PUBACK, and Nagle holding a
        # small write until the previous segment is acknowledged, against the peer's delayed
        # ACK, stalled the window for ~40 ms at a time (a drain ran 3x slower).
        if isinstance(sock, socket.socket):  # TLS sockets included; never a websocket here
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._last_in = time.monotonic()
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_want_write
        client.on_socket_unregister_write = self._on_write_done
        self._loop.add_reader(sock, self._on_readable, sock)
        if client.want_write():  # CONNECT not fully written yet: paho registers the rest
            client.loop_write()
        self._watchdog = asyncio.create_task(self._watch(), name="mqtt-keepalive-watchdog")

    async def close(self) -> None:
        """Disconnect and release every socket.

        Nothing here awaits, so no cancellation can interrupt the clean-up half-way (one once
        leaked descriptors that way).
        """
        if self._watchdog is not None:
            self._watchdog.cancel()
        try:
            self._client.disconnect()
            self._client.loop_write()  # DISCONNECT now if the socket takes it; never waits
        finally:
            self._discard()
            self._fail_all("connection closed")

    def _discard(self) -> None:
        # Closes the socket (our on_socket_close unregisters it from the loop first) and the
        # wake-up socket pair paho 2.2 keeps with no public way to close it.
        self._client._reset_sockets()  # noqa: SLF001 - pinned paho==2.2.0
        if self._tls is not None:
            # paho drops a socket whose TLS handshake failed without closing it
            self._tls.close_all()

    # ----------------------------------------------------------------- operations

    async def subscribe(self, topic: str) -> None:
        fut: asyncio.Future[None] = self._loop.create_future()
        rc, mid = self._client.subscribe(topic, qos=1)
        if rc != paho.MQTT_ERR_SUCCESS or mid is None:
            raise LinkError(f"subscribe {topic} failed: {paho.error_string(rc)}")
        # The SUBACK can only be read by this thread, after this returns: no race.
        self._subs[mid] = fut
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                await fut
        except TimeoutError as exc:
            raise LinkError(f"no SUBACK for {topic} in {self.settings.connect_timeout} s") from exc

    def send(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        user_properties: dict[str, str] | None = None,
    ) -> asyncio.Future[PublishOutcome]:
        props = UserProperties(user_properties) if user_properties else None
        info = self._client.publish(topic, payload, qos=1, retain=retain, properties=props)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise LinkError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        # The PUBACK can only be read by this thread, after this returns: no race.
        fut: asyncio.Future[PublishOutcome] = self._loop.create_future()
        self._pending[info.mid] = fut
        return fut

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        user_properties: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> PublishOutcome:
        fut = self.send(topic, payload, retain=retain, user_properties=user_properties)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError as exc:
            raise LinkError(f"no PUBACK for {topic} within {timeout} s") from exc

    # ----------------------------------------------------------------- socket and paho callbacks

    def _on_readable(self, sock: Any) -> None:
        self._last_in = time.monotonic()
        self._client.loop_read()
        # TLS may hold decrypted bytes the kernel no longer reports as readable
        if self._client.socket() is sock and isinstance(sock, ssl.SSLSocket) and sock.pending():
            self._loop.call_soon(self._on_readable, sock)

    def _on_writable(self) -> None:
        self._client.loop_write()

    def _on_want_write(self, _c: Any, _u: Any, sock: Any) -> None:
        self._loop.add_writer(sock, self._on_writable)

    def _on_write_done(self, _c: Any, _u: Any, sock: Any) -> None:
        self._loop.remove_writer(sock)

    def _on_socket_close(self, _c: Any, _u: Any, sock: Any) -> None:
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)

    async def _watch(self) -> None:
        limit = 1.5 * self.settings.keepalive
        while not self.state.disconnected.is_set():
            await asyncio.sleep(min(1.0, limit / 6))
            self._client.loop_misc()  # sends PINGREQ when the keepalive is due
            silent = time.monotonic() - self._last_in
            if silent > limit:
                log.warning(
                    "mqtt link silent for %.1fs (keepalive %ds): dropping it",
                    silent,
                    self.settings.keepalive,
                )
                self.state.disconnected.set()
                self._fail_all("keepalive timeout: half-open link")
                return

    # paho calls these from loop_read / loop_write / loop_misc, i.e. on the loop thread.

    def _on_connect(self, _c: Any, _u: Any, _f: Any, code: ReasonCode, props: Any) -> None:
        # paho 2.2 ignores it (and refuses a new in-flight cap once connected): the forwarder's
        # window keeps to it
        self.receive_maximum = int(getattr(props, "ReceiveMaximum", 65535))
        biggest = getattr(props, "MaximumPacketSize", None)
        self.maximum_packet_size = None if biggest is None else int(biggest)
        _set_result(self._connected, code)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        log.info("mqtt disconnected reason=%s", code)
        self.state.disconnected.set()
        self._fail_all(f"disconnected: {code}")

    def _on_publish(self, _c: Any, _u: Any, mid: int, code: ReasonCode, _p: Any) -> None:
        outcome = _ACCEPTED if code.value == 0 else PublishOutcome(
            accepted=not code.is_failure,
            reason=f"{code} ({code.value})",  # e.g. "Not authorized (135)"
            permanent=code.value in PERMANENT_REFUSALS,
        )  # fmt: skip
        fut = self._pending.pop(mid, None)
        if fut is not None:
            _set_result(fut, outcome)

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: list[ReasonCode], _p: Any) -> None:
        failed = [str(c) for c in codes if c.is_failure]
        fut = self._subs.pop(mid, None)
        if fut is None:
            return
        if failed:
            _set_exception(fut, LinkRefusedError(f"subscription refused: {failed}"))
        else:
            _set_result(fut, None)

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        item = InboundMessage(topic=message.topic, payload=bytes(message.payload))
        self.state.messages.put_nowait(item)

    def _fail_all(self, why: str) -> None:
        futures: list[asyncio.Future[Any]] = [*self._pending.values(), *self._subs.values()]
        self._pending.clear()
        self._subs.clear()
        for fut in futures:
            _set_exception(fut, LinkError(why))
        if not self._connected.done():
            self._connected.set_exception(LinkError(why))
            self._connected.exception()  # mark retrieved: nobody may be waiting


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
        fut.exception()  # retrieved here; awaiting callers still get it
