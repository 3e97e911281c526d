"""Pure-NumPy filters for the signal core: zero-phase FFT filters, moving averages, medians.

The FFT filters multiply the spectrum by a real, non-negative gain, so they add no phase shift
(zero phase, like a forward-backward IIR pass but without its edge transients). Their transition
bands are raised-cosine (Hann) tapers instead of brick walls: a brick wall rings for seconds
(Gibbs), a taper of width ``w`` Hz gives an impulse response that dies out within about
``2 / w`` s (Oppenheim & Schafer, *Discrete-Time Signal Processing*, 3rd ed., sec. 7.5 on
windowed transitions). Records are extended at both ends by ``2 / w`` s: a straight line fitted
to the end continues, with the residual around it mirrored, so a ramp such as a deflating cuff
continues without a jump, the mean level of the pulses is kept, and the circular convolution of
the FFT does not wrap the end of the record onto its start; the record's own straight line is
removed before the FFT and restored after it (times the gain at 0 Hz), and the extensions fade
to zero at their far ends, so a steep ramp leaves no jump at the circular wrap either.

Moving averages run on a cumulative sum (O(n) whatever the window); cascading ``k`` boxcars gives
a B-spline kernel of order ``k`` whose side lobes fall much faster than one boxcar's (Smith,
*The Scientist and Engineer's Guide to DSP*, ch. 15). The median helpers use
``sliding_window_view`` and are meant for short series (per-beat values), not whole records.

SciPy is deliberately not used: it is not installed on the gateway and not wanted. The
signatures here are shared with :mod:`edge.signal.tonometry`; keep them stable.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

FloatArray = npt.NDArray[np.float64]
#: a normal variable's standard deviation over its median absolute deviation (1 / 0.6745)
MAD_TO_SD = 1.4826


def next_fast_len(n: int) -> int:
    """The smallest 5-smooth integer (only factors 2, 3, 5) that is >= ``n``: fast for FFTs."""
    if n <= 1:
        return 1
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            # multiply by the power of two that brings p35 just above n
            quotient = -(-n // p35)
            p2 = 1 << (quotient - 1).bit_length()
            best = min(best, p2 * p35)
            p35 *= 3
        p5 *= 5
    return best


def lowpass_gain(freqs: FloatArray, cutoff_hz: float, transition_hz: float) -> FloatArray:
    """Raised-cosine low-pass gain: 1 below ``cutoff - w/2``, 0 above ``cutoff + w/2``.

    The gain is exactly 0.5 at ``cutoff_hz`` (the -6 dB point) and smooth in between.
    """
    half = max(transition_hz, 1e-12) / 2.0
    u = np.clip((freqs - (cutoff_hz - half)) / (2.0 * half), 0.0, 1.0)
    return np.asarray(0.5 * (1.0 + np.cos(np.pi * u)), dtype=np.float64)


def _edge_line(x: FloatArray, k: int) -> tuple[float, float]:
    """Least-squares line ``a + b * i`` through the first ``k`` samples of ``x``."""
    if k < 2:
        return float(x[0]), 0.0
    i = np.arange(k, dtype=np.float64)
    b, a = np.polyfit(i, x[:k], 1)
    return float(a), float(b)


def _reflect_pad(x: FloatArray, pad: int) -> FloatArray:
    """Extend ``x`` by ``pad`` samples on each side: a straight line plus a mirrored residual.

    A line is fitted to the samples next to each end; beyond the end the line continues and the
    residual around it is mirrored. A ramp continues as a ramp and the mean level of a
    periodic component (pulses) is kept, where a plain point reflection would shift it by
    twice the end sample's departure from the mean and start a slow transient.
    """
    if pad <= 0:
        return x
    k = min(x.size, pad + 1)
    steps = np.arange(pad, 0, -1, dtype=np.float64)  # distance from the end, far to near
    a, b = _edge_line(x, k)
    near = x[1 : pad + 1][::-1]  # x[pad], ..., x[1]
    head = (a - b * steps) + (near - (a + b * steps))
    a2, b2 = _edge_line(x[::-1], k)
    near2 = x[-pad - 1 : -1]  # x[-pad-1], ..., x[-2], mirrored about the last sample
    tail = ((a2 - b2 * steps) + (near2 - (a2 + b2 * steps)))[::-1]
    return np.concatenate([head, x, tail])


def _apply(arr: FloatArray, fs: float, transition_hz: float, gain_of: _GainFn) -> FloatArray:
    n = arr.size
    if n < 3:
        return arr.copy()
    # remove the record's straight line first: a zero-phase filter with a flat pass band maps
    # a line to itself (gain 1 at 0 Hz) or to zero (gain 0), so it is added back times g(0)
    t = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(t, arr, 1)
    line = intercept + slope * t
    # the impulse response of a Hann transition of width w lasts about 2/w seconds
    pad = min(n - 1, math.ceil(2.0 * fs / max(transition_hz, 1e-3)))
    padded = _reflect_pad(arr - line, pad)
    if pad > 0:
        # fade the extensions to zero at their far ends, so the circular wrap joins smoothly
        fade = 0.5 * (1.0 - np.cos(np.pi * np.arange(pad) / pad))
        padded[:pad] *= fade
        padded[-pad:] *= fade[::-1]
    m = next_fast_len(padded.size)
    spectrum = np.fft.rfft(padded, n=m)
    freqs = np.asarray(np.fft.rfftfreq(m, d=1.0 / fs), dtype=np.float64)
    out = np.fft.irfft(spectrum * gain_of(freqs), n=m)
    dc_gain = float(gain_of(np.zeros(1))[0])
    return np.asarray(out[pad : pad + n] + dc_gain * line, dtype=np.float64)


class _GainFn:
    """A gain as a function of frequency (a tiny callable class keeps mypy --strict simple)."""

    def __init__(self, low: tuple[float, float] | None, high: tuple[float, float] | None):
        self._low = low  # (cutoff, width) of the high-pass edge
        self._high = high  # (cutoff, width) of the low-pass edge

    def __call__(self, freqs: FloatArray) -> FloatArray:
        g = np.ones_like(freqs)
        if self._high is not None:
            g *= lowpass_gain(freqs, *self._high)
        if self._low is not None:
            g *= 1.0 - lowpass_gain(freqs, *self._low)
        return g


def _default_width(cutoff_hz: float) -> float:
    return max(0.5 * cutoff_hz, 1e-3)


def fft_lowpass(
    x: npt.ArrayLike, fs: float, cutoff_hz: float, transition_hz: float | None = None
) -> FloatArray:
    """Zero-phase low-pass: gain 0.5 at ``cutoff_hz``, Hann transition ``transition_hz`` wide.

    The default transition is half the cut-off (e.g. 10 Hz: pass below 7.5, stop above 12.5).
    """
    arr = np.asarray(x, dtype=np.float64)
    width = transition_hz if transition_hz is not None else _default_width(cutoff_hz)
    return _apply(arr, fs, width, _GainFn(None, (cutoff_hz, width)))


def fft_highpass(
    x: npt.ArrayLike, fs: float, cutoff_hz: float, transition_hz: float | None = None
) -> FloatArray:
    """Zero-phase high-pass, the complement of :func:`fft_lowpass` with the same arguments."""
    arr = np.asarray(x, dtype=np.float64)
    width = transition_hz if transition_hz is not None else _default_width(cutoff_hz)
    return _apply(arr, fs, width, _GainFn((cutoff_hz, width), None))


def fft_bandpass(
    x: npt.ArrayLike,
    fs: float,
    low_hz: float,
    high_hz: float,
    transition_hz: float | None = None,
) -> FloatArray:
    """Zero-phase band-pass between ``low_hz`` and ``high_hz`` (each the 0.5-gain point).

    ``transition_hz`` applies to both edges; by default each edge gets half its own cut-off.
    """
    arr = np.asarray(x, dtype=np.float64)
    low_w = transition_hz if transition_hz is not None else _default_width(low_hz)
    high_w = transition_hz if transition_hz is not None else _default_width(high_hz)
    return _apply(arr, fs, min(low_w, high_w), _GainFn((low_hz, low_w), (high_hz, high_w)))


def decimate(
    x: npt.ArrayLike, fs: float, factor: int, cutoff_hz: float | None = None
) -> FloatArray:
    """Low-pass (zero phase) then keep every ``factor``-th sample, starting with the first.

    The default cut-off is 0.4 x the new sampling rate, with a transition of 0.2 x that rate,
    so nothing above the new Nyquist frequency survives to alias.
    """
    arr = np.asarray(x, dtype=np.float64)
    if factor <= 1:
        return arr.copy()
    new_fs = fs / factor
    cutoff = cutoff_hz if cutoff_hz is not None else 0.4 * new_fs
    width = min(0.2 * new_fs, 2.0 * (0.5 * new_fs - cutoff) if cutoff < 0.5 * new_fs else 1.0)
    return fft_lowpass(arr, fs, cutoff, max(width, 1e-3))[::factor].copy()


def moving_average(x: npt.ArrayLike, n: int) -> FloatArray:
    """Centred moving average of ``n`` samples via a cumulative sum (O(len(x))).

    Near the ends the window shrinks symmetrically, so the output has the input's length and a
    linear ramp passes unchanged everywhere.
    """
    arr = np.asarray(x, dtype=np.float64)
    size = arr.size
    if n <= 1 or size == 0:
        return arr.copy()
    half = n // 2
    idx = np.arange(size)
    # symmetric window, shrunk at the ends so that it stays centred
    reach = np.minimum(np.minimum(idx, size - 1 - idx), half)
    csum = np.concatenate([[0.0], np.cumsum(arr)])
    lo = idx - reach
    hi = idx + reach + 1
    return np.asarray((csum[hi] - csum[lo]) / (hi - lo), dtype=np.float64)


def cascaded_moving_average(x: npt.ArrayLike, n: int, passes: int = 3) -> FloatArray:
    """``passes`` centred moving averages of ``n`` samples in a row (a B-spline smoother)."""
    out = np.asarray(x, dtype=np.float64)
    for _ in range(max(passes, 1)):
        out = moving_average(out, n)
    return out


def running_median(x: npt.ArrayLike, k: int, *, shift_ends: bool = False) -> FloatArray:
    """Centred running median of odd length ``k``; the ends repeat the edge values.

    With ``shift_ends`` the window slides inwards at the ends instead, so every point is the
    median of ``k`` real values (of all of them when there are fewer). Meant for short series
    (per-beat amplitudes or intervals): it is O(len(x) * k).
    """
    arr = np.asarray(x, dtype=np.float64)
    if k <= 1 or arr.size == 0:
        return arr.copy()
    k = k + 1 if k % 2 == 0 else k
    if shift_ends:
        if arr.size <= k:
            return np.full(arr.size, float(np.median(arr)))
        start = np.clip(np.arange(arr.size) - k // 2, 0, arr.size - k)
        windows = arr[start[:, None] + np.arange(k)[None, :]]
        return np.asarray(np.median(windows, axis=1), dtype=np.float64)
    half = k // 2
    padded = np.concatenate([np.full(half, arr[0]), arr, np.full(half, arr[-1])])
    return np.asarray(np.median(sliding_window_view(padded, k), axis=1), dtype=np.float64)


def running_max(x: npt.ArrayLike, k: int) -> FloatArray:
    """Centred running maximum over ``k`` samples (the window is clipped at the ends)."""
    arr = np.asarray(x, dtype=np.float64)
    if k <= 1 or arr.size == 0:
        return arr.copy()
    half = k // 2
    padded = np.concatenate([np.full(half, -np.inf), arr, np.full(half, -np.inf)])
    return np.asarray(sliding_window_view(padded, 2 * half + 1).max(axis=1), dtype=np.float64)


def running_min(x: npt.ArrayLike, k: int) -> FloatArray:
    """Centred running minimum over ``k`` samples (the window is clipped at the ends)."""
    return -running_max(-np.asarray(x, dtype=np.float64), k)


def mad_sigma(x: npt.ArrayLike) -> float:
    """A robust standard deviation: 1.4826 x the median absolute deviation (0 if empty)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0:
        return 0.0
    return float(MAD_TO_SD * np.median(np.abs(arr - np.median(arr))))
