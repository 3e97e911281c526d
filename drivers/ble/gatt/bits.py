"""Bit fields of the health characteristics: flags, status sets and masks.

Bits marked RFU (reserved for future use) are ignored by a receiver and sent as 0 (Bluetooth
Core Specification Vol 1 Part E 2.2, "Reserved for future use"), so a set of known bits is
read from a raw field and any other bit is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import TypeVar

E = TypeVar("E", bound=IntEnum)


def bit_set(kind: type[E], raw: int) -> frozenset[E]:
    """The members of ``kind`` (each a bit number) set in ``raw``; RFU bits ignored."""
    return frozenset(member for member in kind if raw >> member & 1)


def mask(bits: Iterable[IntEnum]) -> int:
    """The raw field with ``bits`` set."""
    return sum(1 << bit for bit in bits)


def flags(*present: bool) -> int:
    """A flags byte from its bits in order (bit 0 first)."""
    return sum(1 << bit for bit, on in enumerate(present) if on)
