"""Register maps as data: the bundled device maps (``maps/*.toml``) and inline config maps.

A map is a TOML table: ``name``, ``description``, ``source`` (the data sheet it follows),
optional ``max_gap`` (see :func:`drivers.modbus.registers.plan_reads`), and ``[[point]]``
entries with the fields of :class:`drivers.modbus.registers.Point`. The daemon's config names a
bundled map (``map = "xy-md02"``) or carries its own ``points``; the simulators build their
servers from the same maps, so a map error shows up on both sides.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from drivers.errors import DeviceConfigError
from drivers.modbus.registers import Block, Point, plan_reads

_POINT_KEYS = set(Point.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """A device's points; names unique, no two points on one register."""

    name: str
    points: tuple[Point, ...]
    description: str = ""
    source: str = ""
    max_gap: int = 8

    def __post_init__(self) -> None:
        names = [p.name for p in self.points]
        if not names:
            raise DeviceConfigError(f"register map {self.name!r} has no points")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DeviceConfigError(f"register map {self.name!r}: duplicate points {dupes}")
        taken: dict[tuple[str, int], str] = {}
        for p in self.points:
            for a in range(p.address, p.address + p.width):
                other = taken.setdefault((p.table, a), p.name)
                if other != p.name:
                    raise DeviceConfigError(
                        f"register map {self.name!r}: points {other!r} and {p.name!r} overlap"
                        f" at {p.table} address {a}"
                    )

    def blocks(self) -> list[Block]:
        """The reads that fetch every point (:func:`~drivers.modbus.registers.plan_reads`)."""
        return plan_reads(self.points, self.max_gap)

    def point(self, name: str) -> Point:
        """The point called ``name`` (KeyError if none)."""
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(name)


def parse_points(raw: Sequence[Mapping[str, Any]], where: str) -> tuple[Point, ...]:
    """Points from their TOML/JSON tables; errors name ``where`` and the point."""
    points = []
    for n, entry in enumerate(raw, start=1):
        label = f"{where}: point {n} ({entry.get('name', '?')!s})"
        unknown = sorted(set(entry) - _POINT_KEYS)
        if unknown:
            raise DeviceConfigError(f"{label}: unknown keys {unknown}")
        if "name" not in entry or "table" not in entry or "address" not in entry:
            raise DeviceConfigError(f"{label}: needs name, table and address")
        try:
            points.append(Point(**entry))
        except DeviceConfigError as exc:
            raise DeviceConfigError(f"{where}: {exc}") from exc
        except TypeError as exc:
            raise DeviceConfigError(f"{label}: {exc}") from exc
    return tuple(points)


def _max_gap(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 125:
        raise DeviceConfigError(f"{where}: max_gap must be an integer 0-125, got {value!r}")
    return value


def parse_map(data: Mapping[str, Any], where: str) -> RegisterMap:
    """A map from its TOML table (see the module docstring); errors name ``where``."""
    unknown = sorted(set(data) - {"name", "description", "source", "max_gap", "point"})
    if unknown:
        raise DeviceConfigError(f"{where}: unknown keys {unknown}")
    return RegisterMap(
        name=str(data.get("name", where)),
        points=parse_points(data.get("point", []), where),
        description=str(data.get("description", "")),
        source=str(data.get("source", "")),
        max_gap=_max_gap(data.get("max_gap", 8), where),
    )


def resolve_map(
    name: str | None, points: Sequence[Mapping[str, Any]] | None, max_gap: int | None = None
) -> RegisterMap:
    """A device's map: the bundled one ``name`` or its own ``points`` (exactly one of them).

    ``max_gap`` overrides the map's (a device that refuses reads across unmapped registers
    needs 0). The daemon's config and the simulators resolve a device's map here, alike.
    """
    if (name is None) == (points is None):
        raise DeviceConfigError("give either map (a bundled register map) or points, not both")
    regmap = (
        load_map(name)
        if name is not None
        else RegisterMap("points", parse_points(points or [], "points"))
    )
    if max_gap is None:
        return regmap
    return dataclasses.replace(regmap, max_gap=_max_gap(max_gap, f"register map {regmap.name!r}"))


def bundled() -> list[str]:
    """Names of the maps shipped in ``drivers/modbus/maps``."""
    folder = resources.files("drivers.modbus").joinpath("maps")
    return sorted(
        f.name.removesuffix(".toml") for f in folder.iterdir() if f.name.endswith(".toml")
    )


def load_map(name: str) -> RegisterMap:
    """A bundled map by name; :class:`DeviceConfigError` naming the known ones otherwise."""
    if name not in bundled():
        raise DeviceConfigError(f"unknown register map {name!r}; bundled: {', '.join(bundled())}")
    text = resources.files("drivers.modbus").joinpath(f"maps/{name}.toml").read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeviceConfigError(f"register map {name}.toml: {exc}") from exc
    return parse_map(data, f"register map {name}.toml")
