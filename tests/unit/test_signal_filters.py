"""Pure-NumPy filters: frequency response on sinusoids, zero phase, ramps, medians."""

from __future__ import annotations

import numpy as np
import pytest

from edge.signal.filters import (
    cascaded_moving_average,
    decimate,
    fft_bandpass,
    fft_highpass,
    fft_lowpass,
    mad_sigma,
    moving_average,
    next_fast_len,
    running_max,
    running_median,
    running_min,
)

FS = 200.0
T = np.arange(int(30 * FS)) / FS
INNER = slice(int(5 * FS), -int(5 * FS))  # away from the ends


def _gain(y: np.ndarray, amplitude: float = 1.0) -> float:
    return float(np.sqrt(2.0) * np.std(y[INNER]) / amplitude)


@pytest.mark.parametrize(
    ("freq", "low", "high"),
    [(0.2, 0.0, 0.01), (1.0, 0.99, 1.01), (5.0, 0.99, 1.01), (7.0, 0.99, 1.01), (20.0, 0.0, 0.01)],
)
def test_bandpass_passes_the_band_and_stops_outside(freq: float, low: float, high: float) -> None:
    y = fft_bandpass(np.sin(2 * np.pi * freq * T), FS, 0.6, 10.0)
    assert low <= _gain(y) <= high


def test_bandpass_gain_is_one_half_at_the_cut_offs() -> None:
    for freq in (0.6, 10.0):
        y = fft_bandpass(np.sin(2 * np.pi * freq * T), FS, 0.6, 10.0)
        assert _gain(y) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("freq", [1.0, 2.5, 6.0])
def test_filters_are_zero_phase(freq: float) -> None:
    x = np.cos(2 * np.pi * freq * T + 0.3)
    for y in (fft_bandpass(x, FS, 0.5, 12.0), fft_lowpass(x, FS, 15.0), fft_highpass(x, FS, 0.3)):
        # a pure gain: the output is the input scaled, sample by sample
        assert np.max(np.abs(y[INNER] - x[INNER])) < 0.01


def test_a_ramp_passes_the_low_pass_and_vanishes_in_the_high_pass() -> None:
    ramp = 180.0 - 4.0 * T
    assert np.max(np.abs(fft_lowpass(ramp, FS, 0.5) - ramp)) < 1e-6
    assert np.max(np.abs(fft_highpass(ramp, FS, 0.5))) < 1e-6
    # a steep ramp under a pulse train leaves no trace, not even at the ends (no wrap-around)
    pulses = 0.5 * np.sin(2 * np.pi * 1.2 * T)
    y = fft_bandpass(ramp + pulses, FS, 0.6, 10.0)
    assert np.max(np.abs(y - fft_bandpass(pulses, FS, 0.6, 10.0))) < 1e-6
    # the mirrored extension disturbs only the first and last 1.5 s
    assert np.max(np.abs(y - pulses)[300:-300]) < 0.02


def test_decimate_keeps_in_band_content_and_length() -> None:
    x = np.sin(2 * np.pi * 3.0 * T)
    y = decimate(x, FS, 4)
    assert y.size == x[::4].size
    assert np.max(np.abs(y - x[::4])[10:-10]) < 1e-3
    assert decimate(x, FS, 1).size == x.size


def test_moving_averages_keep_a_ramp_and_smooth_noise() -> None:
    ramp = 3.0 * T + 1.0
    assert np.allclose(moving_average(ramp, 25), ramp)
    assert np.allclose(cascaded_moving_average(ramp, 25, passes=3), ramp)
    noise = np.random.default_rng(1).standard_normal(T.size)
    assert np.std(moving_average(noise, 100)) < 0.2


def test_median_helpers_and_detrend() -> None:
    x = np.ones(21)
    x[10] = 50.0
    assert np.all(running_median(x, 5) == 1.0)
    assert running_max(np.arange(10.0), 3)[0] == 1.0
    assert running_min(np.arange(10.0), 3)[0] == 0.0
    assert running_min(np.arange(10.0), 3)[5] == 4.0
    # shifted ends: the first point is the median of the first 5 values, not of its own copies
    assert (
        running_median(np.array([9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 5, shift_ends=True)[0] == 3.0
    )
    assert mad_sigma(np.random.default_rng(2).standard_normal(20000)) == pytest.approx(1.0, 0.05)
    assert mad_sigma(np.zeros(0)) == 0.0


def test_next_fast_len_is_5_smooth_and_not_smaller() -> None:
    for n in (1, 7, 97, 1025, 60001):
        m = next_fast_len(n)
        assert m >= n
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        assert k == 1


def test_short_inputs_are_returned_unchanged() -> None:
    assert fft_lowpass(np.array([1.0, 2.0]), FS, 5.0).tolist() == [1.0, 2.0]
    assert moving_average(np.zeros(0), 5).size == 0
