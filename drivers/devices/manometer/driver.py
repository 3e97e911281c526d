"""Reference manometer driver: the codec's query/response protocol over a :class:`ByteTransport`.

One request at a time (an :class:`asyncio.Lock`): write the message, read one reply line. A
setting has no reply (SCPI), so it is sent together with ``:SYST:ERR?`` and its verdict read
from the error queue: a refusal raises :class:`ManometerCommandError` (the instrument's code
and text), with whatever else the queue held drained into ``others`` so that nothing stale is
blamed on the next command.

After any failed exchange (timeout, garbled reply, cancellation) the line may still carry a late
reply; the next request first resynchronises: it discards input until the line has been quiet
for :data:`RESYNC_QUIET_S` and empties the error queue (logged), so a late line can never be
taken for the answer to another query.

:meth:`Manometer.open` sets the instrument to mmHg; every value the driver returns or takes is
in mmHg. A unit changed at the front panel afterwards is not noticed: open again after that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from drivers.devices.manometer.codec import (
    MAX_LINE,
    Certificate,
    ErrorEntry,
    Identity,
    ManometerCommandError,
    ManometerReplyError,
    Query,
    Setting,
    Unit,
    Value,
    encode_command,
    from_mmhg,
    parse_reply,
    take_line,
    to_mmhg,
)
from drivers.errors import DeviceConfigError, DeviceTimeoutError
from drivers.transport.base import ByteTransport

log = logging.getLogger(__name__)

T = TypeVar("T")

#: a line quiet this long after a failed exchange is taken as resynchronised
RESYNC_QUIET_S = 0.1
#: SCPI error queues hold a few tens of entries (30 on most instruments, then -350 overflow)
MAX_QUEUE = 64


class ManometerTimeoutError(DeviceTimeoutError):
    """No reply line to ``command`` within the driver's timeout (cable off, instrument off)."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.command = command


def _error(line: bytes) -> ErrorEntry:
    return parse_reply(line, Query.ERROR)


class Manometer:
    """A reference pressure calibrator/controller on ``transport``; values in mmHg."""

    def __init__(self, transport: ByteTransport, *, timeout: float = 2.0) -> None:
        if timeout <= 0:
            raise DeviceConfigError(f"manometer timeout must be positive, got {timeout}")
        self.transport = transport
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._buffer = bytearray()
        self._unit: Unit | None = None
        # True when the line may hold a reply nobody waits for (after a failed exchange)
        self._dirty = True

    # ----------------------------------------------------------------- session

    async def open(self) -> None:
        """Open the transport, clear stale input and errors, and set the unit to mmHg.

        On failure the transport is closed again (the error propagates).
        """
        await self.transport.open()
        self._dirty = True
        self._unit = None
        try:
            await self._set_mmhg()
        except BaseException:
            await self.transport.close()
            raise
        self._unit = Unit.MMHG

    async def _set_mmhg(self) -> None:
        await self._setting(Setting.UNIT, Unit.MMHG)
        unit = await self._query(Query.UNIT, lambda line: parse_reply(line, Query.UNIT))
        if unit is not Unit.MMHG:
            raise DeviceConfigError(f"{self.transport.url}: unit stays {unit} after MMHG was set")

    async def close(self) -> None:
        """Close the transport (the instrument keeps its state)."""
        self._unit = None
        await self.transport.close()

    async def __aenter__(self) -> Manometer:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ----------------------------------------------------------------- instrument

    async def identify(self) -> Identity:
        """Maker, model, serial and firmware (``*IDN?``)."""
        return await self._query(Query.IDN, lambda line: parse_reply(line, Query.IDN))

    async def read(self) -> float:
        """The reference reading, mmHg."""
        unit = self._opened_unit()
        value = await self._query(Query.PRESSURE, lambda line: parse_reply(line, Query.PRESSURE))
        return to_mmhg(value, unit)

    async def setpoint(self) -> float:
        """The controller's setpoint, mmHg."""
        unit = self._opened_unit()
        value = await self._query(Query.SETPOINT, lambda line: parse_reply(line, Query.SETPOINT))
        return to_mmhg(value, unit)

    async def set_pressure(self, mmhg: float) -> None:
        """Set the controller's setpoint (it drives there only while :meth:`control` is on)."""
        await self._setting(Setting.SETPOINT, from_mmhg(mmhg, self._opened_unit()))

    async def control(self, on: bool) -> None:
        """On: drive the circuit to the setpoint. Off: isolate (seal) it, e.g. for a leak test."""
        await self._setting(Setting.OUTPUT, on)

    async def vent(self) -> None:
        """Vent the circuit to atmosphere (the controller's output goes off)."""
        await self._setting(Setting.VENT)

    async def in_limits(self) -> bool:
        """True when the pressure is within 0.05 % of full scale of the setpoint, and stable."""
        return await self._query(Query.IN_LIMITS, lambda line: parse_reply(line, Query.IN_LIMITS))

    async def wait_in_limits(self, timeout: float, poll: float = 0.2) -> bool:
        """Poll :meth:`in_limits` until it is true (True) or ``timeout`` s pass (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await self.in_limits():
            if loop.time() + poll > deadline:
                return False
            await asyncio.sleep(poll)
        return True

    async def certificate(self) -> Certificate:
        """The instrument's own calibration certificate: due date and uncertainty (k=2)."""
        unit = self._opened_unit()
        due = await self._query(Query.CAL_DATE, lambda line: parse_reply(line, Query.CAL_DATE))
        uncertainty = await self._query(
            Query.CAL_UNCERTAINTY, lambda line: parse_reply(line, Query.CAL_UNCERTAINTY)
        )
        return Certificate(due, to_mmhg(uncertainty, unit))

    async def check_errors(self) -> list[ErrorEntry]:
        """Empty the instrument's error queue: its entries, oldest first (``[]``: none)."""
        async with self._lock:
            await self._ready()
            return await self._drain()

    # ----------------------------------------------------------------- exchange

    def _opened_unit(self) -> Unit:
        if self._unit is None:
            raise RuntimeError("Manometer.open() must succeed before pressures are exchanged")
        return self._unit

    async def _query(self, query: Query, parse: Callable[[bytes], T]) -> T:
        async with self._lock:
            await self._ready()
            return await self._exchange(encode_command(query), query, parse)

    async def _setting(self, setting: Setting, value: Value = None) -> None:
        message = encode_command(setting, value)
        command = message.decode("ascii").strip()
        async with self._lock:
            await self._ready()
            code, text = await self._exchange(
                message + encode_command(Query.ERROR), Query.ERROR, _error
            )
            if code == 0:
                return
            others = tuple(await self._drain())
        log.warning(
            "manometer refused url=%s command=%r error=%d,%r",
            self.transport.url,
            command,
            code,
            text,
        )
        raise ManometerCommandError(code, text, command, others)

    async def _exchange(self, message: bytes, query: Query, parse: Callable[[bytes], T]) -> T:
        """Send ``message`` and parse the one reply line to ``query`` (holding the lock)."""
        self._dirty = True  # until the reply is in: a failure leaves the line unknown
        await self.transport.write(message)
        value = parse(await self._readline(query))
        # bytes after the reply (a stray or late line) would answer the next query: resync
        self._dirty = bool(self._buffer)
        return value

    async def _readline(self, query: Query) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while (line := take_line(self._buffer)) is None:
            if len(self._buffer) > MAX_LINE:
                garbage = bytes(self._buffer)
                self._buffer.clear()
                raise ManometerReplyError(f"reply to {query} longer than {MAX_LINE} bytes", garbage)
            left = deadline - loop.time()
            if left <= 0:
                raise self._timed_out(query)
            try:
                self._buffer += await self.transport.read(MAX_LINE, timeout=left)
            except DeviceTimeoutError:
                raise self._timed_out(query) from None
        return line

    def _timed_out(self, query: Query) -> ManometerTimeoutError:
        return ManometerTimeoutError(
            f"no reply to {query.value!r} from {self.transport.url} within {self.timeout} s",
            query.value,
        )

    async def _ready(self) -> None:
        """Resynchronise after a failed exchange (holding the lock); no-op otherwise."""
        if not self._dirty:
            return
        self._buffer.clear()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.timeout
        try:
            while loop.time() < give_up:  # a babbling line: proceed anyway after the timeout
                dropped = await self.transport.read(MAX_LINE, timeout=RESYNC_QUIET_S)
                log.debug("manometer resync url=%s dropped=%r", self.transport.url, dropped)
        except DeviceTimeoutError:
            pass
        stale = await self._drain()
        if stale:
            log.info("manometer stale errors url=%s errors=%s", self.transport.url, stale)

    async def _drain(self) -> list[ErrorEntry]:
        errors: list[ErrorEntry] = []
        for _ in range(MAX_QUEUE):
            entry = await self._exchange(encode_command(Query.ERROR), Query.ERROR, _error)
            if entry[0] == 0:
                return errors
            errors.append(entry)
        raise ManometerReplyError(
            f"error queue still not empty after {MAX_QUEUE} entries", repr(errors[-1]).encode()
        )
