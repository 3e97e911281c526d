"""Operational events (alarms) on ``santebus/v1/{bus}/events``.

An event is logged at once and stored in the outbox (kind ``event``) so that it survives an
outage like any other message. When the outbox itself cannot take it (disk full), it waits in a
small in-memory queue that the forwarder publishes directly, best effort, once connected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Literal

from edge.outbox import NewRow, Outbox, OutboxError
from edge.publish.topics import Topics

log = logging.getLogger(__name__)

Severity = Literal["info", "warning", "error", "critical"]
_LEVEL = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class Events:
    """Raise events; :attr:`unstored` holds those the outbox refused (bounded)."""

    def __init__(
        self, outbox: Outbox, topics: Topics, wake: asyncio.Event | None = None, keep: int = 100
    ) -> None:
        self.outbox = outbox
        self.topics = topics
        self.wake = wake
        self.unstored: deque[tuple[str, bytes]] = deque(maxlen=keep)
        self.raised = 0

    def raise_event(
        self,
        kind: str,
        severity: Severity,
        device: str | None = None,
        **detail: str | int | float | bool | None,
    ) -> str:
        """Log, store and (via the forwarder) publish one event; returns its id."""
        event_id = str(uuid.uuid4())
        body = {
            "id": event_id,
            "type": kind,
            "severity": severity,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "bus": self.topics.bus,
            "device": device,
            "detail": detail,
        }
        payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        self.raised += 1
        pairs = " ".join(f"{k}={v!r}" for k, v in detail.items())
        log.log(
            _LEVEL.get(severity, logging.CRITICAL),
            "event type=%s severity=%s device=%s %s",
            kind,
            severity,
            device or "-",
            pairs,
        )
        row = NewRow(event_id, device or "gateway", self.topics.events, payload, kind="event")
        try:
            self.outbox.add([row])
        except OutboxError as exc:
            log.error("event not stored type=%s error=%r", kind, str(exc))
            self.unstored.append((self.topics.events, payload))
        if self.wake is not None:
            self.wake.set()
        return event_id
