"""Speed of the signal core, as ratios to plain NumPy work on the same samples.

* ``analyze_bp`` on a 60 s record at 1 kHz, against one pass of a plain NumPy FIR filter
  (``np.convolve`` with a 201-tap windowed-sinc low-pass) over the same 60,000 samples;
* ``analyze_iop`` on one puff record;
* the streaming path (``LiveCuff``) fed 20 ms chunks at 1 kHz, as the serial driver hands
  them over: live updates per second of signal, and the CPU time per second of signal (the
  real-time budget is 1 s).

Run: ``.venv/bin/python -m benchmarks.signal_speed``. Prints figures; never asserts on time.
"""

from __future__ import annotations

import platform
import time
from dataclasses import replace

import numpy as np

from benchmarks.timing import best_of
from edge.signal.oscillometry import analyze_bp
from edge.signal.results import Refusal
from edge.signal.streaming import LiveCuff
from edge.signal.tonometry import analyze_iop
from simulators.physio.bp import simulate_bp
from simulators.physio.cohort import draw_bp_case, draw_iop_case
from simulators.physio.iop import simulate_iop


def _record_60s_1khz() -> np.ndarray:
    """A clean screening record simulated at 1 kHz, deflating slowly enough to last ~60 s.

    The whole record, release included (a record cut before the release is refused, and its
    refusal is quick), made up to 60 s with the transducer's reading after the release.
    """
    rng = np.random.default_rng(60)
    while True:
        case = replace(draw_bp_case(rng), fs=1000.0, deflation_rate=2.5, deflation_law="linear")
        sample = simulate_bp(case, rng)
        if "clean" in sample.labels and 50_000 <= sample.pressure.size <= 60_000:
            tail = np.full(60_000 - sample.pressure.size, float(sample.pressure[-200:].mean()))
            return np.concatenate([sample.pressure, tail])


def main() -> None:
    print(f"machine: {platform.machine()}, {platform.python_version()}, numpy {np.__version__}")
    pressure = _record_60s_1khz()
    taps = np.sinc(np.linspace(-10, 10, 201) * 0.02) * np.hamming(201)
    taps /= taps.sum()
    fir = best_of(lambda: np.convolve(pressure, taps, mode="same"), 20)
    result = analyze_bp(pressure, 1000.0)
    if isinstance(result, Refusal):  # a refused record would time the early exit only
        raise SystemExit(f"the benchmark record was refused: {result.reason}")
    bp = best_of(lambda: analyze_bp(pressure, 1000.0), 10)
    print(f"plain FIR pass (201 taps, 60,000 samples): {fir * 1000:7.2f} ms")
    print(
        f"analyze_bp, {pressure.size / 1000:.0f} s at 1 kHz:                 {bp * 1000:7.2f} ms",
        end="",
    )
    print(f" = {bp / fir:.1f} x the FIR pass")

    rng = np.random.default_rng(7)
    puff = simulate_iop(draw_iop_case(rng, "right"), rng)
    iop = best_of(lambda: analyze_iop(puff.pressure, puff.light, puff.fs), 20)
    puff_fir = best_of(lambda: np.convolve(puff.light, taps, mode="same"), 50)
    print(
        f"analyze_iop, one puff ({puff.pressure.size} samples at {puff.fs:.0f} Hz):"
        f" {iop * 1000:.2f} ms = {iop / puff_fir:.1f} x a FIR pass over it"
    )

    chunk = 20  # 20 ms at 1 kHz
    live = LiveCuff(1000.0)
    updates = 0
    started = time.perf_counter()
    for start in range(0, pressure.size, chunk):
        updates += len(live.feed(pressure[start : start + chunk]))
    cpu = time.perf_counter() - started
    seconds = pressure.size / 1000
    print(
        f"LiveCuff, 20 ms chunks: {updates / seconds:.1f} updates per second of signal,"
        f" {cpu / seconds * 1000:.2f} ms CPU per second of signal"
        f" ({seconds / cpu:,.0f} x faster than real time)"
    )


if __name__ == "__main__":
    main()
