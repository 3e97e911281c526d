"""What a simulated fundus photograph shows, and whether a reader could grade it.

A :class:`FundusCase` holds every physical parameter of one photograph (anatomy, optics,
exposure, eyelid, alignment), drawn from a seeded RNG by :func:`draw_case`. Its ground truth
(:func:`truth_of`) is decided here, from those parameters alone, by the criteria below - never by
looking at the pixels and never by calling the grader - so that the grader's agreement with it is
an honest measure.

Geometry is in *field units*: the camera's circular field of view (FOV) has radius 1, ``u`` grows
to the right of the image and ``v`` downwards. A 45 degree field spans about 13 mm of retina;
the optic disc (about 1.8 mm) is 1/7 of the FOV diameter, and the fovea lies 2.5 disc diameters
(DD) temporal to the disc and slightly below it. In a right eye's photograph the disc is on the
right of the image (nasal side), in a left eye's on the left.

Criteria (the physical reasons are in docs/imaging.md):

* ``blur``: retake when the total defocus (a Gaussian point-spread function) exceeds
  :data:`BLUR_LIMIT` of the FOV diameter, i.e. 2.0 px at a 1024 px image: a microaneurysm of
  about 60 um (sigma ~1.9 px there) then keeps less than half its contrast.
* ``underexposed``: retake when the background's signal level (exposure x pigmentation, see
  :attr:`FundusCase.signal_level`) is below :data:`DARK_LIMIT` x nominal (-1 EV): the contrast
  of a microaneurysm in the green channel of the outer field falls under twice the sensor noise.
* ``overexposed``: retake above :data:`BRIGHT_LIMIT` x nominal (+0.9 EV): the red channel of
  the whole central field and the green channel of the disc clip; the cup/disc boundary is lost.
* ``eyelid``: retake when the lid hides more than :data:`OCCLUDED_LIMIT` of the FOV area.
* ``off-centre``: retake when the disc is not entirely inside the field, or the fovea is less
  than 2 DD from the field's edge (the NHS DESP notion of an adequate macular field).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FAULTS = ("clean", "blur", "underexposed", "overexposed", "eyelid", "off-centre")

#: defocus sigma as a fraction of the FOV diameter above which the image is not gradable
#: (2.0 px for a FOV of 952 px, the FOV of a 1024 px image at the mean field fraction 0.93)
BLUR_LIMIT = 2.0 / 952.0
#: exposure (x nominal) below which the image is too dark, above which too bright
DARK_LIMIT = 0.5
BRIGHT_LIMIT = 1.9
#: share of the FOV area hidden by the eyelid above which the image is not gradable
OCCLUDED_LIMIT = 0.10
#: a fovea closer than this many disc diameters to the FOV edge is off the usable field
FOVEA_EDGE_DD = 2.0

#: the share of each fault in a cohort drawn by :func:`draw_case` without a fault
FAULT_WEIGHTS = {
    "clean": 0.30,
    "blur": 0.20,
    "underexposed": 0.125,
    "overexposed": 0.125,
    "eyelid": 0.125,
    "off-centre": 0.125,
}


@dataclass(frozen=True, slots=True)
class FundusCase:
    """Physical parameters of one photograph (field units unless stated)."""

    laterality: str  # "R" or "L"
    fault: str
    seed: int  # seeds the texture, vessel tree and noise of the rendering
    fov_fraction: float  # FOV diameter / shorter image side
    fov_offset: tuple[float, float]  # FOV centre offset from the image centre (fractions of R)
    fovea: tuple[float, float]  # retinal position of the fovea before any misalignment shift
    disc_fovea_distance: float
    disc_angle: float  # rad: how far the disc lies above the fovea-disc horizontal
    pigment: float  # fundus pigmentation factor on the background reflectance
    shift: tuple[float, float]  # misalignment: the retina moves by this much in the field
    defocus: float  # total Gaussian PSF sigma, fraction of the FOV diameter
    exposure: float  # x nominal
    lid_depth: float  # how far the upper lid's edge comes down from the FOV top (0: no lid)
    lid_curve: float  # the lid edge rises by lid_curve * u**2 towards the sides

    @property
    def side(self) -> int:
        """+1 when the disc is on the right of the image (right eye), -1 otherwise."""
        return 1 if self.laterality == "R" else -1

    @property
    def signal_level(self) -> float:
        """The background's brightness relative to nominal: what sets its SNR and clipping."""
        return self.exposure * self.pigment

    @property
    def disc_radius(self) -> float:
        return self.disc_fovea_distance / 5.0  # the fovea is 2.5 DD from the disc

    @property
    def fovea_position(self) -> tuple[float, float]:
        """Where the fovea appears in the field, after the misalignment shift."""
        return (self.fovea[0] + self.shift[0], self.fovea[1] + self.shift[1])

    @property
    def disc_position(self) -> tuple[float, float]:
        fu, fv = self.fovea_position
        d = self.disc_fovea_distance
        return (fu + self.side * d * math.cos(self.disc_angle), fv - d * math.sin(self.disc_angle))


@dataclass(frozen=True, slots=True)
class FundusTruth:
    """The ground truth of one photograph: what a careful reader would decide."""

    laterality: str
    fault: str
    gradable: bool
    reason: str | None  # the expected grader reason code when not gradable
    #: the fault's severity in its own unit: defocus (FOV diameters), signal level (x nominal),
    #: occluded FOV share, or the fovea's distance from the FOV centre (field units); 0 if clean
    severity: float
    disc: tuple[float, float]  # field units
    fovea: tuple[float, float]
    occluded_share: float


def occluded_share(case: FundusCase, n: int = 201) -> float:
    """The share of the FOV area under the eyelid (numerically, on an ``n`` x ``n`` grid)."""
    if case.lid_depth <= 0.0:
        return 0.0
    axis = np.linspace(-1.0, 1.0, n)
    u, v = np.meshgrid(axis, axis)
    inside = u * u + v * v <= 1.0
    lid = v < lid_edge(case, u)
    return float(np.count_nonzero(lid & inside) / np.count_nonzero(inside))


def lid_edge(case: FundusCase, u: NDArray[np.floating]) -> NDArray[np.floating]:
    """The v coordinate of the lid's lower edge across the field (above it: lid)."""
    edge: NDArray[np.floating] = -1.0 + case.lid_depth - case.lid_curve * u * u
    return edge


def truth_of(case: FundusCase) -> FundusTruth:
    """Decide gradability from the physical parameters (see the module docstring)."""
    disc, fovea = case.disc_position, case.fovea_position
    share = occluded_share(case)
    reason: str | None = None
    severity = 0.0
    if case.fault == "blur":
        severity = case.defocus
    elif case.fault in ("underexposed", "overexposed"):
        severity = case.signal_level
    elif case.fault == "eyelid":
        severity = share
    elif case.fault == "off-centre":
        severity = math.hypot(*fovea)
    dd = 2.0 * case.disc_radius
    disc_out = math.hypot(*disc) - case.disc_radius
    if disc_out >= 1.0:
        reason = "no-optic-disc"
    elif disc_out + 2.0 * case.disc_radius > 1.0 or math.hypot(*fovea) > 1.0 - FOVEA_EDGE_DD * dd:
        reason = "off-centre"
    elif case.defocus > BLUR_LIMIT:
        reason = "blurred"
    elif case.signal_level < DARK_LIMIT:
        reason = "too-dark"
    elif case.signal_level > BRIGHT_LIMIT:
        reason = "too-bright"
    elif share > OCCLUDED_LIMIT:
        reason = "occluded"
    return FundusTruth(
        laterality=case.laterality,
        fault=case.fault,
        gradable=reason is None,
        reason=reason,
        severity=severity,
        disc=disc,
        fovea=fovea,
        occluded_share=share,
    )


def draw_case(rng: np.random.Generator, fault: str | None = None) -> FundusCase:
    """One photograph's parameters; ``fault`` None draws it from :data:`FAULT_WEIGHTS`.

    Each fault's severity range straddles its criterion, so every fault has borderline cases
    on both sides of the verdict.
    """
    if fault is None:
        names = list(FAULT_WEIGHTS)
        fault = str(rng.choice(names, p=np.array([FAULT_WEIGHTS[k] for k in names])))
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    side = 1 if rng.random() < 0.5 else -1
    defocus = float(rng.uniform(0.3, 0.8)) / 952.0  # the camera's own optics: always sharp
    exposure = float(rng.uniform(0.8, 1.25))
    lid_depth, lid_curve = 0.0, 0.0
    shift = (float(rng.normal(0.0, 0.02)), float(rng.normal(0.0, 0.02)))
    if fault == "blur":
        defocus = float(np.exp(rng.uniform(np.log(0.9), np.log(6.0)))) / 952.0
    elif fault == "underexposed":
        exposure = float(rng.uniform(0.2, 0.75))
    elif fault == "overexposed":
        exposure = float(rng.uniform(1.4, 3.0))
    elif fault == "eyelid":
        lid_depth = float(rng.uniform(0.08, 0.65))
        lid_curve = float(rng.uniform(0.0, 0.3))
    elif fault == "off-centre":
        magnitude = float(rng.uniform(0.12, 0.7))
        angle = float(rng.uniform(0.0, 2.0 * math.pi))
        shift = (magnitude * math.cos(angle), magnitude * math.sin(angle))
    return FundusCase(
        laterality="R" if side > 0 else "L",
        fault=fault,
        seed=int(rng.integers(0, 2**31)),
        fov_fraction=float(rng.uniform(0.90, 0.96)),
        fov_offset=(float(rng.normal(0.0, 0.01)), float(rng.normal(0.0, 0.01))),
        fovea=(-side * float(rng.uniform(0.08, 0.2)), float(rng.normal(0.03, 0.03))),
        disc_fovea_distance=float(rng.uniform(0.66, 0.76)),
        disc_angle=math.radians(float(rng.uniform(2.0, 10.0))),
        pigment=float(rng.uniform(0.88, 1.1)),
        shift=shift,
        defocus=defocus,
        exposure=exposure,
        lid_depth=lid_depth,
        lid_curve=lid_curve,
    )
