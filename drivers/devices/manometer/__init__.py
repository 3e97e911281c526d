"""Reference manometer: a digital pressure calibrator/controller on a serial line (issue #8).

``codec`` is pure (our SCPI-style ASCII query/response protocol, documented there; the
instrument's half, used by the simulator, is ``instrument``), ``driver`` runs it over a
:class:`~drivers.transport.base.ByteTransport`. Technicians calibrate the NIBP module's
cuff-pressure transducer against it.
"""

from drivers.devices.manometer.codec import (
    KPA_PER_MMHG,
    Certificate,
    ErrorEntry,
    Identity,
    ManometerCommandError,
    ManometerReplyError,
    Query,
    Setting,
    Unit,
    encode_command,
    parse_reply,
)
from drivers.devices.manometer.driver import Manometer, ManometerTimeoutError
from drivers.devices.manometer.instrument import Command, encode_reply, parse_command

__all__ = [
    "KPA_PER_MMHG",
    "Certificate",
    "Command",
    "ErrorEntry",
    "Identity",
    "Manometer",
    "ManometerCommandError",
    "ManometerReplyError",
    "ManometerTimeoutError",
    "Query",
    "Setting",
    "Unit",
    "encode_command",
    "encode_reply",
    "parse_command",
    "parse_reply",
]
