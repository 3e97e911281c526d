"""The retinal vessel tree of a simulated fundus: generated in field units, drawn in pixels.

Four main trunks leave the optic disc: the superior and inferior temporal arcades, which curve
around the macula, and two nasal trunks that run towards the nasal edge. Each trunk tapers and
sheds branches, which shed smaller ones (three generations). Widths are in field units: a main
vessel near the disc is about 125 um, 7 % of a disc diameter.

Drawing is vectorised: the centre lines are sampled finely, and every sample stamps a small
anti-aliased disc of opacity into a map with ``np.maximum.at``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

#: a segment: (u, v, half-width) samples along a centre line, field units
Path = F64

_STEP = 0.006  # field units between centre-line samples before drawing (re-sampled then)


def _walk(
    rng: np.random.Generator,
    start: tuple[float, float],
    heading: float,
    half_width: float,
    length: float,
    turn: float,
    taper: float = 0.55,
) -> Path:
    """A centre line from ``start``: gently wandering, turning ``turn`` rad per field unit."""
    n = max(2, int(length / _STEP))
    wander = np.cumsum(rng.normal(0.0, 0.05, n))
    headings = heading + turn * np.arange(n) * _STEP + wander
    du, dv = np.cos(headings) * _STEP, np.sin(headings) * _STEP
    u = start[0] + np.concatenate(([0.0], np.cumsum(du)[:-1]))
    v = start[1] + np.concatenate(([0.0], np.cumsum(dv)[:-1]))
    w = half_width * np.linspace(1.0, taper, n)
    return np.stack([u, v, w], axis=1)


def _branches(rng: np.random.Generator, parent: Path, depth: int) -> list[Path]:
    """Side branches along ``parent`` (and theirs, down to ``depth`` generations)."""
    out: list[Path] = []
    if depth == 0 or len(parent) < 20:
        return out
    count = int(rng.integers(3, 7))
    for index in rng.integers(len(parent) // 6, len(parent) - 5, count):
        u, v, w = parent[index]
        du, dv = parent[index + 1, :2] - parent[index - 1, :2]
        heading = math.atan2(dv, du) + float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.1))
        child_w = w * float(rng.uniform(0.55, 0.75))
        if child_w < 0.0015:
            continue
        child = _walk(
            rng, (u, v), heading, child_w, child_w * float(rng.uniform(50, 90)), rng.normal(0, 1.5)
        )
        out.append(child)
        out.extend(_branches(rng, child, depth - 1))
    return out


def vessel_tree(
    rng: np.random.Generator,
    disc: tuple[float, float],
    fovea: tuple[float, float],
    side: int,
) -> list[Path]:
    """Centre lines with half-widths of the whole tree, field units (before any shift)."""
    du, dv = fovea[0] - disc[0], fovea[1] - disc[1]
    to_fovea = math.atan2(dv, du)
    trunks: list[Path] = []
    main_w = 0.0105 * float(rng.uniform(0.9, 1.1))
    for up in (-1.0, 1.0):  # superior (v < 0) then inferior
        # temporal arcade: leaves the disc steeply, then bends round the macula
        heading = to_fovea - side * up * math.radians(float(rng.uniform(65, 80)))
        turn = side * up * float(rng.uniform(1.0, 1.4))
        trunks.append(_walk(rng, disc, heading, main_w, float(rng.uniform(1.3, 1.6)), turn, 0.4))
        # nasal trunk
        nasal = math.atan2(up * float(rng.uniform(0.6, 1.2)), float(side))
        trunks.append(
            _walk(rng, disc, nasal, main_w * 0.8, float(rng.uniform(0.7, 0.9)), 0.0, taper=0.45)
        )
    for _ in range(4):  # small vessels towards the macula and radially
        heading = float(rng.uniform(0.0, 2.0 * math.pi))
        trunks.append(_walk(rng, disc, heading, main_w * 0.45, 0.35, rng.normal(0, 0.8)))
    tree = list(trunks)
    for trunk in trunks:
        tree.extend(_branches(rng, trunk, 3))
    return tree


def draw_vessels(
    tree: list[Path],
    shape: tuple[int, int],
    centre: tuple[float, float],
    radius: float,
    shift: tuple[float, float],
) -> F32:
    """An opacity map (0..1) of the tree for an image of ``shape``.

    The FOV is at ``centre`` (pixels) with ``radius`` pixels; the retina moved by ``shift``.
    """
    h, w = shape
    opacity = np.zeros(h * w, dtype=np.float32)
    samples: list[F64] = []
    for path in tree:
        x = centre[0] + (path[:, 0] + shift[0]) * radius
        y = centre[1] + (path[:, 1] + shift[1]) * radius
        r = path[:, 2] * radius
        seg = np.hypot(np.diff(x), np.diff(y))
        s = np.concatenate(([0.0], np.cumsum(seg)))
        spacing = max(0.5, 0.35 * float(r.min()))
        fine = np.arange(0.0, s[-1], spacing)
        samples.append(
            np.stack([np.interp(fine, s, x), np.interp(fine, s, y), np.interp(fine, s, r)], 1)
        )
    points = np.concatenate(samples)
    keep = (
        (points[:, 0] > -20)
        & (points[:, 0] < w + 20)
        & (points[:, 1] > -20)
        & (points[:, 1] < h + 20)
    )
    points = points[keep]
    # thin vessels: drawn 0.6 px wide at proportionally lower opacity
    strength = np.minimum(1.0, points[:, 2] / 0.6)
    rad = np.maximum(points[:, 2], 0.6)
    reach = np.ceil(rad + 1.0).astype(int)
    for k in np.unique(reach):
        sel = reach == k
        px, py, pr, ps = points[sel, 0], points[sel, 1], rad[sel], strength[sel]
        off = np.arange(-k, k + 1)
        gx = np.rint(px)[:, None, None] + off[None, None, :]
        gy = np.rint(py)[:, None, None] + off[None, :, None]
        d = np.hypot(gx - px[:, None, None], gy - py[:, None, None])
        a = np.clip(pr[:, None, None] + 0.5 - d, 0.0, 1.0) * ps[:, None, None]
        gx_i, gy_i = np.broadcast_arrays(gx.astype(np.int64), gy.astype(np.int64))
        inside = (gx_i >= 0) & (gx_i < w) & (gy_i >= 0) & (gy_i < h) & (a > 0.0)
        np.maximum.at(opacity, gy_i[inside] * w + gx_i[inside], a[inside].astype(np.float32))
    return opacity.reshape(h, w)
