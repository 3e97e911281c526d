"""The patient-specific arterial-model fit of the envelope (a benchmark comparison).

The gateway's reading was this fit until 2026-12-07; it is kept as the benchmark's second
comparison (``edge.signal.baseline.model_fit_bp``): on the simulated cohort its SBP and DBP
scatter about twice as much as the variable ratios of :mod:`edge.signal.ratios`, and it moves
by several mmHg with 0.05 mmHg of added noise (benchmarks/README.md).

The model follows Liu et al., "Patient-specific oscillometric blood pressure measurement",
IEEE Trans Biomed Eng 2016;63:1220-1228. The brachial artery's volume against transmural
pressure ``Pt`` is a sigmoid whose compliance peaks at ``Pt = 0``. Liu et al.
use an exponential collapse and a saturating-exponential distension::

    V(Pt) = (exp(b Pt) - 1) / b              Pt <= 0
    V(Pt) = r (1 - exp(-d Pt)) / d           Pt > 0

(``r = 1`` is their continuity of compliance). Because real curves differ in their tails, the
fit also tries the arctangent and logistic forms of each side (the sigmoid curves of earlier
oscillometry models, e.g. Forster & Turney, J Biomech Eng 1986;108:359-364) and keeps the family
with the lowest robust cost; ``r`` is free under a weak prior around 1.

Over one beat the arterial pressure runs from DBP to SBP, so the foot-to-peak oscillation is
``S(Pc) = V(SBP - Pc) - V(DBP - Pc)`` times a scale. Two cuff effects are allowed for:

* the scale is the reciprocal cuff compliance, which falls as the cuff fills (air compresses,
  the bladder stiffens: Ursino & Cristalli, IEEE Trans Biomed Eng 1996;43:761-778), so it varies
  smoothly, ``alpha * exp(k (Pc - Pref))``, with a weak prior on ``k`` around the gas-law value
  1/(760 + Pc) ~ 0.002 /mmHg;
* the pressure under a cuff falls towards its edges, so a share ``f`` of the artery feels only
  ``tau * Pc`` and keeps pulsing above systolic: ``(1 - f) S(Pc) + f S(tau Pc)`` (weak priors
  ``f ~ 0.1 +- 0.15``, ``tau ~ 0.7 +- 0.2``).

SBP, DBP, alpha, b, d, k, r, f and tau are fitted by a bounded Levenberg-Marquardt (Marquardt's
diagonal scaling, steps clipped to the box, priors as extra residuals) with Huber re-weighting,
run as one vectorised batch from fixed-ratio starting guesses. MAP is the cuff pressure at the
maximum of the fitted envelope; since the compliance peaks at Pt = 0 that maximum lies between
DBP and SBP.

The compliance peak at ``Pt = 0`` is an assumption the data cannot test: shifting it by ``c``
shifts SBP, DBP and MAP by ``c`` with an identical envelope (the same assumption puts MAP at the
envelope maximum in every oscillometric device).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.signal.envelope import RawEnvelope
from edge.signal.filters import MAD_TO_SD, FloatArray

#: parameter vector: SBP, DBP, log alpha, log b, log d, k, log r, edge share f, edge transmission
N_PARAMS = 9
R_PRIOR_SD = 0.7
#: weak priors on the cuff-edge term (mean, SD): a short stretch of artery under the cuff's edge
#: feels a fraction of the cuff pressure (the pressure under a cuff falls towards its edges)
EDGE_PRIOR = (0.1, 0.15)
TRANSMISSION_PRIOR = (0.7, 0.2)
K_PRIOR = 0.002
K_PRIOR_SD = 0.004

#: volume-curve families: 0 exponential (Liu et al.), 1 arctangent, 2 logistic
FAMILIES = ("exponential", "arctangent", "logistic")


def _volume(pt: FloatArray, b: FloatArray, d: FloatArray, r: FloatArray, family: int) -> FloatArray:
    """Volume against transmural pressure, ``V(0) = 0``; compliance 1 (collapse) / r (distend).

    The collapse side (``pt <= 0``) has width ``1/b``, the distension side width ``1/d``. For
    the exponential family the collapse side is ``(exp(b pt) - 1) / b`` and the distension side
    ``r (1 - exp(-d pt)) / d``; the other families replace ``1 - exp(-x)`` by ``arctan(x)`` or
    ``2 tanh(x / 2)`` (both of slope 1 at 0).
    """
    collapse = pt <= 0.0
    rate = np.where(collapse, b, d)
    x = np.abs(pt) * rate
    if family == 0:
        shape = -np.expm1(-x)
    elif family == 1:
        shape = np.arctan(x)
    else:
        shape = 2.0 * np.tanh(0.5 * x)
    gain = np.where(collapse, -1.0, r)
    return np.asarray(gain * shape / rate, dtype=np.float64)


def model_envelope(
    theta: FloatArray, pc: FloatArray, pref: float, family: FloatArray | None = None
) -> FloatArray:
    """Model amplitudes for parameter rows ``theta`` (S, 6) at cuff pressures ``pc`` -> (S, N).

    ``family`` (S,) selects the volume curve of each row (see :data:`FAMILIES`; default 0).
    """
    th = np.atleast_2d(theta)
    fam = np.zeros(th.shape[0]) if family is None else np.asarray(family).ravel()
    out = np.empty((th.shape[0], pc.size))
    for f in np.unique(fam):
        rows = fam == f
        out[rows] = _family_envelope(th[rows], pc, pref, int(f))
    return out


def _family_envelope(th: FloatArray, pc: FloatArray, pref: float, fam: int) -> FloatArray:
    """:func:`model_envelope` for rows that share one volume-curve family."""
    ps, pd = th[:, 0:1], th[:, 1:2]
    alpha = np.exp(th[:, 2:3])
    b, d = np.exp(th[:, 3:4]), np.exp(th[:, 4:5])
    k = th[:, 5:6]
    r = np.exp(th[:, 6:7])
    edge, tau = th[:, 7:8], th[:, 8:9]
    row = pc[None, :]
    centre = _volume(ps - row, b, d, r, fam) - _volume(pd - row, b, d, r, fam)
    under_edge = tau * row
    rim = _volume(ps - under_edge, b, d, r, fam) - _volume(pd - under_edge, b, d, r, fam)
    swing = (1.0 - edge) * centre + edge * rim
    return np.asarray(alpha * np.exp(k * (row - pref)) * swing, dtype=np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class ModelFit:
    """Fitted envelope: SBP, DBP, MAP (mmHg), the parameters, and the residual figure."""

    systolic: float
    diastolic: float
    mean: float
    theta: FloatArray
    family: int
    pref: float
    #: robust RMS residual over the fitted maximum (0 = perfect)
    residual: float

    def curve(self, pc: FloatArray) -> FloatArray:
        curve = model_envelope(self.theta, pc, self.pref, np.array([self.family]))
        return np.asarray(curve[0], dtype=np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class _Problem:
    """The data of one fit: cuff pressures, amplitudes, weights, reference pressure."""

    pc: FloatArray
    amp: FloatArray
    w: FloatArray
    pref: float

    def residuals(self, theta: FloatArray, family: FloatArray) -> FloatArray:
        """Weighted residuals plus the prior on k as one extra residual: (S, N + 1)."""
        fit = model_envelope(theta, self.pc, self.pref, family)
        r = (fit - self.amp[None, :]) * self.w[None, :]
        prior_k = (theta[:, 5:6] - K_PRIOR) / K_PRIOR_SD
        prior_r = theta[:, 6:7] / R_PRIOR_SD
        prior_f = (theta[:, 7:8] - EDGE_PRIOR[0]) / EDGE_PRIOR[1]
        prior_t = (theta[:, 8:9] - TRANSMISSION_PRIOR[0]) / TRANSMISSION_PRIOR[1]
        return np.concatenate([r, prior_k, prior_r, prior_f, prior_t], axis=1)

    def jacobian(self, theta: FloatArray, family: FloatArray, base: FloatArray) -> FloatArray:
        """Forward-difference Jacobian (S, N + 3, P), all starts and parameters in one batch.

        ``base`` holds the residuals at ``theta`` (already computed by the caller).
        """
        steps = np.array([0.01, 0.01, 1e-5, 1e-5, 1e-5, 1e-6, 1e-5, 1e-5, 1e-5])
        count = theta.shape[0]
        plus = (theta[:, None, :] + np.diag(steps)[None, :, :]).reshape(-1, N_PARAMS)
        rp = self.residuals(plus, np.repeat(family, N_PARAMS)).reshape(count, N_PARAMS, -1)
        jac = (rp - base[:, None, :]) / steps[None, :, None]
        return np.asarray(np.transpose(jac, (0, 2, 1)), dtype=np.float64)


def levenberg_marquardt(
    problem: _Problem,
    theta0: FloatArray,
    family: FloatArray,
    bounds: tuple[FloatArray, FloatArray],
    iterations: int = 40,
) -> tuple[FloatArray, FloatArray]:
    """Bounded LM on a batch of starts; returns the final parameters (S, 6) and costs (S,).

    Marquardt's scaling (damping proportional to the diagonal of J'J); a step is clipped to
    the box and accepted only if it lowers the cost, else the damping grows (More, "The
    Levenberg-Marquardt algorithm: implementation and theory", LNM 630, 1978).
    """
    lo, hi = bounds
    theta = np.clip(theta0, lo, hi)
    res = problem.residuals(theta, family)
    cost = np.sum(res**2, axis=1)
    lam = np.full(theta.shape[0], 1e-2)
    for _ in range(iterations):
        jac = problem.jacobian(theta, family, res)
        jtj = np.einsum("sni,snj->sij", jac, jac)
        grad = np.einsum("sni,sn->si", jac, res)
        diag = np.einsum("sii->si", jtj) + 1e-9
        system = jtj + lam[:, None, None] * diag[:, :, None] * np.eye(N_PARAMS)[None]
        step = np.linalg.solve(system, grad[:, :, None])[:, :, 0]
        trial = np.clip(theta - step, lo, hi)
        trial_res = problem.residuals(trial, family)
        trial_cost = np.sum(trial_res**2, axis=1)
        better = trial_cost < cost
        gain = (cost - trial_cost) / np.maximum(cost, 1e-300)
        theta = np.where(better[:, None], trial, theta)
        res = np.where(better[:, None], trial_res, res)
        cost = np.where(better, trial_cost, cost)
        lam = np.where(better, np.maximum(lam / 3.0, 1e-7), np.minimum(lam * 4.0, 1e7))
        if np.all((~better & (lam >= 1e7)) | (better & (gain < 1e-7))):
            break
    return theta, cost


def _model_peak(theta: FloatArray, family: int, lo: float, hi: float, pref: float) -> float:
    """Cuff pressure of the fitted envelope's maximum (fine grid, then parabolic vertex)."""
    grid = np.linspace(lo, hi, 801)
    curve = model_envelope(theta, grid, pref, np.array([family]))[0]
    k = int(np.argmax(curve))
    if 0 < k < grid.size - 1:
        y0, y1, y2 = curve[k - 1], curve[k], curve[k + 1]
        denom = y0 - 2.0 * y1 + y2
        if denom < 0:
            return float(grid[k] + 0.5 * (y0 - y2) / denom * (grid[1] - grid[0]))
    return float(grid[k])


def fit_model(env: RawEnvelope, guesses: list[tuple[float, float]], noise: float) -> ModelFit:
    """Fit the model to the kept beats of ``env`` from the (SBP, DBP) ``guesses``.

    Every family starts from every guess; the family and start with the lowest robust cost
    win (all families have the same number of parameters, so the cost compares them fairly).
    """
    pc, amp = env.pressure, env.amplitude
    top = float(env.smooth[env.peak])
    p_hi, p_lo = float(pc.max()), float(pc.min())
    lo = np.array([env.mean + 2.0, max(p_lo - 40.0, 5.0), np.log(top * 1e-4), np.log(0.004),
                   np.log(0.002), -0.006, np.log(0.2), 0.0, 0.3])  # fmt: skip
    hi = np.array([p_hi + 40.0, env.mean - 2.0, np.log(top * 1e2), np.log(1.0), np.log(0.5),
                   0.012, np.log(5.0), 0.4, 0.95])  # fmt: skip
    starts, fams = [], []
    for fam in range(len(FAMILIES)):
        for sbp, dbp in guesses:
            # collapse and distension rates start at b = 0.1, d = 0.04 /mmHg
            starts.append([sbp, dbp, 0.0, np.log(0.1), np.log(0.04), K_PRIOR, 0.0, 0.1, 0.7])
            fams.append(fam)
    family = np.asarray(fams, dtype=np.float64)
    theta0 = np.clip(np.asarray(starts, dtype=np.float64), lo, hi)
    # measurement error grows with amplitude (beat-to-beat pulse-pressure variation)
    sigma = noise + 0.08 * np.maximum(env.smooth, 0.0) + 0.01 * top
    problem = _Problem(pc=pc, amp=amp, w=1.0 / sigma, pref=env.mean)
    # the scale alpha is linear: start each row at its least-squares value
    shape = model_envelope(theta0, pc, problem.pref, family)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.sum(shape * amp[None, :], axis=1) / np.sum(shape * shape, axis=1)
    theta0[:, 2] = np.log(np.clip(np.nan_to_num(alpha, nan=top), 1e-4 * top, 1e2 * top))
    theta, cost = levenberg_marquardt(problem, theta0, family, (lo, hi))
    # keep the best start of each family for the re-weighted rounds
    rows = [int(np.flatnonzero(family == f)[np.argmin(cost[family == f])]) for f in set(fams)]
    theta, cost, family = theta[rows], cost[rows], family[rows]
    robust = np.ones_like(amp)
    for _ in range(2):  # Huber re-weighting: beats far off the curve count less
        fitted = model_envelope(theta, pc, problem.pref, family)
        r = (fitted - amp[None, :]) * problem.w[None, :]
        scale = np.maximum(MAD_TO_SD * np.median(np.abs(r), axis=1, keepdims=True), 1e-9)
        hub = np.minimum(1.0, 1.5 * scale / np.maximum(np.abs(r), 1e-12))
        # one robust weighting per row: the cost then counts the same beats for each row
        robust = np.asarray(hub[int(np.argmin(cost))], dtype=np.float64)
        weighted = _Problem(pc=pc, amp=amp, w=problem.w * np.sqrt(robust), pref=problem.pref)
        theta, cost = levenberg_marquardt(weighted, theta, family, (lo, hi), 15)
    best = int(np.argmin(cost))
    fam_best = int(family[best])
    row = theta[best][None, :]
    fitted = model_envelope(row, pc, problem.pref, np.array([fam_best]))[0]
    peak_amp = max(float(fitted.max()), 1e-12)
    resid = (fitted - amp) / peak_amp
    rms = float(np.sqrt(np.sum(robust * resid**2) / max(float(np.sum(robust)), 1e-12)))
    sbp, dbp = float(row[0, 0]), float(row[0, 1])
    return ModelFit(
        systolic=sbp,
        diastolic=dbp,
        mean=_model_peak(row, fam_best, dbp, sbp, problem.pref),
        theta=row[0],
        family=fam_best,
        pref=problem.pref,
        residual=rms,
    )
