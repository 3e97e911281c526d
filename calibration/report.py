"""The calibration report a technician reads: a PNG of one record, and its JSON certificate.

The PNG (:func:`render`), top to bottom:

- the header: device model and serial, procedure, date, technician, the reference instrument
  and its own certificate's due date (flagged when it had lapsed on the day), validity;
- a PASS (green) or FAIL (red) banner with the reason: the worst point against the tolerance,
  the checks that failed;
- left, the device's response: raw value against the reference, the points and the fitted
  model (a verification without a model: the reading against the reference, and the ideal
  reading = reference line);
- right, the error at each reference point (as found, as left) with the tolerance band shaded
  and the expanded uncertainty (k = 2) as error bars;
- a table of the checks (static error, leak rate, over-pressure cut-off) against their limits,
  and a footer with the acceptance rule, the model equation and the record's sha256.

The figure is drawn with matplotlib's object-oriented API on the Agg canvas (no pyplot state,
no display; as edge/plots.py), at fixed positions so that the banner is always in the same
place (:data:`BANNER`).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from calibration.certificate import CalibrationPoint, CheckResult
from calibration.models import Model
from calibration.records import CalibrationRecord, seal

#: figure size in inches at :data:`DPI`: 1200 x 850 px
SIZE, DPI = (12.0, 8.5), 100
#: where the PASS/FAIL banner is, in figure fractions (left, bottom, width, height)
BANNER = (0.03, 0.80, 0.94, 0.085)
#: pass, fail, and the points of the error panel (Okabe-Ito blue, colour-blind safe)
GREEN, RED, BLUE, GREY = "#1B7F3B", "#C62828", "#0072B2", "0.55"


def certificate_json(record: CalibrationRecord) -> str:
    """The record as its certificate: sorted keys, two-space indent, sealed with its sha256.

    A record not yet sealed is sealed here (the same digest the book stores); one whose
    ``sha256`` does not match its content is refused.
    """
    sealed = seal(record)
    if record.sha256 not in (None, sealed.sha256):
        raise ValueError(f"record {record.id}: its sha256 does not match its content")
    data = sealed.model_dump(mode="json")
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(record: CalibrationRecord, out: Path) -> Path:
    """Draw the report of ``record`` into the PNG ``out`` (returned)."""
    if not record.points:
        raise ValueError(
            f"record {record.id} has no calibration points: nothing to plot (a record written "
            "before issue #8, or one made of checks only)"
        )
    fig = Figure(figsize=SIZE, dpi=DPI)
    _header(fig, record)
    _banner(fig, record)
    _response(fig.add_axes((0.07, 0.31, 0.39, 0.42)), record)
    _errors(fig.add_axes((0.57, 0.31, 0.40, 0.42)), record)
    _checks(fig.add_axes((0.03, 0.05, 0.94, 0.17)), record)
    _footer(fig, record)
    FigureCanvasAgg(fig)
    meta = {"Title": f"calibration record {record.id}", "Description": _sha(record)}
    fig.savefig(out, format="png", dpi=DPI, metadata=meta)
    return out


def _t(text: str) -> str:
    # a "$" in a record's free text would start matplotlib's mathtext; print it as itself
    return text.replace("$", r"\$")


def _header(fig: Figure, r: CalibrationRecord) -> None:
    what = (r.procedure or "").replace("-", " ")
    title = f"{r.device_model}  serial {r.device_serial}  —  {what + ' ' if what else ''}{r.kind}"
    fig.text(0.03, 0.965, _t(title), fontsize=15, fontweight="bold", va="center")
    day = r.performed_at.date()
    due = "due date not recorded"
    if r.reference_due is not None:
        due = f"certificate due {r.reference_due}"
        if r.reference_due < day:
            due += " (LAPSED on the day)"
    line2 = (f"{r.performed_at:%Y-%m-%d %H:%M %z}   ·   technician {r.technician}   ·   "
             f"reference {r.reference_id}, {due}")  # fmt: skip
    line3 = (f"record {r.id}   ·   valid {r.valid_from or day} to {r.valid_until}   ·   "
             f"software {r.software_version or 'not recorded'}")  # fmt: skip
    lapsed = r.reference_due is not None and r.reference_due < day
    fig.text(0.03, 0.927, _t(line2), fontsize=10.5, va="center", color=RED if lapsed else "black",
             fontweight="bold" if lapsed else "normal")  # fmt: skip
    fig.text(0.03, 0.900, _t(line3), fontsize=10.5, va="center", color="0.25")


def _worst(points: tuple[CalibrationPoint, ...]) -> CalibrationPoint:
    return max(points, key=lambda p: abs(p.error))


def _reasons(r: CalibrationRecord) -> list[str]:
    """What the banner says: the failures first (what the technician must act on)."""
    unit = r.unit or ""
    worst = _worst(r.points)
    where = f"{worst.error:+.2f} {unit} at {worst.reference:g} {unit}"
    failures, fine = [], []
    if r.tolerance is None:
        fine.append(f"worst error {where} (no tolerance recorded)")
    else:
        beyond = sum(abs(p.error) > r.tolerance for p in r.points)
        if beyond:
            failures.append(f"{beyond} of {len(r.points)} points beyond ±{r.tolerance:g} "
                            f"{unit}, worst {where}")  # fmt: skip
        else:
            fine.append(f"all {len(r.points)} points within ±{r.tolerance:g} {unit}, "
                        f"worst {where}")  # fmt: skip
    for c in r.checks:
        if not c.passed:
            within = c.value <= c.limit if c.bound == "max" else c.value >= c.limit
            # a check can fail with its value inside the limit (no dump at all, no fit):
            # then the detail says what went wrong, not a misleading "x > limit"
            if within or not c.unit:
                failures.append(f"{c.name}: {c.detail}")
            else:
                failures.append(f"{c.name} {c.value:g} {c.unit} {_beyond(c)} limit {c.limit:g}")
    if r.checks and all(c.passed for c in r.checks):
        fine.append(f"checks passed ({', '.join(c.name for c in r.checks)})")
    return failures + fine


def _beyond(c: CheckResult) -> str:
    return ">" if c.bound == "max" else "<"


def _banner(fig: Figure, r: CalibrationRecord) -> None:
    ax = fig.add_axes(BANNER)
    ax.set_axis_off()
    colour = GREEN if r.result == "pass" else RED
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, color=colour, clip_on=False))
    ax.text(0.015, 0.5, r.result.upper(), color="white", fontsize=28, fontweight="bold",
            va="center", ha="left", transform=ax.transAxes)  # fmt: skip
    reason = textwrap.fill("; ".join(_reasons(r)), width=105, max_lines=2, placeholder=" ...")
    ax.text(0.13, 0.5, _t(reason), color="white", fontsize=12, va="center", ha="left",
            transform=ax.transAxes)  # fmt: skip


def _response(ax: Axes, r: CalibrationRecord) -> None:
    ref = np.array([p.reference for p in r.points])
    raw = np.array([p.raw for p in r.points])
    unit = r.unit or "reference unit"
    if r.model is not None:
        model = Model.from_dict(r.model)
        span = max(float(raw.max() - raw.min()), 1e-9)
        grid = np.linspace(raw.min() - 0.05 * span, raw.max() + 0.05 * span, 400)
        # the model maps raw -> reference; drawn with the reference on x, as the points are
        ax.plot(model.apply(grid), grid, color=BLUE, linewidth=1.5, label="fitted model")
        ax.set_ylabel(f"raw device value ({_t(r.raw_unit or 'raw unit')})")
        ax.set_title("Device response and fitted model", fontsize=11)
    else:
        lo, hi = float(min(ref.min(), raw.min())), float(max(ref.max(), raw.max()))
        ax.plot([lo, hi], [lo, hi], color=GREY, linestyle="--", linewidth=1.0,
                label="ideal: reading = reference")  # fmt: skip
        ax.set_ylabel(f"device reading ({_t(unit)})")
        ax.set_title("Device reading against the reference", fontsize=11)
    ax.plot(ref, raw, "o", color="0.1", markersize=6, label=f"points ({len(r.points)})")
    ax.set_xlabel(f"reference ({_t(unit)})")
    ax.grid(visible=True, color="0.9")
    ax.legend(loc="best", fontsize="small")


def _errors(ax: Axes, r: CalibrationRecord) -> None:
    unit = _t(r.unit or "reference unit")
    ref = np.array([p.reference for p in r.points])
    err = np.array([p.error for p in r.points])
    tol = r.tolerance
    u = r.uncertainty_k2
    if tol is not None:
        ax.axhspan(-tol, tol, color=GREEN, alpha=0.12, label=f"tolerance ±{tol:g} {unit}")
        for sign in (-1, 1):
            ax.axhline(sign * tol, color=RED, linestyle="--", linewidth=1.0)
    ax.axhline(0.0, color="0.4", linewidth=0.8)
    found = [(p.reference, p.as_found - p.reference) for p in r.points if p.as_found is not None]
    if found:
        fx, fy = zip(*found, strict=True)
        ax.plot(fx, fy, "o", mfc="none", color=GREY, markersize=7, label="as found (before)")
    left = any(p.as_left is not None for p in r.points)
    label = "as left (after)" if left else "error: reading - reference"
    if u is not None:
        label += f", bars ±U = {u:.2g} {unit} (k = 2)"
    out = np.abs(err) > tol if tol is not None else np.zeros(err.shape, dtype=bool)
    for mask, colour, lab in ((~out, BLUE, label), (out, RED, "beyond tolerance")):
        if mask.any():
            ax.errorbar(ref[mask], err[mask], yerr=u, fmt="o", color=colour, markersize=6,
                        capsize=4, label=lab)  # fmt: skip
    worst = _worst(r.points)
    right = worst.reference > (ref.min() + ref.max()) / 2  # label inwards, never off the axes
    ax.annotate(f"worst {worst.error:+.2f}", (worst.reference, worst.error), fontsize=9,
                xytext=(-8 if right else 8, 8), textcoords="offset points",
                ha="right" if right else "left")  # fmt: skip
    reach = max(float(np.abs(err).max()) + (u or 0.0), 1.5 * (tol or 0.0), 1e-6)
    for value in (p[1] for p in found):
        reach = max(reach, abs(value))
    ax.set_ylim(-1.2 * reach, 1.2 * reach)
    ax.set_xlabel(f"reference ({unit})")
    ax.set_ylabel(f"error = reading - reference ({unit})")
    ax.set_title("Error at each point", fontsize=11)
    ax.grid(visible=True, color="0.9")
    ax.legend(loc="best", fontsize="small")


def _checks(ax: Axes, r: CalibrationRecord) -> None:
    ax.set_axis_off()
    unit = r.unit or ""
    rows: list[tuple[str, str, str, bool, str]] = []
    if r.tolerance is not None:
        worst = abs(_worst(r.points).error)
        u = "not recorded" if r.uncertainty_k2 is None else f"{r.uncertainty_k2:.2g} {unit}"
        detail = f"{len(r.points)} points; expanded uncertainty U (k = 2) {u}"
        rows.append(("static error (max |error|)", f"{worst:.2f} {unit}",
                     f"≤ {r.tolerance:g} {unit}", worst <= r.tolerance, detail))  # fmt: skip
    for c in r.checks:
        bound = "≤" if c.bound == "max" else "≥"
        rows.append((c.name, f"{c.value:g} {c.unit}", f"{bound} {c.limit:g} {c.unit}", c.passed,
                     c.detail))  # fmt: skip
    if not rows:
        ax.text(0.0, 0.8, "No tolerance and no additional checks in this record.", fontsize=10)
        return
    text = [[_t(a), _t(b), _t(c), "PASS" if ok else "FAIL", _t(d)] for a, b, c, ok, d in rows]
    table = ax.table(cellText=text, colLabels=["check", "measured", "limit", "result", "detail"],
                     colWidths=[0.2, 0.13, 0.13, 0.07, 0.47], loc="upper center",
                     cellLoc="left")  # fmt: skip
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1.0, 1.35)
    for cell in table.get_celld().values():
        cell.PAD = 0.03  # of the cell's width: the default 0.1 pushes the detail text far right
    for i, (*_, ok, _) in enumerate(rows, start=1):
        cell = table[i, 3]
        cell.set_facecolor(GREEN if ok else RED)
        cell.get_text().set_color("white")
        cell.get_text().set_fontweight("bold")


def _sha(r: CalibrationRecord) -> str:
    return f"sha256 {seal(r).sha256}"


def _footer(fig: Figure, r: CalibrationRecord) -> None:
    model = ""
    if r.model is not None:
        model = Model.from_dict(r.model).describe(r.raw_unit or "x", r.unit or "y") + "   ·   "
    lines = (
        "Acceptance: simple acceptance (ILAC-G8:09/2019 4.2.1), pass when every |error| ≤ the "
        "tolerance; the expanded uncertainty U (k = 2, JCGM 100:2008 6.2.1) is shown, not added.",
        f"{model}{_sha(r)}",
    )
    fig.text(0.03, 0.012, _t("\n".join(lines)), fontsize=8, color="0.3", va="bottom")
