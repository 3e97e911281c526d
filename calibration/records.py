"""Calibration records: what a technician established about one device, kept append-only.

A record is a JSON file ``<root>/<device serial>/<record id>.json``, written once and never
rewritten (``O_EXCL``), so the history of a device is its directory. The device's *current*
calibration is its most recent record by ``performed_at``: a later failed verification
supersedes an earlier pass, as it should (the device is out of tolerance now).

Since issue #8 a record also carries what was measured (points, checks, the fitted model, the
uncertainty) and is sealed: :meth:`CalibrationBook.add` stores the SHA-256 of its canonical JSON
(:func:`canonical_json`) in ``sha256``, and reading a sealed file checks it, so an edited or
damaged certificate is refused rather than trusted. Records from before (no such fields, no
``sha256``) still load.

Pure: pydantic, the standard library and calibration.models (NumPy, to check that a stored
model can be applied) only (ARCHITECTURE.md, dependency direction). The
procedures and the CLI that produce records are issue #8's; the daemon reads them here to carry
the calibration id and due date with every Observation and to flag readings of a device whose
calibration lapsed or failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from calibration.certificate import CalibrationPoint, CheckResult
from calibration.models import Model

_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_SAFE = re.compile(_ID)


class CalibrationError(Exception):
    """A record that cannot be read or written; the message names the file and the fault."""


class CalibrationRecord(BaseModel):
    """One calibration or verification of one device."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

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
    # -- issue #8: optional, so that the records written before still load --
    #: first day the calibration applies (usually the day it was performed)
    valid_from: date | None = None
    #: the static points, in the order measured
    points: tuple[CalibrationPoint, ...] = ()
    #: the fitted calibration.models.Model as its to_dict() (None: a verification)
    model: dict[str, Any] | None = None
    #: unit of the reference and of the calibrated readings (e.g. ``mmHg``)
    unit: Annotated[str, Field(max_length=16)] | None = None
    #: unit of the raw device value (e.g. ``counts``)
    raw_unit: Annotated[str, Field(max_length=16)] | None = None
    #: maximum permissible |error| (unit)
    tolerance: Annotated[float, Field(ge=0)] | None = None
    #: largest |error| over the points (unit)
    max_error: Annotated[float, Field(ge=0)] | None = None
    #: expanded uncertainty, k = 2 (JCGM 100:2008 6.2.1), unit
    uncertainty_k2: Annotated[float, Field(ge=0)] | None = None
    checks: tuple[CheckResult, ...] = ()
    #: last valid day of the reference instrument's own certificate
    reference_due: date | None = None
    #: the gateway software that performed it
    software_version: Annotated[str, Field(max_length=64)] | None = None
    #: e.g. ``nibp-transducer``, ``tonometer-model-eyes``, ``modbus-temperature-2pt``
    procedure: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")] | None = None
    #: hex SHA-256 of the canonical JSON of the record without this field (set by the book)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None

    @field_validator("model")
    @classmethod
    def _a_usable_model(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # a certificate whose model cannot be applied is not one; normalised (floats) on the way
        return None if value is None else Model.from_dict(value).to_dict()

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationRecord:
        if self.valid_from is not None and self.valid_from > self.valid_until:
            raise ValueError(f"valid_from {self.valid_from} is after valid_until")
        if self.result == "pass":
            failed = [c.name for c in self.checks if not c.passed]
            worst = max((abs(p.error) for p in self.points), default=0.0)
            worst = max(worst, self.max_error or 0.0)
            if failed:
                raise ValueError(f"result pass with failed check(s) {', '.join(failed)}")
            if self.tolerance is not None and worst > self.tolerance:
                raise ValueError(f"result pass with an error of {worst} > {self.tolerance}")
        return self


#: ``unreadable``: the current record's file is corrupt (the daemon says so; it never guesses)
Validity = Literal["valid", "expired", "not-yet-valid", "failed", "missing", "unreadable"]


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
        if self.validity == "not-yet-valid":
            # a reading dated before the calibration (a device clock behind, or reset)
            return f"calibration {r.id} not valid before {r.valid_from}"
        return None


def status(record: CalibrationRecord | None, on: date) -> CalibrationStatus:
    """The validity of ``record`` (a device's current one) for a reading taken on ``on``."""
    if record is None:
        return CalibrationStatus("missing", None)
    if record.result == "fail":
        return CalibrationStatus("failed", record)
    if on > record.valid_until:
        return CalibrationStatus("expired", record)
    if record.valid_from is not None and on < record.valid_from:
        return CalibrationStatus("not-yet-valid", record)
    return CalibrationStatus("valid", record)


class CalibrationBook:
    """The records under ``root``, read on demand and cached per device (its files' stat)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, tuple[int, CalibrationRecord | None]] = {}

    def add(self, record: CalibrationRecord) -> Path:
        """Store a new record, sealed with its sha256; an existing id is refused (append-only).

        A record that already carries a ``sha256`` must carry the right one.
        """
        sealed = seal(record)
        if record.sha256 not in (None, sealed.sha256):
            raise CalibrationError(f"record {record.id}: its sha256 does not match its content")
        folder = self.root / record.device_serial
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{record.id}.json"
        text = json.dumps(sealed.model_dump(mode="json"), indent=2, ensure_ascii=False)
        data = f"{text}\n".encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise CalibrationError(
                f"{path}: record {record.id} exists; records are never rewritten"
            ) from None
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view) :]
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
        # <id>.json only: a certificate copy (<id>.certificate.json) left here is not a record
        paths = [
            p for p in sorted(folder.glob("*.json")) if not p.name.endswith(".certificate.json")
        ]
        records = [_load(path) for path in paths]
        return sorted(records, key=lambda r: r.performed_at)

    def current(self, serial: str) -> CalibrationRecord | None:
        """The most recent record of a device (None when it has none).

        Cached on the name, mtime and size of every record file, not the folder's mtime
        alone: a record edited in place (tampering) changes no folder entry, and must be
        re-read (and refused by its sha256) at once.
        """
        folder = self.root / serial
        try:
            stats = ((p.name, p.stat()) for p in folder.glob("*.json"))
            key = hash(tuple(sorted((name, st.st_mtime_ns, st.st_size) for name, st in stats)))
        except FileNotFoundError:
            return None
        cached = self._cache.get(serial)
        if cached is not None and cached[0] == key:
            return cached[1]
        records = self.history(serial)
        latest = records[-1] if records else None
        self._cache[serial] = (key, latest)
        return latest

    def status(self, serial: str, on: date) -> CalibrationStatus:
        return status(self.current(serial), on)

    def get(self, record_id: str) -> CalibrationRecord:
        """The record ``record_id``, whichever device it belongs to."""
        if not _SAFE.match(record_id):
            raise CalibrationError(f"record id {record_id!r} is not a valid record id")
        found = [p for p in self._folders() if (p / f"{record_id}.json").is_file()]
        if not found:
            raise CalibrationError(f"{self.root}: no calibration record {record_id}")
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise CalibrationError(f"{self.root}: record {record_id} is filed under {names}")
        return _load(found[0] / f"{record_id}.json")

    def devices(self) -> list[str]:
        """The serials of the devices that have at least one record, sorted."""
        return [p.name for p in self._folders() if any(p.glob("*.json"))]

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and _SAFE.match(p.name))


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """The bytes a record's sha256 is taken over.

    ``data`` is the record's JSON object as stored (``model_dump(mode="json")``) without its
    ``sha256`` key, written with sorted keys, no whitespace (separators ``,`` and ``:``),
    non-ASCII characters as themselves, encoded in UTF-8; numbers as Python's ``json`` writes
    them (shortest round-trip form; this is not RFC 8785). To check a certificate by hand:
    ``sha256(json.dumps(obj_without_sha256, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False).encode())``.
    """
    text = json.dumps(dict(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def seal(record: CalibrationRecord) -> CalibrationRecord:
    """``record`` with ``sha256`` set to the digest of its content (what the book stores)."""
    digest = hashlib.sha256(canonical_json(record.model_dump(mode="json", exclude={"sha256"})))
    return record.model_copy(update={"sha256": digest.hexdigest()})


def _load(path: Path) -> CalibrationRecord:
    try:
        data = json.loads(path.read_bytes())
        claimed = data.get("sha256") if isinstance(data, dict) else None
        if isinstance(claimed, str):
            # verified over the object as stored, so a field added to the model later (with a
            # default) does not invalidate the records sealed before it existed
            content = {k: v for k, v in data.items() if k != "sha256"}
            actual = hashlib.sha256(canonical_json(content)).hexdigest()
            if actual != claimed:
                raise CalibrationError(
                    f"{path}: sha256 mismatch, the record was altered or corrupt after it was "
                    f"written (stored {claimed[:12]}..., content {actual[:12]}...)"
                )
        record = CalibrationRecord.model_validate(data)
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
