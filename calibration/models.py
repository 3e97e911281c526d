"""Calibration models, their least-squares fit and the uncertainty budget of a calibration.

A model maps what a device measures raw (ADC counts of a pressure transducer, say) to the
quantity the reference instrument reads (mmHg): ``y = model(x)`` with ``x`` the raw value and
``y`` the reference. Three kinds:

- ``linear``: ``y = c0 + c1 x``;
- ``polynomial``: ``y = c0 + c1 x + ... + cd x^d`` (coefficients in increasing powers of x);
- ``piecewise``: linear interpolation between knots ``(x, y)`` sorted by x, extrapolated along
  the first and last segments.

:func:`fit` refuses, with a :class:`CalibrationFitError` saying why, what a technician must not
sign: too few points, non-finite values and, by default, a model that is not strictly increasing
over the calibrated range (a transducer's output rises with the pressure on it; a falling
stretch means swapped points, a leak or a faulty sensor, never a calibration).

:func:`evaluate` gives the errors at the points and the uncertainty budget after JCGM 100:2008
(GUM). The error is the device's reading after calibration minus the reference:
``error = model(x) - y``; positive means the device reads high.

Pure: NumPy and the standard library only (ARCHITECTURE.md, dependency direction).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Kind = Literal["linear", "polynomial", "piecewise"]
KINDS: tuple[Kind, ...] = ("linear", "polynomial", "piecewise")

#: coverage factor of every expanded uncertainty here (GUM 6.2.1). k = 2 gives about 95 % only
#: when the combined uncertainty has many effective degrees of freedom (GUM 6.3.3, G.4); with
#: a fit term from six points (4 degrees of freedom) it covers nearer 88 %: the certificate
#: states k, not a level of confidence.
K = 2.0
#: evaluation points of a polynomial's monotonicity check (its stationary points are added)
_DENSE = 2049


class CalibrationFitError(ValueError):
    """Points from which no calibration may be fitted; the message says why."""


@dataclass(frozen=True, slots=True)
class Model:
    """A calibration curve ``y = model(x)`` (raw device value -> reference quantity)."""

    kind: Kind
    #: linear and polynomial: ``c0, c1, ...`` in increasing powers of x (linear: exactly two)
    coefficients: tuple[float, ...] = ()
    #: piecewise: ``(x, y)`` pairs, x strictly increasing (at least two)
    knots: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; one of {', '.join(KINDS)}")
        numbers = [*self.coefficients, *(v for knot in self.knots for v in knot)]
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError(f"{self.kind} model with a non-finite coefficient or knot")
        if self.kind == "piecewise":
            if self.coefficients or len(self.knots) < 2:
                raise ValueError("a piecewise model has at least two knots and no coefficients")
            xs = [x for x, _ in self.knots]
            if any(b <= a for a, b in itertools.pairwise(xs)):
                raise ValueError("the knots of a piecewise model are sorted by strictly rising x")
            return
        if self.knots:
            raise ValueError(f"a {self.kind} model has coefficients, not knots")
        if self.kind == "linear" and len(self.coefficients) != 2:
            raise ValueError("a linear model has exactly two coefficients (offset, gain)")
        if self.kind == "polynomial" and len(self.coefficients) < 2:
            raise ValueError("a polynomial model has at least two coefficients (degree >= 1)")

    @property
    def parameters(self) -> int:
        """How many numbers the fit determined (for the degrees of freedom, n - p)."""
        return len(self.knots) if self.kind == "piecewise" else len(self.coefficients)

    @overload
    def apply(self, x: float) -> float: ...
    @overload
    def apply(self, x: FloatArray) -> FloatArray: ...
    def apply(self, x: float | FloatArray) -> float | FloatArray:
        """The calibrated value(s) of raw ``x``: a float for a float, an array for an array."""
        xs = np.asarray(x, dtype=np.float64)
        if self.kind == "piecewise":
            kx = np.array([k[0] for k in self.knots])
            ky = np.array([k[1] for k in self.knots])
            y = np.interp(xs, kx, ky)
            # np.interp clamps outside the knots; a transducer does not, so extend the end
            # segments (a slightly out-of-range reading is still a reading, not a constant)
            lo_slope = (ky[1] - ky[0]) / (kx[1] - kx[0])
            hi_slope = (ky[-1] - ky[-2]) / (kx[-1] - kx[-2])
            y = np.where(xs < kx[0], ky[0] + (xs - kx[0]) * lo_slope, y)
            y = np.where(xs > kx[-1], ky[-1] + (xs - kx[-1]) * hi_slope, y)
        else:
            y = np.polynomial.polynomial.polyval(xs, np.array(self.coefficients))
        out = np.asarray(y, dtype=np.float64)
        return float(out) if out.ndim == 0 else out

    def is_monotonic(self, lo: float, hi: float) -> bool:
        """Whether the model is strictly increasing over ``[lo, hi]``.

        Polynomials are checked densely, on a grid to which their stationary points in the
        range are added: a local maximum followed by a minimum then falls between two grid
        points, so no wiggle between grid points goes unseen.
        """
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"not a range: [{lo}, {hi}]")
        if self.kind == "linear":
            return self.coefficients[1] > 0
        if self.kind == "piecewise":
            inside = [x for x, _ in self.knots if lo < x < hi]
            grid = np.array([lo, *inside, hi])
        else:
            roots = np.polynomial.polynomial.polyroots(
                np.polynomial.polynomial.polyder(np.array(self.coefficients))
            )
            real = roots.real[(np.abs(roots.imag) < 1e-9) & (roots.real > lo) & (roots.real < hi)]
            grid = np.unique(np.concatenate([np.linspace(lo, hi, _DENSE), real]))
        if grid.size < 2 or grid[0] == grid[-1]:
            return True  # a single point: nothing can fall
        return bool(np.all(np.diff(self.apply(grid)) > 0))

    def describe(self, x: str = "x", y: str = "y") -> str:
        """The model as a line a technician reads, e.g. ``mmHg = -3.2 + 0.0101 counts``."""
        if self.kind == "piecewise":
            return f"{y} = piecewise-linear through {len(self.knots)} knots ({x}, {y})"
        terms = [f"{self.coefficients[0]:.6g}"]
        for power, c in enumerate(self.coefficients[1:], start=1):
            sign = "-" if c < 0 else "+"
            suffix = x if power == 1 else f"{x}^{power}"
            terms.append(f"{sign} {abs(c):.6g} {suffix}")
        return f"{y} = {' '.join(terms)}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"kind", "coefficients"}`` or ``{"kind", "knots": [[x, y], ...]}``."""
        if self.kind == "piecewise":
            return {"kind": self.kind, "knots": [[x, y] for x, y in self.knots]}
        return {"kind": self.kind, "coefficients": list(self.coefficients)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Model:
        """The model of :meth:`to_dict`'s form; anything else is a ``ValueError`` saying what."""
        kind = data.get("kind")
        extra = set(data) - {"kind", "coefficients", "knots"}
        if kind not in KINDS or extra:
            raise ValueError(f"not a calibration model: kind {kind!r}, unknown keys {extra}")
        try:
            coefficients = tuple(float(c) for c in data.get("coefficients", ()))
            knots = tuple((float(x), float(y)) for x, y in data.get("knots", ()))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a calibration model: {exc}") from exc
        return cls(kind, coefficients, knots)


def fit(
    kind: Kind,
    x: Sequence[float] | FloatArray,
    y: Sequence[float] | FloatArray,
    degree: int = 2,
    *,
    monotonic: bool = True,
) -> Model:
    """The least-squares model of ``y`` (reference) on ``x`` (raw device values).

    ``degree`` is the polynomial's; ``piecewise`` takes the points as its knots (it passes
    through every one of them). ``monotonic`` refuses a model that is not strictly increasing
    over ``[min(x), max(x)]``.
    """
    xs, ys = _points(x, y)
    distinct = np.unique(xs).size
    if kind == "piecewise":
        if distinct < xs.size:
            dup = sorted({float(v) for v in xs if np.count_nonzero(xs == v) > 1})
            raise CalibrationFitError(
                f"a piecewise-linear model needs one reference per raw value; x {dup} repeated"
            )
        if xs.size < 2:
            raise CalibrationFitError(f"a piecewise-linear model needs >= 2 points; got {xs.size}")
        order = np.argsort(xs)
        knots = zip(xs[order].tolist(), ys[order].tolist(), strict=True)
        model = Model("piecewise", knots=tuple(knots))
    else:
        if kind == "linear":
            degree, needed = 1, 2
        elif kind == "polynomial":
            if degree < 1:
                raise CalibrationFitError(f"a polynomial of degree {degree} is not a calibration")
            # one more point than coefficients: at least one degree of freedom, so the fit's
            # residual standard deviation (its own uncertainty) can be estimated at all
            needed = degree + 2
        else:
            raise CalibrationFitError(f"unknown model kind {kind!r}; one of {', '.join(KINDS)}")
        if xs.size < needed or distinct < degree + 1:
            raise CalibrationFitError(
                f"a {kind} fit (degree {degree}) needs >= {needed} points at >= {degree + 1} "
                f"distinct raw values; got {xs.size} points at {distinct}"
            )
        # Polynomial.fit maps x onto [-1, 1] before solving (np.linalg.lstsq underneath), which
        # keeps the Vandermonde matrix of raw counts in the tens of thousands well conditioned;
        # full=True returns the rank instead of warning about it
        poly, (_, rank, _, _) = np.polynomial.Polynomial.fit(xs, ys, degree, full=True)
        if int(rank) < degree + 1:
            raise CalibrationFitError(f"the {kind} fit is rank deficient ({rank} < {degree + 1})")
        coefficients = np.zeros(degree + 1)
        converted = poly.convert().coef
        coefficients[: converted.size] = converted
        model = Model(kind, coefficients=tuple(float(c) for c in coefficients))
    lo, hi = float(xs.min()), float(xs.max())
    if monotonic and not model.is_monotonic(lo, hi):
        raise CalibrationFitError(
            f"the fitted {kind} model is not increasing over the raw range [{lo:g}, {hi:g}]"
            f"{_falling(model, xs, ys)}: a sensor's output rises with its input; check the "
            "points (swapped or mistyped values, a leak, a faulty sensor)"
        )
    return model


def _points(x: Sequence[float] | FloatArray, y: Sequence[float] | FloatArray) -> tuple[
    FloatArray, FloatArray
]:  # fmt: skip
    try:
        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationFitError(f"calibration points are not numbers: {exc}") from exc
    if xs.ndim != 1 or xs.shape != ys.shape:
        raise CalibrationFitError(
            f"x and y are two lists of the same length; got shapes {xs.shape} and {ys.shape}"
        )
    bad = np.flatnonzero(~(np.isfinite(xs) & np.isfinite(ys)))
    if bad.size:
        raise CalibrationFitError(f"non-finite values at point(s) {bad.tolist()} (0-based)")
    return xs, ys


def _falling(model: Model, xs: FloatArray, ys: FloatArray) -> str:
    """Where it falls, in the technician's points: the first pair whose reference drops."""
    order = np.argsort(xs)
    sx, sy = xs[order], ys[order] + 0.0  # + 0.0: no "-0" in the message
    for i in range(sx.size - 1):
        if sy[i + 1] <= sy[i]:
            return (
                f" (reference {sy[i]:g} at raw {sx[i]:g}, then {sy[i + 1]:g} at raw {sx[i + 1]:g})"
            )
    if model.kind != "piecewise":
        return f" (its slope changes sign: {model.describe()})"
    return ""


@dataclass(frozen=True, slots=True)
class FitStats:
    """Errors at the points and the uncertainty budget, all in the reference's unit.

    ``passed`` follows the simple acceptance rule of ILAC-G8:09/2019 (4.2.1): every
    ``|error| <= tolerance``; the expanded uncertainty is reported next to it, not added to
    the errors (no guard band). :attr:`uncertainty_ratio` tells whether that is defensible.
    """

    #: ``model(x) - y`` at each point, in the given order: positive, the device reads high
    errors: tuple[float, ...]
    max_abs_error: float
    #: index of the point with the largest ``|error|``
    worst: int
    rms: float
    #: degrees of freedom of the fit's residuals, ``n - p`` (0 for a verification: no fit)
    dof: int
    #: residual standard deviation, ``sqrt(sum(e^2) / (n - p))``; None when not estimable
    u_fit: float | None
    #: the reference instrument's standard uncertainty (its certificate's expanded one / k)
    u_reference: float
    #: the resolution term, ``resolution / sqrt(12)`` (GUM F.2.2.1)
    u_resolution: float
    #: combined standard uncertainty, root sum of squares of the terms above (GUM 5.1.2)
    u_combined: float
    #: expanded uncertainty ``U = k u_c`` with k = 2 (GUM 6.2.1)
    expanded: float
    tolerance: float
    passed: bool
    #: what the budget leaves out and why (e.g. 0 degrees of freedom), for the certificate
    notes: tuple[str, ...] = ()

    @property
    def k(self) -> float:
        return K

    @property
    def uncertainty_ratio(self) -> float | None:
        """``tolerance / U`` (a test uncertainty ratio): >= 4 is the usual comfort (None: U=0)."""
        return self.tolerance / self.expanded if self.expanded > 0 else None


def evaluate(
    model: Model | None,
    x: Sequence[float] | FloatArray,
    y: Sequence[float] | FloatArray,
    *,
    reference_expanded: float,
    resolution: float,
    tolerance: float,
    reference_k: float = K,
) -> FitStats:
    """The errors of ``model`` at the points ``(x, y)`` and the calibration's uncertainty.

    ``model`` None is a verification: ``x`` are already the device's readings in the unit of
    ``y`` (a tonometer against model eyes), so the error is ``x - y`` and there is no fit term.
    ``reference_expanded`` is the expanded uncertainty on the reference instrument's own
    certificate, stated with coverage factor ``reference_k`` (usually 2). ``resolution`` is the
    device's resolution in the reference's unit (1 mmHg for a display in whole mmHg; gain x one
    count for a raw transducer). ``tolerance`` is the maximum permissible ``|error|``.
    """
    xs, ys = _points(x, y)
    if xs.size == 0:
        raise CalibrationFitError("no points to evaluate")
    for name, value in (("reference_expanded", reference_expanded), ("resolution", resolution),
                        ("tolerance", tolerance)):  # fmt: skip
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} is a finite number >= 0; got {value}")
    if not (math.isfinite(reference_k) and reference_k > 0):
        raise ValueError(f"reference_k is a finite number > 0; got {reference_k}")
    readings = xs if model is None else model.apply(xs)
    errors = readings - ys
    abs_errors = np.abs(errors)
    worst = int(np.argmax(abs_errors))
    notes: list[str] = []
    if model is None:
        dof, u_fit = 0, None
    else:
        dof = xs.size - model.parameters
        if dof > 0:
            # Type A evaluation (GUM 4.2): the residuals' standard deviation, with n - p degrees
            # of freedom for the p parameters the fit took from the same points
            u_fit = float(np.sqrt(np.sum(errors**2) / dof))
        else:
            u_fit = None
            notes.append(
                f"the {model.kind} model has as many parameters ({model.parameters}) as there "
                f"are points ({xs.size}): 0 degrees of freedom, the fit's own uncertainty is "
                "not estimable and is not in the budget"
            )
    # Type B (GUM 4.3.3): a certificate's expanded uncertainty divided by its coverage factor
    u_reference = reference_expanded / reference_k
    # Type B (GUM F.2.2.1): a reading resolved to steps of delta is uniform over +-delta/2
    u_resolution = resolution / math.sqrt(12.0)
    # combined standard uncertainty (GUM 5.1.2), sensitivity coefficients 1: every term is
    # already in the reference's unit; the terms are taken as uncorrelated
    u_combined = math.sqrt((u_fit or 0.0) ** 2 + u_reference**2 + u_resolution**2)
    max_abs = float(abs_errors[worst])
    return FitStats(
        errors=tuple(float(e) for e in errors),
        max_abs_error=max_abs,
        worst=worst,
        rms=float(np.sqrt(np.mean(errors**2))),
        dof=dof,
        u_fit=u_fit,
        u_reference=u_reference,
        u_resolution=u_resolution,
        u_combined=u_combined,
        expanded=K * u_combined,  # GUM 6.2.1, k = 2 (see K)
        tolerance=tolerance,
        # simple acceptance (ILAC-G8:09/2019 4.2.1): the error alone against the tolerance
        passed=max_abs <= tolerance,
        notes=tuple(notes),
    )
