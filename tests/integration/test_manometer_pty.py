"""The reference manometer driver against the simulated reference on a real pty.

The simulator (simulators/manometer.py) answers from a simulated pneumatic bench
(simulators/bench.py) running on the real clock, made fast (high slew, short settle and dwell)
so that a calibration point takes well under a second. The driver opens the pty's symlink as a
``serial://`` URL, exactly as it would open the instrument's USB adapter. Waits are guarded
(GUARD) but nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path

import pytest

from drivers.devices.manometer import (
    Certificate,
    Identity,
    Manometer,
    ManometerCommandError,
    ManometerReplyError,
    ManometerTimeoutError,
    Unit,
)
from drivers.errors import DeviceTimeoutError, TransientDeviceError
from drivers.transport import open_transport
from simulators.bench import PneumaticBench
from simulators.manometer import ManometerScenario, SimulatedManometer

GUARD = 25.0  # seconds before a hung test fails (a hang guard, not a timing assertion)
DUE = date(2027, 3, 31)


def fast_bench(leak_mmhg_per_min: float = 1.0) -> PneumaticBench:
    return PneumaticBench(
        slew_mmhg_per_s=400.0, settle_s=0.05, leak_mmhg_per_min=leak_mmhg_per_min, seed=1
    )


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(GUARD):
        while not condition():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def reference(
    link: Path, sim: SimulatedManometer, timeout: float = 0.5
) -> AsyncIterator[Manometer]:
    """``sim`` running on its pty, and an opened driver on the pty's link."""
    task = asyncio.create_task(sim.run())
    try:
        await until(link.exists)
        manometer = Manometer(open_transport(f"serial://{link}"), timeout=timeout)
        await manometer.open()
        try:
            yield manometer
        finally:
            await manometer.close()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def simulated(
    link: Path, bench: PneumaticBench, uncertainty_mmhg: float = 0.05
) -> SimulatedManometer:
    return SimulatedManometer(
        link, bench, due=DUE, uncertainty_mmhg=uncertainty_mmhg, stable_s=0.2, seed=3
    )


def test_open_sets_mmhg_and_identify_reads_the_idn_fields(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    sim = simulated(link, fast_bench())
    assert sim.unit is Unit.KPA  # it powers up in kPa

    async def main() -> Identity:
        async with reference(link, sim) as manometer:
            assert sim.unit is Unit.MMHG
            assert await manometer.check_errors() == []
            return await manometer.identify()

    assert asyncio.run(main()) == Identity("SANTEBUS-SIM", "RPC-400", "REF-SIM-0001", "1.0.0")


def test_calibration_points_settle_in_limits_and_read_the_setpoint(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    sim = simulated(link, fast_bench())

    async def main() -> list[tuple[float, float, float]]:
        points = []
        async with reference(link, sim) as manometer:
            await manometer.control(True)
            for target in (50.0, 250.0, 0.0):
                await manometer.set_pressure(target)
                assert await manometer.wait_in_limits(timeout=GUARD, poll=0.05)
                points.append((target, await manometer.setpoint(), await manometer.read()))
        return points

    for target, setpoint, reading in asyncio.run(main()):
        assert setpoint == target
        assert reading == pytest.approx(target, abs=0.1)


def test_not_in_limits_while_moving_or_sealed(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    bench = PneumaticBench(slew_mmhg_per_s=10.0, seed=1)  # slow: 20 s to 200 mmHg

    async def main() -> None:
        async with reference(link, simulated(link, bench)) as manometer:
            await manometer.set_pressure(200.0)
            await manometer.control(True)
            assert not await manometer.in_limits()
            await manometer.control(False)
            assert not await manometer.in_limits()

    asyncio.run(main())


def test_a_sealed_circuit_leaks_and_the_reading_falls(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    bench = fast_bench(leak_mmhg_per_min=600.0)  # 10 mmHg/s: a leak test in a blink

    async def main() -> tuple[float, float]:
        async with reference(link, simulated(link, bench)) as manometer:
            await manometer.set_pressure(200.0)
            await manometer.control(True)
            assert await manometer.wait_in_limits(timeout=GUARD, poll=0.05)
            await manometer.control(False)  # isolate the circuit: the leak test starts
            assert bench.state == "sealed"
            first = await manometer.read()
            readings = [first]

            async def fallen() -> None:
                while readings[-1] > first - 2.0:
                    readings.append(await manometer.read())

            async with asyncio.timeout(GUARD):
                await fallen()
            return first, readings[-1]

    first, last = asyncio.run(main())
    assert first > 190.0
    assert last <= first - 2.0


def test_vent_brings_the_circuit_to_atmosphere(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    bench = fast_bench()

    async def main() -> float:
        async with reference(link, simulated(link, bench)) as manometer:
            await manometer.set_pressure(20.0)
            await manometer.control(True)
            assert await manometer.wait_in_limits(timeout=GUARD, poll=0.05)
            await manometer.vent()
            assert not bench.controlling
            await until(lambda: bench.pressure() < 0.02)
            return await manometer.read()

    assert asyncio.run(main()) == pytest.approx(0.0, abs=0.05)


def test_certificate_due_date_and_uncertainty(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    sim = simulated(link, fast_bench(), uncertainty_mmhg=0.08)

    async def main() -> Certificate:
        async with reference(link, sim) as manometer:
            return await manometer.certificate()

    certificate = asyncio.run(main())
    assert certificate == Certificate(DUE, 0.08)
    assert certificate.valid_on(DUE)
    assert not certificate.valid_on(date(2027, 4, 1))


def test_an_expired_reference_from_its_scenario(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    scenario = ManometerScenario(serial="REF-0042", due_in_days=-3, leak_mmhg_per_min=2.0)
    today = date(2026, 6, 1)
    bench = scenario.bench(seed=4)
    sim = SimulatedManometer.from_scenario(link, bench, scenario, today=today)

    async def main() -> tuple[Identity, Certificate]:
        async with reference(link, sim) as manometer:
            return await manometer.identify(), await manometer.certificate()

    identity, certificate = asyncio.run(main())
    assert identity.serial == "REF-0042"
    assert certificate.due == date(2026, 5, 29)
    assert not certificate.valid_on(today)
    assert bench.leak_mmhg_per_min == 2.0


def test_unknown_commands_fill_the_error_queue_and_refusals_raise(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    sim = simulated(link, fast_bench())

    async def main() -> None:
        async with reference(link, sim) as manometer:
            # what a terminal program or another tool might send on the line
            await manometer.transport.write(b":SENS:PRESS?\n:OUTP:STAT MAYBE\r\n")
            await until(lambda: len(sim.errors) == 2)
            assert await manometer.check_errors() == [
                (-113, "Undefined header"),
                (-224, "Illegal parameter value"),
            ]
            assert await manometer.check_errors() == []
            with pytest.raises(ManometerCommandError) as caught:
                await manometer.set_pressure(500.0)  # above the 400 mmHg full scale
            assert (caught.value.code, caught.value.text) == (-222, "Data out of range")
            assert caught.value.command == ":SOUR:PRES 500"
            assert await manometer.setpoint() == 0.0  # refused: unchanged
            assert await manometer.check_errors() == []
            await manometer.set_pressure(100.0)  # the driver goes on as before
            assert await manometer.setpoint() == 100.0

    asyncio.run(main())


def test_queue_overflow_is_reported_as_scpi_does(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    sim = simulated(link, fast_bench())

    async def main() -> list[tuple[int, str]]:
        async with reference(link, sim) as manometer:
            await manometer.transport.write(b":NOPE\n" * 35)
            await until(lambda: sim.commands >= 35 + 3)
            return await manometer.check_errors()

    errors = asyncio.run(main())
    assert len(errors) == 30
    assert errors[:29] == [(-113, "Undefined header")] * 29
    assert errors[29] == (-350, "Queue overflow")


def test_a_garbled_reply_names_its_bytes_and_the_next_query_resynchronises(
    tmp_path: Path,
) -> None:
    link = tmp_path / "manometer"
    sim = simulated(link, fast_bench())

    async def main() -> None:
        async with reference(link, sim) as manometer:
            assert sim.port.write(b"\x15\xfe%garbled\n")  # noise on the line, as from the device
            with pytest.raises(ManometerReplyError) as caught:
                await manometer.read()
            assert caught.value.line == b"\x15\xfe%garbled"
            assert "garbled" in str(caught.value)
            # the real reply to that read arrives late and must not answer the next query
            for _ in range(3):
                assert await manometer.in_limits() is False
                assert await manometer.read() == pytest.approx(0.0, abs=0.05)

    asyncio.run(main())


def test_one_request_at_a_time(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    sim = simulated(link, fast_bench())

    async def main() -> list[object]:
        async with reference(link, sim) as manometer:
            return list(
                await asyncio.gather(
                    *(
                        coro
                        for _ in range(5)
                        for coro in (
                            manometer.identify(),
                            manometer.read(),
                            manometer.in_limits(),
                            manometer.certificate(),
                        )
                    )
                )
            )

    results = asyncio.run(main())
    for i in range(0, len(results), 4):  # each reply answered the query that asked for it
        identity, reading, in_limits, certificate = results[i : i + 4]
        assert identity == Identity("SANTEBUS-SIM", "RPC-400", "REF-SIM-0001", "1.0.0")
        assert reading == pytest.approx(0.0, abs=0.05)
        assert in_limits is False
        assert certificate == Certificate(DUE, 0.05)


def test_cable_off_the_instrument_times_out_and_recovers(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    sim = simulated(link, fast_bench())

    async def main() -> None:
        async with reference(link, sim, timeout=0.3) as manometer:
            sim.cable_connected = False
            with pytest.raises(ManometerTimeoutError) as caught:
                await manometer.read()
            assert isinstance(caught.value, DeviceTimeoutError)
            assert isinstance(caught.value, TransientDeviceError)  # the supervisor retries
            assert caught.value.command == ":SENS:PRES?"
            with pytest.raises(ManometerTimeoutError):
                await manometer.set_pressure(120.0)
            sim.cable_connected = True
            assert await manometer.read() == pytest.approx(0.0, abs=0.05)
            await manometer.set_pressure(120.0)
            assert await manometer.setpoint() == 120.0

    asyncio.run(main())


def test_open_against_a_silent_line_times_out_and_leaves_the_port_closed(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    sim = simulated(link, fast_bench())
    sim.cable_connected = False

    async def main() -> Manometer:
        task = asyncio.create_task(sim.run())
        try:
            await until(link.exists)
            manometer = Manometer(open_transport(f"serial://{link}"), timeout=0.3)
            with pytest.raises(ManometerTimeoutError):
                await manometer.open()
            return manometer
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    manometer = asyncio.run(main())
    assert not manometer.transport.is_open
    assert sim.unit is Unit.KPA


def test_usb_adapter_pulled_is_a_transient_error_and_reopen_recovers(tmp_path: Path) -> None:
    link = tmp_path / "manometer"
    sim = simulated(link, fast_bench())

    async def main() -> None:
        async with reference(link, sim, timeout=0.3) as manometer:
            sim.port.unplug()
            with pytest.raises(TransientDeviceError):
                await manometer.read()
            sim.port.plug()
            await manometer.close()
            await manometer.open()
            assert sim.unit is Unit.MMHG
            assert (await manometer.identify()).serial == "REF-SIM-0001"

    asyncio.run(main())


def test_values_before_open_are_refused(tmp_path: Path) -> None:
    manometer = Manometer(open_transport(f"serial://{tmp_path}/nowhere"))

    async def main() -> None:
        with pytest.raises(RuntimeError, match="open"):
            await manometer.read()
        with pytest.raises(TransientDeviceError):
            await manometer.open()  # no such port

    asyncio.run(main())
