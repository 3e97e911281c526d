"""The AsyncAPI document as an executable contract: payloads checked against its JSON Schemas."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import yaml
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.observation import Observation
from jsonschema import Draft7Validator, FormatChecker
from pydantic import ValidationError

ASYNCAPI = Path(__file__).parents[1] / "docs" / "asyncapi.yaml"


@functools.cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ASYNCAPI.read_text())
    return loaded


def message_validator(message: str) -> Draft7Validator:
    """Validator for ``components.messages.<message>.payload``, refs resolved in the document.

    In draft 7 a ``$ref`` replaces its siblings, so the whole document can be the root schema
    (every ``#/components/...`` pointer resolves) while only the payload is applied.
    """
    root = {**document(), "$ref": f"#/components/messages/{message}/payload"}
    return Draft7Validator(root, format_checker=FormatChecker())


def errors(message: str, payload: object) -> list[str]:
    """Every violation, with the path of the offending value."""
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in message_validator(message).iter_errors(payload)
    ]


#: topic (after ``santebus/v1/{bus}/``) -> the AsyncAPI message its payloads must match
_BY_TOPIC = {
    "obs": "Observation",
    "ack": "BackendAck",
    "status": "StatusOnline",
    "events": "Event",
    "telemetry": "TelemetryPack",
    "cmd": "VisitCommand",
    "obj": "ObjectChunk",
}
#: what a chunk's topic must look like after ``santebus/v1/``: bus, device, object id, index
_CHUNK_TOPIC = re.compile(
    r"^[a-z0-9][a-z0-9_-]{0,47}/obj/[a-z0-9][a-z0-9_-]{0,47}/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/(0|[1-9][0-9]{0,5})$"
)


def message_for(topic: str) -> str:
    """The AsyncAPI message a topic carries, e.g. ``santebus/v1/b/obs/tono-1`` -> Observation."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[:2] != ["santebus", "v1"] or parts[3] not in _BY_TOPIC:
        raise KeyError(f"topic {topic!r} is not in docs/asyncapi.yaml")
    return _BY_TOPIC[parts[3]]


def violations(topic: str, payload: bytes) -> list[str]:
    """Everything wrong with one published message: its topic is not in the document, its
    payload is not JSON, breaks the message's schema, or (Observations, Media manifests) is not
    FHIR R4. Object chunks (``.../obj/...``) are raw bytes: only their topic is checked."""
    try:
        message = message_for(topic)
    except KeyError as exc:
        return [str(exc.args[0])]
    if message == "ObjectChunk":  # the one channel whose payload is bytes, not JSON
        found = [] if _CHUNK_TOPIC.match(topic.removeprefix("santebus/v1/")) else [
            f"{topic}: not santebus/v1/{{bus}}/obj/{{device}}/{{object_id}}/{{index}}"
        ]  # fmt: skip
        return found + ([f"{topic}: empty chunk"] if not payload else [])
    try:
        body = json.loads(payload)
    except ValueError as exc:
        return [f"{topic}: payload is not JSON: {exc}"]
    if message == "Observation" and isinstance(body, dict) and body.get("resourceType") == "Media":
        message = "ObjectManifest"  # the obs channel carries Observations and object manifests
    found = [f"{topic}: {e}" for e in errors(message, body)]
    if message in ("Observation", "ObjectManifest") and not found:
        try:
            if message == "Observation":
                Observation.model_validate(body)
            else:
                Media.model_validate(body)
        except ValidationError as exc:
            found.append(f"{topic}: not a FHIR R4 {message}: {exc}")
    return found
