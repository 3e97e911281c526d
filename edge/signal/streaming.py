"""Live cuff pressure while a measurement runs: a streaming low-pass, O(chunk) per call.

The serial driver hands over sample chunks of any size as they arrive; :class:`LiveCuff` turns
them into a cuff-pressure reading at ``rate_hz`` or faster, for the technician's display and for
over-pressure checks. Two stages, both exact under any chunking:

1. block means: the samples are averaged in consecutive blocks of ``D = floor(fs / rate_hz)``
   samples (a boxcar, then decimation by D); a partial block waits for the next chunk, so each
   block mean is computed from the same samples in the same order whatever the chunk sizes;
2. a least-squares straight line through the last ``window_s`` seconds of block means,
   evaluated at the newest sample. Averaging over about one beat removes most of the pulse
   ripple, and evaluating the fitted line at its end (the end point of a first-order
   Savitzky-Golay filter, Savitzky & Golay, Anal Chem 1964;36:1627-1639) removes the lag a plain
   moving average has on a ramp: inflation and deflation ramps are tracked without delay.

State is the partial block and the last few block means, so memory and time per call are bounded
by the chunk size, and nothing of the history is filtered again.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from edge.signal.filters import FloatArray


def _endpoint_weights(n: int, block: int) -> FloatArray:
    """Weights of a least-squares line through ``n`` block means, evaluated at the last sample.

    Block ``j`` (oldest 0) has its centre ``(block - 1) / 2`` samples before its end; the value
    is wanted at the end of the newest block.
    """
    if n == 1:
        return np.ones(1)
    t = np.arange(n, dtype=np.float64) * block  # block centres, in samples
    target = t[-1] + (block - 1) / 2.0
    tc = t - t.mean()
    return np.asarray(1.0 / n + tc * (target - t.mean()) / float(tc @ tc), dtype=np.float64)


class LiveCuff:
    """Streaming low-passed cuff pressure (mmHg) at ``rate_hz`` updates per second or more."""

    def __init__(self, fs: float, rate_hz: float = 10.0, window_s: float = 1.0) -> None:
        if fs <= 0 or rate_hz <= 0 or rate_hz > fs:
            msg = f"need 0 < rate_hz <= fs, got fs={fs}, rate_hz={rate_hz}"
            raise ValueError(msg)
        self._block = max(1, math.floor(fs / rate_hz))
        self._n = max(2, round(window_s * fs / self._block))
        self._weights = _endpoint_weights(self._n, self._block)
        self._pending = np.zeros(0)
        self._history = np.zeros(0)  # the last n - 1 block means

    @property
    def block(self) -> int:
        """Samples per update: ``fs / block`` updates per second of signal (>= ``rate_hz``)."""
        return self._block

    def feed(self, samples: npt.ArrayLike) -> FloatArray:
        """Take a chunk of samples (mmHg); return the live pressures completed by it (0..n)."""
        chunk = np.asarray(samples, dtype=np.float64).ravel()
        data = np.concatenate([self._pending, chunk])
        full = data.size // self._block
        self._pending = data[full * self._block :].copy()
        if full == 0:
            return np.zeros(0)
        means = data[: full * self._block].reshape(full, self._block).mean(axis=1)
        series = np.concatenate([self._history, means])
        out = np.empty(full)
        # outputs whose window is not full yet (only at the start of a stream)
        start = series.size - full
        for i in range(full):
            end = start + i + 1
            if end >= self._n:
                break
            out[i] = float(_endpoint_weights(end, self._block) @ series[:end])
        else:
            i = full
        if i < full:
            windows = sliding_window_view(series, self._n)[start + i - self._n + 1 :]
            out[i:] = windows @ self._weights
        self._history = series[-(self._n - 1) :].copy()
        return out
