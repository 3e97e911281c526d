"""The large-object side of forwarding: chunk deadlines, PUBLISH sizes, one fate per object.

Apart from the forwarder (edge/publish/forwarder.py), which runs the session and the window,
because these rules exist only for the chunks of large objects (edge/publish/objects.py):

- :class:`_Window` gives each PUBLISH a PUBACK deadline by the bytes queued before it and its
  own at ``min_link_rate``, so two 256 KiB chunks on a slow link are not a dead link;
- :func:`publish_size` measures a PUBLISH as the broker's Maximum Packet Size counts it, so a
  chunk the broker would refuse is rejected here instead of sent;
- :class:`ObjectFate` (a mixin of the forwarder) rejects a refused row and, for a row of a
  large object, its manifest and every other chunk in the same transaction, with one
  ``object.rejected`` event, so a dead object never holds the chunk slots (the cap,
  ``max_object_in_flight``, is applied by the outbox: edge/outbox/queries.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from edge.events import Events
from edge.outbox import Outbox, OutboxError, Row
from edge.pipeline.media import manifest_msg_id
from edge.publish.forward_state import ForwarderSettings, ForwarderStats
from edge.publish.objects import MANIFEST_SCHEMA, chunk_msg_id, manifest_chunks, object_of

#: the forwarder's logger: these records keep the name they had before the split
log = logging.getLogger("edge.publish.forwarder")


@dataclass(slots=True)
class _Window:
    """The publishes of one session awaiting their PUBACK."""

    limit: int
    refill_at: int
    awaiting: dict[str, float] = field(default_factory=dict)  # msg_id -> sent (loop clock)
    #: msg_id -> (loop time by which its PUBACK is due, its payload bytes)
    due: dict[str, tuple[float, int]] = field(default_factory=dict)
    #: payload bytes of the publishes awaiting their PUBACK
    queued: int = 0
    failed: list[str] = field(default_factory=list)

    def add(self, msg_id: str, now: float, size: int, settings: ForwarderSettings) -> None:
        """Track a PUBLISH: due once the bytes before it and its own had time to go."""
        self.awaiting[msg_id] = now
        self.queued += size
        self.due[msg_id] = (now + settings.puback_timeout + self.queued / settings.min_link_rate,
                            size)  # fmt: skip

    def pop(self, msg_id: str) -> float | None:
        _, size = self.due.pop(msg_id, (0.0, 0))
        self.queued -= size
        return self.awaiting.pop(msg_id, None)


class ObjectFate:
    """Rejections of :class:`~edge.publish.forwarder.Forwarder` rows (a mixin).

    The forwarder sets these attributes in its ``__init__``.
    """

    outbox: Outbox
    events: Events | None
    stats: ForwarderStats

    def _too_large(self, row: Row, size: int, biggest: int) -> None:
        """A row whose PUBLISH the broker would refuse for its size: rejected, never sent.

        A client must not send a packet beyond the server's Maximum Packet Size
        [MQTT-3.2.2-15] (a broker disconnects with 0x95 Packet too large). A stored chunk cannot
        be cut again: its object is rejected, and the cure is a ``chunk_size`` well below the
        broker's limit (docs/operations.md).
        """
        reason = (
            f"PUBLISH of {size} bytes exceeds the broker's Maximum Packet Size of {biggest}"
            " bytes (MQTT 5 section 3.2.2.3.6); set the device's chunk_size below it"
        )
        try:
            self._reject(row.msg_id, reason, "gateway", row)
        except OutboxError as exc:  # stays in flight: tried again after resend_after
            log.error("outbox not updated msg_id=%s error=%r", row.msg_id, str(exc))

    def _reject(self, msg_id: str, reason: str, by: str, row: Row | None = None) -> None:
        """Mark a refused row ``rejected``; the other rows of its large object share its fate.

        ``by`` is broker, backend or gateway. One event per refusal: ``outbox.rejected`` for a
        row of its own, ``object.rejected`` (object_id, rows) for an object, whose other rows -
        the manifest and every chunk still held - are rejected in the same transaction, so
        none of them is sent again or keeps a chunk slot. A row already gone or rejected (a
        second refusal, an ack meant for another gateway) changes nothing.
        """
        row = row or self.outbox.get(msg_id)
        if row is None:
            return
        why = f"{by} refused: {reason}" if by != "gateway" else reason
        object_id = object_of(row.topic, row.schema, row.payload)
        if object_id is None:
            if not self.outbox.reject(msg_id, why):
                return
            self.stats.rejected += 1
            if by == "backend":
                log.error("backend rejected msg_id=%s reason=%r", msg_id, reason)
            else:
                log.error(
                    "outbox row rejected msg_id=%s device=%s reason=%r", msg_id, row.device, reason
                )
            if self.events is not None and row.kind != "event":
                self.events.raise_event(
                    "outbox.rejected", "error", row.device, msg_id=msg_id, by=by, reason=reason
                )
            return
        others = self._object_rows(object_id, row)
        shared = self.outbox.reject_with(
            msg_id, why, others, f"object {object_id} rejected: {why} (row {msg_id})"
        )
        if shared is None:
            return
        self.stats.rejected += 1 + shared
        log.error(
            "object rejected object_id=%s device=%s msg_id=%s by=%s rows=%d reason=%r",
            object_id,
            row.device,
            msg_id,
            by,
            1 + shared,
            reason,
        )
        if self.events is not None:
            self.events.raise_event(
                "object.rejected",
                "error",
                row.device,
                object_id=object_id,
                msg_id=msg_id,
                by=by,
                reason=reason,
                rows=1 + shared,
            )

    def _object_rows(self, object_id: str, row: Row) -> list[str]:
        """The message ids of the manifest and every chunk of ``object_id``.

        The chunk count is the manifest's (the manifest row stays in the outbox until the
        whole object is verified, so it is there while any chunk is).
        """
        manifest_id = manifest_msg_id(object_id)
        manifest = row if row.schema == MANIFEST_SCHEMA else self.outbox.get(manifest_id)
        count = None if manifest is None else manifest_chunks(manifest.payload)
        if count is None:
            log.warning("object manifest not found object_id=%s: only its row rejected", object_id)
            return [manifest_id]
        return [manifest_id, *(chunk_msg_id(object_id, i) for i in range(count))]


def publish_size(topic: str, payload: int, user_properties: dict[str, str]) -> int:
    """The bytes of a QoS 1 PUBLISH packet, as the broker's Maximum Packet Size counts them.

    MQTT 5 section 3.2.2.3.6: the total bytes of the control packet (section 2.1.4). Fixed
    header: one byte and the Remaining Length as a Variable Byte Integer (sections 2.1.1,
    1.5.5); variable header: the Topic Name as a UTF-8 string (two-byte length, section
    3.3.2.1), the Packet Identifier (two bytes at QoS 1, section 3.3.2.2), the Property Length
    (a Variable Byte Integer) and each User Property (identifier 0x26 and a UTF-8 String Pair,
    section 3.3.2.3.7); then the payload (section 3.3.3).
    """
    props = sum(1 + 2 + len(k.encode()) + 2 + len(v.encode()) for k, v in user_properties.items())
    remaining = 2 + len(topic.encode()) + 2 + _vbi_size(props) + props + payload
    return 1 + _vbi_size(remaining) + remaining


def _vbi_size(value: int) -> int:
    """Bytes of ``value`` as a Variable Byte Integer (MQTT 5 section 1.5.5): 7 bits each."""
    size = 1
    while value >= 128:
        value //= 128
        size += 1
    return size
