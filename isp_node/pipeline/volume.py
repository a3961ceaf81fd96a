"""The patient-space volume the networks take: localizer slices resampled onto a grid.

A localizer is a few groups of parallel slices (a three-plane scout) or one
dense stack (a 3D scout). Each group is resampled onto a regular LPS-aligned
grid; a voxel takes the slices whose slab overlaps it, weighted by the overlap,
and a second channel records how much of the voxel the slices covered. Gaps
between thick slices stay empty (coverage 0) instead of being invented.
"""

from dataclasses import dataclass

import numpy as np

from isp_node.pipeline.interpolation import sample_bilinear
from isp_node.pipeline.slices import ImageSlice

PARALLEL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Grid:
    """A regular grid aligned with the patient axes: voxel (i, j, k) is at origin + spacing*(i, j, k)."""

    shape: tuple[int, int, int]
    spacing: float
    origin: np.ndarray  # LPS mm of voxel (0, 0, 0)

    @classmethod
    def centred(cls, centre: np.ndarray, shape: tuple[int, int, int], spacing: float) -> "Grid":
        origin = np.asarray(centre, dtype=float) - spacing * (np.asarray(shape) - 1) / 2
        return cls(tuple(int(s) for s in shape), float(spacing), origin)

    @property
    def affine(self) -> np.ndarray:
        """4x4 voxel index -> LPS mm."""
        a = np.eye(4)
        a[:3, :3] *= self.spacing
        a[:3, 3] = self.origin
        return a

    @property
    def centre(self) -> np.ndarray:
        return self.origin + self.spacing * (np.asarray(self.shape) - 1) / 2

    def points(self) -> np.ndarray:
        """LPS coordinates (X, Y, Z, 3) of every voxel centre."""
        axes = [self.origin[a] + self.spacing * np.arange(n) for a, n in enumerate(self.shape)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)

    def projection(self, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """``(p - origin) @ direction`` at every voxel centre p, flattened in C order;
        summed from one term per axis because the grid is axis-aligned."""
        terms = [(self.origin[a] - origin[a] + self.spacing * np.arange(n)) * direction[a]
                 for a, n in enumerate(self.shape)]
        return (terms[0][:, None, None] + terms[1][None, :, None] + terms[2][None, None, :]).ravel()

    def to_voxel(self, points: np.ndarray) -> np.ndarray:
        """Continuous voxel indices (..., 3) of LPS points (..., 3)."""
        return (np.asarray(points, dtype=float) - self.origin) / self.spacing


@dataclass(frozen=True)
class LocalizerVolume:
    """Network input: normalised intensity and slice coverage on a grid."""

    image: np.ndarray  # (X, Y, Z) float32, ~[0, 1] for tissue
    coverage: np.ndarray  # (X, Y, Z) float32 in [0, 1]
    grid: Grid

    def tensor(self) -> np.ndarray:
        """Channels-last (X, Y, Z, 2) float32 array for Keras."""
        return np.stack([self.image, self.coverage], axis=-1).astype(np.float32)


def parallel_groups(slices: list[ImageSlice]) -> list[list[ImageSlice]]:
    """Group slices that form one stack: same orientation, shape and pixel spacing,
    ordered along their normal."""
    groups: list[list[ImageSlice]] = []
    for s in slices:
        for group in groups:
            g = group[0]
            if (g.shape == s.shape and np.allclose(g.spacing, s.spacing)
                    and np.allclose(g.row, s.row, atol=PARALLEL_TOLERANCE)
                    and np.allclose(g.col, s.col, atol=PARALLEL_TOLERANCE)):
                group.append(s)
                break
        else:
            groups.append([s])
    return [sorted(g, key=lambda s: float(s.position @ s.normal)) for g in groups]


def intensity_scale(image: np.ndarray, coverage: np.ndarray) -> float:
    """A robust intensity reference: the 99th percentile of the covered, non-background
    voxels (taken on the grid, so it does not depend on the images' pixel size)."""
    values = image[coverage > 0.5]
    foreground = values[values > 0.05 * values.max()] if values.size and values.max() > 0 \
        else values
    scale = float(np.percentile(foreground, 99)) if foreground.size else 1.0
    return scale if scale > 0 else 1.0


def _overlap(centre_offsets: np.ndarray, thickness: float, extent: float) -> np.ndarray:
    """Length of [-t/2, t/2] inside [d - e/2, d + e/2], divided by e."""
    low = np.maximum(-thickness / 2, centre_offsets - extent / 2)
    high = np.minimum(thickness / 2, centre_offsets + extent / 2)
    return np.clip(high - low, 0, None) / extent


def _accumulate_group(group: list[ImageSlice], grid: Grid,
                      total: np.ndarray, weight: np.ndarray) -> None:
    """Add one stack's contribution to the weighted sums (flat) of every voxel."""
    first = group[0]
    normal = first.normal
    offsets = np.array([float((s.position - first.position) @ normal) for s in group])
    images = [s.antialiased(grid.spacing) for s in group]
    r = grid.projection(first.position, first.col) / first.spacing[0]
    c = grid.projection(first.position, first.row) / first.spacing[1]
    d = grid.projection(first.position, normal)
    rows, cols = first.shape
    reach = (first.thickness + grid.spacing) / 2
    # voxels inside the field of view and near the stack, sorted by distance along its normal,
    # so each slice takes a contiguous run of them
    candidates = np.flatnonzero((r > -0.5) & (r < rows - 0.5) & (c > -0.5) & (c < cols - 0.5)
                                & (d > offsets.min() - reach) & (d < offsets.max() + reach))
    candidates = candidates[np.argsort(d[candidates], kind="stable")]
    distance = d[candidates]
    for image, offset, s in zip(images, offsets, group):
        low = np.searchsorted(distance, offset - reach, side="right")
        high = np.searchsorted(distance, offset + reach, side="left")
        if high <= low:
            continue
        near = candidates[low:high]
        w = _overlap(distance[low:high] - offset, s.thickness, grid.spacing)
        values = sample_bilinear(image, r[near], c[near])
        total[near] += w * values
        weight[near] += w


def resample(slices: list[ImageSlice], grid: Grid) -> LocalizerVolume:
    """Resample a localizer's slices onto `grid` (intensity normalised per localizer)."""
    total = np.zeros(int(np.prod(grid.shape)), np.float64)
    weight = np.zeros_like(total)
    for group in parallel_groups(slices):
        _accumulate_group(group, grid, total, weight)
    total, weight = total.reshape(grid.shape), weight.reshape(grid.shape)
    image = np.where(weight > 0, total / np.maximum(weight, 1e-9), 0.0)
    coverage = np.clip(weight, 0, 1)
    image /= intensity_scale(image, coverage)
    return LocalizerVolume(image.astype(np.float32), coverage.astype(np.float32), grid)


def localizer_centre(slices: list[ImageSlice]) -> np.ndarray:
    """Where the localizer is centred: the mean of its image centres."""
    return np.mean([s.centre for s in slices], axis=0)
