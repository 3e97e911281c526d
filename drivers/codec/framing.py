"""ASCII control characters and the block check character used by STX/ETX framed devices."""

from __future__ import annotations

STX = 0x02
ETX = 0x03
ENQ = 0x05
ACK = 0x06
NAK = 0x15


def bcc_xor(data: bytes) -> int:
    """Longitudinal XOR over ``data`` (the BCC of ISO 1745 basic-mode framing)."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def bcc_hex(data: bytes) -> bytes:
    """The XOR BCC as two upper-case hex digits, so the whole frame stays printable ASCII."""
    return f"{bcc_xor(data):02X}".encode("ascii")
