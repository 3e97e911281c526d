"""The drivers' error tree, chosen by what the caller does next.

* :class:`TransientDeviceError` - retry later (port vanished, timeout): the supervisor reconnects.
* :class:`DeviceConfigError` - fatal for this device until its settings change.
* :class:`FrameError` - one garbled frame: count it, log it, keep the stream going.
"""

from __future__ import annotations


class DriverError(Exception):
    """Base of every error raised by :mod:`drivers`."""


class TransientDeviceError(DriverError, ConnectionError):
    """The device or its link failed in a way that may heal (unplugged, reset, timeout)."""


class DeviceTimeoutError(TransientDeviceError, TimeoutError):
    """No answer from the device within the allowed time."""


class DeviceConfigError(DriverError, ValueError):
    """A transport URL or device setting is invalid; retrying will not help."""


class FrameError(DriverError, ValueError):
    """Bytes that do not form a valid frame.

    ``consumed`` tells the caller how many leading bytes of the buffer to drop so that decoding
    can resynchronise on the next frame; it is always at least 1.
    """

    def __init__(self, reason: str, consumed: int, offset: int = 0) -> None:
        super().__init__(f"{reason} (at byte {offset}, dropping {consumed} bytes)")
        self.reason = reason
        self.consumed = max(1, consumed)
        self.offset = offset
