"""The one pymodbus adapter: :class:`PymodbusClient` implements the RegisterClient port.

pymodbus is pinned exactly (pyproject.toml): its client API changes in minor releases (e.g.
``slave=`` became ``device_id=`` in 3.10). The adapter turns pymodbus' outcomes into the typed
errors of :mod:`drivers.modbus.errors`:

* ``ConnectionException`` or a failed connect -> :class:`ModbusLinkError`;
* no valid response within the timeout -> :class:`ModbusTimeoutError` when nothing came back,
  :class:`ModbusFrameError` when bytes came back that pymodbus' framer rejected (an RTU CRC
  mismatch, a truncated frame: the framer drops those silently, so the adapter watches the
  received bytes through pymodbus' ``trace_packet`` hook to tell them apart);
* an exception response -> :class:`ModbusExceptionResponseError` with its code.

Retries are the poller's (pymodbus' own are off): between two attempts at a silent unit the
other units on the line get their turn.
"""

from __future__ import annotations

import logging

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType

from drivers.modbus.errors import (
    ModbusExceptionResponseError,
    ModbusFrameError,
    ModbusLinkError,
    ModbusTimeoutError,
)
from drivers.modbus.lines import ModbusTarget
from drivers.modbus.port import READ_FUNCTION, Table

# pymodbus logs every timeout at ERROR; the poller logs each outcome once, typed, itself.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

_DEFAULT_TIMEOUT = 1.0


class PymodbusClient:
    """An RTU line or a TCP connection through pymodbus' asyncio clients."""

    def __init__(self, target: ModbusTarget) -> None:
        self.target = target
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient | None = None
        self._received = bytearray()

    @property
    def url(self) -> str:
        return self.target.url

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._received += data
        return data

    async def open(self) -> None:
        """Open the serial line or connect; :class:`ModbusLinkError` when it cannot."""
        t = self.target
        client: AsyncModbusSerialClient | AsyncModbusTcpClient
        if t.serial is not None:
            s = t.serial
            client = AsyncModbusSerialClient(
                s.path,
                framer=FramerType.RTU,
                baudrate=s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=int(s.stopbits),
                timeout=_DEFAULT_TIMEOUT,
                retries=0,
                reconnect_delay=0,
                trace_packet=self._trace,
            )
        else:
            client = AsyncModbusTcpClient(
                t.host,
                port=t.port,
                framer=FramerType.SOCKET,
                timeout=_DEFAULT_TIMEOUT,
                retries=0,
                reconnect_delay=0,
                trace_packet=self._trace,
            )
        # a silent unit must not make pymodbus close a line the other units still use
        client.set_max_no_responses(1_000_000)
        try:
            connected = await client.connect()
        except (ModbusException, OSError) as exc:
            client.close()
            raise ModbusLinkError(f"{self.url}: cannot open: {exc}") from exc
        if not connected:
            client.close()
            raise ModbusLinkError(f"{self.url}: cannot open (no such port or connection refused)")
        self._client = client

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def read(
        self, unit: int, table: Table, address: int, count: int, *, timeout: float
    ) -> list[int]:
        """One read request; errors typed as in the module docstring."""
        client = self._client
        if client is None:
            raise ModbusLinkError(f"{self.url}: not open")
        # pymodbus waits for each response timeout_connect seconds, read from the transaction
        # manager's own copy of the parameters (transaction.py), not the client's
        client.ctx.comm_params.timeout_connect = timeout
        self._received.clear()
        call = {
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
        }[table]
        try:
            response = await call(address, count=count, device_id=unit)
        except ConnectionException as exc:
            raise ModbusLinkError(f"{self.url}: {exc}", unit) from exc
        except ModbusException as exc:
            if not client.connected:  # the TCP peer closed while we waited: not a silent unit
                raise ModbusLinkError(f"{self.url}: connection lost", unit) from exc
            got = bytes(self._received)
            if got:
                raise ModbusFrameError(
                    f"unit {unit}: invalid response ({len(got)} bytes {got[:16].hex(' ')}"
                    f"{' ...' if len(got) > 16 else ''}): bad CRC, truncated or foreign frame",
                    unit,
                ) from exc
            raise ModbusTimeoutError(
                f"unit {unit}: no response within {timeout:g} s", unit
            ) from exc
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            raise ModbusExceptionResponseError(unit, READ_FUNCTION[table], code)
        if table in ("coil", "discrete"):
            return [1 if b else 0 for b in response.bits[:count]]
        regs = list(response.registers)
        if len(regs) < count:
            raise ModbusFrameError(f"unit {unit}: {len(regs)} registers for {count} asked", unit)
        return regs[:count]
