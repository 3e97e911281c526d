"""Large objects (retinal photographs, 1-10 MB) as outbox rows: pure planning, no I/O.

An object travels as a *manifest* and its *chunks*, all stored by one ``Outbox.add`` call (one
fsync'd transaction):

* each chunk is an outbox row of kind ``clinical`` (never evicted) and priority
  :data:`OBJECT_PRIORITY`, published on ``santebus/v1/{bus}/obj/{device}/{object_id}/{index}``
  with the raw chunk bytes as payload (MQTT 5 section 3.3.3: the payload is application
  bytes; no Payload Format Indicator, so not UTF-8) and the MQTT 5 user properties ``msg-id``
  and ``schema`` = :data:`CHUNK_SCHEMA`. Its message id is a UUIDv5 of the object id and the
  index: ingesting the same object again adds nothing, and the backend de-duplicates re-sends;
* the manifest is a FHIR R4 ``Media`` resource published like any clinical row on
  ``santebus/v1/{bus}/obs/{device}`` (edge/pipeline/media.py builds it), whose ``content``
  Attachment carries ``contentType``, ``size``, ``url`` = :func:`object_url` and the complex
  extension :func:`manifest_extension` (whole-object and per-chunk SHA-256). FHIR R4
  ``Attachment.hash`` is defined as a base64 SHA-1 (R4 datatypes, Attachment), so the SHA-256
  lives in the extension, never there.

The backend acks each chunk id once it has stored and verified it, and the manifest's id only
once the reassembled object matches its SHA-256; the outbox deletes each row on its ack, so
after an outage or a daemon kill only the chunks not yet acknowledged are sent again.

An object is delivered whole or not at all: when the manifest or a chunk is refused, the
forwarder finds the object's other rows with :func:`object_of` and :func:`manifest_chunks`
(the message ids are derived, so no lookup by topic) and rejects them in one transaction
(edge/publish/forwarder.py). The default object id is the same for the same bytes anywhere;
give ``plan_object`` a ``scope`` (``{bus}/{device}``) to make it, and the message ids, unique
per bus and device.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from edge.outbox.model import NewRow
from edge.publish.topics import Topics

#: the outbox priority of chunks: sent after every pending reading (edge/outbox/queries.py)
OBJECT_PRIORITY = 1
#: the ``schema`` user property of a chunk PUBLISH
CHUNK_SCHEMA = "santebus-object-chunk/1"
#: ... and of a manifest PUBLISH (edge/pipeline/media.py writes the manifest)
MANIFEST_SCHEMA = "fhir-r4-media/1"
#: the URL of the manifest's complex extension on ``Media.content``
EXTENSION_URL = "urn:santebus:fhir:extension:object"
#: default chunk size: 40 chunks for a 10 MB photograph, a few seconds each on a slow 4G link
DEFAULT_CHUNK_SIZE = 256 * 1024
#: UUIDv5 namespace of object and chunk ids (uuid5(NAMESPACE_URL, "urn:santebus:object"))
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:santebus:object")


@dataclass(frozen=True, slots=True)
class ObjectPlan:
    """How one object is cut: its id, size and SHA-256, and each chunk's SHA-256 (hex)."""

    object_id: str
    size: int
    sha256: str
    chunk_size: int
    chunk_sha256: tuple[str, ...]

    @property
    def chunks(self) -> int:
        return len(self.chunk_sha256)

    @property
    def url(self) -> str:
        return object_url(self.object_id)


def object_url(object_id: str) -> str:
    """``Media.content.url`` of an object: ``urn:santebus:object:{object_id}``."""
    return f"urn:santebus:object:{object_id}"


def chunk_msg_id(object_id: str, index: int) -> str:
    """The message id of chunk ``index``: UUIDv5 of ``{object_id}|{index}``, stable."""
    return str(uuid.uuid5(NAMESPACE, f"{object_id}|{index}"))


def plan_object(
    data: bytes,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    object_id: str | None = None,
    *,
    scope: str = "",
) -> ObjectPlan:
    """Cut ``data`` into chunks of ``chunk_size`` bytes (the last one shorter).

    ``object_id`` defaults to a UUIDv5 of the SHA-256 - of ``{scope}|{sha256}`` when ``scope``
    is given - so the same bytes give the same id, and the manifest and chunk message ids
    derived from it are the same on every re-ingest. Pass ``scope`` = ``{bus}/{device}`` so
    that the same photograph sent by two buses or devices gets two ids (FHIR identifiers are
    meant to be unique; the reference backend keys objects on the bus anyway). Raises
    ValueError for empty data or a chunk size below 1.
    """
    if not data:
        raise ValueError("an object needs at least one byte")
    if chunk_size < 1:
        raise ValueError(f"chunk size must be positive, got {chunk_size}")
    whole = hashlib.sha256(data).hexdigest()
    view = memoryview(data)
    sums = tuple(
        hashlib.sha256(view[i : i + chunk_size]).hexdigest()
        for i in range(0, len(data), chunk_size)
    )
    return ObjectPlan(
        object_id=object_id or str(uuid.uuid5(NAMESPACE, f"{scope}|{whole}" if scope else whole)),
        size=len(data),
        sha256=whole,
        chunk_size=chunk_size,
        chunk_sha256=sums,
    )


def chunk_rows(plan: ObjectPlan, topics: Topics, device: str, data: bytes) -> list[NewRow]:
    """The outbox rows of every chunk of ``data``, cut as ``plan`` says.

    ``data`` must be what was planned (its size is checked here; the backend checks the
    hashes). Store them in the same ``Outbox.add`` call as the manifest row.
    """
    if len(data) != plan.size:
        raise ValueError(f"object {plan.object_id}: {len(data)} bytes, planned {plan.size}")
    size = plan.chunk_size
    return [
        NewRow(
            msg_id=chunk_msg_id(plan.object_id, index),
            device=device,
            topic=topics.obj(device, plan.object_id, index),
            payload=data[index * size : (index + 1) * size],
            kind="clinical",
            priority=OBJECT_PRIORITY,
            schema=CHUNK_SCHEMA,
        )
        for index in range(plan.chunks)
    ]


def manifest_extension(plan: ObjectPlan) -> dict[str, Any]:
    """The complex extension of ``Media.content`` describing how the object was chunked.

    FHIR R4 extensibility: a complex extension has sub-extensions and no value of its own;
    ``chunkSha256`` repeats, once per chunk in index order (repeating elements keep their
    order in FHIR).
    """
    subs: list[dict[str, Any]] = [
        {"url": "sha256", "valueString": plan.sha256},
        {"url": "chunkSize", "valuePositiveInt": plan.chunk_size},
        {"url": "chunks", "valuePositiveInt": plan.chunks},
    ]
    subs += [{"url": "chunkSha256", "valueString": digest} for digest in plan.chunk_sha256]
    return {"url": EXTENSION_URL, "extension": subs}


def object_of(topic: str, schema: str | None, payload: bytes) -> str | None:
    """The id of the object an outbox row belongs to, or None for any other row.

    A chunk (``schema`` :data:`CHUNK_SCHEMA`) names it in its topic,
    ``.../obj/{device}/{object_id}/{index}``; a manifest (``schema`` :data:`MANIFEST_SCHEMA`)
    in ``content.url`` = ``urn:santebus:object:{object_id}``.
    """
    if schema == CHUNK_SCHEMA:
        parts = topic.rsplit("/", 2)
        return parts[1] if len(parts) == 3 else None
    if schema != MANIFEST_SCHEMA:
        return None
    try:
        url = json.loads(payload)["content"]["url"]
    except (ValueError, TypeError, KeyError):
        return None
    prefix = object_url("")
    return url[len(prefix) :] if isinstance(url, str) and url.startswith(prefix) else None


def manifest_chunks(payload: bytes) -> int | None:
    """How many chunks a manifest (FHIR R4 Media JSON) announces, or None if unreadable."""
    try:
        for ext in json.loads(payload)["content"]["extension"]:
            if ext.get("url") == EXTENSION_URL:
                for sub in ext["extension"]:
                    if sub.get("url") == "chunks":
                        return int(sub["valuePositiveInt"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return None
