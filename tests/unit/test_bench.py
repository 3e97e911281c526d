"""The simulated pneumatic bench on a hand-driven clock: slew, settle, leak, vent, dump, seeds."""

from __future__ import annotations

import math

import pytest

from simulators.bench import PneumaticBench


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def quiet_bench(
    clock: Clock,
    *,
    slew_mmhg_per_s: float = 40.0,
    settle_s: float = 0.5,
    leak_mmhg_per_min: float = 1.0,
) -> PneumaticBench:
    """No ripple: the model's own trajectory, exactly."""
    return PneumaticBench(
        clock=clock,
        noise_mmhg=0.0,
        slew_mmhg_per_s=slew_mmhg_per_s,
        settle_s=settle_s,
        leak_mmhg_per_min=leak_mmhg_per_min,
    )


def test_a_fresh_bench_is_at_atmosphere_and_not_controlling() -> None:
    clock = Clock()
    bench = quiet_bench(clock)
    clock.advance(10)
    assert bench.pressure() == 0.0
    assert not bench.controlling
    assert bench.state == "venting"
    assert bench.target == 0.0


def test_control_slews_at_the_slew_rate_far_from_the_target() -> None:
    clock = Clock()
    bench = quiet_bench(clock, slew_mmhg_per_s=40.0, settle_s=0.5)
    bench.set_target(200.0)
    bench.control(True)
    assert bench.controlling
    clock.advance(1.0)
    assert bench.pressure() == pytest.approx(40.0)
    clock.advance(2.0)
    assert bench.pressure() == pytest.approx(120.0)


def test_the_approach_ends_first_order_and_reaches_the_target() -> None:
    clock = Clock()
    bench = quiet_bench(clock, slew_mmhg_per_s=40.0, settle_s=0.5)
    bench.set_target(100.0)
    bench.control(True)
    knee_time = (100.0 - 40.0 * 0.5) / 40.0  # linear until 20 mmHg (slew x settle) short
    clock.advance(knee_time)
    assert bench.pressure() == pytest.approx(80.0)
    clock.advance(0.5)  # one time constant: 1/e of the remaining 20 mmHg is left
    assert bench.pressure() == pytest.approx(100.0 - 20.0 / math.e)
    clock.advance(10.0)
    assert bench.pressure() == pytest.approx(100.0, abs=1e-6)


def test_the_trajectory_does_not_depend_on_how_often_it_is_sampled() -> None:
    coarse_clock, fine_clock = Clock(), Clock()
    coarse, fine = quiet_bench(coarse_clock), quiet_bench(fine_clock)
    for bench in (coarse, fine):
        bench.set_target(150.0)
        bench.control(True)
    for _ in range(70):
        fine_clock.advance(0.1)
        fine.pressure()
    coarse_clock.advance(7.0)
    assert coarse.pressure() == pytest.approx(fine.pressure())


def test_going_down_mirrors_going_up() -> None:
    clock = Clock()
    bench = quiet_bench(clock)
    bench.set_target(250.0)
    bench.control(True)
    clock.advance(60)
    bench.set_target(50.0)
    clock.advance(1.0)
    assert bench.pressure() == pytest.approx(210.0)
    clock.advance(60)
    assert bench.pressure() == pytest.approx(50.0, abs=1e-6)


def test_sealed_circuit_leaks_at_the_leak_rate_down_to_zero() -> None:
    clock = Clock()
    bench = quiet_bench(clock, leak_mmhg_per_min=3.0)
    bench.set_target(150.0)
    bench.control(True)
    clock.advance(60)
    bench.control(False)
    assert not bench.controlling
    assert bench.state == "sealed"
    start = bench.pressure()
    clock.advance(60.0)
    assert bench.pressure() == pytest.approx(start - 3.0)
    clock.advance(20.0)
    assert bench.pressure() == pytest.approx(start - 4.0)
    clock.advance(3600 * 60)
    assert bench.pressure() == 0.0  # never below atmosphere


def test_vent_falls_to_atmosphere_and_stops_control() -> None:
    clock = Clock()
    bench = quiet_bench(clock)
    bench.set_target(200.0)
    bench.control(True)
    clock.advance(60)
    bench.vent()
    assert not bench.controlling
    clock.advance(0.25)
    assert bench.pressure() == pytest.approx(200.0 / math.e)
    clock.advance(5.0)
    assert bench.pressure() == 0.0
    bench.control(True)  # the controller closes its vent and drives to the target again
    clock.advance(60)
    assert bench.pressure() == pytest.approx(200.0, abs=1e-6)


def test_dump_falls_to_about_zero_within_half_a_second() -> None:
    clock = Clock()
    bench = quiet_bench(clock, slew_mmhg_per_s=100.0)
    bench.set_target(300.0)
    bench.control(True)
    clock.advance(60)
    bench.dump()  # the device's over-pressure valve opens
    assert bench.state == "dumped"
    assert not bench.controlling
    clock.advance(0.5)
    assert bench.pressure() < 1.0
    clock.advance(1.0)
    assert bench.pressure() == 0.0
    bench.control(False)  # the valve closed again: a sealed circuit at atmosphere
    clock.advance(10)
    assert bench.pressure() == 0.0


def test_settled_for_counts_from_entering_the_band() -> None:
    clock = Clock()
    bench = quiet_bench(clock, slew_mmhg_per_s=40.0, settle_s=0.5)
    bench.set_target(100.0)
    assert bench.settled_for(0.2) == 0.0  # not controlling
    bench.control(True)
    entered = (100.0 - 20.0) / 40.0 + 0.5 * math.log(20.0 / 0.2)
    clock.advance(entered - 0.01)
    assert bench.settled_for(0.2) == 0.0
    clock.advance(1.01)
    assert bench.settled_for(0.2) == pytest.approx(1.0)
    assert 100.0 - bench.pressure() <= 0.2
    bench.set_target(100.0)  # the same target: the dwell goes on
    assert bench.settled_for(0.2) == pytest.approx(1.0)
    bench.set_target(120.0)
    assert bench.settled_for(0.2) == 0.0
    assert bench.settled_for(25.0) == 0.0  # at the start of a new approach: not yet in band
    clock.advance(0.125)  # 20 mmHg short, slewing at 40 mmHg/s: 5 mmHg covered
    assert bench.settled_for(25.0) == pytest.approx(0.125)
    bench.control(False)
    assert bench.settled_for(25.0) == 0.0


def test_ripple_is_seeded_and_only_while_controlling() -> None:
    def trace(seed: int) -> list[float]:
        clock = Clock()
        bench = PneumaticBench(clock=clock, seed=seed, noise_mmhg=0.02)
        bench.set_target(100.0)
        bench.control(True)
        out = []
        for _ in range(50):
            clock.advance(0.5)
            out.append(bench.pressure())
        bench.control(False)
        out += [bench.pressure(), bench.pressure()]
        return out

    first, again, other = trace(1), trace(1), trace(2)
    assert first == again
    assert first != other
    assert first[-1] == first[-2]  # sealed: no controller, no ripple
    settled = first[30:50]
    assert max(abs(p - 100.0) for p in settled) < 0.2
    assert len(set(settled)) > 1


def test_a_clock_going_back_moves_nothing() -> None:
    clock = Clock()
    bench = quiet_bench(clock)
    bench.set_target(100.0)
    bench.control(True)
    clock.advance(1.0)
    p = bench.pressure()
    clock.advance(-0.5)
    assert bench.pressure() == p


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="slew"):
        PneumaticBench(slew_mmhg_per_s=0)
    with pytest.raises(ValueError, match="leak"):
        PneumaticBench(leak_mmhg_per_min=-1)
    bench = PneumaticBench()
    with pytest.raises(ValueError, match="gauge"):
        bench.set_target(-5.0)
    with pytest.raises(ValueError, match="gauge"):
        bench.set_target(float("inf"))
    with pytest.raises(ValueError, match="band"):
        bench.settled_for(0.0)
