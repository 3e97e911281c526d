"""Render a :class:`~simulators.fundus.case.FundusCase` as an 8-bit RGB photograph.

The image is built as a reflectance map in linear units (1.0 = 255 at nominal exposure):
orange-red background with choroidal texture and pigmentation, the darker macula, the bright
yellowish disc with its cup, the vessel tree; then the eyelid (if any), the camera's vignetting,
the defocus (a Gaussian PSF applied in the Fourier domain), the exposure, shot and read noise,
the circular field stop on black, and 8-bit quantisation with clipping.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from simulators.fundus.case import FundusCase, lid_edge
from simulators.fundus.vessels import draw_vessels, vessel_tree

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]

#: reflectance (R, G, B) of the background, the disc rim, the cup, the vessels' transmission,
#: and the skin of the lid, at nominal exposure
BACKGROUND = (0.80, 0.36, 0.15)
DISC = (1.0, 0.70, 0.42)
CUP = (1.0, 0.84, 0.62)
VESSEL_TRANSMISSION = (0.70, 0.42, 0.50)
SKIN = (0.34, 0.17, 0.11)
#: relative darkening of the macula at the fovea (R, G, B)
MACULA_DEPTH = (0.18, 0.35, 0.35)
#: vignetting: the brightness at field radius rho is 1 - VIGNETTING * rho**2.2
VIGNETTING = 0.5
READ_NOISE_DN = 1.5
SHOT_NOISE_GAIN = 0.12  # variance in DN^2 per DN of signal


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> F32:
    """Low-frequency noise (std ~1): a ``cells`` x ``cells`` random grid, bilinearly enlarged."""
    h, w = shape
    grid = rng.standard_normal((cells + 1, cells + 1), dtype=np.float32)
    y = np.linspace(0.0, cells - 1e-3, h, dtype=np.float32)
    x = np.linspace(0.0, cells - 1e-3, w, dtype=np.float32)
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    rows = grid[:, x0] * (1 - fx) + grid[:, x0 + 1] * fx  # (cells + 1) x w
    noise: F32 = rows[y0] * (1 - fy) + rows[y0 + 1] * fy
    return noise


def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (the FFT is fastest on such lengths)."""
    best = 2 * n
    p2 = 1
    while p2 < best:
        p3 = p2
        while p3 < best:
            p5 = p3
            while p5 < best:
                if p5 >= n:
                    best = p5
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return best


def gaussian_blur(image: F32, sigma: float) -> F32:
    """Gaussian blur (sigma in px) of an H x W or H x W x C image, by the FFT, edges padded."""
    if sigma <= 0.0:
        return image
    pad = math.ceil(3.0 * sigma) + 1
    h, w = image.shape[:2]
    fh, fw = _fast_length(h + 2 * pad), _fast_length(w + 2 * pad)
    widths = [(pad, fh - h - pad), (pad, fw - w - pad)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, widths, mode="edge")
    fy = np.fft.fftfreq(fh).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(fw).astype(np.float32)[None, :]
    transfer = np.exp(-2.0 * (math.pi * sigma) ** 2 * (fx * fx + fy * fy))
    if image.ndim == 3:
        transfer = transfer[..., None]
    spectrum = np.fft.rfft2(padded, axes=(0, 1)) * transfer
    out = np.fft.irfft2(spectrum, s=(fh, fw), axes=(0, 1))
    return out[pad : pad + h, pad : pad + w].astype(np.float32)


def render(case: FundusCase, width: int = 1024, height: int = 1024) -> U8:
    """The photograph of ``case``: ``height`` x ``width`` x 3, uint8."""
    rng = np.random.default_rng(case.seed)
    radius = case.fov_fraction * min(width, height) / 2.0
    cx = width / 2.0 + case.fov_offset[0] * radius
    cy = height / 2.0 + case.fov_offset[1] * radius
    x = (np.arange(width, dtype=np.float32) + 0.5 - cx) / radius
    y = (np.arange(height, dtype=np.float32) + 0.5 - cy) / radius
    u, v = x[None, :], y[:, None]
    rho2 = u * u + v * v
    texture = 1.0 + 0.06 * _smooth_noise(rng, (height, width), 12)
    texture += 0.025 * _smooth_noise(rng, (height, width), 60)
    reflect = np.empty((height, width, 3), dtype=np.float32)
    for c in range(3):
        reflect[..., c] = BACKGROUND[c] * case.pigment * texture
    fu, fv = case.fovea_position
    sigma_m = case.disc_radius * 1.1
    macula = np.exp(-((u - fu) ** 2 + (v - fv) ** 2) / (2.0 * sigma_m * sigma_m))
    for c in range(3):
        reflect[..., c] *= 1.0 - MACULA_DEPTH[c] * macula
    du, dv = case.disc_position
    rd = case.disc_radius
    d_disc = np.sqrt(((u - du) / rd) ** 2 + ((v - dv) / (1.08 * rd)) ** 2)
    rim = np.clip((1.0 - d_disc) / 0.12, 0.0, 1.0)
    cup = np.clip((0.45 - d_disc) / 0.15, 0.0, 1.0)
    for c in range(3):
        disc_colour = DISC[c] * (1.0 - cup) + CUP[c] * cup
        reflect[..., c] = reflect[..., c] * (1.0 - rim) + disc_colour * rim
    base = (fu - case.shift[0], fv - case.shift[1])
    disc_base = (du - case.shift[0], dv - case.shift[1])
    tree = vessel_tree(rng, disc_base, base, case.side)
    opacity = draw_vessels(tree, (height, width), (cx, cy), radius, case.shift)
    for c in range(3):
        reflect[..., c] *= 1.0 - opacity * (1.0 - VESSEL_TRANSMISSION[c])
    sigma_px = case.defocus * 2.0 * radius
    reflect = gaussian_blur(reflect, sigma_px)
    if case.lid_depth > 0.0:
        _add_lid(case, reflect, u, v, (cx, cy, radius), rng)
    light = case.exposure * 255.0 * (1.0 - VIGNETTING * np.minimum(rho2, 1.2) ** 1.1)
    signal = reflect * light[..., None]
    noise_sd = np.sqrt(READ_NOISE_DN**2 + SHOT_NOISE_GAIN * np.maximum(signal, 0.0))
    signal += noise_sd * rng.standard_normal(signal.shape, dtype=np.float32)
    stop = np.clip((1.0 - np.sqrt(rho2)) * radius + 0.5, 0.0, 1.0)
    dark = 2.0 + 0.8 * rng.standard_normal((height, width), dtype=np.float32)
    out = signal * stop[..., None] + (dark * (1.0 - stop))[..., None]
    pixels: U8 = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return pixels


def _add_lid(
    case: FundusCase,
    reflect: F32,
    u: F32,
    v: F32,
    fov: tuple[float, float, float],
    rng: np.random.Generator,
) -> None:
    """Paint the out-of-focus upper lid and its lashes over ``reflect`` (in place)."""
    cx, cy, radius = fov
    edge = lid_edge(case, u)
    # the lid is close to the lens: its edge is soft (about 1.5 % of the FOV radius)
    cover = np.clip((edge - v) / 0.03 + 0.5, 0.0, 1.0)
    shade = 0.75 + 0.25 * np.clip((v - edge + 0.4) / 0.4, 0.0, 1.0)
    lashes = np.zeros(cover.shape, dtype=np.float32)
    h, w = cover.shape
    for _ in range(int(rng.integers(12, 30))):
        x0 = float(rng.uniform(-0.9, 0.9))
        y0 = float(lid_edge(case, np.array([x0]))[0])
        angle = math.pi / 2 + float(rng.normal(0.0, 0.35))
        length = float(rng.uniform(0.05, 0.18))
        t = np.linspace(0.0, length, 40)
        xs = (x0 + np.cos(angle) * t) * radius + cx
        ys = (y0 + np.sin(angle) * t + 0.4 * t * t) * radius + cy
        xi = np.clip(np.rint(xs).astype(int), 0, w - 1)
        yi = np.clip(np.rint(ys).astype(int), 0, h - 1)
        lashes[yi, xi] = 1.0
    lashes = np.minimum(1.0, gaussian_blur(lashes, 0.004 * radius) * 3.0)
    for c in range(3):
        lid = SKIN[c] * shade
        reflect[..., c] = reflect[..., c] * (1.0 - cover) + lid * cover
        reflect[..., c] *= 1.0 - 0.85 * lashes
