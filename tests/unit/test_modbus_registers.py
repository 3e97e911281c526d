"""Register maps, pure: encode/decode round trips and vectors, read planning, map errors.

The vectors follow the byte layout of Modbus Application Protocol v1.1b3 section 4.2 (each
register big-endian on the wire); the order of the two registers of a 32-bit value is the
vendor's, hence word_order (and byte_order for the devices that swap bytes too).
"""

from __future__ import annotations

import itertools
import math
import struct
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DeviceConfigError
from drivers.modbus.maps import RegisterMap, bundled, load_map, parse_map
from drivers.modbus.port import MAX_READ
from drivers.modbus.registers import (
    TABLES,
    WIDTH,
    Block,
    DataType,
    Order,
    Point,
    decode,
    encode,
    plan_reads,
)

ORDERS: tuple[Order, ...] = get_args(Order)
RANGES: dict[DataType, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}


# ------------------------------------------------------------------------------- round trips


@given(
    type_=st.sampled_from(sorted(RANGES)),
    byte_order=st.sampled_from(ORDERS),
    word_order=st.sampled_from(ORDERS),
    scale=st.sampled_from([1.0, 0.1, 0.01, 0.5, 10.0]),
    offset=st.sampled_from([0.0, -40.0, 273.15]),
    share=st.floats(0.0, 1.0),
)
def test_integer_points_round_trip_within_half_a_scale_step(
    type_: DataType, byte_order: Order, word_order: Order, scale: float, offset: float, share: float
) -> None:
    point = Point("p", "holding", 0, type_, scale, offset, byte_order=byte_order,
                  word_order=word_order)  # fmt: skip
    lo, hi = RANGES[type_]
    value = offset + (lo + share * (hi - lo)) * scale  # anywhere the type can represent
    regs = encode(point, value)
    assert len(regs) == WIDTH[type_]
    assert all(0 <= r <= 0xFFFF for r in regs)
    assert abs(decode(point, regs) - value) <= scale / 2 + 1e-9 * abs(value)


@given(
    raw=st.floats(-1e30, 1e30, allow_nan=False) | st.floats(-1000, 1000),
    byte_order=st.sampled_from(ORDERS),
    word_order=st.sampled_from(ORDERS),
    scale=st.sampled_from([1.0, 0.1, 2.0]),
)
def test_float32_points_round_trip_within_single_precision(
    raw: float, byte_order: Order, word_order: Order, scale: float
) -> None:
    point = Point("p", "input", 10, "float32", scale, byte_order=byte_order, word_order=word_order)
    value = raw * scale
    back = decode(point, encode(point, value))
    single = struct.unpack(">f", struct.pack(">f", raw))[0]  # what 32 bits can hold
    assert math.isclose(back, single * scale, rel_tol=1e-12, abs_tol=1e-30)
    assert math.isclose(back, value, rel_tol=2**-23, abs_tol=1e-38)


@given(on=st.booleans(), table=st.sampled_from(["coil", "discrete"]))
def test_bits_round_trip(on: bool, table: Any) -> None:
    point = Point("b", table, 7, "bool")
    assert encode(point, float(on)) == [int(on)]
    assert decode(point, [int(on)]) == float(on)


# ------------------------------------------------------------------------------- vectors


@pytest.mark.parametrize(
    ("type_", "byte_order", "word_order", "value", "regs"),
    [
        ("float32", "big", "big", 12.5, [0x4148, 0x0000]),
        ("float32", "big", "little", 12.5, [0x0000, 0x4148]),
        ("float32", "little", "big", 12.5, [0x4841, 0x0000]),
        ("float32", "little", "little", 12.5, [0x0000, 0x4841]),
        ("int16", "big", "big", -1, [0xFFFF]),
        ("int16", "little", "big", 0x1234, [0x3412]),
        ("uint16", "big", "big", 65535, [0xFFFF]),
        ("int32", "big", "big", -2, [0xFFFF, 0xFFFE]),
        ("int32", "big", "little", -2, [0xFFFE, 0xFFFF]),
        ("uint32", "big", "big", 0x12345678, [0x1234, 0x5678]),
        ("uint32", "big", "little", 0x12345678, [0x5678, 0x1234]),
        ("uint32", "little", "big", 0x12345678, [0x3412, 0x7856]),
        ("uint32", "little", "little", 0x12345678, [0x7856, 0x3412]),
    ],
)
def test_known_vectors(
    type_: DataType, byte_order: Order, word_order: Order, value: float, regs: list[int]
) -> None:
    point = Point("p", "holding", 0, type_, byte_order=byte_order, word_order=word_order)
    assert encode(point, value) == regs
    assert decode(point, regs) == value


def test_scaled_vectors_of_the_bundled_maps() -> None:
    # XY-MD02: input register 1 = temperature x10 as int16 (0x00E2 = 22.6 C, 0xFFE0 = -3.2 C)
    temperature = load_map("xy-md02").point("temperature")
    assert decode(temperature, [0x00E2]) == pytest.approx(22.6)
    assert encode(temperature, -3.2) == [0xFFE0]
    # Victron GX: register 841 battery current /10 as int16 (negative: discharging)
    current = load_map("victron-gx").point("battery_current")
    assert encode(current, -16.3) == [0x10000 - 163]


def test_encode_saturates_at_the_type_range() -> None:
    assert encode(Point("p", "input", 0, "uint16"), -5) == [0]
    assert encode(Point("p", "input", 0, "int16"), 40000) == [0x7FFF]
    assert encode(Point("p", "input", 0, "uint16", scale=0.1), 7000.0) == [0xFFFF]


def test_decode_refuses_the_wrong_register_count() -> None:
    with pytest.raises(ValueError, match="needs 2 registers, got 1"):
        decode(Point("p", "input", 0, "float32"), [0x4148])


# ------------------------------------------------------------------------------- planning


def _u16(address: int, table: Any = "holding") -> Point:
    return Point(f"p{address}", table, address)


def test_adjacent_points_are_one_read() -> None:
    points = [_u16(2), _u16(0), Point("f", "holding", 3, "float32"), _u16(1)]
    in_order = (points[1], points[3], points[0], points[2])
    assert plan_reads(points) == [Block("holding", 0, 5, in_order)]


@pytest.mark.parametrize(("second", "reads"), [(9, 1), (10, 2)])
def test_holes_up_to_max_gap_are_read_across(second: int, reads: int) -> None:
    # a hole of 8 registers (1..8) is bridged with max_gap=8; a hole of 9 is not
    blocks = plan_reads([_u16(0), _u16(second)], max_gap=8)
    assert len(blocks) == reads
    assert sum(b.count for b in blocks) == (second + 1 if reads == 1 else 2)


def test_max_gap_zero_reads_only_contiguous_registers() -> None:
    assert [(b.address, b.count) for b in plan_reads([_u16(0), _u16(1), _u16(3)], 0)] == [
        (0, 2),
        (3, 1),
    ]


@pytest.mark.parametrize(("table", "limit"), [("holding", 125), ("input", 125), ("coil", 2000)])
def test_a_read_never_asks_more_than_the_protocol_allows(table: Any, limit: int) -> None:
    kind: DataType = "bool" if table == "coil" else "uint16"
    fits = plan_reads([Point("a", table, 0, kind), Point("b", table, limit - 1, kind)], limit)
    assert [(b.address, b.count) for b in fits] == [(0, limit)]
    over = plan_reads([Point("a", table, 0, kind), Point("b", table, limit, kind)], limit)
    assert [(b.address, b.count) for b in over] == [(0, 1), (limit, 1)]


def test_a_32_bit_value_is_never_split_across_reads() -> None:
    points = [_u16(0), Point("f", "input", 5, "float32"), Point("g", "holding", 124, "float32")]
    blocks = plan_reads(points, max_gap=200)
    # the float at 124-125 would make the holding read 126 long: it gets its own read
    assert [(b.table, b.address, b.count) for b in blocks] == [
        ("holding", 0, 1),
        ("holding", 124, 2),
        ("input", 5, 2),
    ]


def test_tables_are_never_mixed_in_one_read() -> None:
    points = [_u16(0, "input"), _u16(0, "holding"), Point("c", "coil", 0, "bool")]
    assert [b.table for b in plan_reads(points)] == ["coil", "holding", "input"]


@st.composite
def point_sets(draw: st.DrawFn) -> list[Point]:
    """Non-overlapping points of any type in any table."""
    points: list[Point] = []
    taken: set[tuple[str, int]] = set()
    for n in range(draw(st.integers(1, 40))):
        table = draw(st.sampled_from(TABLES))
        kind: DataType = (
            "bool" if table in ("coil", "discrete") else draw(st.sampled_from(sorted(RANGES)))
        )
        address = draw(st.integers(0, 600))
        cells = {(table, a) for a in range(address, address + WIDTH[kind])}
        if not cells & taken:
            taken |= cells
            points.append(Point(f"p{n}", table, address, kind))
    return points


@given(points=point_sets(), max_gap=st.integers(0, 130))
def test_every_plan_covers_each_point_once_within_the_protocol_limits(
    points: list[Point], max_gap: int
) -> None:
    blocks = plan_reads(points, max_gap)
    placed = [p for b in blocks for p in b.points]
    assert sorted(p.name for p in placed) == sorted(p.name for p in points)
    for b in blocks:
        assert 1 <= b.count <= MAX_READ[b.table]
        assert all(p.table == b.table for p in b.points)
        assert all(b.address <= p.address and p.address + p.width <= b.address + b.count
                   for p in b.points)  # fmt: skip
        # the holes read across are at most max_gap long
        cells = sorted(a for p in b.points for a in range(p.address, p.address + p.width))
        assert cells[0] == b.address
        assert cells[-1] == b.address + b.count - 1
        assert all(nxt - cur - 1 <= max_gap for cur, nxt in itertools.pairwise(cells))
    for table in TABLES:
        spans = sorted((b.address, b.address + b.count) for b in blocks if b.table == table)
        assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans))


def test_a_block_decodes_each_of_its_points_from_its_registers() -> None:
    regmap = load_map("fridge-logger")
    holding, inputs = regmap.blocks()
    assert inputs.decode([0x4148, 0x0000, 1, 1]) == {"temperature": 12.5, "door": 1, "alarm": 1}
    assert holding.decode([80, 20]) == {"high_limit": 8.0, "low_limit": 2.0}
    with pytest.raises(ValueError, match="needs 4 values"):
        inputs.decode([0x4148])


# ------------------------------------------------------------------------------- maps


def test_every_bundled_map_loads_and_plans() -> None:
    assert bundled() == ["fridge-logger", "victron-gx", "xy-md02"]
    plans = {name: [(b.table, b.address, b.count) for b in load_map(name).blocks()]
             for name in bundled()}  # fmt: skip
    assert plans == {
        "fridge-logger": [("holding", 16, 2), ("input", 0, 4)],
        # 826 and 840-843: max_gap 0, so never a read through the GX's unmapped registers
        "victron-gx": [("holding", 826, 1), ("holding", 840, 4)],
        "xy-md02": [("input", 1, 2)],
    }
    for name in bundled():
        regmap = load_map(name)
        assert regmap.name == name
        assert regmap.source
        assert all(p.unit for p in regmap.points)


def test_an_unknown_bundled_map_names_the_known_ones() -> None:
    with pytest.raises(DeviceConfigError, match=r"unknown register map 'nope'.*xy-md02"):
        load_map("nope")


def _map(*points: dict[str, Any], **extra: Any) -> RegisterMap:
    return parse_map({"name": "cabin-2", "point": list(points), **extra}, "register map m.toml")


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (
            [{"name": "temp", "table": "input", "address": 0, "colour": "red"}],
            r"register map m\.toml: point 1 \(temp\): unknown keys \['colour'\]",
        ),
        (
            [{"name": "temp", "table": "input"}],
            r"register map m\.toml: point 1 \(temp\): needs name, table and address",
        ),
        (
            [{"name": "flag", "table": "holding", "address": 3, "type": "bool"}],
            r"register map m\.toml: point 'flag': coils and discrete inputs are bool",
        ),
        (
            [{"name": "relay", "table": "coil", "address": 3, "type": "uint16"}],
            r"register map m\.toml: point 'relay': coils and discrete inputs are bool",
        ),
        (
            [{"name": "temp", "table": "inputs", "address": 0}],
            r"register map m\.toml: point 'temp': table must be one of",
        ),
        (
            [{"name": "temp", "table": "input", "address": 65535, "type": "float32"}],
            r"register map m\.toml: point 'temp': address 65535 outside",
        ),
        (
            [{"name": "temp", "table": "input", "address": 0, "scale": 0.0}],
            r"register map m\.toml: point 'temp': scale must be finite and non-zero",
        ),
        (
            [
                {"name": "temp", "table": "input", "address": 0, "type": "float32"},
                {"name": "rh", "table": "input", "address": 1},
            ],
            r"register map 'cabin-2': points 'temp' and 'rh' overlap at input address 1",
        ),
        (
            [
                {"name": "temp", "table": "input", "address": 0},
                {"name": "temp", "table": "holding", "address": 0},
            ],
            r"register map 'cabin-2': duplicate points \['temp'\]",
        ),
        ([], r"register map 'cabin-2' has no points"),
    ],
)
def test_map_errors_name_the_map_and_the_point(points: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(DeviceConfigError, match=message):
        _map(*points)


def test_same_address_in_two_tables_is_no_overlap() -> None:
    regmap = _map(
        {"name": "setpoint", "table": "holding", "address": 0},
        {"name": "reading", "table": "input", "address": 0},
    )
    assert [b.table for b in regmap.blocks()] == ["holding", "input"]


def test_unknown_map_keys_are_refused() -> None:
    with pytest.raises(DeviceConfigError, match=r"m\.toml: unknown keys \['maxgap'\]"):
        _map({"name": "t", "table": "input", "address": 0}, maxgap=3)
