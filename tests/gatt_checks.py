"""Checks every GATT codec test applies: truncation names field and offset; fuzz raises only
the parser's error (and what parses re-encodes to itself)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import pytest

from drivers.ble.gatt.reader import GattParseError
from drivers.codec.ieee11073 import MedicalFloatError


def assert_every_prefix_refused(
    parse: Callable[[bytes], object],
    full: bytes,
    fields: Collection[str] | None = None,
    reason: str | None = None,
) -> None:
    """``full`` parses, and each strict prefix raises GattParseError.

    The error names a field (one of ``fields`` when given) and a byte offset within the
    prefix, and ``reason`` when given.
    """
    parse(full)
    for n in range(len(full)):
        with pytest.raises(GattParseError) as exc:
            parse(full[:n])
        assert exc.value.field
        if fields is not None:
            assert exc.value.field in fields
        assert 0 <= exc.value.offset <= n
        where = f"{exc.value.field} at byte {exc.value.offset}"
        assert (f"{where}: {reason}" if reason else where) in str(exc.value)


def assert_only_parse_errors(
    parse: Callable[[bytes], object],
    data: bytes,
    encode: Callable[[Any], bytes] | None = None,
) -> None:
    """Random bytes either parse or raise GattParseError.

    With ``encode``, a value that parses re-encodes and parses back to itself, unless the
    encoder refuses it: a reserved value a parser keeps visible is never sent.
    """
    try:
        value = parse(data)
    except GattParseError:
        return
    if encode is not None:
        try:
            encoded = encode(value)
        except (MedicalFloatError, ValueError):
            return
        assert parse(encoded) == value
