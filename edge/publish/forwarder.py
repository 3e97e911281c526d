"""Forward outbox rows to the broker; delete them only on the backend's application ack.

A PUBACK is not durability (a broker SIGKILL lost acknowledged messages in our measurements),
so rows stay ``in_flight`` until the backend publishes their ids on ``.../ack`` after storing
them, and are sent again after ``resend_after`` seconds otherwise (at-least-once delivery; the
stable message id lets the backend de-duplicate). A PUBACK refusal (MQTT 5 reason >= 0x80)
marks the row ``rejected`` with its reason instead.

Chunks of large objects (edge/publish/objects.py) are rows like any other: QoS 1, the same
window, acks and re-sends. The outbox hands them out only after every pending reading and at
most ``max_object_in_flight`` at a time, so a photograph upload never holds readings back.
An object is delivered whole or not at all: when its manifest or any chunk is refused (by the
broker, the backend, or here because its PUBLISH would exceed the broker's Maximum Packet
Size), its other rows are rejected in the same transaction and one ``object.rejected`` event
is raised, so a dead object never holds the chunk slots.

PUBACK timeout: a PUBLISH may take ``puback_timeout`` plus the time to send the bytes awaiting
PUBACK ahead of it, and its own, at ``min_link_rate``: two 256 KiB chunks on a slow link are
not a dead link.

The stats (counters, PUBLISH -> PUBACK and PUBLISH -> backend-ack latencies) are read at scrape
time by the health endpoints (edge/health).

Layout: the settings and stats are in edge/publish/forward_state.py, the large-object rules (the
PUBACK window's deadlines by size, PUBLISH sizes, one fate per object) in
edge/publish/objects_flow.py; both are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
from collections.abc import Callable

from edge.events import Events
from edge.outbox import Outbox, OutboxError, Row
from edge.pipeline.fhir import SCHEMA
from edge.pipeline.telemetry import SCHEMA as TELEMETRY_SCHEMA
from edge.publish.forward_state import (
    BACKEND_BUCKETS,
    PUBACK_BUCKETS,
    ForwarderSettings,
    ForwarderStats,
    Latency,
)
from edge.publish.objects_flow import ObjectFate, _Window, publish_size
from edge.publish.port import LinkError, Publisher, PublishOutcome
from edge.publish.topics import Topics

log = logging.getLogger(__name__)

# what this module defined before the split stays importable from it
__all__ = [
    "BACKEND_BUCKETS",
    "PUBACK_BUCKETS",
    "SCHEMAS",
    "Forwarder",
    "ForwarderSettings",
    "ForwarderStats",
    "Latency",
    "_Window",
    "publish_size",
]

#: the ``schema`` user property per outbox row kind (MQTT 5 section 3.3.2.3.7)
SCHEMAS = {"clinical": SCHEMA, "telemetry": TELEMETRY_SCHEMA, "event": "santebus-event/1"}
#: clinical rows whose send time is kept for their backend ack (the oldest are forgotten)
_TRACKED_SENDS = 4096


class Forwarder(ObjectFate):
    """Runs forever: connect, drain the outbox, process acks, reconnect on failure."""

    def __init__(
        self,
        outbox: Outbox,
        link_factory: Callable[[], Publisher],
        topics: Topics,
        settings: ForwarderSettings | None = None,
        events: Events | None = None,
    ) -> None:
        self.outbox = outbox
        self.events = events
        self.link_factory = link_factory
        self.topics = topics
        self.settings = settings or ForwarderSettings()
        self.stats = ForwarderStats()
        self.wake = asyncio.Event()
        self.connected = asyncio.Event()
        #: set after the first connection attempt, whatever its outcome (service readiness)
        self.settled = asyncio.Event()
        #: inbound command topics (``.../cmd/{verb}``) and their handlers, subscribed each session
        self.commands: dict[str, Callable[[bytes], object]] = {}
        self._reconnect = asyncio.Event()
        #: clinical msg_id -> loop time of its PUBACKed PUBLISH, until the backend acks it
        self._sent_at: dict[str, float] = {}

    def request_reconnect(self) -> None:
        """Drop the current connection and make a new one now (e.g. after SIGHUP)."""
        log.info("mqtt reconnect requested")
        self._reconnect.set()
        self.wake.set()

    async def run(self) -> None:
        delay = self.settings.backoff_min
        while True:
            link: Publisher | None = None
            try:
                link = self.link_factory()  # a fresh client per attempt
                await link.connect()
                self.stats.connects += 1
                self.stats.last_connect = time.time()
                delay = self.settings.backoff_min
                log.info("mqtt connected attempt=%d", self.stats.connects)
                await self._session(link)
            except asyncio.CancelledError:
                # clean shutdown: tell the backend we left
                if self.connected.is_set() and link is not None:
                    with contextlib.suppress(LinkError, TimeoutError):
                        await asyncio.wait_for(self.say_offline(link), 2.0)
                raise
            except LinkError as exc:
                log.warning("mqtt link down error=%r retry_in=%.1fs", str(exc), delay)
            except (OSError, ValueError) as exc:
                # e.g. an unreadable TLS key or CA file: loud, but retried (it may be fixed)
                log.error("mqtt client cannot be set up error=%r retry_in=%.1fs", str(exc), delay)
            except Exception:  # a forwarding failure must never end the loop
                log.exception("forwarder session failed retry_in=%.1fs", delay)
            finally:
                self.settled.set()
                self.connected.clear()
                if link is not None:
                    await link.close()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.settings.backoff_max)

    async def _session(self, link: Publisher) -> None:
        await link.subscribe(self.topics.ack)
        for topic in self.commands:
            await link.subscribe(topic)
        status = json.dumps({"state": "online"}).encode()
        await link.publish(self.topics.status, status, retain=True)
        try:
            requeued = self.outbox.requeue_in_flight()
        except OutboxError as exc:  # they will be re-sent after resend_after anyway
            log.warning("outbox requeue skipped error=%r", str(exc))
            requeued = 0
        if requeued:
            log.info("outbox requeued in_flight=%d", requeued)
        self.connected.set()
        self.settled.set()  # tried and connected (a failed attempt sets it in run's finally)
        # Both run until the link fails; whichever stops first ends the session with its error
        # (an ack consumer that died silently would leave rows re-sent forever).
        tasks = {
            asyncio.create_task(self._consume(link), name="acks"),
            asyncio.create_task(self._publish_loop(link), name="publish"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            raise LinkError("session ended")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def say_offline(self, link: Publisher) -> None:
        """Clean shutdown: a Will is not sent on a normal DISCONNECT, so say it ourselves."""
        await link.publish(
            self.topics.status, json.dumps({"state": "offline"}).encode(), retain=True
        )

    async def _publish_loop(self, link: Publisher) -> None:
        """A sliding window: up to ``max_in_flight`` publishes await their PUBACK at once.

        No task per row: each PUBLISH's future settles through a callback (a task and a timer
        per row cost a fifth of a backlog drain); one clock checks the oldest for a timeout.
        """
        s = self.settings
        # Never more unacknowledged publishes than the broker's Receive Maximum
        # [MQTT-3.3.4-7] (a strict broker disconnects with 0x93), less one for the status and
        # unstored events published outside the window.
        limit = max(1, min(s.max_in_flight, link.receive_maximum - 1))
        window = _Window(limit=limit, refill_at=limit - max(1, limit // 4))
        clock = asyncio.get_running_loop().time
        while not link.state.disconnected.is_set():
            if window.failed:
                raise LinkError(f"publish failed for {len(window.failed)} rows")
            if self._reconnect.is_set():
                self._reconnect.clear()
                raise LinkError("reconnect requested")
            if window.awaiting:
                msg_id, sent = next(iter(window.awaiting.items()))
                deadline = window.due.get(msg_id, (sent + s.puback_timeout, 0))[0]
                if clock() > deadline:
                    raise LinkError(f"no PUBACK for {msg_id} within {deadline - sent:.0f} s")
            await self._publish_unstored_events(link)
            rows: list[Row] = []
            if len(window.awaiting) <= window.refill_at:
                try:
                    rows = self._take_due(window)
                except OutboxError as exc:
                    # A busy or failing outbox is not a broken link: keep it, retry.
                    log.warning("outbox unavailable error=%r retry_in=1s", str(exc))
                    await asyncio.sleep(1.0)
                    continue
            now = clock()
            # the broker's Maximum Packet Size (MQTT 5 section 3.2.2.3.6), None: no limit
            biggest: int | None = getattr(link, "maximum_packet_size", None)
            for row in rows:
                properties = {"msg-id": row.msg_id, "schema": row.schema or SCHEMAS[row.kind]}
                if biggest is not None:
                    size = publish_size(row.topic, len(row.payload), properties)
                    if size > biggest:  # [MQTT-3.2.2-15]: never sent; re-sending cannot help
                        self._too_large(row, size, biggest)
                        continue
                fut = link.send(row.topic, row.payload, user_properties=properties)
                window.add(row.msg_id, now, len(row.payload), s)
                fut.add_done_callback(functools.partial(self._on_puback, window, row))
            if rows and len(window.awaiting) < window.limit:
                continue  # more may be due: fill the window
            await self._idle(link)
        raise LinkError("broker connection lost")

    def _take_due(self, window: _Window) -> list[Row]:
        """Rows to send now, marked in flight: one query and one commit per chunk."""
        room = window.limit - len(window.awaiting)
        due = self.outbox.due(
            room,
            self.settings.resend_after,
            max_object_in_flight=self.settings.max_object_in_flight,
        )
        rows = [r for r in due if r.msg_id not in window.awaiting]
        if rows:
            self.outbox.mark_sent([r.msg_id for r in rows])
        return rows

    def _on_puback(self, window: _Window, row: Row, fut: asyncio.Future[PublishOutcome]) -> None:
        sent = window.pop(row.msg_id)
        if fut.cancelled() or fut.exception() is not None:
            window.failed.append(row.msg_id)  # stays in_flight; re-sent after the reconnect
            self.wake.set()
            return
        if sent is not None:
            self._timed(row, sent, fut.result().accepted)
        try:
            self._settle(row, fut.result())
        except OutboxError as exc:  # stays in flight: re-sent after resend_after
            log.error("outbox not updated msg_id=%s error=%r", row.msg_id, str(exc))
        except Exception:  # a bug: end the session loudly rather than lose track
            log.exception("PUBACK handling failed msg_id=%s", row.msg_id)
            window.failed.append(row.msg_id)
        if len(window.awaiting) <= window.refill_at:
            self.wake.set()  # refill in chunks of a quarter window, not per PUBACK

    def _timed(self, row: Row, sent: float, accepted: bool) -> None:
        """PUBLISH -> PUBACK into the stats; an accepted clinical row awaits its backend ack."""
        now = asyncio.get_running_loop().time()
        self.stats.puback_latency.observe(now - sent)
        if accepted and row.kind == "clinical":
            self._sent_at.pop(row.msg_id, None)  # a re-send: timed from its last PUBLISH
            if len(self._sent_at) >= _TRACKED_SENDS:  # bounded: acks may never come
                del self._sent_at[next(iter(self._sent_at))]
            self._sent_at[row.msg_id] = sent

    async def _idle(self, link: Publisher) -> None:
        """Until PUBACKs free a quarter of the window, rows arrive, the link drops, or 1 s."""
        self.wake.clear()
        disconnected = asyncio.ensure_future(link.state.disconnected.wait())
        woken = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait({disconnected, woken}, timeout=1.0, return_when="FIRST_COMPLETED")
        finally:
            disconnected.cancel()
            woken.cancel()

    async def _publish_unstored_events(self, link: Publisher) -> None:
        """Events the outbox could not hold (disk full): sent directly, best effort."""
        while self.events is not None and self.events.unstored:
            topic, payload = self.events.unstored[0]
            await link.publish(topic, payload, timeout=self.settings.puback_timeout)
            self.events.unstored.popleft()

    def _settle(self, row: Row, outcome: PublishOutcome) -> None:
        """The broker's PUBACK for ``row``."""
        self.stats.published += 1
        if outcome.accepted and row.kind != "clinical":
            # Telemetry and events need no backend ack: the broker's PUBACK is enough for them.
            self.outbox.confirm([row.msg_id])
        elif not outcome.accepted and not outcome.permanent:
            # e.g. 0x97 Quota exceeded: stays in flight and is sent again after resend_after
            log.warning("publish refused for now msg_id=%s reason=%r", row.msg_id, outcome.reason)
        elif not outcome.accepted:
            self._reject(row.msg_id, outcome.reason, "broker", row)

    async def _consume(self, link: Publisher) -> None:
        while True:
            message = await link.state.messages.get()
            command = self.commands.get(message.topic)
            if command is not None:
                try:
                    command(message.payload)
                except Exception:  # a handler bug must not end the link
                    log.exception("command handler failed topic=%s", message.topic)
                continue
            if message.topic != self.topics.ack:
                continue
            try:
                ack = json.loads(message.payload)
                stored = [str(i) for i in ack.get("stored", [])]
                rejected = [(str(r["id"]), str(r["reason"])) for r in ack.get("rejected", [])]
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log.error("backend ack unreadable topic=%s error=%r", message.topic, str(exc))
                continue
            try:
                self._apply_ack(stored, rejected)
            except OutboxError as exc:
                # The rows stay in flight and are re-sent; the backend acks them again.
                log.error("backend ack not applied ids=%d error=%r", len(stored), str(exc))

    def _apply_ack(self, stored: list[str], rejected: list[tuple[str, str]]) -> None:
        deleted = self.outbox.confirm(stored)
        self.stats.confirmed += deleted
        if deleted:
            # acked rows free room under max_object_in_flight: the next chunks are due now
            self.wake.set()
        now = asyncio.get_running_loop().time()
        for msg_id in stored:
            sent = self._sent_at.pop(msg_id, None)
            if sent is not None:
                self.stats.backend_latency.observe(now - sent)
        for msg_id, reason in rejected:
            # already gone or rejected: an ack for another gateway or a stale copy, ignored
            self._reject(msg_id, reason, "backend")
        log.debug("backend ack stored=%d deleted=%d", len(stored), deleted)
