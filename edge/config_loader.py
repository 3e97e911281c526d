"""Load the TOML config, apply ``--set`` overrides, and report every fault with its location.

Each fault names the file, the dotted key path and the line (found by scanning the TOML text,
since :mod:`tomllib` keeps no positions), so ``santebus check-config`` can exit 78 (EX_CONFIG)
with something an operator can fix at 7 a.m.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from edge.config import EdgeConfig

EX_CONFIG = 78  # sysexits.h
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '<root>'}: {self.message}"


class ConfigError(Exception):
    """The config cannot be used; ``issues`` lists every fault found."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = tuple(issues)


# --------------------------------------------------------------------------- locating keys

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*="""
)
_PART = re.compile(r"""\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*(?:\.|$)""")


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(m.group(1).strip("\"'") for m in _PART.finditer(text))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map every table header and key path in a TOML document to its 1-based line."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER.match(line):
            table = _split_key(header.group(1))
            lines.setdefault(table, number)
        elif key := _KEY.match(line):
            lines.setdefault(table + _split_key(key.group(1)), number)
    return lines


def _locate(lines: Mapping[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _real_path(data: Any, loc: Iterable[int | str]) -> tuple[str, ...]:
    """Map pydantic's ``loc`` onto keys of the TOML document.

    pydantic adds steps that are not keys: the discriminator tag of a union member (the
    device's ``kind``) and ``[key]`` for an error in a table's key itself. Those are dropped;
    a step that is missing from the data (a required key) is kept, as are the steps below it.
    """
    out: list[str] = []
    node = data
    steps = list(loc)
    for i, step in enumerate(steps):
        if step == "[key]":
            continue
        following = steps[i + 1] if i + 1 < len(steps) else None
        if (
            isinstance(node, dict)
            and step not in node
            and (step == node.get("kind") or (following is not None and following in node))
        ):
            continue  # union tag (also a default one: a table that leaves ``kind`` out)
        in_dict = isinstance(node, dict) and step in node
        in_list = isinstance(node, list) and isinstance(step, int) and step < len(node)
        node = node[step] if in_dict or in_list else None
        out.append(str(step))
    return tuple(out)


# --------------------------------------------------------------------------- overrides


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> set[tuple[str, ...]]:
    """Apply ``key.path=value`` overrides in place; values are TOML literals or bare strings."""
    touched: set[tuple[str, ...]] = set()
    issues = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        path = _split_key(key.strip())
        if not sep or not path or not all(path):
            issues.append(ConfigIssue("--set", None, key, f"expected key.path=value, got {item!r}"))
            continue
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # bare string, e.g. --set mqtt.host=broker.local
        node = data
        for step in path[:-1]:
            child = node.setdefault(step, {})
            if not isinstance(child, dict):
                issues.append(ConfigIssue("--set", None, key, f"{step} is not a table"))
                break
            node = child
        else:
            node[path[-1]] = value
            touched.add(path)
    if issues:
        raise ConfigError(issues)
    return touched


# --------------------------------------------------------------------------- loading


def read_toml(
    path: Path, overrides: Sequence[str] = ()
) -> tuple[dict[str, Any], str, set[tuple[str, ...]]]:
    """Return the raw table, the source text and the key paths set on the command line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(str(path), None, "", f"cannot read: {exc.strerror}")]
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's TOMLDecodeError has no lineno attribute; its message has the line.
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        raise ConfigError([ConfigIssue(str(path), line, "", f"TOML syntax: {exc}")]) from exc
    touched = apply_overrides(data, overrides)
    return data, text, touched


def validate(
    model: type[M],
    data: Any,
    file: str,
    text: str,
    touched: set[tuple[str, ...]] = frozenset(),  # type: ignore[assignment]
    prefix: tuple[str, ...] = (),
) -> M:
    """Validate ``data`` against ``model``; raise :class:`ConfigError` listing every fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = key_lines(text)
        issues = []
        for err in exc.errors(include_url=False):
            path = prefix + _real_path(data, err["loc"])
            # an error at, above or below a key set on the command line is the command line's
            blamed = (
                any(path[: len(t)] == t or t[: len(path)] == path for t in touched if path and t)
                or (  # a table the command line created, e.g. --set devices.new.kind=ct80
                    path[:-1] not in lines and any(t[: len(path) - 1] == path[:-1] for t in touched)
                )
            )
            line = None if blamed else _locate(lines, path)
            source = "--set" if blamed else file
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            issues.append(ConfigIssue(source, line, ".".join(path), message))
        raise ConfigError(issues) from exc


def load_config(
    path: Path,
    overrides: Sequence[str] = (),
    extra_checks: Sequence[Callable[[dict[str, Any], str, str, set[tuple[str, ...]]], None]] = (),
) -> EdgeConfig:
    """Read, override and validate the gateway config."""
    data, text, touched = read_toml(path, overrides)
    issues: list[ConfigIssue] = []
    config: EdgeConfig | None = None
    try:
        config = validate(EdgeConfig, data, str(path), text, touched)
    except ConfigError as exc:
        issues.extend(exc.issues)
    for check in extra_checks:
        try:
            check(data, str(path), text, touched)
        except ConfigError as exc:
            issues.extend(exc.issues)
    if issues or config is None:
        raise ConfigError(issues)
    return config
