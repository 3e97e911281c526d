"""Declarative register maps, pure: point definitions, decoding and encoding, read planning.

A :class:`Point` names one value of a device: its table and zero-based address, its data type
and the order of its bytes and words, and ``value = raw * scale + offset`` in ``unit``. The
Modbus protocol fixes only the big-endian byte order inside one register (Modbus Application
Protocol v1.1b3 section 4.2); 32-bit values span two registers in an order each vendor
chooses, hence ``word_order`` (and ``byte_order`` for the devices that swap bytes too).

:func:`plan_reads` groups a map's points into as few reads as the protocol allows (at most
125 registers per read, MAP v1.1b3 section 6.3), bridging small holes, so a device costs one or
two requests per poll instead of one per value.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from drivers.errors import DeviceConfigError
from drivers.modbus.port import MAX_READ, Table

DataType = Literal["int16", "uint16", "int32", "uint32", "float32", "bool"]
Order = Literal["big", "little"]
TABLES: tuple[Table, ...] = ("coil", "discrete", "holding", "input")
WIDTH: dict[DataType, int] = {
    "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "bool": 1,
}  # fmt: skip
_STRUCT: dict[DataType, str] = {
    "int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Point:
    """One value of a device's register map."""

    name: str
    table: Table
    address: int
    type: DataType = "uint16"
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    #: what the value is, for the daemon (e.g. "temperature"); defaults to ``name``
    quantity: str = ""
    byte_order: Order = "big"
    word_order: Order = "big"

    def __post_init__(self) -> None:
        where = f"point {self.name!r}"
        self._check_types(where)
        if self.table not in TABLES:
            raise DeviceConfigError(f"{where}: table must be one of {', '.join(TABLES)}")
        if self.type not in WIDTH:
            raise DeviceConfigError(f"{where}: type must be one of {', '.join(WIDTH)}")
        if (self.type == "bool") != (self.table in ("coil", "discrete")):
            raise DeviceConfigError(f"{where}: coils and discrete inputs are bool, registers not")
        if not 0 <= self.address <= 0xFFFF - (self.width - 1):
            raise DeviceConfigError(f"{where}: address {self.address} outside 0-65535")
        if not (math.isfinite(self.scale) and self.scale != 0 and math.isfinite(self.offset)):
            raise DeviceConfigError(f"{where}: scale must be finite and non-zero, offset finite")
        if self.byte_order not in ("big", "little") or self.word_order not in ("big", "little"):
            raise DeviceConfigError(f"{where}: byte_order and word_order are 'big' or 'little'")
        if not self.quantity:
            object.__setattr__(self, "quantity", self.name)

    def _check_types(self, where: str) -> None:
        """Config values arrive from TOML as anything: say which field has the wrong kind."""
        if not isinstance(self.name, str) or not self.name:
            raise DeviceConfigError(f"{where}: name must be a non-empty string")
        if isinstance(self.address, bool) or not isinstance(self.address, int):
            raise DeviceConfigError(f"{where}: address must be an integer, got {self.address!r}")
        for label, number in (("scale", self.scale), ("offset", self.offset)):
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise DeviceConfigError(f"{where}: {label} must be a number, got {number!r}")
        for label, text in (("unit", self.unit), ("quantity", self.quantity)):
            if not isinstance(text, str):
                raise DeviceConfigError(f"{where}: {label} must be a string, got {text!r}")

    @property
    def width(self) -> int:
        """Registers (or bits) the value occupies."""
        return WIDTH[self.type]


def _to_bytes(point: Point, regs: Sequence[int]) -> bytes:
    words = list(regs) if point.word_order == "big" else list(reversed(regs))
    order = ">" if point.byte_order == "big" else "<"
    return struct.pack(f"{order}{len(words)}H", *words)


def decode(point: Point, regs: Sequence[int]) -> float:
    """The engineering value of ``point`` from its raw registers (or its one bit)."""
    if len(regs) != point.width:
        raise ValueError(f"point {point.name!r} needs {point.width} registers, got {len(regs)}")
    if point.type == "bool":
        raw: float = 1.0 if regs[0] else 0.0
    else:
        raw = struct.unpack(f">{_STRUCT[point.type]}", _to_bytes(point, regs))[0]
    return raw * point.scale + point.offset


def encode(point: Point, value: float) -> list[int]:
    """The raw registers that :func:`decode` turns into ``value`` (rounded to the scale)."""
    raw = (value - point.offset) / point.scale
    if point.type == "bool":
        return [1 if raw else 0]
    if point.type == "float32":
        packed = struct.pack(">f", raw)
    else:
        code = _STRUCT[point.type]
        bits = 16 * point.width
        lo, hi = (
            (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if code.islower() else (0, (1 << bits) - 1)
        )
        packed = struct.pack(f">{code}", min(hi, max(lo, round(raw))))
    words = list(struct.unpack(f">{point.width}H", packed))
    if point.byte_order == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words if point.word_order == "big" else list(reversed(words))


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: ``count`` registers of ``table`` from ``address``, and their points."""

    table: Table
    address: int
    count: int
    points: tuple[Point, ...] = field(default=())

    def decode(self, regs: Sequence[int]) -> dict[str, float]:
        """Each point's value from the block's registers, by point name."""
        if len(regs) < self.count:
            raise ValueError(f"block at {self.address} needs {self.count} values, got {len(regs)}")
        return {
            p.name: decode(p, regs[p.address - self.address : p.address - self.address + p.width])
            for p in self.points
        }


def plan_reads(points: Sequence[Point], max_gap: int = 8) -> list[Block]:
    """Group points into reads: same table, holes up to ``max_gap``, at most the protocol's max.

    Reading across a hole costs a few bytes; a second request costs a whole turnaround (and on
    RS-485 the inter-frame silence), so small holes are read through. Devices that refuse reads
    of unmapped registers get ``max_gap = 0`` in their map.
    """
    blocks: list[Block] = []
    for table in TABLES:
        mine = sorted((p for p in points if p.table == table), key=lambda p: p.address)
        current: list[Point] = []
        for p in mine:
            if current:
                start = current[0].address
                end = max(q.address + q.width for q in current)
                if p.address - end > max_gap or p.address + p.width - start > MAX_READ[table]:
                    blocks.append(_block(table, current))
                    current = []
            current.append(p)
        if current:
            blocks.append(_block(table, current))
    return blocks


def _block(table: Table, points: list[Point]) -> Block:
    start = points[0].address
    end = max(p.address + p.width for p in points)
    return Block(table, start, end - start, tuple(points))
