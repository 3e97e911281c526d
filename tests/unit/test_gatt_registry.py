"""Every characteristic the gateway decodes, fuzzed through the one registry the daemon and
``santebus decode gatt`` use."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ble.gatt.registry import CHARACTERISTICS
from tests.gatt_checks import assert_only_parse_errors


@pytest.mark.parametrize("uuid", sorted(CHARACTERISTICS), ids=lambda u: f"{u:04X}")
@settings(max_examples=500)
@given(data=st.binary(max_size=40))
def test_random_bytes_raise_only_the_parsers_error(uuid: int, data: bytes) -> None:
    _, parse, encode = CHARACTERISTICS[uuid]
    assert_only_parse_errors(parse, data, encode)
