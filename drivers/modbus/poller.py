"""Polling one Modbus unit: a fixed rate with jitter, retries, and backoff for a silent unit.

The schedule keeps its rate: each poll is due one period after the previous *due time*, not
after the previous poll ended, so waiting for the shared line (drivers/modbus/lines.py) or a
slow answer does not make a unit drift; a poll that is overdue runs at once and the schedule
resumes from now (missed polls are not made up in a burst). Each wait is jittered by
``jitter`` x period so that units on one line that start together spread out.

A unit that fails (timeout, garbled answer, line down) is retried ``retries`` times, then its
polls space out: period x 2, x 4 ... up to ``backoff_max``. On RS-485 every request to a
silent unit holds the line for the whole timeout; backing off is what keeps one dead slave
from taking the line's time from the others (peer gateways' users report one slave that is
down interrupting all communication, node-red-contrib-modbus #446). The first answer puts it
back on its period. A unit that answers with an exception response is answering: it is
reported, not backed off.

Outcomes go to callbacks, and nothing here ever ends the loop: the values each poll read (also
the blocks that succeeded when another failed: good data is never dropped because of its
neighbour), each failure with the unit's counters, and each complete poll.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.modbus.errors import (
    ModbusError,
    ModbusExceptionResponseError,
    ModbusFrameError,
    ModbusLinkError,
    ModbusTimeoutError,
)
from drivers.modbus.maps import RegisterMap
from drivers.modbus.port import RegisterClient, Table

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollSettings:
    """Seconds between polls (+- ``jitter`` x period), per-request timeout, retries, backoff."""

    period: float = 2.0
    jitter: float = 0.1
    timeout: float = 0.5
    retries: int = 1
    backoff_max: float = 60.0

    def __post_init__(self) -> None:
        if self.period <= 0 or self.timeout <= 0 or self.backoff_max < self.period:
            raise ValueError("need period > 0, timeout > 0 and backoff_max >= period")
        if not 0 <= self.jitter < 0.5 or self.retries < 0:
            raise ValueError("need 0 <= jitter < 0.5 and retries >= 0")


@dataclass(slots=True)
class PollStats:
    """A unit's counters (for health, metrics and events)."""

    polls: int = 0
    good: int = 0
    failed: int = 0
    timeouts: int = 0
    frame_errors: int = 0
    exceptions: int = 0
    link_errors: int = 0
    #: failed polls in a row (0 while the unit answers)
    failing: int = 0
    last_good: float | None = None  # time.monotonic()

    def count(self, exc: ModbusError) -> None:
        """Count one failed request by its kind."""
        if isinstance(exc, ModbusTimeoutError):
            self.timeouts += 1
        elif isinstance(exc, ModbusFrameError):
            self.frame_errors += 1
        elif isinstance(exc, ModbusExceptionResponseError):
            self.exceptions += 1
        elif isinstance(exc, ModbusLinkError):
            self.link_errors += 1


Values = dict[str, float]


class Poller:
    """Polls one unit's register map forever (until cancelled)."""

    def __init__(
        self,
        client: RegisterClient,
        unit: int,
        regmap: RegisterMap,
        settings: PollSettings,
        on_values: Callable[[Values], None],
        on_error: Callable[[ModbusError, PollStats], None],
        rng: random.Random | None = None,
        on_good: Callable[[PollStats], None] | None = None,
    ) -> None:
        self.client = client
        self.unit = unit
        self.blocks = regmap.blocks()
        self.settings = settings
        self.on_values = on_values
        self.on_error = on_error
        self.on_good = on_good
        self.rng = rng or random.Random()
        self.stats = PollStats()

    def interval(self) -> float:
        """Seconds from this poll's due time to the next one's (backoff while failing)."""
        s = self.settings
        if self.stats.failing == 0:
            return s.period
        # capped exponent: a unit dead for days must not overflow the float (2.0 ** 1024)
        return min(s.period * 2.0 ** min(self.stats.failing, 30), s.backoff_max)

    async def run(self) -> None:
        """Poll on schedule until cancelled (see the module docstring)."""
        s = self.settings
        due = time.monotonic() + self.rng.uniform(0.0, s.period)  # spread the units out
        while True:
            wait = due - time.monotonic() + self.rng.uniform(-s.jitter, s.jitter) * s.period
            if wait > 0:
                await asyncio.sleep(wait)
            await self.poll_once()
            due += self.interval()
            due = max(due, time.monotonic())  # overdue (a long outage): resume from now

    async def poll_once(self) -> bool:
        """One poll of every block; True when all of them were read."""
        self.stats.polls += 1
        values: Values = {}
        failure: ModbusError | None = None
        for block in self.blocks:
            try:
                regs = await self._read(block.table, block.address, block.count)
            except ModbusError as exc:
                failure = exc
                if isinstance(exc, ModbusLinkError | ModbusTimeoutError):
                    # the line is down or the unit silent: asking for its other blocks would
                    # hold the line for more timeouts in vain
                    break
                continue
            values.update(block.decode(regs))
        if values:
            self.on_values(values)
        # A refusal (exception response) is an answer: the unit is there, it is not backed
        # off nor called silent for it; it is reported all the same.
        if failure is None or isinstance(failure, ModbusExceptionResponseError):
            self.stats.failing = 0
            self.stats.last_good = time.monotonic()
        else:
            self.stats.failing += 1
        if failure is not None:
            self.stats.failed += 1
            self.on_error(failure, self.stats)
            return False
        self.stats.good += 1
        if self.on_good is not None:
            self.on_good(self.stats)
        return True

    async def _read(self, table: Table, address: int, count: int) -> list[int]:
        last: ModbusError | None = None
        for attempt in range(self.settings.retries + 1):
            try:
                return await self.client.read(
                    self.unit,
                    table,
                    address,
                    count,
                    timeout=self.settings.timeout,
                )
            except (ModbusTimeoutError, ModbusFrameError) as exc:
                self.stats.count(exc)
                last = exc
                log.debug("modbus retry unit=%d attempt=%d error=%s", self.unit, attempt + 1, exc)
            except ModbusExceptionResponseError as exc:
                self.stats.count(exc)
                if exc.code != 6:  # only "server device busy" may clear by itself at once
                    raise
                last = exc
            except ModbusLinkError as exc:
                self.stats.count(exc)
                raise
        assert last is not None
        raise last
