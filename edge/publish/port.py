"""The ``Publisher`` port: a narrow async view of one MQTT connection (one per attempt)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
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
