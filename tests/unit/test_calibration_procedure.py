"""The NIBP calibration procedure's own logic, and the module's service-mode client.

The bench is played by small in-memory stand-ins of its two ports (the reference controller
and the transducer in service mode): what is tested is the procedure's sequencing and verdicts
- a missing dump fails the over-pressure check, a point the reference cannot hold aborts, and
the circuit is vented whatever happens. The real instruments run in tests/e2e.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pytest

from calibration.procedures.base import ProcedureAbortedError, ScriptedOperator
from calibration.procedures.nibp import NibpPlan, run
from calibration.records import CalibrationBook, status
from drivers.codec import sampleframes as sf
from drivers.devices.nibp import CuffState, Status
from drivers.devices.nibp.service import NibpService
from drivers.transport.loop import LoopTransport
from tests.unit.test_calibration_enforcement import record

FAST = NibpPlan(points=(0.0, 100.0), sample_s=0.05, leak_s=0.1, settle_timeout=0.5,
                overpressure_timeout=0.3, stable_window_s=0.05, seal_settle_s=0.05)  # fmt: skip


class Reference:
    """The controller: it holds its setpoint exactly (or never gets there)."""

    def __init__(self, reachable: float = 1e9, fail_control_off: bool = False) -> None:
        self.p = 0.0
        self.target = 0.0
        self.reachable = reachable
        self.fail_control_off = fail_control_off
        self.calls: list[str] = []

    async def read(self) -> float:
        return self.p

    async def set_pressure(self, mmhg: float) -> None:
        self.target = mmhg
        self.p = min(mmhg, self.reachable)

    async def control(self, on: bool) -> None:
        self.calls.append(f"control {on}")
        if not on and self.fail_control_off:
            raise TimeoutError("no reply to ':OUTP:STAT OFF'")

    async def in_limits(self) -> bool:
        return self.p == self.target

    async def vent(self) -> None:
        self.calls.append("vent")
        self.p = 0.0


@dataclass(frozen=True)
class Reading:
    counts: tuple[int, ...]
    dumped: bool


class Transducer:
    """The module's transducer: counts = 100 x mmHg; its guard dumps above ``relief``."""

    def __init__(self, ref: Reference, relief: float | None = 300.0) -> None:
        self.ref = ref
        self.relief = relief

    async def sample(self, seconds: float) -> Reading:
        await asyncio.sleep(0)
        dumped = self.relief is not None and self.ref.p > self.relief
        if dumped:
            self.ref.p = 0.0
        return Reading((round(100 * self.ref.p),), dumped)


def test_points_leak_and_overpressure_with_a_healthy_module() -> None:
    ref = Reference()
    out = asyncio.run(run(ref, Transducer(ref), FAST, ScriptedOperator()))
    assert [(p.target, p.reference, p.raw) for p in out.points] == [
        (0.0, 0.0, 0.0),
        (100.0, 100.0, 10000.0),
    ]
    leak, over = out.checks
    assert (leak.name, leak.passed) == ("leak", True)
    assert (over.name, over.passed) == ("over-pressure", True)
    assert ref.calls[-2:] == ["vent", "control False"]


def test_a_module_that_never_dumps_fails_the_overpressure_check() -> None:
    ref = Reference()
    out = asyncio.run(run(ref, Transducer(ref, relief=None), FAST, ScriptedOperator()))
    over = out.checks[-1]
    assert over.passed is False
    assert over.detail.startswith("no dump within 0.3 s")


def test_a_point_the_reference_cannot_hold_aborts_and_the_circuit_is_vented() -> None:
    ref = Reference(reachable=80.0)  # a leak the controller cannot make up
    with pytest.raises(ProcedureAbortedError, match="did not hold 100 mmHg"):
        asyncio.run(run(ref, Transducer(ref), FAST, ScriptedOperator()))
    assert "vent" in ref.calls


def test_the_circuit_is_vented_even_when_switching_the_output_off_fails() -> None:
    ref = Reference(reachable=80.0, fail_control_off=True)
    with pytest.raises(ProcedureAbortedError):
        asyncio.run(run(ref, Transducer(ref), replace(FAST, points=(100.0,)), ScriptedOperator()))
    assert ref.calls[-2:] == ["vent", "control False"]


def test_a_technician_who_says_no_stops_before_any_pressure() -> None:
    class No(ScriptedOperator):
        def confirm(self, text: str) -> bool:
            return False

    ref = Reference()
    with pytest.raises(ProcedureAbortedError, match="stopped before the first point"):
        asyncio.run(run(ref, Transducer(ref), FAST, No()))
    assert ref.p == 0.0


def _frame(seq: int, message: Status) -> bytes:
    return sf.encode(sf.to_frame(message, seq))


def test_service_mode_keeps_a_dump_flag_sent_once_among_stale_frames() -> None:
    async def main() -> tuple[bool, tuple[int, ...]]:
        host, module = LoopTransport.pair("svc")
        await host.open()
        await module.open()
        # the module's answer to SERVICE, then backlog while the bench settled: one frame
        # with the dump flag and no pressure (a module that reports it once)
        stale = [Status(CuffState.SERVICE, 500), Status(CuffState.ERROR, None, dumped=True),
                 Status(CuffState.SERVICE, 700)]  # fmt: skip
        await module.write(b"".join(_frame(n, s) for n, s in enumerate(stale)))
        async with NibpService(host, status_timeout=0.5) as svc:

            async def later() -> None:
                await asyncio.sleep(0.1)
                await module.write(_frame(9, Status(CuffState.SERVICE, 900)))

            feeder = asyncio.create_task(later())
            reading = await svc.sample(0.05)
            await feeder
        return reading.dumped, reading.counts

    dumped, counts = asyncio.run(main())
    assert dumped is True
    assert counts == (900,)  # the backlog (500, 700) is not averaged into the point


def test_a_reading_dated_before_the_calibration_is_not_covered_by_it(tmp_path: Path) -> None:
    r = record(until=date(2027, 1, 31))  # valid_from 2026-11-01
    assert status(r, date(2026, 10, 31)).validity == "not-yet-valid"
    assert status(r, date(2026, 10, 31)).reason == f"calibration {r.id} not valid before 2026-11-01"
    assert status(r, date(2026, 11, 1)).validity == "valid"


def test_a_record_edited_in_place_is_refused_by_the_running_daemons_book(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path)
    path = book.add(record())
    assert book.current("NIBP-1") is not None  # cached
    path.chmod(0o644)
    path.write_text(path.read_text().replace('"technician": "tech-1"', '"technician": "tech-2"'))
    with pytest.raises(Exception, match="sha256 mismatch"):
        book.current("NIBP-1")
