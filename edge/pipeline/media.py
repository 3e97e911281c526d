"""The manifest of a large object: an HL7 FHIR R4 ``Media`` resource (pure, no I/O).

Published like an Observation on ``santebus/v1/{bus}/obs/{device}`` (docs/asyncapi.yaml,
ObjectManifest), with the object's chunks (edge/publish/objects.py) in the same outbox
transaction. FHIR R4 Media elements used: ``identifier`` (the message id as ``urn:uuid``, as on
Observations), ``status`` (EventStatus, required: ``completed``, the photograph exists),
``type`` (media-type ``image``), ``subject`` (the visit pseudonym, when bound), ``bodySite``
(SNOMED CT eye), ``device`` (the device id; Reference(Device) by identifier),
``createdDateTime`` and ``content`` (Attachment, required): ``contentType``, ``size``,
``url`` = ``urn:santebus:object:{object_id}``, ``title``, and the complex extension
``urn:santebus:fhir:extension:object`` with the SHA-256s. ``Attachment.hash`` is not set: R4
defines it as a base64 SHA-1.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from edge.pipeline.codes import EYES
from edge.publish.objects import NAMESPACE, ObjectPlan, manifest_extension


def manifest_msg_id(object_id: str) -> str:
    """The manifest's message id: UUIDv5 of ``{object_id}|manifest``, stable across re-ingests."""
    return str(uuid.uuid5(NAMESPACE, f"{object_id}|manifest"))


def media_manifest(
    plan: ObjectPlan,
    *,
    device_id: str,
    content_type: str,
    created: datetime,
    subject: str | None = None,
    eye: str | None = None,
    title: str | None = None,
) -> bytes:
    """The Media resource of ``plan`` as compact, key-sorted UTF-8 JSON.

    ``created`` must carry its UTC offset; ``subject`` is the visit pseudonym (never a name);
    ``eye`` is ``right``, ``left`` or None. Raises ValueError otherwise.
    """
    if created.tzinfo is None:
        raise ValueError("created needs a UTC offset")
    content: dict[str, Any] = {
        "contentType": content_type,
        "size": plan.size,
        "url": plan.url,
        "extension": [manifest_extension(plan)],
    }
    if title is not None:
        content["title"] = title
    media: dict[str, Any] = {
        "resourceType": "Media",
        "identifier": [
            {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{manifest_msg_id(plan.object_id)}"}
        ],
        "status": "completed",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/media-type",
                    "code": "image",
                    "display": "Image",
                }
            ]
        },
        "createdDateTime": created.isoformat(timespec="seconds"),
        "device": {"identifier": {"system": "urn:santebus:device", "value": device_id}},
        "content": content,
    }
    if subject is not None:
        media["subject"] = {
            "type": "Patient",
            "identifier": {"system": "urn:santebus:visit", "value": subject},
        }
    if eye is not None:
        if eye not in EYES:
            raise ValueError(f"eye must be right or left, got {eye!r}")
        site = EYES[eye]  # as on the tonometer's Observations
        media["bodySite"] = {
            "coding": [{"system": site.system, "code": site.code, "display": site.display}]
        }
    return json.dumps(media, sort_keys=True, separators=(",", ":")).encode("utf-8")
