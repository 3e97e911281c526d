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
