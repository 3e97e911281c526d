"""Structural checks the reference backend applies to each Observation before storing it.

Not a full FHIR validator (the tests use ``fhir.resources`` for that); it enforces what the
integration contract in docs/asyncapi.yaml promises: an R4 Observation with a message-id
identifier, a coded ``code``, an effective time with offset, a device reference, and exactly one
of ``valueQuantity`` (UCUM) or ``dataAbsentReason``. A large object's FHIR R4 Media manifest
on the same topic is checked by :func:`check_manifest`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from simulators.backend.objects import Manifest

OBJECT_URL = "urn:santebus:object:"
OBJECT_EXTENSION = "urn:santebus:fhir:extension:object"


class InvalidPayloadError(ValueError):
    """The payload breaks the contract; ``msg_id`` is set when it could be read."""

    def __init__(self, reason: str, msg_id: str | None = None) -> None:
        super().__init__(reason)
        self.msg_id = msg_id


def message_id(obs: dict[str, Any]) -> str | None:
    for ident in obs.get("identifier") or []:
        value = ident.get("value") if isinstance(ident, dict) else None
        if ident.get("system") == "urn:ietf:rfc:3986" and str(value).startswith("urn:uuid:"):
            return str(value).removeprefix("urn:uuid:")
    return None


def parse(payload: bytes, header_msg_id: str | None) -> Any:
    """The payload as JSON, or :class:`InvalidPayloadError`."""
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayloadError(f"not JSON: {exc}", header_msg_id) from exc


def validate(payload: bytes, header_msg_id: str | None) -> tuple[str, dict[str, Any]]:
    """Return ``(msg_id, observation)`` or raise :class:`InvalidPayloadError`."""
    return check_observation(parse(payload, header_msg_id), header_msg_id)


def check_observation(obs: Any, header_msg_id: str | None) -> tuple[str, dict[str, Any]]:
    """``validate`` on an already parsed payload."""
    if not isinstance(obs, dict) or obs.get("resourceType") != "Observation":
        raise InvalidPayloadError("not a FHIR Observation", header_msg_id)
    msg_id = message_id(obs)
    if msg_id is None:
        raise InvalidPayloadError("identifier urn:uuid missing", header_msg_id)
    if header_msg_id is not None and header_msg_id != msg_id:
        raise InvalidPayloadError("msg-id user property differs from identifier", msg_id)
    if obs.get("status") not in (
        "final",
        "preliminary",
        "amended",
        "corrected",
        "entered-in-error",
    ):
        raise InvalidPayloadError(f"status {obs.get('status')!r} not allowed", msg_id)
    codings = (obs.get("code") or {}).get("coding") or []
    if not any(c.get("system") and c.get("code") for c in codings):
        raise InvalidPayloadError("code has no system+code coding", msg_id)
    try:
        effective = datetime.fromisoformat(str(obs.get("effectiveDateTime")))
    except ValueError as exc:
        raise InvalidPayloadError("effectiveDateTime missing or malformed", msg_id) from exc
    if effective.tzinfo is None:
        raise InvalidPayloadError("effectiveDateTime has no UTC offset", msg_id)
    if not ((obs.get("device") or {}).get("identifier") or {}).get("value"):
        raise InvalidPayloadError("device.identifier missing", msg_id)
    _value_or_panel(obs, msg_id)
    return msg_id, obs


def _value_or_panel(obs: dict[str, Any], msg_id: str) -> None:
    """Exactly one of valueQuantity / dataAbsentReason, or a panel (components, no value)."""
    has_value, has_dar = "valueQuantity" in obs, "dataAbsentReason" in obs
    if not has_value and not has_dar and obs.get("component"):
        for part in obs["component"]:
            _value_or_panel({**part, "component": None}, msg_id)
        return
    if has_value == has_dar:
        raise InvalidPayloadError("needs exactly one of valueQuantity, dataAbsentReason", msg_id)
    if has_value:
        q = obs["valueQuantity"]
        if q.get("system") != "http://unitsofmeasure.org" or not isinstance(
            q.get("value"), int | float
        ):
            raise InvalidPayloadError("valueQuantity must be a UCUM number", msg_id)


def check_manifest(media: dict[str, Any], header_msg_id: str | None, topic: str) -> Manifest:
    """A large object's Media manifest (docs/asyncapi.yaml, ObjectManifest), or a refusal.

    Checked: the urn:uuid identifier (equal to ``msg-id``), ``content.url`` =
    ``urn:santebus:object:{object_id}``, ``content.size``, and the extension
    ``urn:santebus:fhir:extension:object`` whose ``chunks`` matches its ``chunkSha256`` count
    and ``size`` / ``chunkSize``.
    """
    msg_id = message_id(media)
    if msg_id is None:
        raise InvalidPayloadError("identifier urn:uuid missing", header_msg_id)
    if header_msg_id is not None and header_msg_id != msg_id:
        raise InvalidPayloadError("msg-id user property differs from identifier", msg_id)
    content = media.get("content") or {}
    url = str(content.get("url", ""))
    size = content.get("size")
    if not url.startswith(OBJECT_URL) or not isinstance(size, int) or size < 1:
        raise InvalidPayloadError("content needs url urn:santebus:object:<id> and a size", msg_id)
    subs: dict[str, list[Any]] = {}
    for ext in content.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == OBJECT_EXTENSION:
            for sub in ext.get("extension") or []:
                value = next((v for k, v in sub.items() if k.startswith("value")), None)
                subs.setdefault(str(sub.get("url")), []).append(value)
    digests = tuple(str(d) for d in subs.get("chunkSha256", []))
    whole, chunk_size, chunks = (subs.get(k, [None])[0] for k in ("sha256", "chunkSize", "chunks"))
    if (
        not isinstance(whole, str)
        or not isinstance(chunk_size, int)
        or chunk_size < 1
        or chunks != len(digests)
        or chunks != -(-size // chunk_size)
    ):
        raise InvalidPayloadError("object extension inconsistent with content.size", msg_id)
    parts = topic.split("/")
    return Manifest(
        msg_id=msg_id,
        bus=parts[2],
        device=parts[4],
        object_id=url.removeprefix(OBJECT_URL),
        sha256=whole,
        size=size,
        chunk_sha256=digests,
        topic=topic,
        payload=json.dumps(media, sort_keys=True),
    )
