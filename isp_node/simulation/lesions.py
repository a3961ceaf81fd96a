"""Simulated space-occupying lesions: a soft-edged core, an optional oedema rim, and mass effect.

A ``Lesion`` is a lobulated ball (tumour, metastasis, abscess, haematoma).
Its mass effect is a radial push of the surrounding tissue,
``g(s) = push_mm * q(s / radius_mm)`` with ``q(u) = 1.89 u / (1 + u^3)``:
zero at the centre, peaking (``push_mm``) just inside the lesion edge and
decaying like ``1/s^2`` outside, as for an incompressible medium. The
deformation limits it to the brain (skull and scalp stay) and composes it
into the map, so landmarks move with the tissue (e.g. midline shift). With
``push_mm <= 0.4 * radius_mm`` the push alone is invertible (``q'`` <= 1.89).

``random_lesion`` returns a lesion in template coordinates;
``Deformation.with_lesion`` (or ``random_deformation(..., lesion=...)``)
carries it into the subject head, where ``Deformation.lesion.weight`` gives
the weights the simulator uses to change intensities.
"""

from dataclasses import dataclass

import numpy as np

from isp_node.simulation.anatomy import Head
from isp_node.simulation.masks import template_maps

PUSH_PROFILE_PEAK = 1.89  # 1 / max(u / (1 + u^3))
RADIUS_RANGE_MM = (5.0, 30.0)
PUSH_FRACTION_RANGE = (0.05, 0.25)  # of the radius; <= 0.4 keeps the push invertible
OEDEMA_PROBABILITY = 0.6
OEDEMA_RANGE_MM = (3.0, 20.0)
LOBES = 3
LOBE_AMPLITUDE = 0.2


@dataclass(frozen=True, eq=False)
class Lesion:
    """A lobulated space-occupying lesion with an oedema rim and a radial push on its surroundings."""

    centre: np.ndarray  # (3,) LPS mm, in the space its weights are evaluated in
    radius_mm: float
    edge_mm: float  # width of the core's soft edge
    oedema_mm: float  # thickness of the oedema rim beyond the core (0: none)
    push_mm: float  # peak outward displacement of the surrounding tissue
    lobe_axes: np.ndarray  # (k, 3) unit vectors
    lobe_amplitudes: np.ndarray  # (k,) relative radius change along each axis

    def surface_radius(self, directions: np.ndarray) -> np.ndarray:
        """Core radius (mm) along unit ``directions`` (..., 3): lobulated around ``radius_mm``."""
        cos2 = (directions @ self.lobe_axes.T) ** 2
        return self.radius_mm * (1.0 + (cos2 - 1.0 / 3.0) @ self.lobe_amplitudes)

    def weight(self, points: np.ndarray) -> np.ndarray:
        """Core and oedema weights in [0, 1], shape (..., 2), at ``points`` (..., 3); computed
        only within `reach_mm` of the centre (beyond it they are below 1e-5: zero)."""
        rel = np.asarray(points, dtype=np.float32) - self.centre.astype(np.float32)
        out = np.zeros(rel.shape[:-1] + (2,), dtype=np.float32)
        squared = np.einsum("...i,...i->...", rel, rel)
        near = squared < self.reach_mm ** 2
        rel, dist = rel[near], np.sqrt(squared[near])
        directions = rel / np.maximum(dist, 1e-6)[..., None]
        beyond = dist - self.surface_radius(directions)
        out[near, 0] = core = 0.5 * (1.0 - np.tanh(beyond / self.edge_mm))
        if self.oedema_mm > 0:
            outer = 0.5 * (1.0 - np.tanh((beyond - self.oedema_mm) / self._rim_edge_mm))
            out[near, 1] = np.clip(outer - core, 0.0, 1.0)
        return out

    @property
    def _rim_edge_mm(self) -> float:
        return max(2.0, self.oedema_mm / 3.0)

    @property
    def reach_mm(self) -> float:
        """Distance from the centre beyond which core and oedema weights are negligible:
        the largest lobe radius, the rim, and six widths of the softer edge (tanh(6) = 1 - 1e-5)."""
        lobe = self.radius_mm * (1.0 + 2.0 / 3.0 * float(np.abs(self.lobe_amplitudes).sum()))
        rim = self.oedema_mm + 6.0 * self._rim_edge_mm if self.oedema_mm > 0 else 0.0
        return lobe + max(6.0 * self.edge_mm, rim)

    def push(self, points: np.ndarray) -> np.ndarray:
        """Outward displacement (..., 3) of the tissue at ``points`` caused by the lesion."""
        rel = np.asarray(points, dtype=float) - self.centre
        dist = np.linalg.norm(rel, axis=-1)
        u = dist / self.radius_mm
        magnitude = self.push_mm * PUSH_PROFILE_PEAK / (self.radius_mm * (1.0 + u ** 3))
        return rel * magnitude[..., None]  # = g(s) * rel / s


def random_unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` directions drawn uniformly on the sphere."""
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def random_lesion(head: Head, rng: np.random.Generator) -> Lesion:
    """A random lesion inside the template brain (template coordinates), radius 5-30 mm, log-uniform.

    The centre is a random brain voxel outside the lateral ventricles lying at
    least ``0.7 * radius + 3`` mm deep, so large lesions sit in the hemispheres'
    white matter and deep grey matter and small ones may be anywhere,
    brainstem and cerebellum included.
    """
    maps = template_maps(head)
    radius = float(np.exp(rng.uniform(*np.log(RADIUS_RANGE_MM))))
    allowed = maps.brain & (maps.ventricles < 0.1)
    while True:
        candidates = np.argwhere(allowed & (maps.depth_mm >= 0.7 * radius + 3.0))
        if len(candidates) or radius <= RADIUS_RANGE_MM[0]:
            break
        radius *= 0.9
    if not len(candidates):
        raise ValueError(f"{head.name}: no brain deep enough for a lesion")
    voxel = candidates[rng.integers(len(candidates))] + rng.uniform(-0.5, 0.5, 3)
    centre = maps.affine[:3, :3] @ voxel + maps.affine[:3, 3]
    oedema = float(rng.uniform(*OEDEMA_RANGE_MM)) if rng.random() < OEDEMA_PROBABILITY else 0.0
    return Lesion(
        centre=centre, radius_mm=radius, edge_mm=float(rng.uniform(0.8, 2.5)), oedema_mm=oedema,
        push_mm=float(rng.uniform(*PUSH_FRACTION_RANGE)) * radius,
        lobe_axes=random_unit_vectors(rng, LOBES),
        lobe_amplitudes=rng.uniform(-LOBE_AMPLITUDE, LOBE_AMPLITUDE, LOBES))
