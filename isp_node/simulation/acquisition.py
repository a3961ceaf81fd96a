"""Acquire localizer slices from a simulated subject lying in the scanner.

A `Subject` is anatomy (a template volume), the smooth deformation that makes
it an individual, its pose in the scanner and its contrast. Acquisition
evaluates the deformation only at the points it samples, so a localizer costs
what its pixels cost, never a whole-volume warp.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from isp_node.pipeline.interpolation import sample_trilinear, upsample_linear
from isp_node.pipeline.slices import ImageSlice
from isp_node.simulation.protocols import StackSpec

PointMap = Callable[[np.ndarray], np.ndarray]


def _identity(points: np.ndarray) -> np.ndarray:
    return points


@dataclass(frozen=True)
class Subject:
    """Anatomy in the scanner: template volume, deformation, pose, contrast."""

    volume: np.ndarray  # template intensities (i, j, k)
    affine: np.ndarray  # template voxel -> template LPS mm
    pose: np.ndarray  # 4x4 rigid, subject (head) LPS -> scanner LPS
    to_template: PointMap = _identity  # subject LPS -> template LPS
    contrast: Callable[[np.ndarray], np.ndarray] = _identity  # template value -> signal
    bias: Callable[[np.ndarray], np.ndarray] | None = None  # scanner LPS -> gain
    # (subject LPS, template LPS) -> (N, 2) weights of lesion core and oedema
    lesion: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    lesion_signal: tuple[float, float] = (0.0, 0.0)  # signal of lesion core and oedema
    brain_mask: np.ndarray | None = None  # template space, 0..1
    brain_affine: np.ndarray | None = None  # brain_mask voxel -> template LPS mm
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)  # scanner LPS

    def _to_subject(self, points: np.ndarray) -> np.ndarray:
        """Subject points of scanner points (..., 3): the pose's inverse."""
        rotation, translation = self.pose[:3, :3], self.pose[:3, 3]
        return (points - translation) @ rotation

    def _to_template(self, points: np.ndarray) -> np.ndarray:
        """Template points (N, 3) of scanner points (N, 3)."""
        return self.to_template(self._to_subject(points))

    def _smooth_maps(self, points: np.ndarray) -> np.ndarray:
        """(N, 4) of scanner points (N, 3): the template point and the receive gain."""
        gain = self.bias(points) if self.bias is not None else np.ones(len(points))
        return np.column_stack([self._to_template(points), gain])

    def signal(self, points: np.ndarray, along: np.ndarray | None = None,
               offsets: np.ndarray = np.zeros(1), weights: np.ndarray = np.ones(1),
               stride: int = 1) -> np.ndarray:
        """MR signal (before noise and artifacts) (n, points per image) of n images, each a
        lattice of scanner points (n, ..., 3), averaged over `offsets` (mm) along the unit
        direction `along` with `weights` (a slice profile).

        The deformation and bias field are evaluated once per point (or per
        `stride`-th lattice node, see `on_lattice`); the offsets follow the
        deformation's local linear part at each image's centre (halfway between
        its first and last point), exact for the affine part and within a
        fraction of a millimetre for the smooth non-linear rest.
        """
        n = len(points)
        smooth = on_lattice(self._smooth_maps, points, stride, batch_axes=1).reshape(n, -1, 4)
        template, gain = smooth[..., :3], smooth[..., 3]
        points = points.reshape(n, -1, 3)
        step_subject, step_template = np.zeros(3), np.zeros((n, 3))
        if along is not None:
            centres = (points[:, 0] + points[:, -1]) / 2
            ends = self._to_template(np.concatenate([centres, centres + along]))
            step_subject = along @ self.pose[:3, :3]
            step_template = ends[n:] - ends[:n]
        subject = self._to_subject(points) if self.lesion is not None else None
        to_voxel = np.linalg.inv(self.affine)
        total = np.zeros(points.shape[:2])
        for offset, weight in zip(offsets, weights):
            values = self.contrast(np.stack([  # each image samples at template + offset * its step
                sample_trilinear(self.volume, _shifted(to_voxel, offset * step), image_points)
                for step, image_points in zip(step_template, template)]))
            if subject is not None:
                t = template + offset * step_template[:, None]
                lesion = self.lesion((subject + offset * step_subject).reshape(-1, 3),
                                     t.reshape(-1, 3)).reshape(n, -1, 2)
                core, oedema = lesion[..., 0], lesion[..., 1]
                values = (values * (1 - core - oedema) + self.lesion_signal[0] * core
                          + self.lesion_signal[1] * oedema)
            total += weight * values
        return total * gain

    def brain(self, points: np.ndarray, stride: int = 1, batch_axes: int = 0) -> np.ndarray:
        """Brain membership 0..1 at scanner points (..., 3), flattened; zeros when no
        mask is known. `stride` and `batch_axes` as for `on_lattice`."""
        if self.brain_mask is None:
            return np.zeros(points.size // 3, np.float32)
        return _sample(self.brain_mask, self.brain_affine,
                       on_lattice(self._to_template, points, stride, batch_axes))


def on_lattice(fn: PointMap, points: np.ndarray, stride: int, batch_axes: int = 0) -> np.ndarray:
    """`fn` (of points (N, 3), giving (N, k)) at points (..., 3), flattened to (N, k). With
    `stride` > 1, `points` must be a regular lattice after its first `batch_axes` axes (a
    batch of lattices): `fn` is evaluated on every `stride`-th node (extended past the far
    edges) and multilinearly interpolated between them (for maps smooth on that scale)."""
    if stride == 1:
        return fn(points.reshape(-1, 3)).reshape(points.size // 3, -1)
    batch, shape = points.shape[:batch_axes], points.shape[batch_axes:-1]
    first = (slice(None),) * batch_axes
    origin = points[first + (0,) * len(shape)]
    coarse = origin.reshape(*batch, *[1] * len(shape), 3)
    for axis, n in enumerate(shape):
        step = points[first + tuple(1 if a == axis else 0 for a in range(len(shape)))] - origin \
            if n > 1 else np.zeros_like(origin)
        nodes = np.arange(0, n - 1 + stride, stride).reshape([-1] + [1] * (len(shape) - axis))
        coarse = coarse + nodes * np.reshape(step, (*batch, *[1] * len(shape), 3))
    values = fn(coarse.reshape(-1, 3))
    values = values.reshape(*coarse.shape[:-1], *values.shape[1:])
    return upsample_linear(values, shape, 1.0 / stride, first_axis=batch_axes).reshape(points.size // 3, -1)


def _shifted(to_voxel: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """`to_voxel` (4x4) of points moved by `shift` (mm) before they are mapped."""
    shifted = to_voxel.copy()
    shifted[:3, 3] += to_voxel[:3, :3] @ shift
    return shifted


def _sample(volume: np.ndarray, affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Trilinear value of `volume` (voxel -> LPS `affine`) at LPS points (N, 3); 0 outside."""
    return sample_trilinear(volume, np.linalg.inv(affine), points)


def slice_geometry(stack: StackSpec, index: int) -> ImageSlice:
    """The empty slice `index` of a stack: its geometry with zero pixels."""
    return ImageSlice(np.zeros(stack.matrix, np.float32), stack.slice_origin(index),
                      stack.row, stack.col, stack.pixel_spacing, stack.thickness)


RENDER_POINTS = 1 << 18  # pixels rendered per call, to bound memory


def render(subject: Subject, geometries: Sequence[ImageSlice], offsets: np.ndarray,
           weights: np.ndarray, margin_px: int = 0, phase_axis: int = 0,
           stride: int = 1) -> np.ndarray:
    """Signal (n, rows, cols) of the slices of one stack (same matrix, spacing and normal),
    averaged over their slice profile (`offsets` along the normal, mm), rendered together.
    With `margin_px`, the field of view is extended by that many pixels on both sides of
    the phase axis (for wrap-around). `stride` as for `Subject.signal`."""
    rows, cols = geometries[0].shape
    r = np.arange(-margin_px, rows + margin_px) if phase_axis == 0 else np.arange(rows)
    c = np.arange(-margin_px, cols + margin_px) if phase_axis == 1 else np.arange(cols)
    pixels = np.stack(np.meshgrid(r, c, indexing="ij"), axis=-1)
    per_call = max(1, RENDER_POINTS // pixels[..., 0].size)
    total = []
    for first in range(0, len(geometries), per_call):
        points = np.stack([g.pixel_to_patient(pixels) for g in geometries[first:first + per_call]])
        total.append(subject.signal(points, geometries[0].normal, offsets, weights, stride))
    return np.concatenate(total).reshape(len(geometries), len(r), len(c)).astype(np.float32)


def brain_areas_mm2(subject: Subject, geometries: list[ImageSlice],
                    sample_mm: float = 6.0) -> np.ndarray:
    """Area of brain each slice shows (its central plane), sampled every `sample_mm`
    (or every pixel, if coarser); the deformation is evaluated on every other sample
    (it is smooth on that scale). Slices of one matrix and spacing are sampled together."""
    areas = np.zeros(len(geometries))
    alike = defaultdict(list)
    for i, g in enumerate(geometries):
        alike[g.shape, tuple(g.spacing)].append(i)
    for (shape, spacing), members in alike.items():
        steps = [max(sample_mm / sp, 1.0) for sp in spacing]
        rr, cc = np.meshgrid(np.arange(0, shape[0], steps[0]), np.arange(0, shape[1], steps[1]),
                             indexing="ij")
        samples = np.stack([rr, cc], axis=-1)
        points = np.stack([geometries[i].pixel_to_patient(samples) for i in members])
        inside = subject.brain(points, stride=2, batch_axes=1).reshape(len(members), -1) > 0.5
        areas[members] = inside.sum(axis=1) * steps[0] * spacing[0] * steps[1] * spacing[1]
    return areas
