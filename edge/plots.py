"""PNG figures of what the signal core saw: ``santebus analyze bp|iop --plot OUT.png``.

matplotlib is imported inside the functions, never at module level, so the daemon (which never
draws) does not pay for it. The figures use the object-oriented API (``Figure`` rendered by the
Agg canvas): no pyplot global state, no GUI backend, safe on a headless gateway.

- Blood pressure: the cuff pressure with SBP, MAP and DBP marked where the deflating cuff
  crossed them; the oscillations extracted from it; the per-beat amplitudes (kept beats filled,
  rejected ones crossed) with the smoothed envelope. Three axes share the time axis.
- Tonometry: the plenum pressure with P1 and P2 marked at the two applanation instants, and the
  photodetector light with the inward and outward applanation events. Two axes share time.

A refused record is drawn too (the raw signals, the refusal in the title): the plot is how a
technician sees why.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.signal.filters import FloatArray
from edge.signal.results import BpEstimate, IopEstimate, Refusal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: colours of the three blood pressures (and of P1/P2), colour-blind safe (Okabe-Ito)
_SBP, _MAP, _DBP = "#D55E00", "#009E73", "#0072B2"


def _figure(rows: int, height: float) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, height), dpi=100, layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)
    return fig, [ax for (ax,) in axes]


def _save(fig: Figure, out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(out, format="png")


def _time_at_pressure(cuff: FloatArray, t: FloatArray, pressures: FloatArray) -> FloatArray:
    """When the deflating cuff (after its maximum) passed each pressure (NaN if it did not)."""
    top = int(np.argmax(cuff))
    falling = np.minimum.accumulate(cuff[top:])
    times = t[top:]
    out = np.interp(pressures, falling[::-1], times[::-1], left=np.nan, right=np.nan)
    return np.asarray(out, dtype=np.float64)


def _bp_title(result: BpEstimate | Refusal) -> str:
    if isinstance(result, Refusal):
        return f"Blood pressure refused ({result.code}): {result.reason}"
    flags = f" [{', '.join(result.flags)}]" if result.flags else ""
    return (
        f"BP {result.systolic:.0f}/{result.diastolic:.0f} mmHg (MAP {result.mean:.0f}), "
        f"pulse {result.pulse_rate:.0f}/min, quality {result.quality:.2f}{flags}"
    )


def bp_figure(pressure: FloatArray, fs: float, result: BpEstimate | Refusal, out: Path) -> None:
    """Draw the oscillometric analysis of ``pressure`` (mmHg at ``fs`` Hz) into ``out``."""
    trace = result.trace if isinstance(result, BpEstimate) else None
    n = pressure.size
    if trace is None:
        fig, (ax,) = _figure(1, 4.0)
        ax.plot(np.arange(n) / fs, pressure, color="0.2", linewidth=0.8, label="cuff pressure")
        if isinstance(result, BpEstimate):
            for value, name, colour in _bp_levels(result):
                ax.axhline(value, color=colour, linestyle="--", linewidth=0.8, label=name)
        ax.set_ylabel("cuff pressure (mmHg)")
        ax.set_xlabel("time (s)")
        ax.legend(loc="best", fontsize="small")
        fig.suptitle(_bp_title(result), fontsize="medium")
        _save(fig, out)
        return
    assert isinstance(result, BpEstimate)
    fig, (ax_p, ax_o, ax_a) = _figure(3, 8.0)
    t = np.arange(n) / fs  # the trace is resampled to the input's samples
    ax_p.plot(t, pressure, color="0.75", linewidth=0.6, label="raw")
    ax_p.plot(t, trace.cuff, color="0.1", linewidth=1.0, label="cuff (low-passed)")
    levels = _bp_levels(result)
    at = _time_at_pressure(trace.cuff, t, np.array([v for v, _, _ in levels]))
    for (value, name, colour), when in zip(levels, at, strict=True):
        ax_p.axhline(value, color=colour, linestyle=":", linewidth=0.8)
        ax_p.plot([when], [value], "o", color=colour, label=f"{name} {value:.0f} mmHg")
        for ax in (ax_o, ax_a):
            ax.axvline(float(when), color=colour, linestyle=":", linewidth=0.8)
    ax_p.set_ylabel("cuff pressure (mmHg)")
    ax_p.legend(loc="best", fontsize="small")
    ax_o.plot(t, trace.oscillations, color="0.3", linewidth=0.6)
    ax_o.set_ylabel("oscillations (mmHg)")
    kept = trace.beat_kept
    ax_a.plot(trace.beat_time[kept], trace.beat_amplitude[kept], "o", color=_DBP, ms=4,
              label=f"kept beats ({int(kept.sum())})")  # fmt: skip
    ax_a.plot(trace.beat_time[~kept], trace.beat_amplitude[~kept], "x", color=_SBP, ms=5,
              label=f"rejected beats ({int((~kept).sum())})")  # fmt: skip
    # the envelope over the pressures the beats spanned (below them the map would land on the
    # exhaust dump at the end of the record)
    env_p, env = trace.envelope_pressure, trace.envelope
    if trace.beat_pressure.size:
        inside = (env_p >= trace.beat_pressure.min()) & (env_p <= trace.beat_pressure.max())
        env_p, env = env_p[inside], env[inside]
    env_t = _time_at_pressure(trace.cuff, t, env_p)
    ax_a.plot(env_t, env, color="0.1", linewidth=1.2, label="envelope")
    ax_a.set_ylabel("beat amplitude (mmHg)")
    ax_a.set_xlabel("time (s)")
    ax_a.legend(loc="best", fontsize="small")
    fig.suptitle(_bp_title(result), fontsize="medium")
    _save(fig, out)


def _bp_levels(bp: BpEstimate) -> list[tuple[float, str, str]]:
    return [(bp.systolic, "SBP", _SBP), (bp.mean, "MAP", _MAP), (bp.diastolic, "DBP", _DBP)]


def _iop_title(result: IopEstimate | Refusal) -> str:
    if isinstance(result, Refusal):
        return f"IOP refused ({result.code}): {result.reason}"
    flags = f" [{', '.join(result.flags)}]" if result.flags else ""
    return (
        f"IOPg {result.iopg:.1f} mmHg, IOPcc {result.iopcc:.1f}, CH {result.ch:.1f} "
        f"(P1 {result.p1:.1f}, P2 {result.p2:.1f}), quality {result.quality:.2f}{flags}"
    )


def iop_figure(
    pressure: FloatArray,
    light: FloatArray,
    fs: float,
    result: IopEstimate | Refusal,
    out: Path,
) -> None:
    """Draw one puff record (plenum mmHg, light counts at ``fs`` Hz) and its applanations."""
    fig, (ax_p, ax_l) = _figure(2, 6.0)
    t_ms = np.arange(pressure.size, dtype=np.float64) / fs * 1000.0
    ax_p.plot(t_ms, pressure, color="0.1", linewidth=1.0, label="plenum pressure")
    ax_l.plot(t_ms, light, color="0.3", linewidth=0.8, label="applanation light")
    if isinstance(result, IopEstimate) and result.trace is not None:
        events = (
            (result.trace.t1 * 1000.0, result.p1, "P1 (inward)", _SBP),
            (result.trace.t2 * 1000.0, result.p2, "P2 (outward)", _DBP),
        )
        for when, value, name, colour in events:
            ax_p.plot([when], [value], "o", color=colour, label=f"{name} {value:.1f} mmHg")
            ax_p.axhline(value, color=colour, linestyle=":", linewidth=0.8)
            ax_l.axvline(when, color=colour, linestyle="--", linewidth=0.9,
                         label=f"{name.split()[1][1:-1]} applanation {when:.2f} ms")  # fmt: skip
            ax_p.axvline(when, color=colour, linestyle="--", linewidth=0.6)
    ax_p.set_ylabel("plenum pressure (mmHg)")
    ax_p.legend(loc="best", fontsize="small")
    ax_l.set_ylabel("light (ADC counts)")
    ax_l.set_xlabel("time (ms)")
    ax_l.legend(loc="best", fontsize="small")
    fig.suptitle(_iop_title(result), fontsize="medium")
    _save(fig, out)
