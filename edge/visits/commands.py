"""The reception tablet's visit commands on ``santebus/v1/{bus}/cmd/visit``.

Payload (JSON): ``{"action": "start", "station": "eye", "visit": "V-7F3A", "at": "<ISO 8601
with offset>"}`` or ``{"action": "stop", "station": "eye", "at": ...}``; ``at`` (the tablet's
time of the action) is optional and defaults to the time the gateway receives the command. The
broker's ACL lets only the tablet's identity publish there; the gateway checks everything else
and never trusts the payload's shape.

A command queued by the broker while the bus was offline arrives late: with ``at`` it still
opens or closes the visit at the right instant, but readings committed in the meantime were
bound then (or not) and are not re-bound - their ``visit.unbound`` events tell the backend.
Every outcome is an event (``visit.opened``, ``visit.closed``, ``visit.command_refused`` with
the reason); visit ids appear in neither events nor logs (the Observations carry them).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import TypedDict

from edge.events import Events, Severity
from edge.visits.book import VisitBook, VisitError

log = logging.getLogger(__name__)

#: how far in the future a command's ``at`` may be (the tablet's clock vs ours), seconds
MAX_AHEAD = 300.0


class VisitCommands:
    """Applies visit commands to the book; :meth:`handle` never raises."""

    def __init__(self, book: VisitBook, events: Events | None = None) -> None:
        self.book = book
        self.events = events
        self.applied = 0
        self.refused = 0

    def handle(self, payload: bytes) -> bool:
        """Apply one command; False (and a ``visit.command_refused`` event) when refused."""
        try:
            command = _parse(payload)
        except VisitError as exc:
            return self._refuse(None, exc)
        station = command["station"]
        try:
            if command["action"] == "start":
                for _ in self.book.start(station, command["visit"], at=command["at"]):
                    self._event("visit.closed", station, by="superseded")
                self._event("visit.opened", station)
            else:
                self.book.stop(station, at=command["at"], by="tablet")
                self._event("visit.closed", station, by="tablet")
        except VisitError as exc:
            return self._refuse(station, exc)
        self.applied += 1
        return True

    def _refuse(self, station: str | None, exc: VisitError) -> bool:
        self.refused += 1
        log.warning("visit command refused station=%s reason=%r", station, str(exc))
        self._event("visit.command_refused", station, "warning", reason=str(exc))
        return False

    def _event(
        self, kind: str, station: str | None, severity: Severity = "info", **detail: str
    ) -> None:
        if self.events is not None:
            self.events.raise_event(kind, severity, None, station=station, **detail)


class _Command(TypedDict):
    action: str
    station: str
    visit: str
    at: float | None


def _parse(payload: bytes) -> _Command:
    """The command, checked field by field; VisitError names the first fault."""
    try:
        command = json.loads(payload)
    except ValueError as exc:  # also UnicodeDecodeError
        raise VisitError(f"command is not JSON: {exc}") from exc
    if not isinstance(command, dict):
        raise VisitError("command is not a JSON object")
    action = command.get("action")
    if action not in ("start", "stop"):
        raise VisitError(f"action {action!r} is not start or stop")
    return {
        "action": action,
        "station": _text(command, "station"),
        "visit": _text(command, "visit") if action == "start" else "",
        "at": _when(command.get("at")),
    }


def _text(command: dict[str, object], key: str) -> str:
    value = command.get(key)
    if not isinstance(value, str) or not value:
        raise VisitError(f"{key!r} missing or not a string")
    return value


def _when(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise VisitError("'at' must be an ISO 8601 string")
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise VisitError(f"'at' is not ISO 8601: {value!r}") from exc
    if at.tzinfo is None:
        raise VisitError("'at' has no UTC offset")
    stamp = at.timestamp()
    if stamp > time.time() + MAX_AHEAD:
        raise VisitError(f"'at' is more than {MAX_AHEAD:.0f} s in the future: {value}")
    return stamp
