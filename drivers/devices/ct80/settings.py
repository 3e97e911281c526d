"""Settings of a CT-80 style tonometer link."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ct80Settings:
    """``read_chunk``: bytes per read; ``max_buffer``: noise kept before it is discarded."""

    read_chunk: int = 512
    max_buffer: int = 8192
