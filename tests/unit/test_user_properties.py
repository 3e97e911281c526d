"""The pre-packed MQTT 5 User Properties against paho's own (generic) property encoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.publish.mqtt import UserProperties

# MQTT 5 section 1.5.4: no U+0000 [MQTT-1.5.4-2], no surrogate code points [MQTT-1.5.4-1]
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=300)


@given(st.dictionaries(texts, texts, min_size=1, max_size=6))
def test_bytes_equal_pahos_encoder_and_decode_back(pairs: dict[str, str]) -> None:
    reference = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    reference.UserProperty = list(pairs.items())
    packed = UserProperties(pairs).pack()
    assert packed == reference.pack()  # type: ignore[no-untyped-call]
    decoded = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    decoded.unpack(packed)  # type: ignore[no-untyped-call]
    assert decoded.UserProperty == list(pairs.items())  # type: ignore[attr-defined]


def test_the_gateway_header_bytes() -> None:
    """MQTT 5 sections 2.2.2.1, 3.3.2.3.7 and 1.5.7, written out by hand."""
    packed = UserProperties({"msg-id": "m1", "schema": "s/1"}).pack()
    assert packed == (
        b"\x1b"  # property length 27 (a one-byte Variable Byte Integer)
        b"\x26\x00\x06msg-id\x00\x02m1"
        b"\x26\x00\x06schema\x00\x03s/1"
    )


def test_a_property_length_past_127_takes_two_bytes() -> None:
    packed = UserProperties({"k": "v" * 200}).pack()
    length = 1 + 2 + 1 + 2 + 200
    assert packed[:2] == bytes([length % 128 | 0x80, length // 128])
    assert len(packed) == 2 + length


def test_a_string_longer_than_the_wire_allows_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than 65,535 bytes"):
        UserProperties({"msg-id": "x" * 70_000})


def test_a_null_character_is_refused() -> None:
    with pytest.raises(ValueError, match="contains U\\+0000"):
        UserProperties({"schema": "a\x00b"})


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError, match="not valid UTF-8"):
        UserProperties({"msg-id": "\ud800"})
