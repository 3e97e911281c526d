"""The poller's schedule and failure handling, against an in-memory unit on the port.

(The real line, pymodbus and the simulated slaves are in tests/integration; here the
RegisterClient is a plain in-memory register file so the schedule can be checked exactly.)
"""

from __future__ import annotations

import asyncio

from drivers.modbus.errors import (
    ModbusError,
    ModbusExceptionResponseError,
    ModbusFrameError,
    ModbusLinkError,
    ModbusTimeoutError,
)
from drivers.modbus.maps import RegisterMap
from drivers.modbus.poller import Poller, PollSettings, PollStats
from drivers.modbus.port import Table
from drivers.modbus.registers import Point

MAP = RegisterMap(
    "two-blocks",
    (
        Point("temperature", "input", 1, "int16", scale=0.1, unit="Cel"),
        Point("limit", "holding", 40, "int16", scale=0.1, unit="Cel"),
    ),
)


class Unit:
    """An in-memory unit whose answers the test scripts per table."""

    url = "memory://unit"

    def __init__(self) -> None:
        self.fail: dict[Table, list[ModbusError]] = {"input": [], "holding": []}
        self.asked: list[Table] = []

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def read(
        self, unit: int, table: Table, address: int, count: int, *, timeout: float
    ) -> list[int]:
        self.asked.append(table)
        if self.fail[table]:
            raise self.fail[table].pop(0)
        return [215] if table == "input" else [80]


def _poller(
    unit: Unit, settings: PollSettings | None = None
) -> tuple[Poller, list[dict[str, float]], list[str]]:
    values: list[dict[str, float]] = []
    errors: list[str] = []

    def on_error(exc: ModbusError, stats: PollStats) -> None:
        errors.append(type(exc).__name__)

    poller = Poller(unit, 1, MAP, settings or PollSettings(), values.append, on_error)
    return poller, values, errors


def test_a_failed_block_does_not_lose_the_other_blocks_values() -> None:
    unit = Unit()
    poller, values, errors = _poller(unit, PollSettings(retries=1))
    unit.fail["holding"] = [ModbusFrameError("bad crc", 1), ModbusExceptionResponseError(1, 3, 2)]
    assert asyncio.run(poller.poll_once()) is False
    assert values == [{"temperature": 21.5}]
    assert errors == ["ModbusExceptionResponseError"]
    # a refusal is an answer: reported, but the unit is neither backed off nor silent
    assert (poller.stats.frame_errors, poller.stats.exceptions, poller.stats.failing) == (1, 1, 0)
    assert poller.interval() == poller.settings.period
    assert asyncio.run(poller.poll_once()) is True
    assert values[-1] == {"temperature": 21.5, "limit": 8.0}
    assert poller.stats.failing == 0


def test_a_silent_unit_is_not_asked_for_its_other_blocks() -> None:
    unit = Unit()
    poller, values, errors = _poller(unit, PollSettings(retries=1))
    unit.fail["holding"] = [ModbusTimeoutError("t", 1), ModbusTimeoutError("t", 1)]
    assert asyncio.run(poller.poll_once()) is False
    assert unit.asked == ["holding", "holding"]  # one retry, then no input block
    assert (values, errors, poller.stats.timeouts) == ([], ["ModbusTimeoutError"], 2)


def test_busy_is_retried_other_exceptions_are_data_and_not_retried() -> None:
    unit = Unit()
    poller, _, errors = _poller(unit, PollSettings(retries=2))
    unit.fail["input"] = [ModbusExceptionResponseError(1, 4, 6)]
    assert asyncio.run(poller.poll_once()) is True  # busy, then answered
    unit.fail["input"] = [ModbusExceptionResponseError(1, 4, 2)]
    unit.asked.clear()
    assert asyncio.run(poller.poll_once()) is False
    assert unit.asked == ["holding", "input"]  # illegal address: asked once
    assert errors == ["ModbusExceptionResponseError"]
    assert poller.stats.exceptions == 2


def test_a_line_error_skips_the_remaining_blocks() -> None:
    unit = Unit()
    poller, values, errors = _poller(unit)
    unit.fail["holding"] = [ModbusLinkError("down")]
    assert asyncio.run(poller.poll_once()) is False
    assert unit.asked == ["holding"]
    assert (values, errors) == ([], ["ModbusLinkError"])


def test_a_failing_unit_backs_off_up_to_the_limit_then_resumes_its_period() -> None:
    poller, _, _ = _poller(Unit(), PollSettings(period=1.0, backoff_max=10.0))
    intervals = []
    for failing in (0, 1, 2, 3, 4, 5, 1024, 10**6):  # dead for days: no overflow
        poller.stats.failing = failing
        intervals.append(poller.interval())
    assert intervals == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]


def test_a_silent_unit_counts_failing_polls_and_its_first_answer_resets_them() -> None:
    unit = Unit()
    poller, _, _ = _poller(unit, PollSettings(retries=0))
    for n in range(1, 4):
        unit.fail["holding"] = [ModbusTimeoutError("t", 1)]
        asyncio.run(poller.poll_once())
        assert poller.stats.failing == n
    assert asyncio.run(poller.poll_once()) is True
    assert (poller.stats.failing, poller.stats.good, poller.stats.failed) == (0, 1, 3)
