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

from isp_node.geometry.planes import rigid_parts
from isp_node.pipeline.interpolation import bilinear_at
from isp_node.pipeline.slices import ImageSlice, PixelStack
from isp_node.pipeline.threads import thread_pool

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

    def axes(self) -> list[np.ndarray]:
        """The voxel centres' LPS coordinate along each axis (the grid is axis-aligned)."""
        return [self.origin[a] + self.spacing * np.arange(n) for a, n in enumerate(self.shape)]

    def points(self) -> np.ndarray:
        """LPS coordinates (X, Y, Z, 3) of every voxel centre."""
        return np.stack(np.meshgrid(*self.axes(), indexing="ij"), axis=-1)

    def projection(self, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """``(p - origin) @ direction`` at every voxel centre p, flattened in C order;
        summed from one term per axis because the grid is axis-aligned."""
        terms = [(self.origin[a] - origin[a] + self.spacing * np.arange(n)) * direction[a]
                 for a, n in enumerate(self.shape)]
        return (terms[0][:, None, None] + terms[1][None, :, None] + terms[2][None, None, :]).ravel()

    def squared_distance(self, point: np.ndarray) -> np.ndarray:
        """Squared distance (X, Y, Z) from every voxel centre to `point`, summed axis by axis."""
        square = [(axis - p) ** 2 for axis, p in zip(self.axes(), point)]
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


@numba.njit(cache=True, nogil=True)
def _accumulate_stack(images, shifts, thickness, origin, axes, pixel_mm, spacing, reach,
                      total, weight, first_row, end_row):
    """Each voxel takes the slices whose centre lies within `reach` of it along the normal,
    weighted by the overlap of slab and voxel, at its bilinear value in that slice.
    `shifts` are each slice's (row, column, normal) offsets from the first slice, whose
    position is the frame of `origin`; the slices are sorted along the normal. Only the
    voxels of the grid's rows `first_row` to `end_row` (first index) are visited."""
    count, rows, cols = images.shape
    nx, ny, nz = total.shape
    base = np.empty(3)
    step = np.empty(3)
    for a in range(3):
        step[a] = spacing * axes[a, 2] / pixel_mm[a]
    near, far = shifts[0, 2] - reach, shifts[count - 1, 2] + reach
    for i in range(first_row, end_row):
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


@dataclass(frozen=True)
class _PreparedStack:
    """One stack's pixels prepared for sampling at one spacing, and its geometry in the
    terms `_accumulate_stack` takes."""

    pixels: np.ndarray  # (N, rows, cols) binned and anti-aliased
    shifts: np.ndarray  # (N, 3) each slice from the first: rows, columns, mm along the normal
    thickness: np.ndarray  # (N,) mm
    pixel_mm: np.ndarray  # (3,) row and column pixel size, 1 mm along the normal
    axes: np.ndarray  # (3, 3) the first slice's column, row and normal directions
    corner: np.ndarray  # (3,) LPS of the centre of the first slice's (binned) pixel (0, 0)


class LocalizerStacks:
    """A localizer's slices grouped into stacks, their pixels prepared for sampling (binned
    and anti-aliased) once per grid spacing: the cascade resamples one localizer onto five
    grids, at three spacings, and that preparation is much of a resampling's cost."""

    def __init__(self, slices: list[ImageSlice]) -> None:
        self.groups = parallel_groups(slices)
        self._prepared: dict[float, list[_PreparedStack]] = {}

    def prepared(self, spacing: float) -> list[_PreparedStack]:
        """Every stack prepared for a grid of `spacing` mm."""
        if spacing not in self._prepared:
            self._prepared[spacing] = [self._prepare(group, spacing) for group in self.groups]
        return self._prepared[spacing]

    @staticmethod
    def _prepare(group: list[ImageSlice], spacing: float) -> _PreparedStack:
        first = group[0]
        stack = PixelStack.of(group, spacing)
        pixel_mm = np.array([stack.spacing[0], stack.spacing[1], 1.0])
        axes = np.array([first.col, first.row, first.normal], np.float64)
        relative = np.array([s.position - first.position for s in group])
        return _PreparedStack(stack.antialiased(spacing), relative @ axes.T / pixel_mm,
                              np.array([s.thickness for s in group], np.float64), pixel_mm, axes,
                              first.position + stack.offset)

    def resample(self, grid: Grid, moved: np.ndarray | None = None) -> LocalizerVolume:
        """The slices resampled onto `grid` (intensity normalised per localizer), carried first
        by the rigid 4x4 transform `moved` if given (the head turned, pixels unchanged)."""
        rotation, translation = (np.eye(3), np.zeros(3)) if moved is None else rigid_parts(moved)
        total = np.zeros(grid.shape, np.float64)
        weight = np.zeros_like(total)
        stacks = self.prepared(grid.spacing)

        def accumulate(rows: range) -> None:
            for stack in stacks:
                # a rigid move turns the stack's axes and moves its corner; the slices keep
                # their shifts from the first one, measured along those axes
                _accumulate_stack(
                    stack.pixels, stack.shifts, stack.thickness,
                    np.asarray(grid.origin, np.float64) - (rotation @ stack.corner + translation),
                    stack.axes @ rotation.T, stack.pixel_mm, grid.spacing,
                    (stack.thickness[0] + grid.spacing) / 2, total, weight, rows.start, rows.stop)

        half = grid.shape[0] // 2  # the grid's two halves side by side, each its own voxels
        list(thread_pool().map(accumulate, (range(0, half), range(half, grid.shape[0]))))
        image = np.where(weight > 0, total / np.maximum(weight, 1e-9), 0.0)
        coverage = np.clip(weight, 0, 1)
        image /= intensity_scale(image, coverage)
        return LocalizerVolume(image.astype(np.float32), coverage.astype(np.float32), grid)


def resample(slices: list[ImageSlice], grid: Grid) -> LocalizerVolume:
    """Resample a localizer's slices onto `grid` (intensity normalised per localizer)."""
    return LocalizerStacks(slices).resample(grid)


def localizer_centre(slices: list[ImageSlice]) -> np.ndarray:
    """Where the localizer is centred: the mean of its image centres."""
    return np.mean([s.centre for s in slices], axis=0)
