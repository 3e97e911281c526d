"""The ``RegisterClient`` port: what a Modbus poller needs from a line or a TCP connection.

Narrow and async. Addresses are the protocol's zero-based ones (Modbus Application Protocol
v1.1b3 section 4.4: "register 1" of a data sheet is address 0 unless the sheet says otherwise;
the register maps in drivers/modbus/maps say which they use). Errors are those of
:mod:`drivers.modbus.errors`.
"""

from __future__ import annotations

from typing import Literal, Protocol

#: the four primary tables (MAP v1.1b3 section 4.3) and their read function codes
Table = Literal["coil", "discrete", "holding", "input"]
READ_FUNCTION: dict[Table, int] = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
#: most registers (and bits) one read may ask for (MAP v1.1b3 sections 6.1-6.4)
MAX_READ: dict[Table, int] = {"coil": 2000, "discrete": 2000, "holding": 125, "input": 125}


class RegisterClient(Protocol):
    """One Modbus line (RTU) or connection (TCP), shared by the units on it."""

    @property
    def url(self) -> str: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def read(
        self, unit: int, table: Table, address: int, count: int, *, timeout: float
    ) -> list[int]:
        """``count`` registers (or bits, as 0/1) from ``unit``; raises a ModbusError."""
        ...
