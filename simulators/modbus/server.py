"""Simulated Modbus slaves: pymodbus servers built from the production register maps.

Each :class:`SimSlave` is a unit whose registers hold exactly what its map declares - the
blocks :func:`drivers.modbus.registers.plan_reads` reads, holes it reads across included - so a
read elsewhere is refused with exception 2, illegal data address (Modbus Application Protocol
v1.1b3 section 7), as a real device refuses unmapped registers. Before every read the server's
action hook refreshes the registers from ``values(t)`` (t: seconds since the server started)
through :func:`drivers.modbus.registers.encode`, so the gateway decodes live values with the
same code the simulator encoded them with; ``exception_rate`` answers a share of reads with
exception 6, server device busy.

:class:`ModbusSimServer` serves the slaves on an :class:`~simulators.modbus.rtu_line.RtuLine`
(one serial server for all the units of the line) or on Modbus TCP. Requests for units it does
not serve get no answer at all, as on a serial line where only the addressed slave may talk
(Modbus over Serial Line v1.02 section 2.1).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import cast

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.modbus.maps import RegisterMap
from drivers.modbus.port import READ_FUNCTION, Table
from drivers.modbus.registers import TABLES, encode
from simulators.modbus.rtu_line import RtuLine

log = logging.getLogger(__name__)

#: read function code -> table (MAP v1.1b3 sections 6.1-6.4)
_TABLE_OF: dict[int, Table] = {code: table for table, code in READ_FUNCTION.items()}


@dataclass
class SimSlave:
    """One simulated unit: its map, its values over time, and how often it is too busy."""

    unit: int
    regmap: RegisterMap
    #: each point's engineering value at t seconds since the server started, by point name
    values: Callable[[float], Mapping[str, float]]
    #: share of reads answered with exception 6, server device busy
    exception_rate: float = 0.0
    seed: int = 0


def _simdata(slave: SimSlave) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
    """Register blocks per table (coils, discrete inputs, holding, input: pymodbus' order)."""
    out: dict[Table, list[SimData]] = {table: [] for table in TABLES}
    for block in slave.regmap.blocks():
        if block.table in ("coil", "discrete"):
            data = SimData(block.address, values=[False] * block.count, datatype=DataType.BITS)
        else:
            data = SimData(block.address, values=[0] * block.count, datatype=DataType.REGISTERS)
        out[block.table].append(data)
    # pymodbus needs a block in every table: an unmapped table gets one that makes its
    # addresses illegal (for bits, all but the 16 at the very top, 65520-65535: a bit block
    # must hold a whole register of them)
    if not out["coil"]:
        out["coil"] = [SimData(0xFFF0, values=[False] * 16, datatype=DataType.BITS)]
    if not out["discrete"]:
        out["discrete"] = [SimData(0xFFF0, values=[False] * 16, datatype=DataType.BITS)]
    for table in ("holding", "input"):
        if not out[table]:
            out[table] = [SimData(0, datatype=DataType.INVALID)]
    return out["coil"], out["discrete"], out["holding"], out["input"]


class ModbusSimServer:
    """A pymodbus server (RTU on a simulated line, or TCP) for a set of simulated slaves."""

    def __init__(self, slaves: Sequence[SimSlave]) -> None:
        units = [s.unit for s in slaves]
        if len(set(units)) != len(units):
            raise ValueError(f"each unit may be served once, got units {units}")
        self.slaves = {s.unit: s for s in slaves}
        #: reads answered with data, per unit
        self.reads: collections.Counter[int] = collections.Counter()
        #: reads answered with exception 6 (server device busy), per unit
        self.busy: collections.Counter[int] = collections.Counter()
        #: units that stop answering (their requests are dropped, on any transport)
        self.silent: set[int] = set()
        self.port = 0
        self.started = time.monotonic()
        self._devices = [self._device(s) for s in slaves]
        self._server: ModbusSerialServer | ModbusTcpServer | None = None

    @classmethod
    async def rtu(cls, line: RtuLine, slaves: Sequence[SimSlave]) -> ModbusSimServer:
        """Serve ``slaves`` on ``line`` (started), one serial server for all of them."""
        self = cls(slaves)
        self._server = ModbusSerialServer(
            self._devices,
            framer=FramerType.RTU,
            port=str(line.server_path),
            baudrate=line.baudrate,
            ignore_missing_devices=True,
            trace_pdu=self._trace_hook(),
        )
        await self._serve()
        return self

    @classmethod
    async def tcp(
        cls, port: int, slaves: Sequence[SimSlave], host: str = "127.0.0.1"
    ) -> ModbusSimServer:
        """Serve ``slaves`` on ``host:port`` (port 0: a free one, then in :attr:`port`)."""
        self = cls(slaves)
        self._server = ModbusTcpServer(
            self._devices,
            address=(host, port),
            ignore_missing_devices=True,
            trace_pdu=self._trace_hook(),
        )
        await self._serve()
        listener = self._server.transport
        self.port = (
            listener.sockets[0].getsockname()[1] if isinstance(listener, asyncio.Server) else port
        )
        return self

    async def _serve(self) -> None:
        assert self._server is not None
        await self._server.serve_forever(background=True)
        log.info("modbus server units=%s", sorted(self.slaves))

    def elapsed(self) -> float:
        """Seconds since the server started: the ``t`` of the slaves' ``values``."""
        return time.monotonic() - self.started

    async def stop(self) -> None:
        if self._server is not None:
            # pymodbus 3.16.1 leaves shutdown() unannotated
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    async def __aenter__(self) -> ModbusSimServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------------- internals

    def _trace_hook(self) -> Callable[[bool, ModbusPDU], ModbusPDU]:
        def drop_foreign(sending: bool, pdu: ModbusPDU) -> ModbusPDU | None:
            # a request for a unit this server does not serve (or that went silent) is
            # dropped here: pymodbus' request handler answers nothing when the hook returns
            # None (SimDevice servers would otherwise answer exception 4 for unknown units)
            if not sending and (pdu.dev_id not in self.slaves or pdu.dev_id in self.silent):
                return None
            return pdu

        return cast("Callable[[bool, ModbusPDU], ModbusPDU]", drop_foreign)

    def _device(self, slave: SimSlave) -> SimDevice:
        rng = random.Random(slave.seed)
        by_table = {t: [p for p in slave.regmap.points if p.table == t] for t in TABLES}

        async def refresh(
            function: int,
            start: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            table = _TABLE_OF.get(function)
            if set_values is not None or table is None:
                return None  # writes are stored as the device stores them
            if slave.exception_rate > 0 and rng.random() < slave.exception_rate:
                self.busy[slave.unit] += 1
                return ExcCodes.DEVICE_BUSY
            values = slave.values(self.elapsed())
            for point in by_table[table]:
                if point.name not in values:
                    continue
                if table in ("coil", "discrete"):
                    # bit blocks: ``start`` counts 16-bit words, bit 0 first (pymodbus SimUtils)
                    word, bit = point.address // 16 - start, point.address % 16
                    if values[point.name]:
                        registers[word] |= 1 << bit
                    else:
                        registers[word] &= ~(1 << bit)
                else:
                    at = point.address - start
                    registers[at : at + point.width] = encode(point, values[point.name])
            self.reads[slave.unit] += 1
            return None

        return SimDevice(slave.unit, simdata=_simdata(slave), action=refresh)
