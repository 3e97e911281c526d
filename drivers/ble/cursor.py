"""The durable per-device record cursor: the highest glucose sequence number already stored.

Glucose Service 1.0 3.1: every stored record has a sequence number that increments by one per
record. The gateway asks the meter's Record Access Control Point for records with a sequence
number greater than or equal to ``cursor + 1`` (RACP operator 0x03, filter type 0x01), so a
reconnect fetches only new records. The cursor advances only after a record is committed to
the outbox; a crash in between fetches that record again, and its stable message id makes the
second copy a no-op.

One small JSON file per device, replaced atomically (write, fsync, rename, fsync the folder),
so a power cut leaves either the old cursor or the new one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class RecordCursor:
    """``<root>/<device_id>.json``: ``{"address": ..., "sequence": N}``.

    The cursor belongs to one device address: a different meter under the same device id (a
    replacement) starts from nothing, as does a file that cannot be read (logged; fetching
    everything again duplicates nothing, thanks to message ids).
    """

    def __init__(self, root: Path, device_id: str, address: str) -> None:
        self.path = root / f"{device_id}.json"
        self.address = address.upper()
        self._sequence = self._load()

    @property
    def sequence(self) -> int | None:
        """The highest sequence number committed, ``None`` before the first record."""
        return self._sequence

    def _load(self) -> int | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            address, sequence = str(data["address"]), data["sequence"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("record cursor unreadable, fetching every record path=%s error=%s",
                      self.path, exc)  # fmt: skip
            return None
        if sequence is not None and (not isinstance(sequence, int) or not 0 <= sequence <= 0xFFFF):
            log.error("record cursor holds no uint16, fetching every record path=%s value=%r",
                      self.path, sequence)  # fmt: skip
            return None
        if address.upper() != self.address:
            log.warning("record cursor of another device address=%s expected=%s: starting over",
                        address, self.address)  # fmt: skip
            return None
        return sequence

    def advance(self, sequence: int) -> None:
        """Record that ``sequence`` is stored; a lower or equal number changes nothing."""
        if self._sequence is not None and sequence <= self._sequence:
            return
        self._save(sequence)

    def reset(self) -> None:
        """Forget the cursor (the meter's numbering restarted, e.g. after a factory reset)."""
        self._save(None)

    def _save(self, sequence: int | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump({"address": self.address, "sequence": sequence}, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._sequence = sequence
