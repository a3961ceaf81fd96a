"""Acquire localizer slices from a simulated subject lying in the scanner.

A `Subject` is anatomy (a template volume), the smooth deformation that makes
it an individual, its pose in the scanner and its contrast. Acquisition
evaluates the deformation only at the points it samples, so a localizer costs
what its pixels cost, never a whole-volume warp.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

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
    lesion: Callable[[np.ndarray], np.ndarray] | None = None  # subject LPS -> (N, 2) core, oedema
    lesion_signal: tuple[float, float] = (0.0, 0.0)  # signal of lesion core and oedema
    brain_mask: np.ndarray | None = None  # template space, 0..1
    brain_affine: np.ndarray | None = None  # brain_mask voxel -> template LPS mm
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)  # scanner LPS

    def _to_template(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(subject points, template points) of scanner points (N, 3)."""
        rotation, translation = self.pose[:3, :3], self.pose[:3, 3]
        subject = (points - translation) @ rotation  # inverse of a rigid transform
        return subject, self.to_template(subject)

    def signal(self, points: np.ndarray) -> np.ndarray:
        """MR signal (before noise and artifacts) at scanner points (N, 3)."""
        subject, template = self._to_template(points)
        values = self.contrast(_sample(self.volume, self.affine, template))
        if self.lesion is not None:
            weights = self.lesion(subject)
            core, oedema = weights[:, 0], weights[:, 1]
            values = (values * (1 - core - oedema) + self.lesion_signal[0] * core
                      + self.lesion_signal[1] * oedema)
        if self.bias is not None:
            values = values * self.bias(points)
        return values

    def brain(self, points: np.ndarray) -> np.ndarray:
        """Brain membership 0..1 at scanner points (N, 3); zeros when no mask is known."""
        if self.brain_mask is None:
            return np.zeros(len(points), np.float32)
        _, template = self._to_template(points)
        return _sample(self.brain_mask, self.brain_affine, template)


def _sample(volume: np.ndarray, affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Trilinear value of `volume` (voxel -> LPS `affine`) at LPS points (N, 3); 0 outside."""
    inverse = np.linalg.inv(affine)
    voxels = points @ inverse[:3, :3].T + inverse[:3, 3]
    return ndimage.map_coordinates(volume, voxels.T, order=1, cval=0.0)


def slice_geometry(stack: StackSpec, index: int) -> ImageSlice:
    """The empty slice `index` of a stack: its geometry with zero pixels."""
    return ImageSlice(np.zeros(stack.matrix, np.float32), stack.slice_origin(index),
                      stack.row, stack.col, stack.pixel_spacing, stack.thickness)


def render(subject: Subject, geometry: ImageSlice, offsets: np.ndarray,
           weights: np.ndarray, margin_px: int = 0, phase_axis: int = 0) -> np.ndarray:
    """Signal of one slice, averaged over its slice profile (`offsets` along the normal,
    mm). With `margin_px`, the field of view is extended by that many pixels on both
    sides of the phase axis (for wrap-around)."""
    rows, cols = geometry.shape
    r = np.arange(-margin_px, rows + margin_px) if phase_axis == 0 else np.arange(rows)
    c = np.arange(-margin_px, cols + margin_px) if phase_axis == 1 else np.arange(cols)
    rr, cc = np.meshgrid(r, c, indexing="ij")
    points = geometry.pixel_to_patient(np.stack([rr, cc], axis=-1)).reshape(-1, 3)
    total = np.zeros(len(points))
    for offset, weight in zip(offsets, weights):
        total += weight * subject.signal(points + offset * geometry.normal)
    return total.reshape(rr.shape).astype(np.float32)


def brain_area_mm2(subject: Subject, geometry: ImageSlice, step_px: int = 4) -> float:
    """Area of brain the slice shows (its central plane), sampled every `step_px` pixels."""
    rows, cols = geometry.shape
    rr, cc = np.meshgrid(np.arange(0, rows, step_px), np.arange(0, cols, step_px), indexing="ij")
    points = geometry.pixel_to_patient(np.stack([rr, cc], axis=-1)).reshape(-1, 3)
    inside = np.count_nonzero(subject.brain(points) > 0.5)
    return inside * step_px**2 * geometry.spacing[0] * geometry.spacing[1]
