"""Calibration records: what a technician established about one device, kept append-only.

A record is a JSON file ``<root>/<device serial>/<record id>.json``, written once and never
rewritten (``O_EXCL``), so the history of a device is its directory. The device's *current*
calibration is its most recent record by ``performed_at``: a later failed verification
supersedes an earlier pass, as it should (the device is out of tolerance now).

Pure: pydantic and the standard library only (ARCHITECTURE.md, dependency direction). The
procedures and the CLI that produce records are issue #8's; the daemon reads them here to carry
the calibration id and due date with every Observation and to flag readings of a device whose
calibration lapsed or failed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_SAFE = re.compile(_ID)


class CalibrationError(Exception):
    """A record that cannot be read or written; the message names the file and the fault."""


class CalibrationRecord(BaseModel):
    """One calibration or verification of one device."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(pattern=_ID)]
    device_serial: Annotated[str, Field(pattern=_ID)]
    device_model: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Literal["calibration", "verification"]
    performed_at: AwareDatetime
    #: last day (inclusive, the bus's local date) on which readings count as calibrated
    valid_until: date
    result: Literal["pass", "fail"]
    #: who did it: a technician id, never a patient's anything
    technician: Annotated[str, Field(min_length=1, max_length=64)]
    #: the reference instrument's identifier (its own certificate is its own record)
    reference_id: Annotated[str, Field(min_length=1, max_length=64)]


#: ``unreadable``: the current record's file is corrupt (the daemon says so; it never guesses)
Validity = Literal["valid", "expired", "failed", "missing", "unreadable"]


@dataclass(frozen=True, slots=True)
class CalibrationStatus:
    """What the current record says about a reading taken on ``on``."""

    validity: Validity
    record: CalibrationRecord | None

    @property
    def reason(self) -> str | None:
        """Why a reading is not backed by a valid calibration (None: it is)."""
        r = self.record
        if self.validity == "unreadable":
            return "calibration record unreadable (see the gateway log)"
        if r is None:
            return "no calibration on record for this device"
        if self.validity == "failed":
            return f"calibration {r.id} of {r.performed_at.date()} failed"
        if self.validity == "expired":
            return f"calibration {r.id} expired on {r.valid_until}"
        return None


def status(record: CalibrationRecord | None, on: date) -> CalibrationStatus:
    """The validity of ``record`` (a device's current one) for a reading taken on ``on``."""
    if record is None:
        return CalibrationStatus("missing", None)
    if record.result == "fail":
        return CalibrationStatus("failed", record)
    if on > record.valid_until:
        return CalibrationStatus("expired", record)
    return CalibrationStatus("valid", record)


class CalibrationBook:
    """The records under ``root``, read on demand and cached per device directory mtime."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, tuple[int, CalibrationRecord | None]] = {}

    def add(self, record: CalibrationRecord) -> Path:
        """Store a new record; an existing id is refused (history is append-only)."""
        folder = self.root / record.device_serial
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{record.id}.json"
        data = record.model_dump_json(indent=2).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise CalibrationError(
                f"{path}: record {record.id} exists; records are never rewritten"
            ) from None
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new name is durable too
        finally:
            os.close(dir_fd)
        return path

    def history(self, serial: str) -> list[CalibrationRecord]:
        """Every record of a device, oldest first; a corrupt file is an error naming it."""
        if not _SAFE.match(serial):
            raise CalibrationError(f"device serial {serial!r} is not a valid record folder name")
        folder = self.root / serial
        if not folder.is_dir():
            return []
        records = [_load(path) for path in sorted(folder.glob("*.json"))]
        return sorted(records, key=lambda r: r.performed_at)

    def current(self, serial: str) -> CalibrationRecord | None:
        """The most recent record of a device (None when it has none)."""
        folder = self.root / serial
        try:
            mtime = folder.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        cached = self._cache.get(serial)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        records = self.history(serial)
        latest = records[-1] if records else None
        self._cache[serial] = (mtime, latest)
        return latest

    def status(self, serial: str, on: date) -> CalibrationStatus:
        return status(self.current(serial), on)


def _load(path: Path) -> CalibrationRecord:
    try:
        record = CalibrationRecord.model_validate(json.loads(path.read_bytes()))
    except (OSError, ValueError, ValidationError) as exc:
        raise CalibrationError(f"{path}: not a calibration record: {exc}") from exc
    if path.stem != record.id or path.parent.name != record.device_serial:
        raise CalibrationError(
            f"{path}: holds record {record.id} of device {record.device_serial}; misfiled"
        )
    return record


def days_left(record: CalibrationRecord, today: date) -> int:
    """Days until the calibration lapses (0: last valid day; negative: lapsed)."""
    return (record.valid_until - today).days
