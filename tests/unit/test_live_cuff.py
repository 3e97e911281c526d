"""LiveCuff: update rate, ramp tracking, ripple, chunking invariance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.signal.streaming import LiveCuff


def _record(fs: float, seconds: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(seconds * fs)) / fs
    return t, 180.0 - 4.0 * t + 1.0 * np.sin(2 * np.pi * 1.2 * t)


@pytest.mark.parametrize("fs", [250.0, 256.0, 300.0, 500.0, 1000.0])
def test_at_least_ten_updates_per_second_of_signal(fs: float) -> None:
    _, x = _record(fs, 10.0)
    out = LiveCuff(fs).feed(x)
    assert out.size >= 10 * 10


@pytest.mark.parametrize("fs", [250.0, 1000.0])
def test_a_ramp_is_tracked_without_lag(fs: float) -> None:
    t = np.arange(int(12 * fs)) / fs
    live = LiveCuff(fs)
    out = live.feed(180.0 - 6.0 * t)
    t_end = (np.arange(out.size) + 1) * live.block / fs - 1.0 / fs
    # after the first second (window filling) the end-point line fit is exact on a ramp
    steady = t_end >= 1.0
    assert np.max(np.abs(out[steady] - (180.0 - 6.0 * t_end[steady]))) < 1e-6
    # and within half a block of deflation during the warm-up
    assert np.max(np.abs(out - (180.0 - 6.0 * t_end))) < 0.5


def test_pulse_ripple_is_reduced() -> None:
    fs = 500.0
    _, x = _record(fs)
    live = LiveCuff(fs)
    out = live.feed(x)
    t_end = (np.arange(out.size) + 1) * live.block / fs - 1.0 / fs
    err = out - (180.0 - 4.0 * t_end)
    # a 2 mmHg peak-to-peak pulse at 72 /min leaves less than +-1 mmHg
    assert np.max(np.abs(err[t_end >= 1.0])) < 1.0


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=900), min_size=1, max_size=40),
    fs=st.sampled_from([250.0, 300.0, 1000.0]),
)
def test_any_chunking_gives_the_same_live_values(sizes: list[int], fs: float) -> None:
    _, x = _record(fs, 6.0)
    whole = LiveCuff(fs).feed(x)
    live = LiveCuff(fs)
    parts, i = [], 0
    for k in sizes:
        parts.append(live.feed(x[i : i + k]))
        i += k
    parts.append(live.feed(x[i:]))
    assert np.array_equal(np.concatenate(parts), whole)


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        LiveCuff(0.0)
    with pytest.raises(ValueError, match="rate_hz"):
        LiveCuff(100.0, rate_hz=200.0)
    assert LiveCuff(500.0).feed(np.zeros(10)).size == 0
