"""The patient-space volume the networks take: localizer slices resampled onto a grid.

A localizer is a few groups of parallel slices (a three-plane scout) or one
dense stack (a 3D scout). Each group is resampled onto a regular LPS-aligned
grid; a voxel takes the slices whose slab overlaps it, weighted by the overlap,
and a second channel records how much of the voxel the slices covered. Gaps
between thick slices stay empty (coverage 0) instead of being invented.
"""

from dataclasses import dataclass

import numba
import numpy as np

from isp_node.pipeline.interpolation import bilinear_at
from isp_node.pipeline.slices import ImageSlice, PixelStack

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

    def squared_distance(self, point: np.ndarray) -> np.ndarray:
        """Squared distance (X, Y, Z) from every voxel centre to `point`, summed axis by axis."""
        square = [(self.origin[a] + self.spacing * np.arange(n) - point[a]) ** 2
                  for a, n in enumerate(self.shape)]
        return square[0][:, None, None] + square[1][None, :, None] + square[2][None, None, :]

    def window(self, centre: np.ndarray, radius_mm: float) -> tuple["Grid", tuple[slice, slice, slice]]:
        """The part of the grid within `radius_mm` of `centre` along every axis: the sub-grid
        and the index slices that cut it out of an (X, Y, Z, ...) array (possibly empty)."""
        low = np.ceil((np.asarray(centre, dtype=float) - radius_mm - self.origin) / self.spacing)
        high = np.floor((np.asarray(centre, dtype=float) + radius_mm - self.origin) / self.spacing) + 1
        low = np.clip(low, 0, self.shape).astype(int)
        high = np.maximum(np.clip(high, 0, self.shape).astype(int), low)
        box = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
        return Grid(tuple(int(b - a) for a, b in zip(low, high)), self.spacing,
                    self.origin + self.spacing * low), box

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
            if (g.shape == s.shape and _close(g.spacing, s.spacing, 1e-8)
                    and _close(g.row, s.row, PARALLEL_TOLERANCE)
                    and _close(g.col, s.col, PARALLEL_TOLERANCE)):
                group.append(s)
                break
        else:
            groups.append([s])
    return [sorted(g, key=lambda s: float(s.position @ s.normal)) for g in groups]


def _close(a, b, atol: float) -> bool:
    """``np.allclose(a, b, atol=atol)`` for two short vectors, without numpy's per-call cost."""
    return all(abs(x - y) <= atol + 1e-5 * abs(y) for x, y in zip(np.asarray(a, float).tolist(),
                                                                 np.asarray(b, float).tolist()))


def intensity_scale(image: np.ndarray, coverage: np.ndarray) -> float:
    """A robust intensity reference: the 99th percentile of the covered, non-background
    voxels (taken on the grid, so it does not depend on the images' pixel size)."""
    values = image[coverage > 0.5]
    foreground = values[values > 0.05 * values.max()] if values.size and values.max() > 0 \
        else values
    scale = float(np.percentile(foreground, 99)) if foreground.size else 1.0
    return scale if scale > 0 else 1.0


def _accumulate_group(group: list[ImageSlice], grid: Grid,
                      total: np.ndarray, weight: np.ndarray) -> None:
    """Add one stack's contribution to the weighted sums (flat) of every voxel."""
    first = group[0]
    stack = PixelStack.of(group, grid.spacing)
    pixel_mm = np.array([stack.spacing[0], stack.spacing[1], 1.0])
    relative = np.array([s.position - first.position for s in group])
    axes = np.array([first.col, first.row, first.normal], np.float64)
    _accumulate_stack(
        stack.antialiased(grid.spacing), relative @ axes.T / pixel_mm,
        np.array([s.thickness for s in group], np.float64),
        np.asarray(grid.origin, np.float64) - first.position - stack.offset, axes, pixel_mm,
        grid.spacing, (first.thickness + grid.spacing) / 2, total.reshape(grid.shape),
        weight.reshape(grid.shape))


@numba.njit(cache=True, nogil=True)
def _accumulate_stack(images, shifts, thickness, origin, axes, pixel_mm, spacing, reach,
                      total, weight):
    """Each voxel takes the slices whose centre lies within `reach` of it along the normal,
    weighted by the overlap of slab and voxel, at its bilinear value in that slice.
    `shifts` are each slice's (row, column, normal) offsets from the first slice, whose
    position is the frame of `origin`; the slices are sorted along the normal."""
    count, rows, cols = images.shape
    nx, ny, nz = total.shape
    base = np.empty(3)
    step = np.empty(3)
    for a in range(3):
        step[a] = spacing * axes[a, 2] / pixel_mm[a]
    near, far = shifts[0, 2] - reach, shifts[count - 1, 2] + reach
    for i in range(nx):
        for j in range(ny):
            for a in range(3):  # row index, column index, distance along the normal at k = 0
                base[a] = ((origin[0] + spacing * i) * axes[a, 0] + (origin[1] + spacing * j) * axes[a, 1]
                           + origin[2] * axes[a, 2]) / pixel_mm[a]
            for k in range(nz):
                distance = base[2] + k * step[2]
                if distance <= near or distance >= far:
                    continue
                first = np.searchsorted(shifts[:, 2], distance - reach, side="right")
                for s in range(first, count):
                    offset = distance - shifts[s, 2]
                    if offset <= -reach:
                        break
                    r = base[0] + k * step[0] - shifts[s, 0]
                    c = base[1] + k * step[1] - shifts[s, 1]
                    if not (-0.5 < r < rows - 0.5 and -0.5 < c < cols - 0.5):
                        continue
                    low = max(-thickness[s] / 2, offset - spacing / 2)
                    high = min(thickness[s] / 2, offset + spacing / 2)
                    w = max(high - low, 0.0) / spacing
                    total[i, j, k] += w * bilinear_at(images, s, r, c)
                    weight[i, j, k] += w


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
