"""The topic contract (docs/asyncapi.yaml): everything a bus says lives under its own prefix."""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "santebus/v1"


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names of one bus; an ACL confines each bus to ``santebus/v1/{bus}/#``."""

    bus: str

    @property
    def prefix(self) -> str:
        return f"{ROOT}/{self.bus}"

    def obs(self, device: str) -> str:
        return f"{self.prefix}/obs/{device}"

    def obj(self, device: str, object_id: str, index: int) -> str:
        """Chunk ``index`` (from 0) of large object ``object_id`` (edge/publish/objects.py)."""
        return f"{self.prefix}/obj/{device}/{object_id}/{index}"

    def telemetry(self, source: str) -> str:
        return f"{self.prefix}/telemetry/{source}"

    @property
    def events(self) -> str:
        return f"{self.prefix}/events"

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    @property
    def ack(self) -> str:
        return f"{self.prefix}/ack"

    def cmd(self, verb: str) -> str:
        return f"{self.prefix}/cmd/{verb}"
