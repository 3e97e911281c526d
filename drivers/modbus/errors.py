"""Modbus errors, chosen by what the poller does next (the tree of :mod:`drivers.errors`).

* :class:`ModbusLinkError` - the line or TCP connection is down: reopen it, with backoff.
* :class:`ModbusTimeoutError` - no response from one unit within its timeout: that unit is silent
  (the line is fine, the other units keep being polled).
* :class:`ModbusFrameError` - bytes came back but not a valid frame (RTU CRC mismatch, a
  truncated or foreign frame): a counted transmission error, retried.
* :class:`ModbusExceptionResponseError` - the unit answered with an exception response (Modbus
  Application Protocol v1.1b3 section 7): the device's refusal is data, with its code.
"""

from __future__ import annotations

from drivers.errors import DeviceTimeoutError, DriverError, TransientDeviceError

#: Modbus Application Protocol v1.1b3, section 7 (MODBUS Exception Codes)
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class ModbusError(DriverError):
    """Base of the Modbus errors; ``unit`` is the addressed unit (slave) id when known."""

    def __init__(self, message: str, unit: int | None = None) -> None:
        super().__init__(message)
        self.unit = unit


class ModbusLinkError(ModbusError, TransientDeviceError):
    """The serial line or the TCP connection cannot carry requests now."""


class ModbusTimeoutError(ModbusError, DeviceTimeoutError):
    """The unit did not answer within the request timeout."""


class ModbusFrameError(ModbusError, TransientDeviceError):
    """A response arrived garbled: CRC mismatch, truncated, or from another unit."""


class ModbusExceptionResponseError(ModbusError):
    """An exception response from the unit (its refusal, as data)."""

    def __init__(self, unit: int, function: int, code: int) -> None:
        self.function = function
        self.code = code
        self.name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(
            f"unit {unit} answered function {function} with exception {code} ({self.name})", unit
        )
