"""Image measures for the gradability check: pure NumPy, no SciPy.

Every function works on float32 arrays and returns plain numbers or arrays; none knows about
verdicts or thresholds (those are in :mod:`edge.imaging.gradability`). Geometry is returned in
pixels of the array it was given.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]
Mask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Circle:
    """A circle in pixels: centre (x, y) and radius."""

    x: float
    y: float
    r: float


def block_mean(channel: NDArray[np.generic], factor: int) -> F32:
    """Mean over ``factor`` x ``factor`` blocks (the trailing partial blocks are dropped)."""
    if factor <= 1:
        return channel.astype(np.float32)
    h, w = (channel.shape[0] // factor) * factor, (channel.shape[1] // factor) * factor
    view = channel[:h, :w].reshape(h // factor, factor, w // factor, factor, *channel.shape[2:])
    total = view.sum(axis=(1, 3), dtype=np.uint32 if channel.dtype == np.uint8 else np.float32)
    mean: F32 = (total / float(factor * factor)).astype(np.float32)
    return mean


def box_blur(image: F32, r: int) -> F32:
    """Mean over a (2r+1) x (2r+1) window, edges replicated (two cumulative sums).

    float32 is enough: the column sums of 8-bit values stay below 2^24 x their resolution.
    """
    if r <= 0:
        return image
    k = 2 * r + 1
    padded = np.pad(image.astype(np.float32, copy=False), r, mode="edge")
    c = np.cumsum(padded, axis=0)
    c = np.concatenate([c[k - 1 : k], c[k:] - c[:-k]], axis=0)
    c = np.cumsum(c, axis=1)
    c = np.concatenate([c[:, k - 1 : k], c[:, k:] - c[:, :-k]], axis=1)
    return (c / (k * k)).astype(np.float32)


def find_fov(red: F32) -> tuple[Circle, Mask] | None:
    """The camera's circular field of view in a (coarse) red channel, or None if no field.

    The field is the pixels clearly above the black surround (a quarter of the 99th
    percentile, at least 6 DN). The circle comes from the mask's row widths, which an upper
    lid or a dark crescent at the top or bottom does not shorten: its radius is half the widest
    row, its centre the median midpoint of the wide rows and the middle of the rows at least
    90 % as wide as the widest (those lie within 0.44 radii of the centre).
    """
    level = max(6.0, 0.25 * float(np.percentile(red, 99.0)))
    mask = red > level
    widths = mask.sum(axis=1)
    if widths.max() < 0.2 * red.shape[1]:
        return None
    rows = np.nonzero(widths >= 0.5 * widths.max())[0]
    sub = mask[rows]
    left = np.argmax(sub, axis=1)
    right = red.shape[1] - 1 - np.argmax(sub[:, ::-1], axis=1)
    radius = float(np.percentile(right - left + 1, 98.0)) / 2.0
    x = float(np.median((left + right) / 2.0)) + 0.5
    wide = np.nonzero(widths >= 0.9 * 2.0 * radius)[0]
    y = (float(wide.min()) + float(wide.max())) / 2.0 + 0.5
    return Circle(x, y, radius), mask


def disc_mask(shape: tuple[int, int], circle: Circle, scale: float = 1.0) -> Mask:
    """Pixels within ``scale`` x the circle's radius of its centre."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    rr = (circle.r * scale) ** 2
    return ((xx + 0.5 - circle.x) ** 2 + (yy + 0.5 - circle.y) ** 2) <= rr


def _taps(n_in: int, n_out: int, start: float, step: float) -> tuple[NDArray[np.intp], F32]:
    """Indices and weights (each n_out x k) of an anti-aliased linear resampling along one axis.

    Output pixel i is centred at ``start + (i + 0.5) * step`` input px; its kernel is a triangle
    of half-width ``max(1, step)`` input px (one output pixel when shrinking), its weights
    normalised to sum to 1. Taps outside
    ``0..n_in`` weigh 0: the surround of the frame is black.
    """
    width = max(1.0, step)
    centres = start + (np.arange(n_out, dtype=np.float64) + 0.5) * step - 0.5
    k = math.ceil(2.0 * width) + 1
    first = np.floor(centres - width).astype(np.intp) + 1
    index = first[:, None] + np.arange(k)[None, :]
    weight = np.maximum(0.0, 1.0 - np.abs(index - centres[:, None]) / width)
    weight /= weight.sum(axis=1, keepdims=True)  # exactly 1 at every phase: no moire
    weight[(index < 0) | (index >= n_in)] = 0.0
    return np.clip(index, 0, n_in - 1), weight.astype(np.float32)


def crop_resample(channel: U8 | F32, circle: Circle, size: int) -> F32:
    """The square around ``circle`` resampled to ``size`` x ``size`` (outside the image: 0).

    Every output pixel averages the same share of the field whatever the camera's pixel count
    (a triangle kernel one output pixel wide), so measures on it do not depend on resolution.
    """
    step = 2.0 * circle.r / size
    rows, row_w = _taps(channel.shape[0], size, circle.y - circle.r, step)
    cols, col_w = _taps(channel.shape[1], size, circle.x - circle.r, step)
    lo, hi = int(cols.min()), int(cols.max()) + 1
    strip = np.zeros((size, hi - lo), dtype=np.float32)
    for t in range(rows.shape[1]):
        strip += row_w[:, t, None] * channel[rows[:, t], lo:hi]
    out = np.zeros((size, size), dtype=np.float32)
    for t in range(cols.shape[1]):
        out += col_w[None, :, t] * strip[:, cols[:, t] - lo]
    return out


def radial_flatten(channel: F32, circle: Circle, mask: Mask) -> F32:
    """``channel`` divided by a smooth model of its brightness at each distance from the centre.

    Removes the camera's vignetting (and the exposure) so that the disc stands out as > 1, the
    macula and an eyelid as < 1. The model is a quadratic in rho^2 fitted to the ring medians
    between 0.35 and 1 field radii (inside, the macula would pull the medians down) and
    extrapolated to the centre. Outside ``mask``: 1.
    """
    yy, xx = np.indices(channel.shape, dtype=np.float32)
    rho = np.hypot(xx + 0.5 - circle.x, yy + 0.5 - circle.y) / circle.r
    edges = np.linspace(0.35, 1.0, 9)
    centres, medians = [], []
    for lo, hi in itertools.pairwise(edges):
        values = channel[(rho >= lo) & (rho < hi) & mask]
        if values.size >= 8:
            centres.append((lo + hi) / 2.0)
            medians.append(float(np.median(values)))
    out = np.ones_like(channel)
    if len(centres) < 3:
        return out
    coef = np.polyfit(np.square(centres), medians, 2)
    model = np.polyval(coef, np.minimum(rho, 1.0) ** 2).astype(np.float32)
    model = np.maximum(model, max(1.0, 0.2 * max(medians)))
    out[mask] = channel[mask] / model[mask]
    return out


def peak(image: F32, mask: Mask) -> tuple[float, int, int]:
    """The highest value of ``image`` within ``mask``, and its (x, y)."""
    masked = np.where(mask, image, -math.inf)
    index = int(np.argmax(masked))
    y, x = divmod(index, image.shape[1])
    return float(masked[y, x]), x, y
