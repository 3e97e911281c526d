"""Benches for the Modbus tests: simulated slaves on a simulated RS-485 line or on Modbus TCP,
read through the production client (drivers.modbus.lines.open_client).

The tests run their own event loop (asyncio.run), so these are async context managers rather
than pytest fixtures.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drivers.modbus.lines import SharedLine, open_client
from drivers.modbus.maps import RegisterMap
from drivers.modbus.registers import decode, encode
from simulators.modbus.rtu_line import RtuLine
from simulators.modbus.server import ModbusSimServer, SimSlave

#: a hung test fails after this long (a hang guard, not a timing assertion)
GUARD = 20.0
#: per-request timeout the tests ask for
TIMEOUT = 0.3


@dataclass
class Recorded:
    """A value model that remembers each ``t`` it was asked for (the truth of each read)."""

    model: Callable[[float], Mapping[str, float]]
    asked: list[float] = field(default_factory=list)

    def __call__(self, t: float) -> Mapping[str, float]:
        self.asked.append(t)
        return self.model(t)

    def expected(self, regmap: RegisterMap) -> dict[str, float]:
        """What a read at the last ``t`` decodes to: the value rounded to the point's scale."""
        values = self.model(self.asked[-1])
        return {p.name: decode(p, encode(p, values[p.name])) for p in regmap.points}


async def read_map(client: SharedLine, unit: int, regmap: RegisterMap) -> dict[str, float]:
    """Every point of ``regmap`` from ``unit``, read as the poller reads them (planned blocks)."""
    out: dict[str, float] = {}
    for block in regmap.blocks():
        regs = await client.read(unit, block.table, block.address, block.count, timeout=TIMEOUT)
        out.update(block.decode(regs))
    return out


@contextlib.asynccontextmanager
async def rtu_client(link: Path, baudrate: int = 19200) -> AsyncIterator[SharedLine]:
    """The gateway's side of the line at ``link``, closed on exit."""
    client = open_client(f"modbus-rtu://{link}?baudrate={baudrate}")
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def tcp_client(port: int) -> AsyncIterator[SharedLine]:
    client = open_client(f"modbus-tcp://127.0.0.1:{port}")
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def rtu_slaves(
    link: Path, slaves: Sequence[SimSlave], baudrate: int = 19200
) -> AsyncIterator[tuple[RtuLine, ModbusSimServer]]:
    """A line at ``link`` and a serial server for ``slaves`` on it; both gone on exit."""
    async with (
        RtuLine(link, baudrate=baudrate, seed=1) as line,
        await ModbusSimServer.rtu(line, slaves) as server,
    ):
        yield line, server


@contextlib.asynccontextmanager
async def rtu_bench(
    link: Path, slaves: Sequence[SimSlave], baudrate: int = 19200
) -> AsyncIterator[tuple[RtuLine, ModbusSimServer, SharedLine]]:
    """:func:`rtu_slaves` and the gateway's client on the line."""
    async with (
        rtu_slaves(link, slaves, baudrate) as (line, server),
        rtu_client(link, baudrate) as client,
    ):
        yield line, server, client


@contextlib.asynccontextmanager
async def tcp_bench(
    slaves: Sequence[SimSlave], port: int = 0
) -> AsyncIterator[tuple[ModbusSimServer, SharedLine]]:
    """A TCP server for ``slaves`` on ``port`` (0: a free one), and the gateway's client."""
    async with (
        await ModbusSimServer.tcp(port, slaves) as server,
        tcp_client(server.port) as client,
    ):
        yield server, client
