"""A polled export folder: cameras that write DICOM files instead of sending them.

:class:`FolderWatcher` looks at ``*.dcm`` files (any case) directly in one folder every
``poll_interval_s`` (plain polling: no inotify, works on any filesystem, including a share the
camera writes to). A file is taken only once its size and modification time were the same on
two polls at least ``settle_s`` apart, so a file still being copied is never read half-way (a
camera that writes ``x.dcm.part`` and renames is ideal and needs no settling at all).

Its bytes go to the same ``on_object(raw, "folder:<name>")`` handler as the C-STORE SCP's. Then:

* accepted - moved to ``done/`` (or deleted with ``keep_accepted=False``; ``done/`` holds the
  camera's original, identifying file: purge it with the rest of the camera's export);
* refused - moved to ``refused/`` with ``<file>.reason.txt`` (status, code, reason);
* transient status (out of resources, processing failure) or a handler exception - left in
  place and retried after ``retry_s``: a file is never dropped. A file the handler raised on
  ``max_failures`` times in a row (a bug it triggers every time) is moved to ``refused/`` with
  code ``handler-failed``, so one file cannot be retried forever; move it back to retry it;
* larger than :data:`~drivers.dicom.validate.MAX_OBJECT_BYTES` - moved to ``refused/`` unread.

Logs never name a file: cameras build file names from the patient's name. A file is logged as
``file#<10 hex digits>`` (SHA-256 of its name, :func:`file_ref`) with the verdict's status and
code; the name itself is only on local disk, in ``refused/`` and its ``.reason.txt``.

The handler runs before the move: if the daemon dies in between, the file is handed over again
at the next start, so the handler must be idempotent per SOP Instance UID (the de-identified UID
is deterministic, :func:`drivers.dicom.deidentify.new_uid`). Files are read on the event loop's
thread (a photograph is a few MB: milliseconds).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drivers.dicom import ObjectHandler, Status, Verdict
from drivers.dicom.validate import MAX_OBJECT_BYTES

__all__ = ["FolderOutcome", "FolderSettings", "FolderWatcher", "file_ref"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FolderSettings:
    path: Path
    name: str = "export"
    poll_interval_s: float = 1.0
    settle_s: float = 2.0
    retry_s: float = 30.0
    keep_accepted: bool = True
    max_failures: int = 5


@dataclass(frozen=True, slots=True)
class FolderOutcome:
    """What happened to one file: ``moved_to`` is None when it stays (retry) or was deleted."""

    name: str
    verdict: Verdict | None
    moved_to: Path | None


@dataclass(slots=True)
class _Seen:
    signature: tuple[int, int]
    since: float
    polls: int = 1
    not_before: float = 0.0
    failures: int = 0


def file_ref(name: str) -> str:
    """How a file is named in the logs: a short hash of its name (which may hold a patient's)."""
    return "file#" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:10]


class FolderWatcher:
    def __init__(
        self,
        settings: FolderSettings,
        on_object: ObjectHandler,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s = settings
        self._on_object = on_object
        self._clock = clock
        self._seen: dict[Path, _Seen] = {}
        self.done = settings.path / "done"
        self.refused = settings.path / "refused"

    async def run(self) -> None:
        """Poll until cancelled; a failing poll (folder unmounted...) is logged and retried."""
        while True:
            try:
                await self.poll_once()
            except OSError as exc:  # str(exc) may name a file: only the error itself
                log.warning(
                    "dicom folder %s: %s (%s)", self._s.path, type(exc).__name__, exc.strerror
                )
            await asyncio.sleep(self._s.poll_interval_s)

    async def poll_once(self) -> list[FolderOutcome]:
        """One look at the folder; hand over every file that has settled."""
        for directory in (self._s.path, self.done, self.refused):
            directory.mkdir(parents=True, exist_ok=True)
        now = self._clock()
        present: set[Path] = set()
        ready: list[Path] = []
        for path in sorted(self._s.path.iterdir()):
            if path.suffix.lower() != ".dcm" or not path.is_file():
                continue
            present.add(path)
            if self._settled(path, now):
                ready.append(path)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return [await self._take(path, now) for path in ready]

    def _settled(self, path: Path, now: float) -> bool:
        try:
            st = path.stat()
        except FileNotFoundError:  # taken away between the listing and now
            return False
        signature = (st.st_size, st.st_mtime_ns)
        seen = self._seen.get(path)
        if seen is None or seen.signature != signature:
            self._seen[path] = _Seen(signature, now)
            return False
        seen.polls += 1
        return now - seen.since >= self._s.settle_s and now >= seen.not_before and st.st_size > 0

    async def _take(self, path: Path, now: float) -> FolderOutcome:
        ref = file_ref(path.name)
        seen = self._seen.get(path)
        size = 0 if seen is None else seen.signature[0]  # stat()ed by _settled this poll
        if size > MAX_OBJECT_BYTES:
            why = f"file of {size} bytes, more than the {MAX_OBJECT_BYTES} accepted"
            verdict = Verdict(Status.CANNOT_UNDERSTAND, "too-large", why)
            log.warning("dicom folder: %s 0x%04X %s", ref, verdict.status, verdict.code)
            return FolderOutcome(path.name, verdict, self._refuse(path, verdict))
        data = path.read_bytes()  # noqa: ASYNC240 - a few MB, on purpose (module docstring)
        try:
            verdict = await self._on_object(data, f"folder:{self._s.name}")
        except Exception as exc:  # noqa: BLE001 - the file stays; the next poll retries
            return self._failed(path, now, type(exc).__name__)
        log.info("dicom folder: %s 0x%04X %s", ref, verdict.status, verdict.code)
        if verdict.accepted:
            return FolderOutcome(path.name, verdict, self._accept(path))
        if seen is not None:
            seen.failures = 0  # the handler answered: the failures were not in a row
        if verdict.status.transient:
            self._retry_later(path, now)
            return FolderOutcome(path.name, verdict, None)
        return FolderOutcome(path.name, verdict, self._refuse(path, verdict))

    def _failed(self, path: Path, now: float, error: str) -> FolderOutcome:
        """The handler raised: retry later, or give up after ``max_failures`` in a row."""
        seen = self._seen.get(path)
        failures = 1 if seen is None else seen.failures + 1
        if seen is not None:
            seen.failures = failures
        ref = file_ref(path.name)
        log.error("dicom folder: handler failed on %s: %s (%d in a row)", ref, error, failures)
        if failures < self._s.max_failures:
            self._retry_later(path, now)
            return FolderOutcome(path.name, None, None)
        verdict = Verdict(
            Status.PROCESSING_FAILURE,
            "handler-failed",
            f"the gateway failed on this file {failures} times ({error}): move it back to retry",
        )
        return FolderOutcome(path.name, verdict, self._refuse(path, verdict))

    def _retry_later(self, path: Path, now: float) -> None:
        seen = self._seen.get(path)
        if seen is not None:
            seen.not_before = now + self._s.retry_s

    def _accept(self, path: Path) -> Path | None:
        self._seen.pop(path, None)
        if not self._s.keep_accepted:
            path.unlink()
            _fsync_dir(path.parent)
            return None
        return _move(path, self.done)

    def _refuse(self, path: Path, verdict: Verdict) -> Path:
        self._seen.pop(path, None)
        target = _move(path, self.refused)
        reason = target.with_name(target.name + ".reason.txt")
        status = f"status 0x{verdict.status:04X} {verdict.status.name}"
        text = f"{status}\n{verdict.code}\n{verdict.reason}\n"
        with reason.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(self.refused)
        return target


def _move(path: Path, directory: Path) -> Path:
    """Rename into ``directory`` without overwriting a same-named earlier file."""
    target = directory / path.name
    n = 0
    while target.exists():
        n += 1
        target = directory / f"{path.stem}-{n}{path.suffix}"
    path.replace(target)
    _fsync_dir(directory)
    _fsync_dir(path.parent)
    return target


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
