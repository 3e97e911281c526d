"""The ``Publisher`` port: a narrow async view of one MQTT connection (one per attempt)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class LinkError(ConnectionError):
    """The connection failed or dropped; the forwarder makes a new one after a backoff."""


class LinkRefusedError(LinkError):
    """The broker refused the connection (bad credentials, not authorised): fatal-ish, logged."""


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """The broker's PUBACK: ``accepted`` False carries the MQTT 5 reason (e.g. not authorised)."""

    accepted: bool
    reason: str = "Success"
    #: a refusal that sending again will not cure (not authorised, bad topic or payload)
    permanent: bool = True


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where and how a link connects (MQTT 5 over TLS); the same for every attempt."""

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


@dataclass(slots=True)
class LinkState:
    """What the link tells its user: messages received, and that it went down."""

    messages: asyncio.Queue[InboundMessage] = field(default_factory=asyncio.Queue)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


class Publisher(Protocol):
    """One MQTT connection. A new instance per connection attempt (aiomqtt #269, #288)."""

    state: LinkState
    #: the broker's Receive Maximum (MQTT 5 section 3.2.2.3.3), known once connected
    receive_maximum: int

    async def connect(self) -> None: ...

    async def subscribe(self, topic: str) -> None: ...

    def send(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        user_properties: dict[str, str] | None = None,
    ) -> asyncio.Future[PublishOutcome]:
        """Queue one QoS 1 PUBLISH; the future resolves with its PUBACK (or a LinkError)."""
        ...

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        user_properties: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> PublishOutcome: ...

    async def close(self) -> None: ...
